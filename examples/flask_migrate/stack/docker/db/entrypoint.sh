#!/usr/bin/env bash
# Entrypoint of notes-db (PostgreSQL 15 from Debian). Runs as root so that it can read the compose secret
# (root-owned, mode 0600), then runs PostgreSQL as the postgres user:
#   1. reads the password from the file named by POSTGRES_PASSWORD_FILE (never prints it),
#   2. initdb's PGDATA when it is empty, listening on all addresses; pg_hba: local socket trust (inside the
#      container only), scram-sha-256 for TCP,
#   3. on every start (so a changed secret applies): creates the role POSTGRES_USER (LOGIN CREATEDB, not a
#      superuser) when it is missing and sets its password, creates the database POSTGRES_DB owned by it when
#      it is missing,
#   4. execs postgres as PID 1 (SIGINT = fast shutdown).
# The password goes to PostgreSQL on the standard input of its single-user mode: never on a command line.
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
DB=${POSTGRES_DB:-notes}
DB_USER=${POSTGRES_USER:-notes}
PW_FILE=${POSTGRES_PASSWORD_FILE:-}

say() { printf 'notes-db: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

[ "$(id -u)" = 0 ] || die "must start as root (it reads the root-only secret file)"
[ -n "$PW_FILE" ] || die "POSTGRES_PASSWORD_FILE is not set"
[ -r "$PW_FILE" ] || die "cannot read POSTGRES_PASSWORD_FILE ($PW_FILE)"
PASSWORD=$(<"$PW_FILE")
[ -n "$PASSWORD" ] || die "the password file $PW_FILE is empty"
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || die "POSTGRES_DB must be a plain lower-case identifier"
[[ "$DB_USER" =~ ^[a-z_][a-z0-9_]*$ ]] || die "POSTGRES_USER must be a plain lower-case identifier"

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  say "initialising a new cluster in $PGDATA"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  cat > "$PGDATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       all                     trust
host    all       all       127.0.0.1/32  scram-sha-256
host    all       all       ::1/128       scram-sha-256
host    all       all       0.0.0.0/0     scram-sha-256
HBA
  chown postgres:postgres "$PGDATA/pg_hba.conf"
fi

# Single-user mode: no server, no socket, statements read from stdin (one per line); statements are never echoed
# into the log, even on error.
single_user() {
  as_postgres postgres --single -D "$PGDATA" -c log_min_error_statement=panic -c log_statement=none "$1" >/dev/null
}
{
  printf "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s; END IF; END\$\$;\n" \
    "$DB_USER" "$DB_USER"
  printf 'ALTER ROLE %s WITH LOGIN CREATEDB PASSWORD %s;\n' "$DB_USER" "$(sql_literal "$PASSWORD")"
} | single_user postgres
unset PASSWORD
db_exists() { printf 'SELECT 1;\n' | single_user "$DB" 2>/dev/null; }
if ! db_exists; then
  say "creating database $DB owned by $DB_USER"
  printf 'CREATE DATABASE %s OWNER %s;\n' "$DB" "$DB_USER" | single_user postgres
  db_exists || die "could not create database $DB"
fi

say "starting PostgreSQL $(postgres --version | awk '{print $3}') (database $DB, role $DB_USER)"
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
