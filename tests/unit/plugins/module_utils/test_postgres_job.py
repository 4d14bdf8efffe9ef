# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""postgres_dump's dump, verify and restore sequence: the docker calls (exact argv, recorded compose output), the
order of the steps, what is left on disk; the restore by swap (restore_swap) against a server kept in memory -
databases, renames, the journal, crashes after every step and the re-run that finishes or reverts; and the client
commands run inside the container (exact argv and SQL, never the password)."""

from __future__ import annotations

import hashlib
import json
import io
import os
import re
import stat

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _files as files
from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres as pg
from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres_job as job
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed

DB = "ai_workflow_engine"
FACTS = {"server_version": "15.18 (Debian 15.18-0+deb12u1)", "alembic_revision": "0004", "row_counts": {"alembic_version": 1, "jobs": 5}}
# Recorded from `docker compose ps --all --no-trunc --format json` (Compose 2.26: one object per line).
PS = "\n".join(json.dumps(c) for c in [
    {"ID": "c0ffee01", "Name": "p-postgres-1", "Service": "postgres", "State": "running", "Image": "aiwfe/postgres:15"},
    {"ID": "c0ffee02", "Name": "p-api-1", "Service": "api", "State": "running", "Image": "aiwfe/api:v1.2.0"},
    {"ID": "c0ffee03", "Name": "p-worker-1", "Service": "worker", "State": "running", "Image": "aiwfe/api:v1.2.0"},
]) + "\n"


class FakeCompose:
    """docker compose ps / container inspect / compose stop and start; records every argv."""

    def __init__(self, ps=PS):
        self.ps = ps
        self.calls = []

    def __call__(self, argv, **_kwargs):
        self.calls.append(argv)
        if argv[1] == "container" and argv[2] == "inspect":
            ids = argv[argv.index("--") + 1:]
            return 0, json.dumps([{"Id": i, "Image": "sha256:" + i, "State": {}, "Config": {"Labels": {}}} for i in ids]), ""
        if "ps" in argv:
            return 0, self.ps, ""
        if "stop" in argv or "start" in argv:
            return 0, "", ""
        raise AssertionError(f"unexpected docker call {argv}")

    def compose_verbs(self):
        return [argv[argv.index("--file") + 2:] for argv in self.calls if argv[1] == "compose" and "ps" not in argv]


class Crash(BaseException):
    """A crash at a failpoint (the real one is SIGKILL: nothing after it runs in the module)."""


class FakeServer:
    """The client calls of _postgres against a PostgreSQL server kept in memory: databases (name -> allows
    connections, content), what every dump holds, and every call in order (``steps``). ``fail`` maps a call's name
    to the error it raises; ``in_use`` names databases with sessions that a plain DROP refuses."""

    def __init__(self, monkeypatch, content=None, fail=None):
        self.steps = []
        self.fail = dict(fail or {})
        self.in_use = set()
        self.restored = None            # what pg_restore puts in the new database (default: what the dump holds)
        self.dumped = {}                # sha256 -> content of the database when it was dumped
        self.dbs = {"postgres": {"allow": True, "content": None}, "template0": {"allow": False, "content": None},
                    "template1": {"allow": True, "content": None},
                    DB: {"allow": True, "content": dict(content or FACTS)}}
        for name in ("dump", "facts", "dump_with_facts", "check_dump", "client_version", "databases", "database_properties",
                     "create_database", "restore_into", "refuse_connections", "swap", "rename", "allow_connections",
                     "drop_database"):
            monkeypatch.setattr(pg, name, getattr(self, name))

    def _call(self, *step):
        self.steps.append(step)
        error = self.fail.get(step[0])
        if error:
            raise error

    def _connect(self, database):
        if database not in self.dbs:
            raise pg.PostgresError(f'psql failed (rc=2): FATAL:  database "{database}" does not exist')
        if not self.dbs[database]["allow"]:
            raise pg.PostgresError(f'psql failed (rc=2): FATAL:  database "{database}" is not currently accepting connections')
        return self.dbs[database]

    def dump(self, target, tmp):
        self._call("dump", target.database)
        data = b"PGDMP" + os.urandom(64)
        with open(tmp, "wb") as handle:
            handle.write(data)
        sha = hashlib.sha256(data).hexdigest()
        self.dumped[sha] = dict(self._connect(target.database)["content"])
        return sha

    def dump_with_facts(self, target, tmp):
        return pg.dump(target, tmp), pg.facts(target)     # whatever a test put in their place

    def facts(self, target, tables=None):
        self._call("facts", target.database, tuple(tables or ()))
        content = self._connect(target.database)["content"]
        if not tables:
            return dict(content)
        counts = content["row_counts"]
        return {"server_version": content["server_version"], "row_counts": {n: counts[n] for n in tables if n in counts},
                "alembic_revision": content["alembic_revision"] if "alembic_version" in tables else None}

    def check_dump(self, target, path):
        self._call("check", os.path.basename(path))
        return 42

    def client_version(self, target):
        return "pg_dump (PostgreSQL) 15.18"

    def databases(self, target):
        self._call("databases")
        return {name: db["allow"] for name, db in self.dbs.items()}

    def database_properties(self, target, database):
        self._call("properties", database)
        return {"owner": "postgres", "encoding_name": "UTF8", "datcollate": "C.UTF-8", "datctype": "C.UTF-8",
                "datlocprovider": "c", "tablespace": "pg_default", "datconnlimit": -1}

    def create_database(self, target, name, like, props):
        self._call("create", name, like)
        assert name not in self.dbs and props["owner"] == "postgres"
        self.dbs[name] = {"allow": True, "content": {"server_version": FACTS["server_version"], "alembic_revision": None,
                                                     "row_counts": {}}}

    def restore_into(self, target, path):
        self._call("restore_into", target.database, os.path.basename(path))
        db = self._connect(target.database)
        assert db["content"]["row_counts"] == {}, "pg_restore into a database that is not empty"
        with open(path, "rb") as handle:
            sha = hashlib.sha256(handle.read()).hexdigest()
        db["content"] = dict(self.restored or self.dumped[sha])

    def refuse_connections(self, target, database):
        self._call("refuse", database)
        self.dbs[database]["allow"] = False

    def swap(self, target, live, old, new):
        self._call("swap", live, old, new)
        assert old not in self.dbs and not self.dbs[live]["allow"]
        self.dbs[old] = self.dbs.pop(live)
        self.dbs[live] = self.dbs.pop(new)

    def rename(self, target, name, new_name):
        self._call("rename", name, new_name)
        self.dbs[new_name] = self.dbs.pop(name)

    def allow_connections(self, target, *names):
        self._call("allow", *names)
        for name in names:
            self.dbs[name]["allow"] = True

    def drop_database(self, target, name, force=False):
        self._call("drop", name, force)
        if name in self.in_use and not force:
            raise pg.PostgresError(f'psql failed (rc=1): ERROR:  database "{name}" is being accessed by other users')
        self.dbs.pop(name, None)

    def names(self):
        return sorted(n for n in self.dbs if n not in ("postgres", "template0", "template1"))

    def content(self, name):
        return self.dbs[name]["content"]


FakeClient = FakeServer


@pytest.fixture(name="project")
def fixture_project(tmp_path):
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "compose.yaml").write_text("services: {}\n")
    return ComposeProject("p", str(tmp_path / "stack"))


def params(tmp_path, **overrides):
    (tmp_path / "pw").write_text("s3cret\n")
    base = {"state": "dump", "database": {"service": "postgres", "name": DB, "user": "postgres",
                                          "password_file": str(tmp_path / "pw"), "timeout": 3600, "lock_timeout": 30},
            "backup_dir": str(tmp_path / "dumps"), "dump_file": "latest", "stop_services": [],
            "ledger_dir": str(tmp_path / "ledger"), "keep_pre_restore": 3}
    base.update(overrides)
    return base


def listing(tmp_path):
    directory = tmp_path / "dumps"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def journal(tmp_path):
    return files.read_json(str(tmp_path / "ledger" / "p" / job.JOURNAL))


def test_dump_publishes_the_dump_with_its_manifest(tmp_path, project, monkeypatch):
    client, docker = FakeClient(monkeypatch), FakeCompose()
    result = job.run(DockerCli(docker), project, params(tmp_path), False)
    name = os.path.basename(result["dump_file"])
    assert name.startswith(DB + "-") and name.endswith(".dump")
    assert listing(tmp_path) == [name, name + ".manifest.json"]
    assert result["manifest"] == files.load_manifest(result["dump_file"])
    assert result["manifest"]["toc_entries"] == 42 and result["manifest"]["row_counts"] == FACTS["row_counts"]
    assert result["changed"]
    assert [s[0] for s in client.steps] == ["dump", "facts", "check"]
    assert docker.compose_verbs() == []
    assert docker.calls[-1] == ["docker", "container", "inspect", "--", "c0ffee01", "c0ffee02", "c0ffee03"]


def test_dump_in_check_mode_connects_and_writes_nothing(tmp_path, project, monkeypatch):
    client = FakeClient(monkeypatch)
    result = job.run(DockerCli(FakeCompose()), project, params(tmp_path), True)
    assert result == {"changed": True}
    assert client.steps == [("facts", DB, ())] and listing(tmp_path) == []


def test_a_second_dump_is_new_and_the_first_intact(tmp_path, project, monkeypatch):
    FakeClient(monkeypatch)
    first = job.run(DockerCli(FakeCompose()), project, params(tmp_path), False)
    second = job.run(DockerCli(FakeCompose()), project, params(tmp_path), False)
    assert second["dump_file"] != first["dump_file"] and len(listing(tmp_path)) == 4
    assert files.load_manifest(first["dump_file"]) == first["manifest"]


def test_a_failed_dump_leaves_nothing(tmp_path, project, monkeypatch):
    FakeClient(monkeypatch)

    def broken(_target, tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"PGDMP half")
        raise pg.PostgresError("pg_dump failed (rc=1): FATAL:  password authentication failed for user \"postgres\"")

    monkeypatch.setattr(pg, "dump_with_facts", broken)
    with pytest.raises(JobFailed, match="password authentication failed") as err:
        job.run(DockerCli(FakeCompose()), project, params(tmp_path), False)
    assert err.value.as_fail_kwargs()["changed"] is False
    assert listing(tmp_path) == []


@pytest.mark.parametrize("ps", ["", PS.replace('"running"', '"exited"', 1)])
def test_no_running_database_container(tmp_path, project, monkeypatch, ps):
    client = FakeClient(monkeypatch)
    with pytest.raises(JobFailed, match="service postgres of project p has no running container: start the database first"):
        job.run(DockerCli(FakeCompose(ps)), project, params(tmp_path), False)
    assert client.steps == []


def make_dumps(tmp_path, project, monkeypatch):
    FakeClient(monkeypatch)
    made = job.run(DockerCli(FakeCompose()), project, params(tmp_path), False)
    # Dumps of other databases, and files that are no dumps, are never `latest`.
    other = tmp_path / "dumps" / f"{DB}_old-20991231T000000Z.dump"
    other.write_bytes(b"x")
    files.write_json_atomic(files.manifest_path(str(other)), {"archive": other.name})
    (tmp_path / "dumps" / f"{DB}-20991231T000000Z.dump").write_bytes(b"no manifest: incomplete")
    return made


def test_verify_checks_the_newest_dump_of_the_database(tmp_path, project, monkeypatch):
    made = make_dumps(tmp_path, project, monkeypatch)
    client = FakeClient(monkeypatch)
    for check_mode in (True, False):
        result = job.run(DockerCli(FakeCompose()), project, params(tmp_path, state="verify"), check_mode)
        assert result == {"changed": False, "dump_file": made["dump_file"], "manifest": made["manifest"]}
    assert [s[0] for s in client.steps] == ["check", "check"]


@pytest.mark.parametrize("dump_file, message", [
    ("missing.dump", r"missing.dump has no readable manifest \(missing.dump.manifest.json\): it is not a complete dump of "
                     f"{DB}; nothing was changed"),
    (f"{DB}-20991231T000000Z.dump", "has no readable manifest"),
])
def test_incomplete_dumps_are_refused(tmp_path, project, monkeypatch, dump_file, message):
    make_dumps(tmp_path, project, monkeypatch)
    with pytest.raises(JobFailed, match=message):
        job.run(DockerCli(FakeCompose()), project, params(tmp_path, state="restore", dump_file=dump_file), False)


def test_a_damaged_dump_is_refused_before_anything_stops(tmp_path, project, monkeypatch):
    made = make_dumps(tmp_path, project, monkeypatch)
    with open(made["dump_file"], "ab") as handle:
        handle.write(b"\x01")
    before = listing(tmp_path)
    client, docker = FakeClient(monkeypatch), FakeCompose()
    with pytest.raises(JobFailed, match="checksum mismatch for .*: the dump is damaged; nothing was changed"):
        job.run(DockerCli(docker), project, params(tmp_path, state="restore", stop_services=["api", "worker"]), False)
    assert client.steps == [] and docker.compose_verbs() == [] and listing(tmp_path) == before


# --- restore by swap --------------------------------------------------------------------------------------------

UPGRADED = {"server_version": FACTS["server_version"], "alembic_revision": "0005",
            "row_counts": {"alembic_version": 1, "jobs": 8, "job_events": 4}}
WRITERS = ["api", "worker"]


def dump_then_upgrade(tmp_path, project, monkeypatch, **server):
    """A dump of the database at 0004, then an upgrade (a new table, more rows); returns (server, the dump's result)."""
    made = make_dumps(tmp_path, project, monkeypatch)
    server = FakeServer(monkeypatch, **server)
    server.dumped[made["manifest"]["sha256"]] = dict(FACTS)
    server.dbs[DB]["content"] = dict(UPGRADED)
    server.steps.clear()
    return server, made


def restore(tmp_path, project, check_mode=False, docker=None, **overrides):
    return job.run(DockerCli(docker or FakeCompose()), project,
                   params(tmp_path, **{"state": "restore", "stop_services": WRITERS, **overrides}), check_mode)


def kept_names(server):
    return [n for n in server.names() if n.startswith(DB + "_pre_restore_")]


def test_restore_sequence(tmp_path, project, monkeypatch):
    server, made = dump_then_upgrade(tmp_path, project, monkeypatch)
    docker = FakeCompose()
    result = restore(tmp_path, project, docker=docker)
    kept = result["kept_database"]
    new = kept.replace("_pre_restore_", "_restore_")
    assert re.fullmatch(DB + r"_pre_restore_\d{8}t\d{6}z", kept)
    # the database holds the dump's content; the one it replaced is kept whole, upgrade and all
    assert server.content(DB) == FACTS and server.content(kept) == UPGRADED and server.names() == [DB, kept]
    assert all(db["allow"] for name, db in server.dbs.items() if name != "template0")
    assert result["changed"] and result["dump_file"] == result["restored_from"] == made["dump_file"]
    assert result["database"] == DB and result["dropped"] == [] and result["recovered"] is None
    assert result["after"] == dict(FACTS) and result["seconds"] >= 0
    pre = result["pre_restore_dump"]
    assert pre.endswith(".pre-restore.dump") and files.load_manifest(pre)["row_counts"] == UPGRADED["row_counts"]
    # writers stopped before the dump of the state before (nothing written after it is lost), started at the end
    assert docker.compose_verbs() == [["stop", "--", "api", "worker"], ["start", "--", "api", "worker"]]
    assert server.steps == [
        ("check", os.path.basename(made["dump_file"])),             # the dump is readable, before anything stops
        ("dump", DB), ("facts", DB, ()), ("check", ".tmp-" + os.path.basename(pre)),   # the state before, writers stopped
        ("databases",), ("properties", DB),
        ("create", new, DB),
        ("restore_into", new, os.path.basename(made["dump_file"])),
        ("facts", new, ("alembic_version", "jobs")),                # checked against the manifest before the swap
        ("refuse", DB), ("swap", DB, kept, new),
        ("allow", DB, kept), ("facts", DB, ("alembic_version", "jobs")),
        ("databases",),                                              # retention: nothing beyond keep_pre_restore
    ]
    recorded = journal(tmp_path)
    entry = recorded["swaps"][-1]
    assert [s["step"] for s in entry["steps"]] == ["restoring", "swapping", "swapped", "done"]
    assert entry["state"] == "done" and entry["pre_restore_database"] == kept and entry["restore_database"] == new
    assert entry["dump"] == made["dump_file"] and entry["pre_restore_dump"] == pre and entry["after"] == FACTS
    assert stat.S_IMODE(os.stat(tmp_path / "ledger" / "p" / job.JOURNAL).st_mode) == 0o600
    assert not [n for n in os.listdir(tmp_path / "ledger" / "p") if n.startswith(".tmp-")]


def recording_compose(order):
    """A FakeCompose that appends "stop" / "start" to ``order`` for each compose stop and start."""
    real = FakeCompose().__call__

    def recording(argv, **kwargs):
        if "stop" in argv or "start" in argv:
            order.append("stop" if "stop" in argv else "start")
        return real(argv, **kwargs)
    return recording


def test_the_first_databases_call_follows_the_stop(tmp_path, project, monkeypatch):
    """Order of the docker side and the database side: check the dump, stop, then everything else."""
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    order = []
    recording = recording_compose(order)

    def databases(_target, seen=server.databases):
        order.append("databases")
        return seen(_target)

    monkeypatch.setattr(pg, "databases", databases)
    restore(tmp_path, project, docker=recording)
    assert order[:2] == ["stop", "databases"] and order[-2:] == ["start", "databases"]


def test_the_writers_stop_before_the_dump_of_the_state_before(tmp_path, project, monkeypatch):
    """Issue 12 defect 3: what the writers write between the dump of the state before and their stop would be lost;
    so the stop comes first, the dump after it, the restore after that, the start last."""
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    order = []
    recording = recording_compose(order)

    def dump(target, tmp, seen=server.dump):
        order.append("dump of the state before")
        return seen(target, tmp)

    def restore_into(target, path, seen=server.restore_into):
        order.append("restore")
        return seen(target, path)

    monkeypatch.setattr(pg, "dump", dump)
    monkeypatch.setattr(pg, "restore_into", restore_into)
    restore(tmp_path, project, docker=recording)
    assert order == ["stop", "dump of the state before", "restore", "start"]


def test_latest_is_never_a_pre_restore_dump(tmp_path, project, monkeypatch):
    server, made = dump_then_upgrade(tmp_path, project, monkeypatch)
    first = restore(tmp_path, project)
    server.dbs[DB]["content"] = dict(UPGRADED)       # written again after the restore
    second = restore(tmp_path, project)
    assert first["pre_restore_dump"] != made["dump_file"]
    assert second["dump_file"] == made["dump_file"] and server.content(DB) == FACTS


def test_restore_in_check_mode_stops_and_writes_nothing(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    before = listing(tmp_path)
    docker = FakeCompose()
    result = restore(tmp_path, project, check_mode=True, docker=docker)
    assert result["changed"] and "pre_restore_dump" not in result and "pending" not in result
    assert [s[0] for s in server.steps] == ["check"] and docker.compose_verbs() == [] and listing(tmp_path) == before
    assert server.names() == [DB] and server.content(DB) == UPGRADED and journal(tmp_path) is None


@pytest.mark.parametrize("check_mode", [True, False])
def test_unknown_writers_are_refused_before_anything_changes(tmp_path, project, monkeypatch, check_mode):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    docker = FakeCompose()
    with pytest.raises(JobFailed, match="unknown service"):
        restore(tmp_path, project, check_mode, docker=docker, stop_services=["api", "nope"])
    assert [s[0] for s in server.steps] == (["check"] if check_mode else []) and docker.compose_verbs() == []


@pytest.mark.parametrize("step, error", [
    ("restore_into", "pg_restore failed (rc=1): pg_restore: error: could not execute query: ERROR:  relation exists"),
    ("create", 'psql failed (rc=1): ERROR:  permission denied to create database'),
])
def test_a_failed_restore_drops_only_the_new_database(tmp_path, project, monkeypatch, step, error):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch, fail={step: pg.PostgresError(error)})
    docker = FakeCompose()
    with pytest.raises(JobFailed, match=re.escape(error)) as err:
        restore(tmp_path, project, docker=docker)
    fail = err.value.as_fail_kwargs()
    assert re.search(r"the restore into the new database \w+_restore_\w+ failed: .*; \w+ was dropped and "
                     f"{DB} was not touched", fail["msg"])
    assert server.names() == [DB] and server.content(DB) == UPGRADED and server.dbs[DB]["allow"]
    assert docker.compose_verbs() == [["stop", "--", "api", "worker"], ["start", "--", "api", "worker"]]
    assert fail["changed"] and os.path.isfile(fail["pre_restore_dump"]) and fail["pre_restore_dump"] in fail["msg"]
    assert fail["kept_database"] is None and fail["after"] is None
    assert journal(tmp_path)["swaps"][-1]["state"] == "reverted"


def test_a_restored_database_that_does_not_match_the_dump_is_dropped(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    server.restored = dict(FACTS, row_counts={"alembic_version": 1, "jobs": 4})
    with pytest.raises(JobFailed, match=r"holds Alembic revision 0004 and row counts \{'alembic_version': 1, 'jobs': 4\}, "
                                        r"the dump recorded 0004 and \{'alembic_version': 1, 'jobs': 5\}") as err:
        restore(tmp_path, project)
    assert server.names() == [DB] and server.content(DB) == UPGRADED
    assert err.value.as_fail_kwargs()["pre_restore_dump"] in err.value.msg


def test_a_swap_that_cannot_end_the_sessions_gives_everything_back(tmp_path, project, monkeypatch):
    busy = pg.PostgresError('psql failed (rc=1): ERROR:  database "ai_workflow_engine" is being accessed by other users\n'
                            "DETAIL:  There is 1 other session using the database.")
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch, fail={"swap": busy})
    with pytest.raises(JobFailed, match=r"(?s)swapping \w+ in for ai_workflow_engine failed: .*being accessed by other users.*"
                                        r" was dropped, ai_workflow_engine takes connections again"):
        restore(tmp_path, project)
    assert server.names() == [DB] and server.content(DB) == UPGRADED and server.dbs[DB]["allow"]
    assert journal(tmp_path)["swaps"][-1]["state"] == "reverted"


def test_writers_that_do_not_start_again_fail_the_run_saying_the_database_was_restored(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    docker = FakeCompose()
    real = docker.__call__

    def start_fails(argv, **kwargs):
        if "start" in argv:
            docker.calls.append(argv)
            return 1, "", "dependency failed to start: container p-api-1 is unhealthy"
        return real(argv, **kwargs)

    with pytest.raises(JobFailed) as err:
        restore(tmp_path, project, docker=start_fails)
    fail = err.value.as_fail_kwargs()
    assert re.match(rf"the database {DB} was restored \(the one it replaced is kept as {DB}_pre_restore_\w+\), but "
                    "starting api, worker again failed: docker compose start failed", fail["msg"])
    assert fail["rc"] == 1 and "unhealthy" in fail["stderr"] and fail["changed"]
    assert server.content(DB) == FACTS and fail["after"] == FACTS and fail["kept_database"] in server.dbs


STEPS = ["created", "restored", "refused", "renamed", "swapped", "allowed"]


def crash_at(monkeypatch, step):
    def failpoint(name):
        if name == step:
            raise Crash(name)

    monkeypatch.setattr(job, "failpoint", failpoint)


@pytest.mark.parametrize("step", STEPS)
def test_a_rerun_after_a_crash_finishes_or_reverts_the_swap(tmp_path, project, monkeypatch, step):
    server, made = dump_then_upgrade(tmp_path, project, monkeypatch)
    crash_at(monkeypatch, step)
    with pytest.raises(Crash):
        restore(tmp_path, project)
    crashed = {name: dict(db) for name, db in server.dbs.items()}
    # nothing is lost at the crash: the upgraded content is under one name or the other
    assert [n for n, db in crashed.items() if db["content"] == UPGRADED] in ([DB], kept_names(server))
    monkeypatch.setattr(job, "failpoint", lambda name: None)
    server.steps.clear()
    docker = FakeCompose()
    again = restore(tmp_path, project, docker=docker)
    kept = kept_names(server)
    assert server.content(DB) == FACTS and again["after"] == FACTS
    assert all(db["allow"] for name, db in server.dbs.items() if name != "template0")
    assert docker.compose_verbs() == [["stop", "--", "api", "worker"], ["start", "--", "api", "worker"]]
    entries = journal(tmp_path)["swaps"]
    if step in ("created", "restored"):
        # the restored database had not been checked: dropped, then the re-run restored afresh
        assert again["recovered"]["action"] == "reverted" and again["recovered"]["dropped"] not in server.dbs
        assert [e["state"] for e in entries] == ["reverted", "done"]
        assert len(kept) == 1 and server.content(kept[0]) == UPGRADED
        assert "create" in [s[0] for s in server.steps]
    else:
        # checked before the crash: finished, and the same dump is not restored a second time
        assert again["recovered"]["action"] == "finished" and again["kept_database"] == kept[0]
        assert [e["state"] for e in entries] == ["done"] and server.content(kept[0]) == UPGRADED
        assert "create" not in [s[0] for s in server.steps] and "dump" not in [s[0] for s in server.steps]
        assert again["pre_restore_dump"] == entries[0]["pre_restore_dump"]
    assert server.names() == sorted([DB] + kept)


def test_a_crash_between_two_separate_renames_is_finished(tmp_path, project, monkeypatch):
    """A server where the renames ran one by one and only the first was done: the re-run does the second."""
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)

    def half_swap(target, live, old, new):
        server.steps.append(("swap", live, old, new))
        server.dbs[old] = server.dbs.pop(live)
        raise Crash("between the renames")

    monkeypatch.setattr(pg, "swap", half_swap)
    with pytest.raises(Crash):
        restore(tmp_path, project)
    assert DB not in server.dbs
    monkeypatch.setattr(pg, "swap", server.swap)
    again = restore(tmp_path, project)
    assert again["recovered"]["action"] == "finished" and server.content(DB) == FACTS
    assert server.content(again["kept_database"]) == UPGRADED
    assert [s for s in server.steps if s[0] == "rename"] == [("rename", again["kept_database"].replace("_pre_restore_", "_restore_"), DB)]


def test_a_crash_then_a_restore_of_another_dump_finishes_then_restores_that(tmp_path, project, monkeypatch):
    server, made = dump_then_upgrade(tmp_path, project, monkeypatch)
    crash_at(monkeypatch, "renamed")
    with pytest.raises(Crash):
        restore(tmp_path, project)
    monkeypatch.setattr(job, "failpoint", lambda name: None)
    other = files.load_manifest(made["dump_file"])
    second_path = made["dump_file"].replace(".dump", "-b.dump")
    with open(made["dump_file"], "rb") as src, open(second_path, "wb") as out:
        out.write(src.read() + b"b")
    with open(second_path, "rb") as handle:
        other.update(archive=os.path.basename(second_path), sha256=hashlib.sha256(handle.read()).hexdigest())
    files.write_json_atomic(files.manifest_path(second_path), other)
    server.dumped[other["sha256"]] = dict(FACTS, alembic_revision="0003")
    other["alembic_revision"] = "0003"
    files.write_json_atomic(files.manifest_path(second_path), other)
    result = restore(tmp_path, project, dump_file=second_path)
    assert result["recovered"]["action"] == "finished" and result["restored_from"] == second_path
    assert server.content(DB)["alembic_revision"] == "0003" and len(kept_names(server)) == 2
    assert [e["state"] for e in journal(tmp_path)["swaps"]] == ["done", "done"]


def distinct_dump_names(monkeypatch):
    """Several restores in one second: the dumps of the state before get the next seconds' names without waiting."""
    seconds = iter(range(60))
    monkeypatch.setattr(job, "fresh_name", lambda directory, name_at: name_at(
        files.parse_stamp(f"20991231T2359{next(seconds):02d}Z")))


def test_retention_drops_only_completed_swaps_beyond_keep(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    distinct_dump_names(monkeypatch)
    stranger = DB + "_pre_restore_20000101t000000z"        # not in the journal: never dropped
    server.dbs[stranger] = {"allow": True, "content": dict(UPGRADED)}
    stamps = iter(["20991231T235950Z", "20991231T235951Z", "20991231T235952Z", "20991231T235953Z", "20991231T235954Z"])
    monkeypatch.setattr(job, "fresh_stamp", lambda taken: files.parse_stamp(next(stamps)))
    results = [restore(tmp_path, project, keep_pre_restore=2) for _run in range(4)]
    kept = [r["kept_database"] for r in results]
    assert [r["dropped"] for r in results] == [[], [], [kept[0]], [kept[1]]]
    assert kept_names(server) == sorted([stranger, kept[2], kept[3]])
    server.in_use.add(kept[2])
    fifth = restore(tmp_path, project, keep_pre_restore=1)
    # keep 1: the one just replaced; kept[3] goes, kept[2] is in use and stays (a warning), the stranger is not ours
    assert fifth["dropped"] == [kept[3]] and kept[2] in fifth["notes"][0]
    assert kept_names(server) == sorted([stranger, kept[2], fifth["kept_database"]])


def test_retention_warns_about_a_kept_database_in_use(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    distinct_dump_names(monkeypatch)
    stamps = iter(["20991231T235950Z", "20991231T235951Z"])
    monkeypatch.setattr(job, "fresh_stamp", lambda taken: files.parse_stamp(next(stamps)))
    first = restore(tmp_path, project)
    server.in_use.add(first["kept_database"])
    second = restore(tmp_path, project, keep_pre_restore=1)
    assert second["dropped"] == [] and first["kept_database"] in server.dbs
    assert "being accessed by other users" in second["notes"][0] and first["kept_database"] in second["notes"][0]


def test_check_mode_reports_an_interrupted_swap_and_changes_nothing(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    crash_at(monkeypatch, "refused")
    with pytest.raises(Crash):
        restore(tmp_path, project)
    before = ({n: dict(db) for n, db in server.dbs.items()}, journal(tmp_path), listing(tmp_path))
    server.steps.clear()
    result = restore(tmp_path, project, check_mode=True)
    entry = journal(tmp_path)["swaps"][0]
    assert result["pending"] == [{"id": entry["id"], "database": DB, "state": "swapping", "action": "finish"}]
    assert ({n: dict(db) for n, db in server.dbs.items()}, journal(tmp_path), listing(tmp_path)) == before
    assert [s[0] for s in server.steps] == ["check"]


@pytest.mark.parametrize("content, message", [
    ("{not json", "is unreadable: nothing was changed"),
    ('{"something": "else"}', "is not one this collection wrote"),
])
def test_a_damaged_journal_stops_the_restore_before_anything_changes(tmp_path, project, monkeypatch, content, message):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    (tmp_path / "ledger" / "p").mkdir(parents=True)
    (tmp_path / "ledger" / "p" / job.JOURNAL).write_text(content)
    docker = FakeCompose()
    with pytest.raises(JobFailed, match=message) as err:
        restore(tmp_path, project, docker=docker)
    assert not err.value.as_fail_kwargs()["changed"] and docker.compose_verbs() == [] and server.steps == []


def test_an_interrupted_restore_of_another_database_is_named(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    files.write_json_atomic(str(tmp_path / "ledger" / "p" / job.JOURNAL), {"version": 1, "swaps": [
        {"id": "20991231T000000Z", "database": "other_db", "state": "swapping", "steps": []}]})
    with pytest.raises(JobFailed, match="interrupted restore of database.s. other_db: run the restore of that database first"):
        restore(tmp_path, project)
    assert server.names() == [DB] and server.content(DB) == UPGRADED


def test_a_journal_that_the_server_contradicts_is_not_guessed(tmp_path, project, monkeypatch):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    crash_at(monkeypatch, "refused")
    with pytest.raises(Crash):
        restore(tmp_path, project)
    monkeypatch.setattr(job, "failpoint", lambda name: None)
    new = journal(tmp_path)["swaps"][0]["restore_database"]
    del server.dbs[new]                          # someone dropped the restored database by hand
    with pytest.raises(JobFailed, match=f"cannot finish the interrupted restore .*the server has {DB} of .*nothing was changed"):
        restore(tmp_path, project)
    assert server.content(DB) == UPGRADED


def test_restore_swap_for_a_caller_that_leaves_the_writers_stopped(tmp_path, project, monkeypatch):
    """alembic_rollback's restore strategy: its own dump of the state before, writers left stopped."""
    server, made = dump_then_upgrade(tmp_path, project, monkeypatch)
    docker = FakeCompose()
    target = pg.Target("docker", "c0ffee01", DB, "postgres", "s3cret")
    report = job.restore_swap(DockerCli(docker), project, target, made["dump_file"], made["manifest"], writers=WRITERS,
                              backup_dir=str(tmp_path / "dumps"), journal_dir=str(tmp_path / "j"),
                              restart_writers=False, pre_restore_dump="/given.pre-change.dump")
    assert docker.compose_verbs() == [["stop", "--", "api", "worker"]]
    assert report["pre_restore_dump"] == "/given.pre-change.dump" and "dump" not in [s[0] for s in server.steps]
    assert set(report) == {"database", "restored_from", "kept_database", "dropped", "pre_restore_dump", "after",
                           "recovered", "notes", "seconds"}
    assert server.content(DB) == FACTS and server.content(report["kept_database"]) == UPGRADED


@pytest.mark.parametrize("keep", [0, -1])
def test_keep_pre_restore_keeps_at_least_the_database_replaced(tmp_path, project, monkeypatch, keep):
    server, _made = dump_then_upgrade(tmp_path, project, monkeypatch)
    with pytest.raises(JobFailed, match=f"keep_pre_restore is {keep}: at least the database just replaced is kept"):
        restore(tmp_path, project, keep_pre_restore=keep)
    assert server.steps == []


@pytest.mark.parametrize("database, message", [
    ("a" * 35, "at most 34 characters"),
    ('db"; DROP DATABASE x; --', "must be a plain identifier"),
    ("", "must be a plain identifier"),
])
def test_database_names_are_checked_before_anything(database, message):
    with pytest.raises(pg.PostgresError, match=message):
        job.swap_names(database, files.utc_now())


def test_swap_names():
    assert job.swap_names(DB, files.parse_stamp("20261129T031500Z")) == (
        "ai_workflow_engine_restore_20261129t031500z", "ai_workflow_engine_pre_restore_20261129t031500z")
    assert len(job.swap_names("a" * 34, files.utc_now())[1]) == 63


# --- the client commands inside the container -------------------------------------------------------------------

class FakePopen:
    """subprocess.Popen of a client command inside the container: records argv and what it read on standard input,
    answers ``answer`` (bytes, or a callable of the input so far) with ``rc`` and ``err`` after the pid line."""

    seen: list = []

    def __init__(self, argv, answer=b"", rc=0, err=b""):
        self.argv = argv
        self.input = io.BytesIO()
        self.stdin = self
        self.stdout = io.BytesIO(answer)
        self.stderr = io.BytesIO(b"aiwfe-pid 4242\n" + err)
        self.returncode = rc
        self.closed = False

    def write(self, data):
        self.input.write(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def wait(self):
        return self.returncode

    def poll(self):
        return self.returncode

    def kill(self):
        pass


def record_clients(monkeypatch, answer=b"", rc=0, err=b""):
    """Every client command started: (argv, its standard input) once it ran."""
    started = []

    def popen(argv, **_kwargs):
        proc = FakePopen(argv, answer.encode() if isinstance(answer, str) else answer, rc, err)
        started.append(proc)
        return proc

    monkeypatch.setattr(pg.subprocess, "Popen", popen)

    class Seen(list):
        def __iter__(self):
            return iter([(p.argv, p.input.getvalue()) for p in started])

        def __getitem__(self, index):
            return list(iter(self))[index]

        def __len__(self):
            return len(started)

    return Seen()


@pytest.mark.parametrize("password, stdin, connect, expected", [
    ("s3cret", False, True, ["docker", "exec", "-i", "c1", "sh", "-c", pg.WITH_PASSWORD, "sh", "psql", "-h", "127.0.0.1",
                             "-U", "app", "-d", "db"]),
    (None, False, True, ["docker", "exec", "-u", "postgres", "c1", "psql", "-U", "app", "-d", "db"]),
    (None, True, True, ["docker", "exec", "-i", "-u", "postgres", "c1", "psql", "-U", "app", "-d", "db"]),
    ("s3cret", True, False, ["docker", "exec", "-i", "c1", "psql"]),
])
def test_exec_argv_never_holds_the_password(password, stdin, connect, expected):
    target = pg.Target("docker", "c1", "db", "app", password)
    argv = target.exec_argv(["psql"], stdin=stdin, connect=connect)
    assert argv == expected
    assert "s3cret" not in " ".join(argv)


ENV = ["-e", "PGAPPNAME=aiwfe-rollback-0a1b2c", "-e", "PGOPTIONS=-c lock_timeout=7000"]


@pytest.mark.parametrize("password, connect, expected", [
    ("s3cret", True, ["docker", "exec", "-i"] + ENV + ["c1", "sh", "-c", pg.SAY_PID + pg.WITH_PASSWORD, "sh", "psql",
                                                       "-h", "127.0.0.1", "-U", "app", "-d", "db"]),
    (None, True, ["docker", "exec", "-i"] + ENV + ["-u", "postgres", "c1", "sh", "-c", pg.SAY_PID + 'exec "$@"', "sh",
                                                   "psql", "-U", "app", "-d", "db"]),
    ("s3cret", False, ["docker", "exec", "-i", "c1", "sh", "-c", pg.SAY_PID + 'exec "$@"', "sh", "psql"]),
])
def test_client_argv_names_its_session_and_says_its_pid(password, connect, expected):
    target = pg.Target("docker", "c1", "db", "app", password, timeout=60, lock_timeout=7)
    argv = target.exec_argv(["psql"], connect=connect, app="aiwfe-rollback-0a1b2c")
    assert argv == expected and "s3cret" not in " ".join(argv)


@pytest.mark.parametrize("password", ["two\nlines", "cr\rinside", "nul\0", "ends with a newline\n"])
def test_a_password_with_a_line_break_is_refused_before_anything_runs(monkeypatch, password):
    seen = record_clients(monkeypatch)
    with pytest.raises(pg.PostgresError, match="holds a line break") as err:
        pg.Target("docker", "c1", DB, "postgres", password)
    assert password not in str(err.value) and len(seen) == 0


def test_a_password_keeps_its_spaces(monkeypatch):
    seen = record_clients(monkeypatch, "1\n")
    pg.psql(pg.Target("docker", "c1", DB, "postgres", "  two spaces around  "), "SELECT 1")
    assert seen[0][1] == b"  two spaces around  \n"


@pytest.mark.parametrize("timeout, lock_timeout", [(0, 30), (30, 0), (-1, 30), ("60", 30)])
def test_timeouts_must_be_whole_seconds(timeout, lock_timeout):
    with pytest.raises(pg.PostgresError, match="must be whole numbers of seconds, at least 1"):
        pg.Target("docker", "c1", DB, "postgres", None, timeout=timeout, lock_timeout=lock_timeout)


# Recorded from psql 15.18 (-t -A) answering facts_query() in the reference stack's database.
RECORDED_FACTS = [
    (None, '{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : { "alembic_version" : 1, "jobs" : 5 }, '
           '"alembic_revision" : "0004"}\n', FACTS),
    (["jobs"], '{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : { "jobs" : 5 }, "alembic_revision" : null}\n',
     dict(FACTS, alembic_revision=None, row_counts={"jobs": 5})),
    (None, '{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : null, "alembic_revision" : null}\n',
     dict(FACTS, alembic_revision=None, row_counts={})),
]


def app_of(argv):
    return argv[argv.index("-e") + 1].split("=", 1)[1]


@pytest.mark.parametrize("tables, answer, expected", RECORDED_FACTS)
def test_facts_from_recorded_psql_output(monkeypatch, tables, answer, expected):
    seen = record_clients(monkeypatch, answer)
    target = pg.Target("docker", "c1", DB, "postgres", "s3cret")
    assert pg.facts(target, tables) == expected
    assert len(seen) == 1
    argv, stdin = seen[0]
    assert re.fullmatch(r"aiwfe-rollback-[0-9a-f]{12}", app_of(argv))
    assert argv == target.exec_argv(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", pg.facts_query(tables)],
                                    app=app_of(argv))
    assert stdin == b"s3cret\n" and "s3cret" not in " ".join(argv)


@pytest.mark.parametrize("tables, fragment", [
    (None, "FROM pg_tables WHERE schemaname = 'public'"),
    (["jobs", "alembic_version"], "unnest(ARRAY['jobs', 'alembic_version']::text[])"),
])
def test_facts_query_counts_in_one_statement(tables, fragment):
    query = pg.facts_query(tables)
    assert fragment in query and "format('SELECT count(*) AS c FROM public.%I', name)" in query


@pytest.mark.parametrize("tables", [["jobs; DROP TABLE jobs"], ["Jobs'"], [""]])
def test_facts_refuses_names_that_are_not_plain_identifiers(tables):
    with pytest.raises(pg.PostgresError, match="is not a plain identifier"):
        pg.facts_query(tables)


def test_facts_refuses_an_answer_that_is_not_json(monkeypatch):
    record_clients(monkeypatch, "15.18\n")
    with pytest.raises(pg.PostgresError, match="not the JSON object asked for"):
        pg.facts(pg.Target("docker", "c1", DB, "postgres", None))


def test_psql_errors_never_show_the_password(monkeypatch):
    record_clients(monkeypatch, rc=2, err=b"FATAL: password s3cret rejected\n")
    with pytest.raises(pg.PostgresError) as err:
        pg.psql(pg.Target("docker", "c1", DB, "postgres", "s3cret"), "SELECT 1")
    assert str(err.value) == "psql failed (rc=2): FATAL: password ******** rejected"


# --- the statements of the restore by swap (connected to the maintenance database) -----------------------------

PSQL = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]


def record_psql(monkeypatch, answer=""):
    return record_clients(monkeypatch, answer)


def commands(argv):
    """The -c statements of a psql argv, checking it connects to the maintenance database with the password on stdin."""
    client = argv[argv.index("sh") + 4:]
    assert argv == TARGET.on("postgres").exec_argv(client[:-6], app=app_of(argv))
    middle = client[len(PSQL):-6]
    assert client[:len(PSQL)] == PSQL and middle[::2] == ["-c"] * (len(middle) // 2)
    return middle[1::2]


TARGET = pg.Target("docker", "c1", DB, "postgres", "s3cret")
# Recorded from psql 15.18 (-t -A) answering pg.DATABASES in the reference stack's container.
RECORDED_DATABASES = ('{ "ai_workflow_engine" : true, "ai_workflow_engine_pre_restore_20261129t221501z" : true, '
                      '"postgres" : true, "template0" : false, "template1" : true }\n')


def test_databases_from_recorded_psql_output(monkeypatch):
    seen = record_psql(monkeypatch, RECORDED_DATABASES)
    assert pg.databases(TARGET) == {DB: True, DB + "_pre_restore_20261129t221501z": True, "postgres": True,
                                    "template0": False, "template1": True}
    assert commands(seen[0][0]) == [pg.DATABASES] and seen[0][1] == b"s3cret\n"


def test_the_swap_statements(monkeypatch):
    seen = record_psql(monkeypatch)
    old, new = DB + "_pre_restore_20261129t221501z", DB + "_restore_20261129t221501z"
    pg.refuse_connections(TARGET, DB)
    pg.swap(TARGET, DB, old, new)
    pg.allow_connections(TARGET, DB, old)
    pg.drop_database(TARGET, new, force=True)
    pg.drop_database(TARGET, old)
    pg.rename(TARGET, new, DB)
    terminate = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'ai_workflow_engine' "
                 "AND pid <> pg_backend_pid()")
    assert [commands(argv) for argv, _stdin in seen] == [
        ['ALTER DATABASE "ai_workflow_engine" ALLOW_CONNECTIONS false', terminate],
        [terminate, "BEGIN; SET LOCAL lock_timeout = '30s'; "
                    'ALTER DATABASE "ai_workflow_engine" RENAME TO "ai_workflow_engine_pre_restore_20261129t221501z"; '
                    'ALTER DATABASE "ai_workflow_engine_restore_20261129t221501z" RENAME TO "ai_workflow_engine"; COMMIT'],
        ['ALTER DATABASE "ai_workflow_engine" ALLOW_CONNECTIONS true',
         'ALTER DATABASE "ai_workflow_engine_pre_restore_20261129t221501z" ALLOW_CONNECTIONS true'],
        ['DROP DATABASE IF EXISTS "ai_workflow_engine_restore_20261129t221501z" WITH (FORCE)'],
        ['DROP DATABASE IF EXISTS "ai_workflow_engine_pre_restore_20261129t221501z"'],
        ['ALTER DATABASE "ai_workflow_engine_restore_20261129t221501z" RENAME TO "ai_workflow_engine"'],
    ]
    assert all(stdin == b"s3cret\n" and "s3cret" not in " ".join(argv) for argv, stdin in seen)


# Recorded from psql 15.18 answering pg.properties_query("appdb") (a database with a REVOKE/GRANT on it).
RECORDED_PROPERTIES = json.loads(
    '{"oid": "16387", "owner": "postgres", "datacl": ["postgres=CTc/postgres", "app_reader=c/postgres"], "datdba": "10", '
    '"datname": "appdb", "datctype": "C.UTF-8", "encoding": 6, "datcollate": "C.UTF-8", "datminmxid": "1", '
    '"tablespace": "pg_default", "datallowconn": true, "datconnlimit": -1, "datfrozenxid": "716", "daticulocale": null, '
    '"datistemplate": false, "dattablespace": "1663", "encoding_name": "UTF8", "datcollversion": null, "datlocprovider": "c"}')


@pytest.mark.parametrize("props, expected", [
    ({}, 'CREATE DATABASE "x_restore_1" WITH TEMPLATE template0 OWNER "postgres" ENCODING \'UTF8\' '
         "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"),
    ({"owner": 'App "Owner"', "datlocprovider": "i", "daticulocale": "und-x-icu", "tablespace": "fast", "datconnlimit": 20},
     'CREATE DATABASE "x_restore_1" WITH TEMPLATE template0 OWNER "App ""Owner""" ENCODING \'UTF8\' '
     "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'und-x-icu' TABLESPACE \"fast\" "
     "CONNECTION LIMIT 20"),
])
def test_create_database_repeats_the_database_properties(props, expected):
    assert pg.create_database_sql("x_restore_1", dict(RECORDED_PROPERTIES, **props)) == expected


@pytest.mark.parametrize("props, message", [
    ({"datcollate": "C'; DROP DATABASE x; --"}, "collation .* is not a name this restore can repeat"),
    ({"encoding_name": None}, "encoding None is not a name"),
    ({"datlocprovider": "z"}, "locale provider 'z'"),
])
def test_create_database_refuses_what_it_cannot_repeat(props, message):
    with pytest.raises(pg.PostgresError, match=message):
        pg.create_database_sql("x_restore_1", dict(RECORDED_PROPERTIES, **props))


def test_create_database_copies_privileges_and_settings(monkeypatch):
    seen = record_psql(monkeypatch)
    pg.create_database(TARGET, "x_restore_1", DB, RECORDED_PROPERTIES)
    create, grants = commands(seen[0][0])
    assert create.startswith('CREATE DATABASE "x_restore_1" WITH TEMPLATE template0')
    assert grants.startswith("DO $aiwfe$") and grants.endswith("$aiwfe$")
    assert "WHERE datname = 'ai_workflow_engine'" in grants and "format('REVOKE ALL ON DATABASE %I FROM PUBLIC', 'x_restore_1')" in grants
    assert "'search_path', 'temp_tablespaces'" in grants and "quote_literal(r.value)" in grants


def test_properties_query_names_the_database_as_a_checked_literal():
    assert pg.properties_query(DB).endswith("FROM pg_database d WHERE d.datname = 'ai_workflow_engine'")


@pytest.mark.parametrize("name", ['x" RENAME TO y; --', "x'", "Robert'); DROP", "a" * 64, "", "1abc", "sp ace"])
def test_database_names_are_plain_identifiers(name):
    with pytest.raises(pg.PostgresError, match="is not a plain identifier"):
        pg.ident(name)
    with pytest.raises(pg.PostgresError):
        pg.swap_sql(DB, name, DB + "_x")


def test_quote_name_doubles_quotes():
    assert pg.quote_name('a"b') == '"a""b"' and pg.quote_name("postgres") == '"postgres"'
    with pytest.raises(pg.PostgresError):
        pg.quote_name("")


def test_restore_into_argv(monkeypatch, tmp_path):
    seen = record_clients(monkeypatch)
    dump_path = tmp_path / "d.dump"
    dump_path.write_bytes(b"PGDMP")
    pg.restore_into(TARGET.on("x_restore_1"), str(dump_path))
    (argv, stdin), = seen
    assert argv == TARGET.on("x_restore_1").exec_argv(["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner"],
                                                      app=app_of(argv))
    assert stdin == b"s3cret\nPGDMP"
