# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration planner (_alembic): targets, paths, classification, strategy - on recorded inspector answers."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic as plan

CODE = {"shape": "code", "drops": [], "executes": 0}
EMPTY = {"shape": "empty", "drops": [], "executes": 0}


def rev(down, doc="", upgrade=None, downgrade=None, **extra):
    entry = {"down_revision": down, "branch_labels": [], "depends_on": [], "doc": doc, "path": f"/m/{doc or 'x'}.py",
             "upgrade": upgrade or CODE, "downgrade": downgrade or CODE}
    entry.update(extra)
    return entry


def drops(*items, executes=0):
    found = []
    for item in items:
        table, _dot, column = item.partition(".")
        found.append({"kind": "column" if column else "table", "schema": None, "table": table or None,
                      "column": column or None, "line": 1})
    return {"shape": "code", "drops": found, "executes": executes}


# The reference stack's api at v1.3.0-migration-incompatible, as the inspector answers (0001..0005, one line).
REFERENCE = {
    "ok": True, "alembic_version": "1.8.1", "script_location": "/opt/app/api/aiwfe_api/migrations",
    "heads": ["0005"], "bases": ["0001"],
    "revisions": {
        "0005": rev(["0004"], "rename documents.body to documents.content"),
        "0004": rev(["0003"], "add jobs.priority", downgrade=drops("jobs.priority")),
        "0003": rev(["0002"], "create table memories", downgrade=drops("memories")),
        "0002": rev(["0001"], "create table documents", downgrade=drops("documents")),
        "0001": rev([], "create table jobs", downgrade=drops("jobs")),
    },
}
# Two branches from 0002 merged again by 0009: 0002 -> 0003a -> 0004a ; 0002 -> 0003b ; (0004a, 0003b) -> 0009.
BRANCHED = {
    "ok": True, "script_location": "/m", "heads": ["0009"], "bases": ["0001"],
    "revisions": {
        "0001": rev([]), "0002": rev(["0001"]), "0003a": rev(["0002"]), "0004a": rev(["0003a"]),
        "0003b": rev(["0002"]), "0009": rev(["0004a", "0003b"]),
    },
}
TWO_HEADS = {
    "ok": True, "script_location": "/m", "heads": ["0003a", "0003b"], "bases": ["0001"],
    "revisions": {"0001": rev([]), "0002": rev(["0001"]), "0003a": rev(["0002"]), "0003b": rev(["0002"])},
}


