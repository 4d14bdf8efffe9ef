# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""alembic_rollback's run and main(): the exact docker calls (recorded docker/psql output), their order, what check
mode and state=planned leave alone, the refusals that change nothing, and the password that never shows."""

from __future__ import annotations

import copy
import hashlib
import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_inspect as inspector
from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_job as job
from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres as pg
from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres_job as pgjob
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import write_json_atomic
from ansible_collections.aiwfe.rollback.plugins.modules import alembic_rollback

PASSWORD = "pw-7f3a9-secret"
NEW_IMAGE = "sha256:" + "5" * 64
OLD_IMAGE = "sha256:" + "4" * 64
NEW_REF = "aiwfe/api:v1.3.0-migration-incompatible"
CODE = {"shape": "code", "drops": [], "executes": 0}


def rev(down, doc="", downgrade=None):
    return {"down_revision": down, "branch_labels": [], "depends_on": [], "doc": doc, "path": "/m.py",
            "upgrade": CODE, "downgrade": downgrade or CODE}


# Recorded from the inspector in the reference stack's api image of v1.3.0-migration-incompatible (paths shortened).
GRAPH = {"ok": True, "alembic_version": "1.8.1", "script_location": "/opt/app/api/aiwfe_api/migrations",
         "heads": ["0005"], "bases": ["0001"], "revisions": {
             "0005": rev(["0004"], "rename documents.body to documents.content"),
             "0004": rev(["0003"], "add jobs.priority (NOT NULL, server default 0: older code keeps working)",
                         {"shape": "code", "executes": 0, "drops": [
                             {"kind": "column", "schema": None, "table": "jobs", "column": "priority", "line": 22}]}),
             "0003": rev(["0002"], "create table memories (a summary per document, written by the worker)"),
             "0002": rev(["0001"], "create table documents (one per processed job)"),
             "0001": rev([], "create table jobs")}}
# The same plus a lossy 0006 (adds documents.note, its downgrade drops it).
GRAPH_6 = copy.deepcopy(GRAPH)
GRAPH_6["heads"] = ["0006"]
GRAPH_6["revisions"]["0006"] = rev(["0005"], "add documents.note", {"shape": "code", "executes": 0, "drops": [
    {"kind": "column", "schema": None, "table": "documents", "column": "note", "line": 20}]})
OFFLINE_SQL = "BEGIN;\n\n-- Running downgrade 0005 -> 0004\n\nALTER TABLE documents RENAME content TO body;\n\nCOMMIT;\n"


def container(cid, service, image, ref, created, state="running"):
    return {"Id": cid, "Name": f"/p-{service}-1", "Image": image, "Created": created, "RestartCount": 0,
            "State": {"Status": state}, "NetworkSettings": {"Ports": {}},
            "Config": {"Image": ref, "Labels": {"com.docker.compose.service": service}}}


class Engine:
    """The docker CLI as run_command sees it, and the database behind psql; every call recorded."""

    def __init__(self, revision="0005", graph=None, downgrade_rc=0, counts=None, containers=None):
        self.revision = revision
        self.graph = graph or GRAPH
        self.downgrade_rc = downgrade_rc
        self.counts = counts or {}
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []
        self.overrides: list[dict] = []
        self.psql_queries: list[str] = []
        self.scripts: list[tuple[list[str], bytes]] = []
        self.steps: list[str] = []
        self.containers = containers or [
            container("db1", "postgres", "sha256:pg", "aiwfe/postgres:15", "2026-11-29T20:00:00.1Z"),
            container("api0", "api", OLD_IMAGE, "aiwfe/api:v1.2.0", "2026-11-29T20:00:01.1Z", "exited"),
            container("api1", "api", NEW_IMAGE, NEW_REF, "2026-11-29T21:00:01.1Z"),
            container("wk1", "worker", "sha256:wk", "aiwfe/worker:v1.3.0", "2026-11-29T21:00:02.1Z"),
        ]
        self.images = {NEW_IMAGE: {"Id": NEW_IMAGE, "RepoTags": [NEW_REF]}, NEW_REF: {"Id": NEW_IMAGE, "RepoTags": [NEW_REF]},
                       OLD_IMAGE: {"Id": OLD_IMAGE, "RepoTags": ["aiwfe/api:v1.2.0"]}}

    # --- docker -----------------------------------------------------------------------------------------------------
    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        self.inputs.append(kwargs.get("data"))
        verb = argv[1:3]
        if verb == ["ps", "--all"]:
            return 0, "".join(c["Id"] + "\n" for c in self.containers), ""
        if verb == ["container", "inspect"]:
            ids = argv[argv.index("--") + 1:]
            return 0, json.dumps([c for i in ids for c in self.containers if c["Id"] == i]), ""
        if verb == ["image", "inspect"]:
            refs = argv[argv.index("--") + 1:]
            found = [self.images[r] for r in refs if r in self.images]
            if len(found) != len(refs):
                return 1, "[]", f"Error: No such image: {refs[0]}"
            return 0, json.dumps(found), ""
        if argv[1] == "run" and "-" in argv:
            assert kwargs.get("data") == inspector.SCRIPT
            graph = self.graph if argv[argv.index("--entrypoint") + 2] != OLD_IMAGE else {
                **GRAPH, "heads": ["0004"], "revisions": {k: v for k, v in GRAPH["revisions"].items() if k != "0005"}}
            return 0, "noise\n" + inspector.MARKER + json.dumps(graph) + "\n", ""
        if argv[1] == "run" and "--sql" in argv:
            return 0, OFFLINE_SQL, ""
        if argv[1] == "compose":
            rest = argv[argv.index("--project-directory") + 2:]
            while rest and rest[0] == "--file":
                rest = rest[2:]
            if rest[0] == "stop":
                self.steps.append("stop " + " ".join(rest[2:]))
                return 0, "", ""
            if rest[0] == "run":
                files = [argv[i + 1] for i, a in enumerate(argv) if a == "--file"]
                with open(files[-1], encoding="utf-8") as handle:
                    self.overrides.append(json.load(handle))
                self.steps.append("downgrade")
                if self.downgrade_rc == 0:
                    self.revision = rest[-1]
                return self.downgrade_rc, "", ("INFO  [alembic] Running downgrade\nsqlalchemy.exc.OperationalError: "
                                               f"password was {PASSWORD}" if self.downgrade_rc else "")
        if argv[1] == "image" and argv[2] in ("tag", "rm"):
            return 0, "", ""
        raise AssertionError(f"unexpected docker call {argv}")

    # --- psql inside the database container ---------------------------------------------------------------------------
    def psql(self, target, query):
        assert target.password == PASSWORD and target.container == "db1"
        self.psql_queries.append(query)
        if query == job.CURRENT:
            return json.dumps({"server_version": "15.18", "table": True, "revision": self.revision})
        if "count(*)" in query:
            return json.dumps({str(i): n for i, n in enumerate(self.counts.values())})
        raise AssertionError(query)

    def facts(self, target, tables=None):
        return {"server_version": "15.18", "alembic_revision": self.revision,
                "row_counts": {"alembic_version": 1, "documents": 8, "jobs": 8}}

    def dump(self, target, tmp):
        self.steps.append("dump")
        data = b"PGDMP" + os.urandom(16)
        with open(tmp, "wb") as handle:
            handle.write(data)
        return hashlib.sha256(data).hexdigest()

    def script(self, target, client, stdin=(), **_kwargs):
        assert target.password == PASSWORD and target.container == "db1" and target.timeout > 0
        self.scripts.append((client, b"".join(stdin)))
        self.steps.append("stamp")
        self.revision = next((a.split("=", 1)[1] for a in client if a.startswith("rev=")), None)
        return ""


@pytest.fixture(name="engine")
def fixture_engine(monkeypatch):
    engine = Engine()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: engine(argv, **kw))
    monkeypatch.setattr(pg, "psql", engine.psql)
    monkeypatch.setattr(pg, "facts", engine.facts)
    monkeypatch.setattr(pg, "dump", engine.dump)
    monkeypatch.setattr(pg, "dump_with_facts", lambda target, tmp: (pg.dump(target, tmp), engine.facts(target)))
    monkeypatch.setattr(pg, "check_dump", lambda target, path: 42)
    monkeypatch.setattr(pg, "client_version", lambda target: "pg_dump (PostgreSQL) 15.18")
    monkeypatch.setattr(pg, "run_client", engine.script)
    return engine


@pytest.fixture(name="stack")
def fixture_stack(tmp_path):
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "secret").write_text(PASSWORD + "\n")
    return tmp_path


def args(stack, **extra):
    base = {"project_dir": str(stack / "stack"), "project_name": "p", "ledger_dir": str(stack / "ledger"),
            "backup_dir": str(stack / "dumps"), "target": "0004", "stop_services": ["api", "worker"],
            "database": {"password_file": str(stack / "secret")}}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def run_main(capsys, module_args, check_mode=False):
    module_args = dict(module_args, _ansible_check_mode=check_mode)
    with patch_module_args(module_args), pytest.raises(SystemExit):
        alembic_rollback.main()
    return json.loads(capsys.readouterr().out)


COMPOSE = ["docker", "compose", "--ansi", "never", "--project-name", "p", "--project-directory"]
CHANGING = ("stop", "start", "up", "down", "rm", "tag", "kill", "restart", "create")


def changing_calls(engine):
    """Every call that could change the stack: compose verbs other than config/ps, docker run with a network, tags."""
    found = []
    for argv in engine.calls:
        if argv[1] == "compose" or argv[1:3] in (["image", "tag"], ["image", "rm"]):
            found.append(argv)
        elif argv[1] == "run" and argv[argv.index("--network") + 1] != "none":
            found.append(argv)
    return found


def test_check_mode_plans_shows_sql_and_changes_nothing(capsys, stack, engine):
    result = run_main(capsys, args(stack), check_mode=True)
    assert result["changed"] is True
    assert (result["from_revision"], result["target_revision"], result["to_revision"]) == ("0005", "0004", "0005")
    assert result["strategy"] == "downgrade" and result["strategy_reason"] == "every step is reversible or a no-op"
    assert [s["revision"] for s in result["steps"]] == ["0005"] and result["steps"][0]["kind"] == "reversible"
    assert result["sql"] == OFFLINE_SQL and result["image"] == NEW_IMAGE and result["heads"] == ["0005"]
    assert result["command"] == ["python3", "-m", "alembic", "-c", "/opt/app/api/alembic.ini", "downgrade", "0004"]
    assert changing_calls(engine) == [] and engine.steps == [] and engine.scripts == []
    assert not (stack / "dumps").exists()
    # the graph from the newest api container's image; the SQL from the same image, offline, without network
    assert engine.calls[3] == inspector.argv("docker", NEW_IMAGE, "python3", "/opt/app/api/alembic.ini", "")
    assert engine.calls[-1] == ["docker", "run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "python3",
                                NEW_IMAGE, "-m", "alembic", "-c", "/opt/app/api/alembic.ini", "downgrade", "--sql",
                                "0005:0004"]
    assert PASSWORD not in json.dumps(result)


def test_planned_changes_nothing_and_reports_no_change(capsys, stack, engine):
    result = run_main(capsys, args(stack, state="planned", backup_dir=None))
    assert result["changed"] is False and result["sql"] == OFFLINE_SQL and result["strategy"] == "downgrade"
    assert changing_calls(engine) == [] and engine.steps == []


def test_downgrade_stops_dumps_runs_in_a_throwaway_container_and_reads_back(capsys, stack, engine):
    result = run_main(capsys, args(stack))
    assert result["changed"] is True and result["to_revision"] == "0004" and result["stopped"] == ["api", "worker"]
    assert engine.steps == ["stop api worker", "dump", "downgrade"]
    dump = result["pre_change_dump"]
    assert os.path.basename(dump).startswith("ai_workflow_engine-") and dump.endswith(".pre-migration.dump")
    assert os.path.isfile(dump) and os.path.isfile(dump + ".manifest.json")
    stop, run = changing_calls(engine)
    assert stop == COMPOSE + [str(stack / "stack"), "--file", str(stack / "stack" / "compose.yaml"), "stop", "--", "api", "worker"]
    override = run[run.index("--file", run.index("--file") + 1) + 1]
    assert run == COMPOSE + [str(stack / "stack"), "--file", str(stack / "stack" / "compose.yaml"), "--file", override,
                             "run", "--rm", "--no-deps", "-T", "--interactive=false", "--", "api",
                             "-m", "alembic", "-c", "/opt/app/api/alembic.ini", "downgrade", "0004"]
    # the override pinned the newer image by a reference that still names it, and the entrypoint; it is gone after
    assert engine.overrides == [{"services": {"api": {"image": NEW_REF, "entrypoint": ["python3"]}}}]
    assert os.path.dirname(override) == str(stack / "ledger" / "p") and not os.path.exists(override)
    assert engine.psql_queries.count(job.CURRENT) == 2


def inspector_runs(engine):
    return [c for c in engine.calls if c[1] == "run" and "-" in c]


def test_the_graph_of_an_image_is_cached_by_real_runs_only(capsys, stack, engine):
    cache = stack / "ledger" / "p" / "alembic-graphs"
    run_main(capsys, args(stack), check_mode=True)
    run_main(capsys, args(stack, state="planned"))
    assert len(inspector_runs(engine)) == 2 and not cache.exists()
    run_main(capsys, args(stack))
    assert len(inspector_runs(engine)) == 3 and len(os.listdir(cache)) == 1
    result = run_main(capsys, args(stack), check_mode=True)
    assert len(inspector_runs(engine)) == 3 and result["heads"] == ["0005"] and result["changed"] is False
    # another inspector text, config or interpreter is another key; a damaged entry is read again
    (path,) = cache.iterdir()
    path.write_text("{not json")
    run_main(capsys, args(stack), check_mode=True)
    assert len(inspector_runs(engine)) == 4


def test_a_failed_pre_change_dump_says_the_writers_are_stopped(capsys, stack, engine, monkeypatch):
    def full(_target, _tmp):
        raise pg.PostgresError("pg_dump failed (rc=1): No space left on device")

    monkeypatch.setattr(pg, "dump", full)
    result = run_main(capsys, args(stack))
    assert result["failed"] and result["changed"] and result["to_revision"] == "0005"
    assert result["msg"] == "pg_dump failed (rc=1): No space left on device (api, worker stopped and left stopped)"
    assert engine.steps == ["stop api worker"]


def test_offline_sql_that_fails_is_reported_not_fatal(capsys, stack, engine, monkeypatch):
    real = engine.__call__

    def no_sql(argv, **kwargs):
        if argv[1] == "run" and "--sql" in argv:
            engine.calls.append(list(argv))
            return 1, "", "FAILED: env.py needs DATABASE_URL"
        return real(argv, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: no_sql(argv, **kw))
    result = run_main(capsys, args(stack), check_mode=True)
    assert "failed" not in result and result["changed"] is True
    assert result["sql"].startswith("SQL not available: python3 -m alembic -c /opt/app/api/alembic.ini downgrade --sql "
                                    "0005:0004 failed (rc=1): FAILED: env.py needs DATABASE_URL")


def test_the_override_is_merged_after_the_rollback_pin(capsys, stack, engine):
    pin = stack / "ledger" / "p" / "pin.compose.yaml"
    pin.parent.mkdir(parents=True)
    pin.write_text("services: {}\n")
    run_main(capsys, args(stack))
    (run,) = [c for c in engine.calls if c[1] == "compose" and "run" in c]
    files = [run[i + 1] for i, a in enumerate(run) if a == "--file"]
    assert files[:2] == [str(stack / "stack" / "compose.yaml"), str(pin)] and len(files) == 3
    assert os.path.basename(files[2]).startswith(".alembic-run-") and not os.path.exists(files[2])


def test_an_image_without_a_reference_gets_a_temporary_tag(capsys, stack, engine):
    engine.images.pop(NEW_REF)
    engine.images[NEW_IMAGE] = {"Id": NEW_IMAGE, "RepoTags": []}
    run_main(capsys, args(stack))
    tags = [c for c in engine.calls if c[1] == "image" and c[2] in ("tag", "rm")]
    assert tags == [["docker", "image", "tag", NEW_IMAGE, "aiwfe-rollback/alembic-run:p"],
                    ["docker", "image", "rm", "--", "aiwfe-rollback/alembic-run:p"]]
    assert engine.overrides[0]["services"]["api"]["image"] == "aiwfe-rollback/alembic-run:p"


def test_at_the_target_nothing_runs_and_nothing_changes(capsys, stack, engine):
    engine.revision = "0004"
    for check_mode in (True, False):
        result = run_main(capsys, args(stack), check_mode=check_mode)
        assert result["changed"] is False and result["steps"] == [] and result["to_revision"] == "0004"
        assert result["strategy_reason"] == "the database is already at 0004"
    assert changing_calls(engine) == [] and engine.steps == []


def test_a_database_gone_during_the_downgrade_says_where_it_is_and_to_run_again(capsys, stack, engine, monkeypatch):
    engine.downgrade_rc = 1
    real_psql = engine.psql
    seen = []

    def gone_after_the_downgrade(target, query):
        if "downgrade" in engine.steps:
            seen.append(query)
            raise pg.PostgresError("psql failed (rc=1): Error response from daemon: container db1 is not running")
        return real_psql(target, query)

    monkeypatch.setattr(pg, "psql", gone_after_the_downgrade)
    result = run_main(capsys, args(stack))
    assert result["failed"] is True and result["changed"] is True and seen
    assert "the database cannot be read now" in result["msg"] and "container db1 is not running" in result["msg"]
    assert "the database is still at 0005 unless that transaction committed (then it is at 0004), never between" in result["msg"]
    assert "start the database service postgres and run the rollback again" in result["msg"]
    assert result["pre_change_dump"] in result["msg"] and result["to_revision"] is None
    assert PASSWORD not in json.dumps(result)


def test_a_failed_downgrade_says_where_the_database_is_and_what_next(capsys, stack, engine):
    engine.downgrade_rc = 1
    result = run_main(capsys, args(stack))
    assert result["failed"] is True and result["changed"] is True
    assert "failed (rc=1); the database is still at 0005 (the downgrade ran in one transaction); nothing was lost" in result["msg"]
    assert "Next: fix what the downgrade's output shows and run again, or strategy=restore with restore_dump=" in result["msg"]
    assert result["pre_change_dump"] in result["msg"]
    assert result["to_revision"] == "0005" and result["rc"] == 1
    assert PASSWORD not in json.dumps(result) and "password was ********" in result["stderr"]


def test_stamp_rewrites_the_version_table_in_one_transaction_and_warns(capsys, stack, engine):
    result = run_main(capsys, args(stack, strategy="stamp", stop_services=[]))
    assert result["changed"] is True and result["to_revision"] == "0004" and result["strategy"] == "stamp"
    assert engine.steps == ["dump", "stamp"]
    (argv, stdin), = engine.scripts
    # run_client: under the target's timeout and lock_timeout, the password line before the script (test_postgres_client)
    assert argv == ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "rev=0004", "-f", "-"]
    assert stdin == job.STAMP_SQL.encode()
    assert "VALUES (:'rev')" in job.STAMP_SQL and job.STAMP_SQL.startswith("BEGIN;") and job.STAMP_SQL.endswith("COMMIT;\n")
    assert "rewrote only alembic_version (0005 -> 0004): no migration ran" in json.dumps(result["warnings"])


def test_stamp_may_name_a_newer_revision(capsys, stack, engine):
    engine.revision = "0003"
    result = run_main(capsys, args(stack, strategy="stamp", target="0005", stop_services=[]))
    assert result["changed"] is True and result["to_revision"] == "0005" and result["steps"] == []
    assert engine.steps == ["dump", "stamp"]
    result = run_main(capsys, args(stack, strategy="stamp", target="0005", stop_services=[]))
    assert result["changed"] is False and engine.steps == ["dump", "stamp"]


def test_stamp_in_check_mode_shows_its_sql(capsys, stack, engine):
    result = run_main(capsys, args(stack, strategy="stamp"), check_mode=True)
    assert "VALUES ('0004')" in result["sql"] and engine.scripts == [] and changing_calls(engine) == []


def test_relative_and_base_targets(capsys, stack, engine):
    result = run_main(capsys, args(stack, target="-1"), check_mode=True)
    assert result["target_revision"] == "0004"
    engine.counts = {("public", "jobs", "priority"): 8}
    result = run_main(capsys, args(stack, target="base"), check_mode=True)
    assert result["target_revision"] is None and [s["kind"] for s in result["steps"]] == [
        "reversible", "lossy", "reversible", "reversible", "reversible"]
    assert result["failed"] and "no dump to restore was given" in result["msg"]


def lossy(engine, rows=3):
    engine.graph = GRAPH_6
    engine.revision = "0006"
    engine.counts = {("public", "documents", "note"): rows}


def paired_dump(stack, revision="0004"):
    directory = stack / "sets"
    directory.mkdir(exist_ok=True)
    path = directory / "ai_workflow_engine-20261129T200000Z.dump"
    path.write_bytes(b"PGDMP paired")
    write_json_atomic(str(path) + ".manifest.json", {
        "sha256": hashlib.sha256(b"PGDMP paired").hexdigest(), "alembic_revision": revision,
        "row_counts": {"alembic_version": 1, "documents": 5, "jobs": 5}})
    return str(path)


def test_auto_restores_instead_of_a_lossy_downgrade_and_counts_the_rows(capsys, stack, engine, monkeypatch):
    lossy(engine)
    dump = paired_dump(stack)
    swaps = []

    def swap(cli, project, target, path, manifest, **kwargs):
        swaps.append((path, kwargs))
        engine.revision = "0004"
        return {"database": "ai_workflow_engine", "kept_database": "ai_workflow_engine_pre_restore_x"}

    monkeypatch.setattr(pgjob, "restore_swap", swap)
    result = run_main(capsys, args(stack, restore_dump=dump), check_mode=True)
    assert result["strategy"] == "restore" and "0006 is lossy: drops documents.note holding 3 non-null values" in result["strategy_reason"]
    assert result["lost_rows"] == {"documents": 3, "jobs": 3} and swaps == [] and changing_calls(engine) == []
    assert result["steps"][0]["rows"] == 3 and result["steps"][0]["drops"] == [
        {"kind": "column", "name": "documents.note", "rows": 3}]
    result = run_main(capsys, args(stack, restore_dump=dump))
    assert result["changed"] and result["to_revision"] == "0004" and result["lost_rows"] == {"documents": 3, "jobs": 3}
    assert engine.steps == ["stop api worker", "dump"]
    (path, kwargs), = swaps
    assert path == dump and kwargs == {"writers": [], "backup_dir": str(stack / "dumps"),
                                       "journal_dir": str(stack / "ledger" / "p"), "restart_writers": False,
                                       "pre_restore_dump": result["pre_change_dump"]}
    assert result["restore"]["kept_database"] == "ai_workflow_engine_pre_restore_x"


def test_a_failed_restore_is_reported_with_the_swap_report(capsys, stack, engine, monkeypatch):
    lossy(engine)

    def swap(*_args, **_kwargs):
        raise pgjob.RestoreFailed("pg_restore failed (rc=1): out of disk", {"kept_database": None}, True)

    monkeypatch.setattr(pgjob, "restore_swap", swap)
    result = run_main(capsys, args(stack, restore_dump=paired_dump(stack)))
    assert result["failed"] and result["changed"] and result["restore"] == {"kept_database": None}
    assert "the restore of " in result["msg"] and "out of disk" in result["msg"] and result["pre_change_dump"]
    assert result["to_revision"] == "0006"


def test_a_lossy_step_without_data_downgrades(capsys, stack, engine):
    lossy(engine, rows=0)
    result = run_main(capsys, args(stack, target="0005"), check_mode=True)
    assert result["strategy"] == "downgrade" and result["steps"][0]["kind"] == "reversible"


@pytest.mark.parametrize("extra, message", [
    ({"target": "0099"}, "revision 0099 does not exist in the script directory"),
    ({"target": "0004'; DROP TABLE jobs; --"}, "is not a revision id"),
    ({"target": "$(touch /tmp/x)"}, "is not a revision id"),
    ({"target": "0005"}, None),  # at the target: not a refusal
    ({"target": "-9"}, "goes below the first revision"),
    ({"strategy": "downgrade", "_lossy": True, "target": "0005"}, "would drop data written since the upgrade"),
    ({"_lossy": True, "target": "0005"}, "no dump to restore was given"),
    ({"restore_dump": "_paired_0003", "strategy": "restore"}, "is at revision 0003, the target is 0004"),
    ({"stop_services": ["nope"]}, "unknown service(s) nope in stop_services"),
    ({"stop_services": ["postgres"]}, "stop_services names the database service postgres"),
    ({"migrations": {"image": OLD_IMAGE}}, "does not know revision 0005 (the database's): pass migrations.image"),
    ({"migrations": {"image": "--privileged"}}, "is not an image id or reference"),
    ({"migrations": {"image": "gone:1"}}, "image gone:1 is not on this host"),
    ({"database": {"password_file": "/nonexistent/pw"}}, "cannot read database.password_file /nonexistent/pw"),
    ({"release": "v1.2.0", "target": None}, "the ledger has no releases for this project"),
])
def test_bad_input_is_refused_and_changes_nothing(capsys, stack, engine, extra, message):
    extra = dict(extra)
    if extra.pop("_lossy", False):
        lossy(engine)
    if extra.get("restore_dump") == "_paired_0003":
        extra["restore_dump"] = paired_dump(stack, "0003")
    for check_mode in (True, False):
        result = run_main(capsys, args(stack, **extra), check_mode=check_mode)
        if message is None:
            assert result["changed"] is False and "failed" not in result
        else:
            assert result.get("failed") is True and message in result["msg"] and result["changed"] is False
    assert changing_calls(engine) == [] and engine.steps == [] and engine.scripts == []
    assert not (stack / "dumps").exists()


def test_a_wrong_password_is_never_shown(capsys, stack, engine, monkeypatch):
    def refused(target, query):
        raise pg.PostgresError('psql failed (rc=2): psql: error: connection to server at "127.0.0.1", port 5432 failed: '
                               'FATAL:  password authentication failed for user "postgres"')

    monkeypatch.setattr(pg, "psql", refused)
    result = run_main(capsys, args(stack))
    assert result["failed"] and "password authentication failed" in result["msg"] and not result["changed"]
    assert PASSWORD not in json.dumps(result) and changing_calls(engine) == []


def test_no_running_database(capsys, stack, engine):
    engine.containers[0]["State"]["Status"] = "exited"
    result = run_main(capsys, args(stack))
    assert result["failed"] and "service postgres of project p has no running container: start the database first" in result["msg"]


def test_a_release_target_comes_from_the_ledger(capsys, stack, engine):
    releases = stack / "ledger" / "p" / "releases"
    releases.mkdir(parents=True)
    for index, (label, revision) in enumerate([("v1.2.0", "0004"), ("v1.3.0", "0005")]):
        write_json_atomic(str(releases / f"{index}.json"), {
            "id": f"2026112{index}T000000Z-{label}", "release": label, "kind": "deploy", "status": "good",
            "created": f"2026-11-2{index}T00:00:00Z", "alembic_revision": revision,
            "services": {"api": {"image_id": OLD_IMAGE if index == 0 else NEW_IMAGE}}})
    result = run_main(capsys, args(stack, target=None, release="previous"), check_mode=True)
    assert result["target_revision"] == "0004" and result["release"]["release"] == "v1.2.0"
    # without a recorded revision: the head of the release's image
    write_json_atomic(str(releases / "0.json"), {
        "id": "20261120T000000Z-v1.2.0", "release": "v1.2.0", "kind": "deploy", "status": "good",
        "created": "2026-11-20T00:00:00Z", "alembic_revision": None, "services": {"api": {"image_id": OLD_IMAGE}}})
    result = run_main(capsys, args(stack, target=None, release="v1.2.0"), check_mode=True)
    assert result["target_revision"] == "0004"
    assert inspector.argv("docker", OLD_IMAGE, "python3", "/opt/app/api/alembic.ini", "") in engine.calls


def test_count_query_quotes_the_names_again():
    query = job.count_query([("public", "documents", "note"), ("public", "memories", None)])
    assert "format('SELECT count(*) AS c FROM %I.%I WHERE %I IS NOT NULL', 'public', 'documents', 'note')" in query
    assert "format('SELECT count(*) AS c FROM %I.%I', 'public', 'memories')" in query
    with pytest.raises(pg.PostgresError):
        job.count_query([("public", "x'; DROP TABLE jobs; --", None)])


def test_argument_spec_keeps_the_password_out_of_the_options():
    assert "password" not in alembic_rollback.ARGUMENT_SPEC
    assert set(alembic_rollback.ARGUMENT_SPEC["database"]["options"]) == {
        "service", "name", "user", "password_file", "timeout", "lock_timeout"}
