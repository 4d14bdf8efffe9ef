# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL dumps and restores run inside the database container (`docker exec -i`, no TTY).

The password travels on the exec's standard input, never on a command line: the shell inside reads it
into PGPASSWORD and execs the client, which connects over TCP to 127.0.0.1 so the password is really
checked. Without a password the client connects through the local socket as the container's postgres user.
A password is one line: one holding a line break (or NUL) is refused before anything runs.

Every client command (pg_dump, pg_restore, psql) runs under the target's ``timeout``: when it expires, its database
session (found by its own application_name) is terminated, the process inside the container is killed (the shell
prints its pid first: killing the docker exec client alone leaves it running) and then the client; the command
fails with an error that says so. Every session it opens has ``lock_timeout`` (PGOPTIONS; pg_dump
--lock-wait-timeout), so a lock held by another session is a clear error, not a hang.

The database-level statements of the restore by swap (create, rename, refuse connections, drop) connect to the
maintenance database ``postgres``; every database name they carry is checked as a plain identifier first and
quoted, every other name (owner, tablespace, locale) comes from the server's catalog and is quoted or refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import threading
import typing as t

CHUNK = 1 << 20
# Runs as `sh -c SCRIPT sh CLIENT...`: says its pid (so a timed-out command can be killed inside the container), reads
# the password from the first line of standard input when there is one, and becomes the client.
WITH_PASSWORD = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$@"'
PID_LINE = "aiwfe-pid "
SAY_PID = 'echo "aiwfe-pid $$" >&2; '
DEFAULT_TIMEOUT = 3600
DEFAULT_LOCK_TIMEOUT = 30
# How long the clean-up of a timed-out command may take (terminating its session, killing it in the container).
CLEANUP_SECONDS = 20
APP_PREFIX = "aiwfe-rollback-"


class PostgresError(Exception):
    """A dump, check or restore failed; the message never holds the password."""


class Target:
    """The database: container, database name, user, (optional) password, and the limits of every client command:
    ``timeout`` (seconds a command may run) and ``lock_timeout`` (seconds a statement may wait for a lock)."""

    def __init__(self, docker: str, container: str, database: str, user: str, password: str | None,
                 timeout: int = DEFAULT_TIMEOUT, lock_timeout: int = DEFAULT_LOCK_TIMEOUT) -> None:
        if password is not None and any(c in password for c in "\n\r\0"):
            raise PostgresError("the database password holds a line break (or a NUL character): it is read as one line "
                                "from the client's standard input, so it cannot be used; nothing was run - give the "
                                "database user a password of one line")
        if not isinstance(timeout, int) or timeout < 1 or not isinstance(lock_timeout, int) or lock_timeout < 1:
            raise PostgresError(f"timeout ({timeout}) and lock_timeout ({lock_timeout}) must be whole numbers of "
                                "seconds, at least 1")
        self.docker = docker
        self.container = container
        self.database = database
        self.user = user
        self.password = password
        self.timeout = timeout
        self.lock_timeout = lock_timeout

    def exec_argv(self, client: list[str], stdin: bool = False, connect: bool = True, app: str | None = None) -> list[str]:
        """docker exec of ``client``; ``connect`` adds the connection options. With ``app`` (how Client runs every
        command): always -i, through a shell that first prints its pid (PID_LINE, on standard error), with the
        session's application_name ``app`` and lock_timeout. Without, the plain command for a caller that runs it."""
        if app is None:
            if not connect:
                return [self.docker, "exec"] + (["-i"] if stdin else []) + [self.container] + client
            conn = ["-U", self.user, "-d", self.database]
            if self.password is not None:
                return ([self.docker, "exec", "-i", self.container, "sh", "-c", WITH_PASSWORD, "sh"] + client
                        + ["-h", "127.0.0.1"] + conn)
            return [self.docker, "exec"] + (["-i"] if stdin else []) + ["-u", "postgres", self.container] + client + conn
        if not connect:
            return [self.docker, "exec", "-i", self.container, "sh", "-c", SAY_PID + 'exec "$@"', "sh"] + client
        env = ["-e", f"PGAPPNAME={app}", "-e", f"PGOPTIONS=-c lock_timeout={self.lock_timeout * 1000}"]
        conn = ["-U", self.user, "-d", self.database]
        if self.password is not None:
            return ([self.docker, "exec", "-i"] + env + [self.container, "sh", "-c", SAY_PID + WITH_PASSWORD, "sh"]
                    + client + ["-h", "127.0.0.1"] + conn)
        return ([self.docker, "exec", "-i"] + env + ["-u", "postgres", self.container, "sh", "-c", SAY_PID + 'exec "$@"',
                                                     "sh"] + client + conn)

    def on(self, database: str) -> "Target":
        """The same server, credentials and limits, connected to another database."""
        return Target(self.docker, self.container, database, self.user, self.password, self.timeout, self.lock_timeout)

    def stdin_prefix(self) -> bytes:
        return (self.password + "\n").encode() if self.password is not None else b""


