# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""postgres_dump's dump, verify and restore sequence: the docker calls (exact argv, recorded compose output), the
order of the steps, what is left on disk; and the client commands run inside the container (never the password)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

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


class FakeClient:
    """The client calls of _postgres, recorded in order: what runs inside the container."""

    def __init__(self, monkeypatch, after=None, restore_error=None):
        self.steps = []
        self.after = after or FACTS
        self.restore_error = restore_error
        for name in ("dump", "facts", "check_dump", "client_version", "restore"):
            monkeypatch.setattr(pg, name, getattr(self, name))

    def dump(self, target, tmp):
        self.steps.append(("dump", target.container))
        data = b"PGDMP" + os.urandom(64)
        with open(tmp, "wb") as handle:
            handle.write(data)
        return hashlib.sha256(data).hexdigest()

    def facts(self, target, tables=None):
        self.steps.append(("facts", tuple(tables or ())))
        return dict(self.after if tables else FACTS)

    def check_dump(self, target, path):
        self.steps.append(("check", os.path.basename(path)))
        return 42

    def client_version(self, target):
        return "pg_dump (PostgreSQL) 15.18"

    def restore(self, target, path):
        self.steps.append(("restore", os.path.basename(path)))
        if self.restore_error:
            raise pg.PostgresError(self.restore_error)


@pytest.fixture(name="project")
def fixture_project(tmp_path):
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "compose.yaml").write_text("services: {}\n")
    return ComposeProject("p", str(tmp_path / "stack"))


def params(tmp_path, **overrides):
    base = {"state": "dump", "service": "postgres", "database": DB, "user": "postgres", "password": "s3cret",
            "backup_dir": str(tmp_path / "dumps"), "dump_file": "latest", "stop_services": []}
    base.update(overrides)
    return base


def listing(tmp_path):
    directory = tmp_path / "dumps"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


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
    assert client.steps == [("facts", ())] and listing(tmp_path) == []


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

    monkeypatch.setattr(pg, "dump", broken)
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


def test_restore_sequence(tmp_path, project, monkeypatch):
    made = make_dumps(tmp_path, project, monkeypatch)
    client, docker = FakeClient(monkeypatch), FakeCompose()
    result = job.run(DockerCli(docker), project, params(tmp_path, state="restore", stop_services=["api", "worker"]), False)
    assert result["changed"] and result["dump_file"] == made["dump_file"] and result["after"] == FACTS
    assert result["pre_restore_dump"].endswith(".pre-restore.dump") and os.path.isfile(result["pre_restore_dump"])
    assert files.load_manifest(result["pre_restore_dump"])["archive"] == os.path.basename(result["pre_restore_dump"])
    assert [s[0] for s in client.steps] == ["check", "dump", "facts", "check", "restore", "facts"]
    assert client.steps[-1] == ("facts", ("alembic_version", "jobs"))
    assert docker.compose_verbs() == [["stop", "--", "api", "worker"], ["start", "--", "api", "worker"]]
    base = docker.calls[-1][:docker.calls[-1].index("start")]
    assert base == ["docker", "compose", "--ansi", "never", "--project-name", "p", "--project-directory", project.directory,
                    "--file", os.path.join(project.directory, "compose.yaml")]


def test_restore_in_check_mode_stops_and_writes_nothing(tmp_path, project, monkeypatch):
    make_dumps(tmp_path, project, monkeypatch)
    before = listing(tmp_path)
    client, docker = FakeClient(monkeypatch), FakeCompose()
    result = job.run(DockerCli(docker), project, params(tmp_path, state="restore", stop_services=["api", "worker"]), True)
    assert result["changed"] and "pre_restore_dump" not in result
    assert [s[0] for s in client.steps] == ["check"] and docker.compose_verbs() == [] and listing(tmp_path) == before


@pytest.mark.parametrize("check_mode", [True, False])
def test_unknown_writers_are_refused_before_anything_changes(tmp_path, project, monkeypatch, check_mode):
    make_dumps(tmp_path, project, monkeypatch)
    client, docker = FakeClient(monkeypatch), FakeCompose()
    with pytest.raises(JobFailed, match="unknown service"):
        job.run(DockerCli(docker), project, params(tmp_path, state="restore", stop_services=["api", "nope"]), check_mode)
    assert [s[0] for s in client.steps] == ["check"] and docker.compose_verbs() == []