# Recorded: the inspector's answer (Alembic 1.8.1, as in Debian bookworm's python3-alembic) for the api of
# v1.3.0-migration-incompatible plus the scenario alembic_rollback's 0006 (drops documents.note) and 0006b (a second
# head), line breaks added.
RECORDED_TEXT = (
    "{\"alembic_version\": \"1.8.1\", \"bases\": [\"0001\"], \"heads\": [\"0006\", \"0006b\"], \"ok\": true, \"revisions\":"
    " {\"0001\": {\"branch_labels\": [], \"depends_on\": [], \"doc\": \"create table jobs\", \"down_revision\": [], \""
    "downgrade\": {\"drops\": [{\"column\": null, \"kind\": \"table\", \"line\": 32, \"schema\": null, \"table\": \"jobs\""
    "}], \"executes\": 0, \"shape\": \"code\"}, \"path\": \"/opt/app/api/aiwfe_api/migrations/versions/0001_create"
    "_jobs.py\", \"upgrade\": {\"drops\": [], \"executes\": 0, \"shape\": \"code\"}}, \"0002\": {\"branch_labels\": [], "
    "\"depends_on\": [], \"doc\": \"create table documents (one per processed job)\", \"down_revision\": [\"0001\"]"
    ", \"downgrade\": {\"drops\": [{\"column\": null, \"kind\": \"table\", \"line\": 30, \"schema\": null, \"table\": \"do"
    "cuments\"}], \"executes\": 0, \"shape\": \"code\"}, \"path\": \"/opt/app/api/aiwfe_api/migrations/versions/000"
    "2_create_documents.py\", \"upgrade\": {\"drops\": [], \"executes\": 0, \"shape\": \"code\"}}, \"0003\": {\"branch_"
    "labels\": [], \"depends_on\": [], \"doc\": \"create table memories (a summary per document, written by the"
    " worker)\", \"down_revision\": [\"0002\"], \"downgrade\": {\"drops\": [{\"column\": null, \"kind\": \"table\", \"lin"
    "e\": 29, \"schema\": null, \"table\": \"memories\"}], \"executes\": 0, \"shape\": \"code\"}, \"path\": \"/opt/app/ap"
    "i/aiwfe_api/migrations/versions/0003_create_memories.py\", \"upgrade\": {\"drops\": [], \"executes\": 0, \"s"
    "hape\": \"code\"}}, \"0004\": {\"branch_labels\": [], \"depends_on\": [], \"doc\": \"add jobs.priority (NOT NULL"
    ", server default 0: older code keeps working)\", \"down_revision\": [\"0003\"], \"downgrade\": {\"drops\": [{"
    "\"column\": \"priority\", \"kind\": \"column\", \"line\": 21, \"schema\": null, \"table\": \"jobs\"}], \"executes\": 0"
    ", \"shape\": \"code\"}, \"path\": \"/opt/app/api/aiwfe_api/migrations/versions/0004_add_jobs_priority.py\", "
    "\"upgrade\": {\"drops\": [], \"executes\": 0, \"shape\": \"code\"}}, \"0005\": {\"branch_labels\": [], \"depends_on"
    "\": [], \"doc\": \"rename documents.body to documents.content\", \"down_revision\": [\"0004\"], \"downgrade\": "
    "{\"drops\": [], \"executes\": 0, \"shape\": \"code\"}, \"path\": \"/opt/app/api/aiwfe_api/migrations/versions/0"
    "005_rename_documents_body.py\", \"upgrade\": {\"drops\": [], \"executes\": 0, \"shape\": \"code\"}}, \"0006\": {\""
    "branch_labels\": [], \"depends_on\": [], \"doc\": \"add documents.note (a test revision whose downgrade dr"
    "ops data written after the upgrade)\", \"down_revision\": [\"0005\"], \"downgrade\": {\"drops\": [{\"column\": "
    "\"note\", \"kind\": \"column\", \"line\": 21, \"schema\": null, \"table\": \"documents\"}], \"executes\": 0, \"shape\""
    ": \"code\"}, \"path\": \"/opt/app/api/aiwfe_api/migrations/versions/0006_add_documents_note.py\", \"upgrade"
    "\": {\"drops\": [], \"executes\": 0, \"shape\": \"code\"}}, \"0006b\": {\"branch_labels\": [], \"depends_on\": [], "
    "\"doc\": \"a second head beside 0006 (does nothing)\", \"down_revision\": [\"0005\"], \"downgrade\": {\"drops\":"
    " [], \"executes\": 0, \"shape\": \"empty\"}, \"path\": \"/opt/app/api/aiwfe_api/migrations/versions/0006b_sec"
    "ond_head.py\", \"upgrade\": {\"drops\": [], \"executes\": 0, \"shape\": \"empty\"}}}, \"script_location\": \"/opt/"
    "app/api/aiwfe_api/migrations\"}"
)
RECORDED = json.loads(RECORDED_TEXT)


def test_the_recorded_answer_plans_like_the_hand_written_one():
    graph = plan.Graph(RECORDED)
    assert graph.heads == ["0006", "0006b"] and graph.script_location == "/opt/app/api/aiwfe_api/migrations"
    assert plan.path(graph, ["0006"], "0004") == ["0006", "0005"]
    assert plan.count_keys(graph, ["0006", "0005"]) == [("public", "documents", "note")]
    steps = [plan.classify(graph, r, {("public", "documents", "note"): 6}) for r in ["0006", "0005"]]
    assert [(s["kind"], s["rows"]) for s in steps] == [("lossy", 6), ("reversible", 0)]
    assert plan.classify(graph, "0006b", {})["kind"] == "noop"
    with pytest.raises(plan.PlanError, match=r"several heads \(0006, 0006b\)"):
        plan.resolve(graph, ["0006"], "-1")
    assert plan.count_keys(graph, plan.path(graph, ["0005"], None)) == [
        ("public", "jobs", "priority"), ("public", "memories", None), ("public", "documents", None), ("public", "jobs", None)]


@pytest.mark.parametrize("text", ["0004", "ae1027a6acf", "abc_def", "A" * 64, "base", "-1", "-12"])
def test_good_targets(text):
    assert plan.check_target(text) == text


@pytest.mark.parametrize("text", [
    "", "0004'; DROP TABLE jobs; --", "0004\"", "$(reboot)", "`id`", "0004;rm -rf /", "0004 0005",
    "+1", "-0", "-1a", "A" * 65, "../0004", "0004\n", "ae10@head", "0004:0005", "-99999",
])
def test_malformed_targets_are_refused(text):
    with pytest.raises(plan.PlanError, match="is not a revision id"):
        plan.check_target(text)


@pytest.mark.parametrize("text, expected", [(None, []), ("", []), ("0005", ["0005"]), ("b,a", ["a", "b"])])
def test_split_revisions(text, expected):
    assert plan.split_revisions(text) == expected


def test_a_database_revision_that_is_no_id_is_refused():
    with pytest.raises(plan.PlanError, match="the database's revision"):
        plan.split_revisions("0005'--")


