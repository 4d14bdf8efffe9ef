# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_backup_sets: only complete sets count; the dump paired with a revision is found, preferring the ledger's set."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _backup_sets as sets


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
