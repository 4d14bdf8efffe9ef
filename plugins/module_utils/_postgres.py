# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL dumps and restores run inside the database container (`docker exec`, no TTY).

The password travels on the exec's standard input, never on a command line: the shell inside reads it
into PGPASSWORD and execs the client, which connects over TCP to 127.0.0.1 so the password is really
checked. Without a password the client connects through the local socket as the container's postgres user.

The database-level statements of the restore by swap (create, rename, refuse connections, drop) connect to the
maintenance database ``postgres``; every database name they carry is checked as a plain identifier first and
quoted, every other name (owner, tablespace, locale) comes from the server's catalog and is quoted or refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import typing as t

CHUNK = 1 << 20
WITH_PASSWORD = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$@"'


class PostgresError(Exception):
    """A dump, check or restore failed; the message never holds the password."""


class Target:
    """The database: container, database name, user and (optional) password."""

    def __init__(self, docker: str, container: str, database: str, user: str, password: str | None) -> None:
        self.docker = docker
        self.container = container
        self.database = database
        self.user = user
        self.password = password

    def exec_argv(self, client: list[str], stdin: bool = False, connect: bool = True) -> list[str]:
        if not connect:
            return [self.docker, "exec"] + (["-i"] if stdin else []) + [self.container] + client
        conn = ["-U", self.user, "-d", self.database]
        if self.password is not None:
            return [self.docker, "exec", "-i", self.container, "sh", "-c", WITH_PASSWORD, "sh"] + client + ["-h", "127.0.0.1"] + conn
        return [self.docker, "exec"] + (["-i"] if stdin else []) + ["-u", "postgres", self.container] + client + conn

    def on(self, database: str) -> "Target":
        """The same server and credentials, connected to another database."""
        return Target(self.docker, self.container, database, self.user, self.password)

    def stdin_prefix(self) -> bytes:
        return (self.password + "\n").encode() if self.password is not None else b""


def _scrub(text: str, target: Target) -> str:
    if target.password:
        text = text.replace(target.password, "********")
    return text.strip()[-800:]