@pytest.mark.parametrize("graph, current, target, expected", [
    (REFERENCE, ["0005"], "0004", "0004"),
    (REFERENCE, ["0005"], "-1", "0004"),
    (REFERENCE, ["0005"], "-3", "0002"),
    (REFERENCE, ["0005"], "-4", "0001"),
    (REFERENCE, ["0005"], "base", None),
    (REFERENCE, ["0003"], "0001", "0001"),
    (BRANCHED, ["0004a"], "-1", "0003a"),
])
def test_resolve(graph, current, target, expected):
    assert plan.resolve(plan.Graph(graph), current, target) == expected


@pytest.mark.parametrize("graph, current, target, message", [
    (REFERENCE, ["0005"], "head", "revision head does not exist in the script directory"),
    (REFERENCE, ["0005"], "0099", r"revision 0099 does not exist in the script directory /opt/app/api/aiwfe_api/"
                                  r"migrations \(revisions: 0001, 0002, 0003, 0004, 0005\)"),
    (TWO_HEADS, ["0003a"], "-1", r"the migrations have several heads \(0003a, 0003b\)"),
    (BRANCHED, ["0009"], "-1", r"crosses a branch point \(0009 merges 0004a, 0003b\)"),
    (BRANCHED, ["0003b"], "-1", r"ends on a branch point \(0002 branches into 0003a, 0003b\)"),
    (BRANCHED, ["0004a"], "-2", r"ends on a branch point \(0002 branches into 0003a, 0003b\)"),
    (REFERENCE, ["0004", "0005"], "-1", "needs the database at one revision"),
    (REFERENCE, ["0005"], "-5", r"-5 goes below the first revision: only 4 revision\(s\) are below 0005; use base"),
])
def test_resolve_refusals(graph, current, target, message):
    with pytest.raises(plan.PlanError, match=message):
        plan.resolve(plan.Graph(graph), current, target)


@pytest.mark.parametrize("graph, current, target, expected", [
    (REFERENCE, ["0005"], "0004", ["0005"]),
    (REFERENCE, ["0005"], "0002", ["0005", "0004", "0003"]),
    (REFERENCE, ["0005"], None, ["0005", "0004", "0003", "0002", "0001"]),
    (REFERENCE, ["0004"], "0004", []),
    (REFERENCE, [], None, []),
    (BRANCHED, ["0009"], "0002", ["0009", "0003b", "0004a", "0003a"]),
    (BRANCHED, ["0009"], "0003b", ["0009", "0004a", "0003a"]),
])
def test_path_is_newest_first(graph, current, target, expected):
    assert plan.path(plan.Graph(graph), current, target) == expected


@pytest.mark.parametrize("graph, current, target, message", [
    (REFERENCE, ["0004"], "0005", "revision 0005 is newer than the database's revision 0004: this module only moves"),
    (TWO_HEADS, ["0003a"], "0003b", r"revision 0003b is not below the database's revision 0003a \(another branch\)"),
    (TWO_HEADS, ["0003a", "0003b"], "0002", r"the database is at several revisions \(0003a,0003b\)"),
    (REFERENCE, [], "0004", r"the database has no Alembic revision \(base\)"),
])
def test_path_refusals(graph, current, target, message):
    with pytest.raises(plan.PlanError, match=message):
        plan.path(plan.Graph(graph), current, target)


def test_an_image_that_does_not_know_the_revision_is_refused():
    graph = plan.Graph({"revisions": {k: v for k, v in REFERENCE["revisions"].items() if k != "0005"}})
    with pytest.raises(plan.PlanError, match="image sha256:old does not know revision 0005 .* pass migrations.image"):
        plan.known_current(graph, ["0005"], "sha256:old")
    plan.known_current(plan.Graph(REFERENCE), ["0005"], "sha256:new")


def test_count_keys_take_literal_plain_names_once():
    graph = copy.deepcopy(REFERENCE)
    graph["revisions"]["0005"]["downgrade"] = drops("jobs.priority", "memories", "Bad Name.x", ".")
    keys = plan.count_keys(plan.Graph(graph), ["0005", "0004", "0003"])
    assert keys == [("public", "jobs", "priority"), ("public", "memories", None)]


