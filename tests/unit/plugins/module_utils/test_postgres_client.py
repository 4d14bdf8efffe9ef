# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The client commands of _postgres under their limits: a dump's facts read in the dump's own snapshot, a command
that outlives its timeout ended inside the container (its session and its process, with a fake docker that really
hangs), a lock wait reported as such; the password file read exactly, one line or refused."""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres as pg
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import DATABASE_SPEC, database_target, read_password_file
from ansible_collections.aiwfe.rollback.tests.unit.plugins.module_utils.test_postgres_job import FakePopen as Proc

DB = "ai_workflow_engine"
SNAPSHOT_ID = "00000003-0000001B-1"
FACTS_LINE = ('{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : { "alembic_version" : 1, "jobs" : 5 }, '
              '"alembic_revision" : "0004"}\n')


def test_a_dump_and_its_row_counts_read_one_snapshot(monkeypatch, tmp_path):
    started = []

    def popen(argv, **_kwargs):
        client = argv[argv.index("sh") + 4]
        answer = {"psql": (SNAPSHOT_ID + "\n" + FACTS_LINE).encode(), "pg_dump": b"PGDMP dump bytes"}[client]
        started.append(Proc(argv, answer))
        return started[-1]

    monkeypatch.setattr(pg.subprocess, "Popen", popen)
    target = pg.Target("docker", "c1", DB, "postgres", "s3cret", lock_timeout=9)
    sha, found = pg.dump_with_facts(target, str(tmp_path / "d.dump"))
    session, dump = started
    assert found == {"server_version": "15.18 (Debian 15.18-0+deb12u1)", "alembic_revision": "0004",
                     "row_counts": {"alembic_version": 1, "jobs": 5}}
    assert (tmp_path / "d.dump").read_bytes() == b"PGDMP dump bytes" and len(sha) == 64
    assert stat.S_IMODE(os.stat(tmp_path / "d.dump").st_mode) == 0o600
    # one session: the password, the exporting transaction, the counts in it, then COMMIT
    assert session.input.getvalue() == (b"s3cret\nBEGIN ISOLATION LEVEL REPEATABLE READ; SELECT pg_export_snapshot();\n"
                                        + pg.facts_query().encode() + b";\nCOMMIT;\n")
    # pg_dump reads that snapshot, waiting at most lock_timeout for its locks
    assert dump.argv[dump.argv.index("sh") + 4:dump.argv.index("-h")] == [
        "pg_dump", "-Fc", "--no-password", "--lock-wait-timeout=9000", "--snapshot=" + SNAPSHOT_ID]
    assert dump.input.getvalue() == b"s3cret\n"


def test_a_failed_snapshot_dumps_nothing(monkeypatch, tmp_path):
    started = []

    def popen(argv, **_kwargs):
        started.append(Proc(argv, b"", rc=3, err=b"ERROR:  canceling statement due to lock timeout\n"))
        return started[-1]

    monkeypatch.setattr(pg.subprocess, "Popen", popen)
    with pytest.raises(pg.PostgresError, match=r"psql waited longer than lock_timeout=30 s for a lock \(its session on "
                                               "database ai_workflow_engine\\): another session holds a lock it needs"):
        pg.dump_with_facts(pg.Target("docker", "c1", DB, "postgres", None), str(tmp_path / "d.dump"))
    assert len(started) == 1 and not (tmp_path / "d.dump").exists()


FAKE_DOCKER = r'''#!{python}
import json, os, sys, time
log = {log!r}
argv = sys.argv[1:]
with open(log, "a", encoding="utf-8") as handle:
    handle.write(json.dumps(argv) + "\n")
if "-c" in argv and argv[argv.index("-c") + 1].startswith("kill "):
    sys.exit(0)
if "PGAPPNAME=aiwfe-rollback-cleanup" in argv:
    sys.exit(0)
sys.stderr.write("aiwfe-pid 4242\n")
sys.stderr.flush()
time.sleep(60)
'''


def test_a_command_past_its_timeout_is_ended_inside_the_container(tmp_path):
    log = tmp_path / "docker.log"
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, log=str(log)))
    docker.chmod(0o755)
    target = pg.Target(str(docker), "c1", DB, "postgres", "s3cret", timeout=1)
    started = time.monotonic()
    with pytest.raises(pg.PostgresError) as err:
        pg.psql(target, "SELECT pg_sleep(600)")
    assert time.monotonic() - started < 15
    assert str(err.value).startswith("psql did not finish within timeout=1 s on database ai_workflow_engine: it was ended "
                                     "(its database session and its process inside the container too)")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    command, end_session, kill = calls
    app = command[command.index("-e") + 1].split("=", 1)[1]
    assert app.startswith("aiwfe-rollback-")
    # its session, by its application_name, from the maintenance database; then its process, by the pid it said
    assert end_session[-6:] == ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]
    assert [a for a in end_session if a.endswith(f"WHERE application_name = '{app}'")] != []
    assert kill == ["exec", "c1", "sh", "-c", "kill -TERM 4242 2>/dev/null; sleep 1; kill -KILL 4242 2>/dev/null; true"]
    assert "s3cret" not in log.read_text()


def test_a_lock_wait_is_named(monkeypatch):
    monkeypatch.setattr(pg.subprocess, "Popen", lambda argv, **_kw: Proc(
        argv, rc=1, err=b"ERROR:  canceling statement due to lock timeout\nSTATEMENT:  ALTER DATABASE x\n"))
    with pytest.raises(pg.PostgresError, match=r"^psql waited longer than lock_timeout=2 s for a lock \(its session on database "
                                               r"postgres\): another session holds a lock it needs .*end that session or let "
                                               r"it finish, then run again \(ERROR:  canceling statement due to lock timeout"):
        pg.psql(pg.Target("docker", "c1", DB, "postgres", None, lock_timeout=2).on("postgres"), "ALTER DATABASE x")


def test_the_swap_waits_at_most_lock_timeout():
    assert "SET LOCAL lock_timeout = '4s';" in pg.swap_sql(DB, DB + "_pre_restore_x", DB + "_restore_x", 4)


# --- the password file ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, password", [
    (" lead and trail \n", " lead and trail "),      # spaces are part of the password
    ("postgres", "postgres"),
    ("windows\r\n", "windows"),
    ("\tt\u00e4b\t\n", "\tt\u00e4b\t"),
])
def test_the_password_file_is_read_exactly(tmp_path, content, password):
    path = tmp_path / "pw"
    path.write_bytes(content.encode())
    assert read_password_file(str(path)) == password


@pytest.mark.parametrize("content, message", [
    ("two\nlines\n", "holds more than one line"),
    ("first\n\n", "holds more than one line"),
    ("a\rb", "holds more than one line"),
    ("", "is empty"),
    ("\n", "is empty"),
    (b"\xff\xfe", "is not UTF-8 text"),
])
def test_a_password_file_that_is_not_one_line_is_refused(tmp_path, content, message):
    path = tmp_path / "pw"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(pg.PostgresError, match=message) as err:
        read_password_file(str(path))
    if isinstance(content, str) and content.strip():
        assert content.strip() not in str(err.value)       # never the file's content


def test_database_target_carries_the_limits(tmp_path):
    (tmp_path / "pw").write_text("postgres\n")
    option = {"service": "postgres", "name": "postgres", "user": "postgres", "password_file": str(tmp_path / "pw"),
              "timeout": 12, "lock_timeout": 3}
    target = database_target(option, "docker", "c1")
    assert (target.database, target.user, target.password, target.timeout, target.lock_timeout) == (
        "postgres", "postgres", "postgres", 12, 3)
    assert database_target(dict(option, timeout=None, lock_timeout=None), "docker", "c1").timeout == pg.DEFAULT_TIMEOUT
    with pytest.raises(pg.PostgresError, match="at least 1"):
        database_target(dict(option, timeout=0), "docker", "c1")


def test_the_database_option_has_no_password():
    assert set(DATABASE_SPEC["options"]) == {"service", "name", "user", "password_file", "timeout", "lock_timeout"}
    assert not any(spec.get("no_log") for spec in DATABASE_SPEC["options"].values())