def _scrub(text: str, target: Target) -> str:
    if target.password:
        text = text.replace(target.password, "********")
    return text.strip()[-800:]


LOCK_TIMEOUT_ERRORS = ("canceling statement due to lock timeout", "could not obtain lock on")


class Client:
    """One client command inside the container, under ``target.timeout`` (a watchdog thread): when it expires, the
    command's database session is terminated (by its application_name), the process inside the container is killed
    (by the pid its shell printed first) and the docker exec client too; ``finish`` then raises saying so. Standard
    error is read as it comes (for that pid); standard input starts with the password line when there is one."""

    def __init__(self, target: Target, client: list[str], connect: bool = True) -> None:
        self.target = target
        self.name = client[0]
        self.connect = connect
        self.app = APP_PREFIX + secrets.token_hex(6)
        self.expired = False
        self._err: list[bytes] = []
        self.proc = subprocess.Popen(target.exec_argv(client, connect=connect, app=self.app), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self._timer = threading.Timer(target.timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()
        if connect:
            self.write(target.stdin_prefix())

    def _read_stderr(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self._err.append(line)

    def pid(self) -> str | None:
        for line in list(self._err):
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(PID_LINE) and text[len(PID_LINE):].isdigit():
                return text[len(PID_LINE):]
        return None

    def _expire(self) -> None:
        self.expired = True
        self._end()

    def _end(self) -> None:
        """End the command everywhere: its database session, its process inside the container, then the client."""
        if self.proc.poll() is not None:
            return
        if self.connect:
            end_sessions(self.target, self.app)
        pid = self.pid()
        if pid:
            try:
                subprocess.run([self.target.docker, "exec", self.target.container, "sh", "-c",
                                f"kill -TERM {pid} 2>/dev/null; sleep 1; kill -KILL {pid} 2>/dev/null; true"],
                               capture_output=True, check=False, timeout=CLEANUP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self.proc.kill()

    def write(self, data: bytes) -> None:
        """Send ``data`` to the command's standard input (a command that has stopped reading is not an error here:
        its exit status says what happened)."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def stderr(self) -> str:
        lines = [line.decode("utf-8", "replace") for line in self._err]
        return _scrub("".join(line for line in lines if not line.startswith(PID_LINE)), self.target)

    def finish(self) -> int:
        """Close standard input, wait for the command; raises PostgresError when it failed or timed out."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait()
        self._timer.cancel()
        self._reader.join(CLEANUP_SECONDS)
        if self.expired:
            raise PostgresError(
                f"{self.name} did not finish within timeout={self.target.timeout} s on database {self.target.database}: "
                "it was ended (its database session and its process inside the container too); raise the timeout for "
                "a database this size, or find what it waited for (pg_stat_activity)")
        if rc != 0:
            detail = self.stderr()
            if any(text in detail for text in LOCK_TIMEOUT_ERRORS) or (
                    "due to statement timeout" in detail and "LOCK TABLE" in detail):   # pg_dump --lock-wait-timeout
                raise PostgresError(
                    f"{self.name} waited longer than lock_timeout={self.target.lock_timeout} s for a lock (its session "
                    f"on database {self.target.database}): another session holds a lock it needs (pg_locks, "
                    f"pg_stat_activity); end that session or let it finish, then run again ({detail})")
            raise PostgresError(f"{self.name} failed (rc={rc}): {detail}")
        return rc

    def abort(self) -> None:
        """Stop the command now, after a failure elsewhere (its session and its process inside the container too)."""
        self._timer.cancel()
        self._end()
        self.proc.wait()


def end_sessions(target: Target, app: str) -> None:
    """Terminate the database sessions of the application_name ``app`` (best effort, bounded in time)."""
    if not app.startswith(APP_PREFIX) or not app[len(APP_PREFIX):].isalnum():
        raise PostgresError(f"application name {app!r} is not one this collection gave")
    maintenance = target.on(MAINTENANCE_DB)
    argv = maintenance.exec_argv(["psql", "-X", "-q", "-t", "-A", "-c",
                                  f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{app}'"],
                                 app=APP_PREFIX + "cleanup")
    try:
        subprocess.run(argv, input=maintenance.stdin_prefix(), capture_output=True, check=False, timeout=CLEANUP_SECONDS)
    except subprocess.TimeoutExpired:
        pass


def run_client(target: Target, client: list[str], stdin: t.Iterable[bytes] = (), connect: bool = True,
               sink: t.Callable[[bytes], None] | None = None) -> str:
    """Run ``client`` in the container, feeding it ``stdin`` (after the password line); its standard output goes to
    ``sink`` block by block, or is returned."""
    proc = Client(target, client, connect)
    out_chunks: list[bytes] = []

    def reader() -> None:
        for block in iter(lambda: proc.proc.stdout.read(CHUNK), b""):
            (sink or out_chunks.append)(block)

    failed: list[BaseException] = []

    def reader() -> None:
        try:
            for block in iter(lambda: proc.proc.stdout.read(CHUNK), b""):
                (sink or out_chunks.append)(block)
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            failed.append(exc)
            proc.abort()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for block in stdin:
            proc.write(block)
    except BaseException:
        proc.abort()
        raise
    finally:
        try:
            proc.proc.stdin.close()
        except OSError:
            pass
    thread.join()
    if failed:
        proc.abort()
        raise failed[0]
    proc.finish()
    return b"".join(out_chunks).decode("utf-8", "replace")


def psql(target: Target, query: str, *more: str) -> str:
    """Run one or more statements (one -c each: each its own transaction, stopping at the first error)."""
    commands: list[str] = []
    for statement in (query,) + more:
        commands += ["-c", statement]
    return run_client(target, ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"] + commands).strip()


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


def parse_facts(answer: str) -> dict[str, t.Any]:
    """The answer of facts_query as {server_version, alembic_revision, row_counts}."""
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


def facts(target: Target, tables: t.Sequence[str] | None = None) -> dict[str, t.Any]:
    """Server version, Alembic revision and exact row counts (all tables of schema public, or the given ones),
    read with one psql call."""
    return parse_facts(psql(target, facts_query(tables)))


def client_version(target: Target) -> str:
    return run_client(target, ["pg_dump", "--version"], connect=False).strip()


class Snapshot:
    """A REPEATABLE READ transaction that exports its snapshot (pg_export_snapshot), kept open while pg_dump reads
    the same snapshot (--snapshot) and the row counts are read in it: what the dump holds and what its manifest counts
    are the same state, however much the writers write meanwhile. One psql session fed statement by statement; each
    answer is one line (-t -A)."""

    def __init__(self, target: Target) -> None:
        self.client = Client(target, ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        self.id = self.ask("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT pg_export_snapshot();")
        if not re.match(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$", self.id):
            self.close()
            raise PostgresError(f"psql answered {self.id[:200]!r}, not a snapshot id")

    def ask(self, statements: str) -> str:
        """Run ``statements`` in the transaction; returns the one line they answer (PostgresError when psql stopped)."""
        self.client.write(statements.encode() + b"\n")
        line = self.client.proc.stdout.readline()
        if not line:
            self.client.finish()      # raises: psql ended (an error, ON_ERROR_STOP) or timed out
            raise PostgresError("psql ended without answering")
        return line.decode("utf-8", "replace").strip()

    def close(self) -> None:
        """End the transaction (it only read) and the session."""
        self.client.write(b"COMMIT;\n")
        self.client.finish()


def dump(target: Target, tmp_path: str, snapshot: str | None = None) -> str:
    """pg_dump -Fc into tmp_path (0600, fsynced), of ``snapshot`` when given; returns its sha256."""
    digest = hashlib.sha256()
    options = [f"--lock-wait-timeout={target.lock_timeout * 1000}"] + ([f"--snapshot={snapshot}"] if snapshot else [])
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:

        def write(block: bytes) -> None:
            digest.update(block)
            out.write(block)

        try:
            run_client(target, ["pg_dump", "-Fc", "--no-password"] + options, sink=write)
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise PostgresError(f"writing {tmp_path} failed: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def dump_with_facts(target: Target, tmp_path: str) -> tuple[str, dict[str, t.Any]]:
    """pg_dump into tmp_path and the facts (server version, Alembic revision, exact row counts) of the very state it
    dumped: both read in one exported snapshot. Returns (sha256, facts)."""
    snapshot = Snapshot(target)
    try:
        sha = dump(target, tmp_path, snapshot.id)
        found = parse_facts(snapshot.ask(facts_query() + ";"))
    except BaseException:
        snapshot.client.abort()
        raise
    snapshot.close()
    return sha, found


def feed(target: Target, client: list[str], path: str, connect: bool = True) -> str:
    """Run a client in the container with the dump file on its standard input; returns its stdout."""
    with open(path, "rb") as handle:
        return run_client(target, client, iter(lambda: handle.read(CHUNK), b""), connect=connect)


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


def swap_sql(live: str, old: str, new: str, lock_timeout: int = DEFAULT_LOCK_TIMEOUT) -> str:
    """Both renames in one transaction (ALTER DATABASE RENAME is transactional): ``live`` -> ``old``, ``new`` ->
    ``live``. A session still connected to ``live`` makes it fail (after up to 5 s) and nothing is renamed."""
    return (f"BEGIN; SET LOCAL lock_timeout = '{int(lock_timeout)}s'; ALTER DATABASE {ident(live)} RENAME TO {ident(old)}; "
            f"ALTER DATABASE {ident(new)} RENAME TO {ident(live)}; COMMIT")


def swap(target: Target, live: str, old: str, new: str) -> None:
    """End the sessions that reconnected before ALLOW_CONNECTIONS false took effect, then swap the names."""
    psql(target.on(MAINTENANCE_DB), terminate_sql(live), swap_sql(live, old, new, target.lock_timeout))


def rename(target: Target, name: str, new_name: str) -> None:
    psql(target.on(MAINTENANCE_DB), f"ALTER DATABASE {ident(name)} RENAME TO {ident(new_name)}")


def drop_database(target: Target, name: str, force: bool = False) -> None:
    """DROP DATABASE IF EXISTS; with ``force`` (PostgreSQL 13+) its sessions are ended first - only for a database
    this restore created itself. Without it a database in use is not dropped (the error says so)."""
    psql(target.on(MAINTENANCE_DB), f"DROP DATABASE IF EXISTS {ident(name)}" + (" WITH (FORCE)" if force else ""))