@pytest.mark.parametrize("upgrade, downgrade, counts, kind, rows, reason", [
    (CODE, CODE, {}, "reversible", 0, ""),
    (EMPTY, EMPTY, {}, "noop", 0, "its upgrade and downgrade do nothing"),
    (CODE, EMPTY, {}, "irreversible", None, "its downgrade is empty while its upgrade changes the schema"),
    (CODE, {"shape": "missing"}, {}, "irreversible", None, "its downgrade is missing while its upgrade changes"),
    (CODE, {"shape": "raises", "raise": "raise NotImplementedError('one way')"}, {}, "irreversible", None,
     "its downgrade raises (raise NotImplementedError('one way'))"),
    (CODE, drops("jobs.attempts"), {("public", "jobs", "attempts"): 3}, "lossy", 3,
     "drops jobs.attempts holding 3 non-null values"),
    (CODE, drops("jobs.attempts"), {("public", "jobs", "attempts"): 0}, "reversible", 0,
     "drops jobs.attempts (no non-null values)"),
    (CODE, drops("memories"), {("public", "memories", None): 7}, "lossy", 7, "drops memories holding 7 rows"),
    (CODE, drops("memories"), {("public", "memories", None): None}, "lossy", None,
     "drops memories, which could not be counted"),
    (CODE, {"shape": "code", "drops": [{"kind": "table", "table": None}]}, {}, "lossy", None,
     "drops a table it does not name literally (?)"),
    (CODE, {"shape": "code", "executes": 2, "drops": [{"kind": "column", "table": "jobs", "column": None}]}, {},
     "lossy", None, "drops a column it does not name literally (jobs.?); runs SQL the planner cannot read"),
    (CODE, drops(executes=1), {}, "reversible", 0, "runs SQL the planner cannot read (op.execute)"),
])
def test_classify(upgrade, downgrade, counts, kind, rows, reason):
    graph = plan.Graph({"revisions": {"0006": rev(["0005"], "six", upgrade=upgrade, downgrade=downgrade),
                                      "0005": rev(["0004"])}})
    step = plan.classify(graph, "0006", counts)
    assert (step["revision"], step["down_revision"], step["doc"], step["kind"], step["rows"]) == ("0006", "0005", "six", kind, rows)
    if reason:
        assert reason in step["reason"]
    else:
        assert step["reason"] == ""


def test_an_unreadable_revision_file_is_irreversible():
    graph = plan.Graph({"revisions": {"0006": rev(["0005"], unreadable="SyntaxError")}})
    assert plan.classify(graph, "0006", {})["kind"] == "irreversible"


def steps_of(*kinds):
    return [{"revision": f"000{i}", "kind": k, "reason": f"why {i}"} for i, k in enumerate(kinds)]


@pytest.mark.parametrize("strategy, kinds, dump, lossy_ok, expected, why", [
    ("auto", ["reversible", "noop"], None, False, "downgrade", "every step is reversible or a no-op"),
    ("auto", ["reversible", "lossy"], "/d.dump", False, "restore", "0001 is lossy: why 1): restoring the paired dump"),
    ("auto", ["irreversible"], "/d.dump", False, "restore", "0000 is irreversible"),
    ("downgrade", ["reversible"], None, False, "downgrade", "requested: every step"),
    ("downgrade", ["lossy"], None, True, "downgrade", "requested with allow_lossy: 0000 is lossy"),
    ("stamp", ["irreversible"], None, False, "stamp", "no schema change runs"),
    ("restore", ["reversible"], "/d.dump", False, "restore", "requested"),
])
def test_choose(strategy, kinds, dump, lossy_ok, expected, why):
    chosen, reason = plan.choose(strategy, steps_of(*kinds), dump, lossy_ok)
    assert chosen == expected and why in reason


@pytest.mark.parametrize("strategy, kinds, lossy_ok, message", [
    ("auto", ["reversible", "lossy"], False, r"\(0001 is lossy: why 1\) and no dump to restore was given: pass restore_dump"),
    ("downgrade", ["lossy"], False, "would drop data written since the upgrade: 0000 is lossy: why 0. Use strategy restore"),
    ("downgrade", ["irreversible"], True, "a downgrade cannot move the schema back: 0000 is irreversible"),
])
def test_choose_refusals(strategy, kinds, lossy_ok, message):
    with pytest.raises(plan.PlanError, match=message):
        plan.choose(strategy, steps_of(*kinds), None, lossy_ok)


@pytest.mark.parametrize("current, restored, expected", [
    ({"jobs": 8, "documents": 8, "alembic_version": 1}, {"jobs": 5, "documents": 5, "alembic_version": 1},
     {"documents": 3, "jobs": 3}),
    ({"jobs": 5, "extra": 2}, {"jobs": 5}, {"extra": 2}),
    ({"jobs": 4}, {"jobs": 5}, {}),
])
def test_lost_rows(current, restored, expected):
    assert plan.lost_rows(current, restored) == expected


def test_fill_replaces_only_the_placeholders():
    argv = ["python3", "-m", "alembic", "-c", "{config}", "downgrade", "--sql", "{from}:{to}", "{not_a_key}", "{"]
    assert plan.fill(argv, {"config": "/a.ini", "from": "0005", "to": "0004"}) == [
        "python3", "-m", "alembic", "-c", "/a.ini", "downgrade", "--sql", "0005:0004", "{not_a_key}", "{"]
