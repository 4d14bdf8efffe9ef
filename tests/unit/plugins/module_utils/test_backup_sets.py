# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_backup_sets: only complete sets count; the dump paired with a revision is found, preferring the ledger's set; a set
is read back from disk before the retention deletes anything, which keeps the sets the ledger pairs with."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _backup_sets as sets
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed


def make_set(root, set_id, revision="0004", database="app", complete=True, dump=True, relocated=False):
    set_dir = os.path.join(root, set_id)
    os.makedirs(os.path.join(set_dir, "database"))
    dump_path = os.path.join(set_dir, "database", f"{database}-{set_id}.dump")
    if dump:
        with open(dump_path, "wb") as handle:
            handle.write(b"PGDMP")
    recorded = os.path.join("/elsewhere", os.path.basename(dump_path)) if relocated else dump_path
    if complete:
        with open(os.path.join(set_dir, "set.json"), "w", encoding="utf-8") as handle:
            json.dump({"id": set_id, "database": recorded,
                       "database_manifest": {"database": database, "alembic_revision": revision}}, handle)
    return dump_path


def test_complete_sets_skip_sets_without_manifest_and_unreadable_ones(tmp_path):
    root = str(tmp_path)
    make_set(root, "20261129T010000Z")
    make_set(root, "20261129T020000Z", complete=False)
    make_set(root, "20261129T030000Z")
    with open(os.path.join(root, "20261129T030000Z", "set.json"), "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert [entry[0] for entry in sets.complete_sets(root)] == ["20261129T010000Z"]


def test_complete_sets_of_a_missing_directory_is_empty(tmp_path):
    assert sets.complete_sets(str(tmp_path / "none")) == []


@pytest.mark.parametrize("revision, prefer, expected", [
    ("0004", (), "20261129T030000Z"),                     # newest complete set at that revision
    ("0004", ("20261129T010000Z",), "20261129T010000Z"),  # the ledger's set wins
    ("0004", ("19990101T000000Z",), "20261129T030000Z"),  # a preferred set that does not exist is skipped
    ("0003", (), "20261129T000000Z"),
    ("0005", (), None),
    (None, (), None),
])
def test_paired_dump(tmp_path, revision, prefer, expected):
    root = str(tmp_path)
    make_set(root, "20261129T000000Z", revision="0003")
    make_set(root, "20261129T010000Z")
    make_set(root, "20261129T020000Z", database="other")
    make_set(root, "20261129T030000Z")
    make_set(root, "20261129T040000Z", complete=False)
    make_set(root, "20261129T050000Z", dump=False)
    found = sets.paired_dump(root, "app", revision, prefer)
    assert (found.set_id if found else None) == expected
    if found:
        assert os.path.isfile(found.path) and found.manifest["alembic_revision"] == revision


def test_paired_dump_of_a_moved_set_is_found_by_name(tmp_path):
    root = str(tmp_path)
    path = make_set(root, "20261129T010000Z", relocated=True)
    assert sets.paired_dump(root, "app", "0004").path == path


def test_a_database_without_alembic_pairs_with_no_revision(tmp_path):
    root = str(tmp_path)
    make_set(root, "20261129T010000Z", revision=None)
    assert sets.paired_dump(root, "app", None).set_id == "20261129T010000Z"
    assert sets.paired_dump(root, "app", "0001") is None


# --- read-back and retention (issue 12, defect 1) -------------------------------------------------------------------

def artifact(path, body):
    """A file with its manifest beside it, as _files.publish writes them."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(body)
    with open(path + ".manifest.json", "w", encoding="utf-8") as handle:
        json.dump({"sha256": hashlib.sha256(body).hexdigest()}, handle)
    return path


def full_set(root, set_id, complete=True):
    """A set as the backup role writes it: dump, two volume archives and the configuration archive."""
    set_dir = os.path.join(root, set_id)
    dump = artifact(os.path.join(set_dir, "database", f"app-{set_id}.dump"), b"PGDMP" + set_id.encode())
    volumes = {name: artifact(os.path.join(set_dir, "volumes", f"{name}-{set_id}.tar.zst"), name.encode())
               for name in ("p_data", "p_caddy")}
    config = artifact(os.path.join(set_dir, "config", f"config-{set_id}.tar.zst"), b"config")
    if complete:
        with open(os.path.join(set_dir, "set.json"), "w", encoding="utf-8") as handle:
            json.dump({"id": set_id, "database": dump, "volumes": volumes, "config": config,
                       "database_manifest": {"database": "app", "sha256": hashlib.sha256(
                           b"PGDMP" + set_id.encode()).hexdigest()}}, handle)
    return set_dir


def test_read_back_checks_every_file_the_set_names(tmp_path):
    set_dir = full_set(str(tmp_path), "20261129T010000Z")
    files = sets.read_back(set_dir)
    assert sorted(f["what"] for f in files) == ["the archive of volume p_caddy", "the archive of volume p_data",
                                                "the configuration archive", "the database dump"]


@pytest.mark.parametrize("damage, message", [
    (lambda d: open(os.path.join(d, "volumes", "p_data-20261129T010000Z.tar.zst"), "ab").write(b"x"),
     "the archive of volume p_data .* is damaged"),
    (lambda d: os.unlink(os.path.join(d, "config", "config-20261129T010000Z.tar.zst")),
     "the configuration archive .* is missing"),
    (lambda d: os.unlink(os.path.join(d, "database", "app-20261129T010000Z.dump.manifest.json")),
     "the database dump .* has no readable manifest"),
    (lambda d: os.unlink(os.path.join(d, "set.json")), "has no readable set.json"),
])
def test_read_back_refuses_a_damaged_set(tmp_path, damage, message):
    set_dir = full_set(str(tmp_path), "20261129T010000Z")
    damage(set_dir)
    with pytest.raises(sets.SetError, match=message):
        sets.read_back(set_dir)


def test_read_back_compares_the_dump_with_the_checksum_set_json_copied(tmp_path):
    set_dir = full_set(str(tmp_path), "20261129T010000Z")
    # the dump and its own manifest replaced together: set.json still holds the sha256 of the dump it was written with
    artifact(os.path.join(set_dir, "database", "app-20261129T010000Z.dump"), b"another dump")
    with pytest.raises(sets.SetError, match="the database dump .* is damaged"):
        sets.read_back(set_dir)


def tagged(mid, backup_set, status="good", image="sha256:a"):
    return {"id": mid, "status": status, "created": mid, "backup_set": backup_set,
            "services": {"api": {"image_id": image, "rollback_tag": f"aiwfe-rollback/p-api:{mid}"}}}


def test_paired_sets_are_those_of_releases_that_can_be_rolled_back_to():
    manifests = [tagged("1", "S1", image="sha256:1"), tagged("2", "S2", image="sha256:2"),
                 tagged("3", "S3", status="failed", image="sha256:3"), tagged("4", "S4", image="sha256:4"),
                 tagged("5", None, image="sha256:5")]
    # keep 2 distinct releases: 5 and 4; 1 and 2 lost their rollback tags; 3 failed
    assert sets.paired_sets(manifests, 2) == {"S4": ["4"]}
    assert sets.paired_sets(manifests, 0) == {"S1": ["1"], "S2": ["2"], "S4": ["4"]}
    untagged = {"id": "6", "status": "good", "backup_set": "S6", "services": {"api": {"image_id": "x"}}}
    assert sets.paired_sets(manifests + [untagged], 1) == {"S6": ["6"]}


IDS = ["20261129T0%d0000Z" % n for n in range(10)]


def test_four_failed_runs_and_one_success_keep_the_complete_sets(tmp_path):
    """The defect: retention counted directories, so four failed runs pushed out every older complete set."""
    root = str(tmp_path)
    for set_id in IDS[:2]:
        full_set(root, set_id)
    for set_id in IDS[2:6]:
        full_set(root, set_id, complete=False)
    full_set(root, IDS[6])
    result = sets.run({"state": "retained", "backup_dir": root, "set_id": IDS[6], "keep_sets": 3,
                       "keep_releases": 5, "ledger_dir": str(tmp_path / "ledger"), "project_name": "p"}, False)
    assert result["verified"] and result["changed"]
    assert result["kept"] == [IDS[0], IDS[1], IDS[6]] and result["deleted"] == []
    assert result["deleted_incomplete"] == IDS[2:6]
    assert sorted(os.listdir(root)) == [IDS[0], IDS[1], IDS[6]]


def test_plan_keeps_the_newest_complete_and_the_paired_sets_and_never_the_set_being_written(tmp_path):
    root = str(tmp_path)
    for set_id in IDS[:5]:
        full_set(root, set_id)
    full_set(root, IDS[5], complete=False)     # older than the new set: a failed run
    full_set(root, IDS[7], complete=False)     # newer than the new set: never touched
    os.makedirs(os.path.join(root, "config-before-rollback"))
    plan = sets.plan_retention(root, IDS[4], 2, {IDS[1]: ["m1"], IDS[3]: ["m3"]})
    assert plan.kept == [IDS[1], IDS[3], IDS[4]]
    assert plan.deleted == [IDS[0], IDS[2]]
    assert plan.incomplete == []               # IDS[5] is newer than the set just written (IDS[4])
    assert plan.paired == {IDS[1]: ["m1"]}     # IDS[3] is kept anyway, as one of the newest two
    plan = sets.plan_retention(root, IDS[6], 1, {}, assume_complete=True)   # check mode: not written yet
    assert plan.kept == [IDS[6]] and plan.deleted == IDS[:5] and plan.incomplete == [IDS[5]]


def test_the_new_set_must_be_complete_and_keep_at_least_one(tmp_path):
    root = str(tmp_path)
    full_set(root, IDS[0], complete=False)
    with pytest.raises(sets.SetError, match="is not complete"):
        sets.plan_retention(root, IDS[0], 2, {})
    with pytest.raises(sets.SetError, match="keep at least 1"):
        sets.plan_retention(root, IDS[0], 0, {}, assume_complete=True)


def params(root, set_id, **more):
    return dict({"state": "retained", "backup_dir": root, "set_id": set_id, "keep_sets": 1, "keep_releases": 5,
                 "ledger_dir": os.path.join(root, "..", "ledger"), "project_name": "p"}, **more)


def test_a_set_that_does_not_read_back_deletes_nothing(tmp_path):
    root = str(tmp_path / "sets")
    for set_id in IDS[:3]:
        full_set(root, set_id)
    full_set(root, IDS[3], complete=False)
    full_set(root, IDS[4])
    with open(os.path.join(root, IDS[4], "volumes", f"p_caddy-{IDS[4]}.tar.zst"), "ab") as handle:
        handle.write(b"bit rot")
    with pytest.raises(JobFailed, match="does not read back: the archive of volume p_caddy .* Nothing was deleted"):
        sets.run(params(root, IDS[4]), False)
    assert sorted(os.listdir(root)) == IDS[:5]


def test_check_mode_reports_and_deletes_nothing(tmp_path):
    root = str(tmp_path / "sets")
    for set_id in IDS[:3]:
        full_set(root, set_id)
    full_set(root, IDS[3], complete=False)
    result = sets.run(params(root, IDS[5]), True)     # the backup role's check mode: the set is not written
    assert result["changed"] and not result["verified"]
    assert result["deleted"] == IDS[:3] and result["deleted_incomplete"] == [IDS[3]]
    assert sorted(os.listdir(root)) == IDS[:4]
    result = sets.run(params(root, IDS[2]), True)     # a written set is read back in check mode too
    assert result["verified"] and result["deleted"] == IDS[:2]


def test_the_ledger_pairing_keeps_a_set_and_the_run_deletes_set_json_first(tmp_path):
    root = str(tmp_path / "sets")
    for set_id in IDS[:3]:
        full_set(root, set_id)
    releases = tmp_path / "ledger" / "p" / "releases"
    releases.mkdir(parents=True)
    (releases / "m1.json").write_text(json.dumps(tagged("m1", IDS[0])), encoding="utf-8")
    result = sets.run(params(root, IDS[2]), False)
    assert result["kept"] == [IDS[0], IDS[2]] and result["deleted"] == [IDS[1]]
    assert result["paired"] == {IDS[0]: ["m1"]}
    assert sorted(os.listdir(root)) == [IDS[0], IDS[2]]
    assert sets.run(params(root, IDS[2]), False)["changed"] is False      # idempotent


@pytest.mark.parametrize("set_id", ["../elsewhere", "latest", ""])
def test_a_set_id_that_is_not_one_is_refused(tmp_path, set_id):
    with pytest.raises(JobFailed, match="is not a backup set's id"):
        sets.run(params(str(tmp_path), set_id), False)


def test_verified_reads_back_only(tmp_path):
    root = str(tmp_path / "sets")
    full_set(root, IDS[0])
    full_set(root, IDS[1], complete=False)
    result = sets.run(params(root, IDS[0], state="verified"), True)
    assert result["verified"] and len(result["files"]) == 4 and not result["changed"]
    with pytest.raises(JobFailed, match="has no readable set.json"):
        sets.run(params(root, IDS[1], state="verified"), False)
    assert sorted(os.listdir(root)) == IDS[:2]
