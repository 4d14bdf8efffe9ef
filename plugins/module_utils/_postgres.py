# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL dumps and restores run inside the database container (`docker exec`, no TTY).

The password travels on the exec's standard input, never on a command line: the shell inside reads it
into PGPASSWORD and execs the client, which connects over TCP to 127.0.0.1 so the password is really
checked. Without a password the client connects through the local socket as the container's postgres user.
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

    def stdin_prefix(self) -> bytes:
        return (self.password + "\n").encode() if self.password is not None else b""


def _scrub(text: str, target: Target) -> str:
    if target.password:
        text = text.replace(target.password, "********")
    return text.strip()[-800:]


def psql(target: Target, query: str) -> str:
    argv = target.exec_argv(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", query])
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
