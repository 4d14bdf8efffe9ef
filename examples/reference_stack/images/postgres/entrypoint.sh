#!/usr/bin/env bash
# Entrypoint of aiwfe/postgres:15. Runs as root so that it can read the compose secret
# (root-owned, mode 0600), then runs PostgreSQL as the postgres user:
#   1. reads the password from the file named by POSTGRES_PASSWORD_FILE (never prints it),
#   2. initdb's PGDATA when it is empty, listening on all addresses, pg_hba:
#      local trust for the postgres role, scram-sha-256 for TCP from anywhere,
#   3. sets the postgres role's password (on every start, so a changed secret applies),
#      creates the database POSTGRES_DB (default ai_workflow_engine) if it is missing,
#   4. execs postgres as PID 1 (SIGINT = fast shutdown).
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
DB=${POSTGRES_DB:-ai_workflow_engine}
PW_FILE=${POSTGRES_PASSWORD_FILE:-}

say() { printf 'aiwfe-postgres: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

[ "$(id -u)" = 0 ] || die "must start as root (it reads the root-only secret file)"
[ -n "$PW_FILE" ] || die "POSTGRES_PASSWORD_FILE is not set"
[ -r "$PW_FILE" ] || die "cannot read POSTGRES_PASSWORD_FILE ($PW_FILE)"
PASSWORD=$(<"$PW_FILE")
[ -n "$PASSWORD" ] || die "the password file $PW_FILE is empty"
[[ "$DB" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "POSTGRES_DB must be a plain identifier"

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  say "initialising a new cluster in $PGDATA"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  cat > "$PGDATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       postgres                trust
host    all       all       127.0.0.1/32  scram-sha-256
host    all       all       ::1/128       scram-sha-256
host    all       all       0.0.0.0/0     scram-sha-256
HBA
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  chown postgres:postgres "$PGDATA/pg_hba.conf"
fi

# Single-user mode: no server, no socket, statements read from stdin (the password never
# appears on a command line); statements are never echoed into the log, even on error.
single_user() {
  as_postgres postgres --single -D "$PGDATA" -c log_min_error_statement=panic -c log_statement=none "$1" >/dev/null
}
printf 'ALTER ROLE postgres WITH PASSWORD %s;\n' "$(sql_literal "$PASSWORD")" | single_user postgres
unset PASSWORD
db_exists() { printf 'SELECT 1;\n' | single_user "$DB" 2>/dev/null; }
if ! db_exists; then
  say "creating database $DB"
  printf 'CREATE DATABASE %s;\n' "$DB" | single_user postgres
  db_exists || die "could not create database $DB"
fi

say "starting PostgreSQL $(postgres --version | awk '{print $3}')"
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