def psql(target: Target, query: str, *more: str) -> str:
    """Run one or more statements (one -c each: each its own transaction, stopping at the first error)."""
    commands: list[str] = []
    for statement in (query,) + more:
        commands += ["-c", statement]
    argv = target.exec_argv(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"] + commands)
    proc = subprocess.run(argv, input=target.stdin_prefix(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise PostgresError(f"psql failed (rc={proc.returncode}): {_scrub(proc.stderr.decode('utf-8', 'replace'), target)}")
    return proc.stdout.decode("utf-8", "replace").strip()


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ALL_TABLES = "ARRAY(SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1)"
# Exact row counts of many tables in one statement: query_to_xml runs a count per table inside the server.
COUNT = "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM public.%I', name), false, true, '')))[1]::text::bigint"
REVISION = ("(xpath('/row/v/text()', query_to_xml('SELECT string_agg(version_num, '','' ORDER BY version_num) AS v "
            "FROM public.alembic_version', false, true, '')))[1]::text")


def _plain(names: t.Iterable[str]) -> list[str]:
    names = list(names)
    for name in names:
        if not IDENTIFIER.match(name):
            raise PostgresError(f"table name {name!r} is not a plain identifier")
    return names


def facts_query(tables: t.Sequence[str] | None = None) -> str:
    """One statement answering server version, exact row counts (every table of schema public, or the given ones,
    in that order) and the Alembic revision (when alembic_version is among the tables) as one JSON object."""
    names = ("ARRAY[" + ", ".join(f"'{n}'" for n in _plain(tables)) + "]::text[]") if tables else ALL_TABLES
    return (f"SELECT json_build_object('server_version', current_setting('server_version'), "
            f"'row_counts', (SELECT json_object_agg(name, {COUNT} ORDER BY i) FROM unnest({names}) WITH ORDINALITY AS t(name, i)), "
            f"'alembic_revision', CASE WHEN 'alembic_version' = ANY({names}) THEN {REVISION} END)")


def facts(target: Target, tables: t.Sequence[str] | None = None) -> dict[str, t.Any]:
    """Server version, Alembic revision and exact row counts (all tables of schema public, or the given ones),
    read with one psql call."""
    answer = psql(target, facts_query(tables))
    try:
        found = json.loads(answer)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise PostgresError(f"psql answered {answer[:200]!r}, not the JSON object asked for")
    counts = {name: int(rows) for name, rows in (found.get("row_counts") or {}).items()}
    _plain(counts)
    return {"server_version": found.get("server_version"), "alembic_revision": found.get("alembic_revision") or None,
            "row_counts": counts}


def client_version(target: Target) -> str:
    proc = subprocess.run([target.docker, "exec", target.container, "pg_dump", "--version"], capture_output=True, check=False)
    return proc.stdout.decode("utf-8", "replace").strip()


def dump(target: Target, tmp_path: str) -> str:
    """pg_dump -Fc into tmp_path (0600, fsynced); returns its sha256."""
    digest = hashlib.sha256()
    argv = target.exec_argv(["pg_dump", "-Fc", "--no-password"])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(target.stdin_prefix())
    proc.stdin.close()
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: proc.stdout.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        proc.kill()
        proc.wait()
        raise PostgresError(f"writing {tmp_path} failed: {exc.strerror or exc}") from exc
    rc = proc.wait()
    if rc != 0:
        raise PostgresError(f"pg_dump failed (rc={rc}): {_scrub(proc.stderr.read().decode('utf-8', 'replace'), target)}")
    return digest.hexdigest()


def feed(target: Target, client: list[str], path: str, connect: bool = True) -> str:
    """Run a client in the container with the dump file on its standard input; returns its stdout."""
    proc = subprocess.Popen(target.exec_argv(client, stdin=True, connect=connect), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_chunks: list[bytes] = []

    def reader() -> None:
        out_chunks.append(proc.stdout.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        if connect:
            proc.stdin.write(target.stdin_prefix())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                proc.stdin.write(block)
    except BrokenPipeError:
        pass
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
    rc = proc.wait()
    thread.join()
    if rc != 0:
        raise PostgresError(f"{client[0]} failed (rc={rc}): {_scrub(proc.stderr.read().decode('utf-8', 'replace'), target)}")
    return b"".join(out_chunks).decode("utf-8", "replace")


def check_dump(target: Target, path: str) -> int:
    """pg_restore --list of the dump; returns the number of TOC entries."""
    listing = feed(target, ["pg_restore", "--list"], path, connect=False)
    entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
    if not entries:
        raise PostgresError(f"{path} lists no objects: it is not a usable dump")
    return len(entries)


def restore(target: Target, path: str) -> None:
    """Replace the database's objects with the dump's, in one transaction (all or nothing)."""
    feed(target, ["pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner"], path)


def restore_into(target: Target, path: str) -> None:
    """Restore the dump into the (new, empty) database ``target.database`` in one transaction: no --clean, the first
    error stops it and nothing of it stays."""
    feed(target, ["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner"], path)


# --- database-level statements of the restore by swap (connected to the maintenance database) ----------------------

MAINTENANCE_DB = "postgres"
NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL cuts longer names
CATALOG_WORD = re.compile(r"^[A-Za-z0-9_.@ -]{1,100}$")  # encodings and locale names as the catalog holds them
# Settings whose value is a list of identifiers (pg_dumpall re-emits them unquoted, as the catalog keeps them quoted).
LIST_SETTINGS = ("search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries",
                 "shared_preload_libraries")


def ident(name: str) -> str:
    """A database name as a quoted SQL identifier, after checking that it is a plain identifier that fits."""
    if not IDENTIFIER.match(name or "") or len(name.encode()) > NAME_BYTES:
        raise PostgresError(f"database name {name!r} is not a plain identifier of at most {NAME_BYTES} characters")
    return '"' + name + '"'


def literal(name: str) -> str:
    """A plain identifier as an SQL string literal (checked by ident: it holds no quote)."""
    ident(name)
    return "'" + name + "'"


def quote_name(name: str) -> str:
    """Any name read from the catalog (a role, a tablespace) as a quoted identifier (quote_ident's rule)."""
    if not name or "\0" in name:
        raise PostgresError(f"cannot quote the name {name!r}")
    return '"' + name.replace('"', '""') + '"'


def catalog_word(value: t.Any, what: str) -> str:
    """An encoding or locale name from the catalog as a literal; anything unusual is refused, never quoted."""
    if not isinstance(value, str) or not CATALOG_WORD.match(value):
        raise PostgresError(f"the database's {what} {value!r} is not a name this restore can repeat")
    return "'" + value + "'"


def _json(target: Target, query: str, what: str) -> t.Any:
    answer = psql(target.on(MAINTENANCE_DB), query)
    try:
        return json.loads(answer)
    except ValueError as exc:
        raise PostgresError(f"psql answered {answer[:200]!r}, not the JSON asked for ({what})") from exc


DATABASES = "SELECT coalesce(json_object_agg(datname, datallowconn ORDER BY datname), '{}') FROM pg_database"


def databases(target: Target) -> dict[str, bool]:
    """Every database of the server: name -> whether it allows connections."""
    found = _json(target, DATABASES, "the databases")
    if not isinstance(found, dict):
        raise PostgresError(f"psql answered {found!r} for the list of databases")
    return {str(name): bool(allowed) for name, allowed in found.items()}


def properties_query(database: str) -> str:
    # to_jsonb(d): the columns of this server's pg_database (the locale columns differ between versions).
    return ("SELECT to_jsonb(d) || jsonb_build_object('owner', pg_get_userbyid(d.datdba), 'encoding_name', "
            "pg_encoding_to_char(d.encoding), 'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = d.dattablespace)) "
            f"FROM pg_database d WHERE d.datname = {literal(database)}")


def database_properties(target: Target, database: str) -> dict[str, t.Any]:
    """What CREATE DATABASE must repeat for a copy of ``database``: owner, encoding, locale, tablespace, limit."""
    found = _json(target, properties_query(database), f"the properties of {database}")
    if not isinstance(found, dict):
        raise PostgresError(f"database {database} does not exist on the server")
    return found


def create_database_sql(name: str, props: dict[str, t.Any]) -> str:
    """CREATE DATABASE ``name`` like the database described by ``props`` (database_properties), from template0."""
    parts = [f"CREATE DATABASE {ident(name)} WITH TEMPLATE template0", f"OWNER {quote_name(props['owner'])}",
             f"ENCODING {catalog_word(props.get('encoding_name'), 'encoding')}",
             f"LC_COLLATE {catalog_word(props.get('datcollate'), 'collation')}",
             f"LC_CTYPE {catalog_word(props.get('datctype'), 'character type')}"]
    provider = props.get("datlocprovider", "c")
    if provider == "i":
        parts.append("LOCALE_PROVIDER icu ICU_LOCALE "
                     + catalog_word(props.get("daticulocale") or props.get("datlocale"), "ICU locale"))
    elif provider == "b":
        parts.append("LOCALE_PROVIDER builtin BUILTIN_LOCALE " + catalog_word(props.get("datlocale"), "builtin locale"))
    elif provider != "c":
        raise PostgresError(f"the database's locale provider {provider!r} is not one this restore knows")
    if props.get("tablespace") not in (None, "pg_default"):
        parts.append(f"TABLESPACE {quote_name(props['tablespace'])}")
    limit = props.get("datconnlimit", -1)
    if isinstance(limit, int) and limit >= 0:
        parts.append(f"CONNECTION LIMIT {limit}")
    return " ".join(parts)


def copy_grants_sql(source: str, name: str) -> str:
    """A DO block that gives ``name`` the database-level privileges and settings (ALTER DATABASE ... SET, ALTER ROLE
    ... IN DATABASE ... SET) of ``source``: what pg_dump does not carry without --create."""
    lists = ", ".join(f"'{setting}'" for setting in LIST_SETTINGS)
    return f"""DO $aiwfe$
DECLARE
  src oid := (SELECT oid FROM pg_database WHERE datname = {literal(source)});
  acl aclitem[] := (SELECT datacl FROM pg_database WHERE datname = {literal(source)});
  r record;
BEGIN
  IF acl IS NOT NULL THEN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', {literal(name)});
    FOR r IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(acl) AS a LOOP
      EXECUTE format('GRANT %s ON DATABASE %I TO %s%s', r.privilege_type, {literal(name)},
        CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END,
        CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END IF;
  FOR r IN SELECT s.setrole, split_part(c, '=', 1) AS setting, substr(c, strpos(c, '=') + 1) AS value
           FROM pg_db_role_setting AS s, unnest(s.setconfig) AS c WHERE s.setdatabase = src LOOP
    EXECUTE format(CASE WHEN r.setrole = 0 THEN 'ALTER DATABASE %2$I SET %3$I = %4$s'
                        ELSE 'ALTER ROLE %1$I IN DATABASE %2$I SET %3$I = %4$s' END,
      pg_get_userbyid(r.setrole), {literal(name)}, r.setting,
      CASE WHEN r.setting IN ({lists}) THEN r.value ELSE quote_literal(r.value) END);
  END LOOP;
END
$aiwfe$"""


def create_database(target: Target, name: str, like: str, props: dict[str, t.Any]) -> None:
    """Create the empty database ``name`` like ``like`` (owner, encoding, locale from ``props``; privileges and
    settings copied), connected to the maintenance database. CREATE DATABASE runs in its own transaction."""
    psql(target.on(MAINTENANCE_DB), create_database_sql(name, props), copy_grants_sql(like, name))


def terminate_sql(database: str) -> str:
    return (f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = {literal(database)} "
            "AND pid <> pg_backend_pid()")


def refuse_connections(target: Target, database: str) -> None:
    """No new connection to ``database`` (ALLOW_CONNECTIONS false, superusers included), then end the open ones."""
    psql(target.on(MAINTENANCE_DB), f"ALTER DATABASE {ident(database)} ALLOW_CONNECTIONS false", terminate_sql(database))


def allow_connections(target: Target, *names: str) -> None:
    psql(target.on(MAINTENANCE_DB), *[f"ALTER DATABASE {ident(name)} ALLOW_CONNECTIONS true" for name in names])


def swap_sql(live: str, old: str, new: str, lock_timeout: str = "30s") -> str:
    """Both renames in one transaction (ALTER DATABASE RENAME is transactional): ``live`` -> ``old``, ``new`` ->
    ``live``. A session still connected to ``live`` makes it fail (after up to 5 s) and nothing is renamed."""
    return (f"BEGIN; SET LOCAL lock_timeout = '{lock_timeout}'; ALTER DATABASE {ident(live)} RENAME TO {ident(old)}; "
            f"ALTER DATABASE {ident(new)} RENAME TO {ident(live)}; COMMIT")


def swap(target: Target, live: str, old: str, new: str) -> None:
    """End the sessions that reconnected before ALLOW_CONNECTIONS false took effect, then swap the names."""
    psql(target.on(MAINTENANCE_DB), terminate_sql(live), swap_sql(live, old, new))


def rename(target: Target, name: str, new_name: str) -> None:
    psql(target.on(MAINTENANCE_DB), f"ALTER DATABASE {ident(name)} RENAME TO {ident(new_name)}")


def drop_database(target: Target, name: str, force: bool = False) -> None:
    """DROP DATABASE IF EXISTS; with ``force`` (PostgreSQL 13+) its sessions are ended first - only for a database
    this restore created itself. Without it a database in use is not dropped (the error says so)."""
    psql(target.on(MAINTENANCE_DB), f"DROP DATABASE IF EXISTS {ident(name)}" + (" WITH (FORCE)" if force else ""))