def test_a_failed_restore_starts_the_writers_again(tmp_path, project, monkeypatch):
    make_dumps(tmp_path, project, monkeypatch)
    FakeClient(monkeypatch, restore_error="pg_restore failed (rc=1): ERROR: relation exists")
    docker = FakeCompose()
    with pytest.raises(JobFailed, match="pg_restore failed") as err:
        job.run(DockerCli(docker), project, params(tmp_path, state="restore", stop_services=["api"]), False)
    assert docker.compose_verbs() == [["stop", "--", "api"], ["start", "--", "api"]]
    fail = err.value.as_fail_kwargs()
    assert fail["changed"] and os.path.isfile(fail["pre_restore_dump"])


def test_a_restore_that_does_not_match_the_dump_fails_naming_the_state_before(tmp_path, project, monkeypatch):
    make_dumps(tmp_path, project, monkeypatch)
    FakeClient(monkeypatch, after=dict(FACTS, row_counts={"alembic_version": 1, "jobs": 4}))
    with pytest.raises(JobFailed, match=r"row counts \{'alembic_version': 1, 'jobs': 4\}, the dump recorded 0004") as err:
        job.run(DockerCli(FakeCompose()), project, params(tmp_path, state="restore"), False)
    fail = err.value.as_fail_kwargs()
    assert fail["after"]["row_counts"]["jobs"] == 4 and fail["pre_restore_dump"] in fail["msg"]


# --- the client commands inside the container -------------------------------------------------------------------

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


# Recorded from psql 15.18 (-t -A) answering facts_query() in the reference stack's database.
RECORDED_FACTS = [
    (None, '{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : { "alembic_version" : 1, "jobs" : 5 }, '
           '"alembic_revision" : "0004"}\n', FACTS),
    (["jobs"], '{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : { "jobs" : 5 }, "alembic_revision" : null}\n',
     dict(FACTS, alembic_revision=None, row_counts={"jobs": 5})),
    (None, '{"server_version" : "15.18 (Debian 15.18-0+deb12u1)", "row_counts" : null, "alembic_revision" : null}\n',
     dict(FACTS, alembic_revision=None, row_counts={})),
]


@pytest.mark.parametrize("tables, answer, expected", RECORDED_FACTS)
def test_facts_from_recorded_psql_output(monkeypatch, tables, answer, expected):
    seen = []

    def fake_run(argv, input=None, **_kwargs):  # pylint: disable=redefined-builtin
        seen.append((argv, input))
        return subprocess.CompletedProcess(argv, 0, answer.encode(), b"")

    monkeypatch.setattr(pg.subprocess, "run", fake_run)
    target = pg.Target("docker", "c1", DB, "postgres", "s3cret")
    assert pg.facts(target, tables) == expected
    assert len(seen) == 1
    argv, stdin = seen[0]
    assert argv == ["docker", "exec", "-i", "c1", "sh", "-c", pg.WITH_PASSWORD, "sh", "psql", "-X", "-q", "-t", "-A", "-v",
                    "ON_ERROR_STOP=1", "-c", pg.facts_query(tables), "-h", "127.0.0.1", "-U", "postgres", "-d", DB]
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
    monkeypatch.setattr(pg.subprocess, "run", lambda argv, **_kw: subprocess.CompletedProcess(argv, 0, b"15.18\n", b""))
    with pytest.raises(pg.PostgresError, match="not the JSON object asked for"):
        pg.facts(pg.Target("docker", "c1", DB, "postgres", None))


def test_psql_errors_never_show_the_password(monkeypatch):
    def fake_run(argv, **_kwargs):
        return subprocess.CompletedProcess(argv, 2, b"", b"FATAL: password s3cret rejected\n")

    monkeypatch.setattr(pg.subprocess, "run", fake_run)
    with pytest.raises(pg.PostgresError) as err:
        pg.psql(pg.Target("docker", "c1", DB, "postgres", "s3cret"), "SELECT 1")
    assert str(err.value) == "psql failed (rc=2): FATAL: password ******** rejected"
