# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import os
import stat

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _ledger as ledger


def manifest(mid, release, kind="deploy", status="good", api="sha256:a", created=None):
    return {
        "id": mid, "project": "p", "release": release, "kind": kind, "status": status,
        "created": created or mid, "git": {"commit": release, "dirty": False}, "files": {},
        "services": {"api": {"image": f"aiwfe/api:{release}", "image_id": api, "config_hash": "h"},
                     "postgres": {"image": "aiwfe/postgres:15", "image_id": "sha256:pg", "config_hash": "h2"}},
    }


HISTORY = [
    manifest("1", "v1.0.0", api="sha256:a0"),
    manifest("2", "v1.1.0", api="sha256:a1"),
    manifest("3", "v1.3.0-crash", status="failed", api="sha256:bad"),
]


@pytest.mark.parametrize("history, target, expected", [
    (HISTORY, "previous", "2"),                       # newest deploy failed: newest good deploy
    (HISTORY[:2], "previous", "1"),                   # newest deploy good: the good one before it
    (HISTORY + [manifest("4", "v1.1.0", kind="rollback", api="sha256:a1")], "previous", "2"),  # rollbacks do not move it
    (HISTORY, "v1.0.0", "1"),                         # by release label
    # a label names its deploy, not the records of rollbacks to it (a second rollback to it picks the same manifest)
    (HISTORY + [manifest("4", "v1.0.0", kind="rollback", api="sha256:a0")], "v1.0.0", "1"),
    ([manifest("1", "v1", kind="snapshot"), manifest("2", "v1", kind="rollback")], "v1", "2"),  # no deploy: newest good
    (HISTORY, "3", "3"),                              # by manifest id
    (HISTORY, "latest", "3"),
    (HISTORY[:2] + [manifest("2b", "v1.1.0", api="sha256:a1")], "previous", "1"),  # same images as newest: skipped
])
def test_select(history, target, expected):
    assert ledger.select(history, target)["id"] == expected


@pytest.mark.parametrize("history, target, message", [
    ([], "previous", "no releases"),
    (HISTORY[:1], "previous", "no good release is recorded before v1.0.0"),
    (HISTORY, "v9.9.9", "unknown release 'v9.9.9': known good releases are v1.0.0, v1.1.0"),
    (HISTORY, "v1.3.0-crash", "unknown release"),     # a failed release is never a rollback target by label
    ([manifest("1", "v1", kind="snapshot")], "previous", "no deploy is recorded"),
])
def test_select_errors(history, target, message):
    with pytest.raises(ledger.LedgerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ledger.select(history, target)


def test_same_state_ignores_time_and_id():
    a = manifest("1", "v1.1.0")
    b = dict(manifest("2", "v1.1.0"), created="later", host="other")
    assert ledger.same_state(a, b)
    assert not ledger.same_state(a, manifest("2", "v1.1.0", api="sha256:other"))
    assert not ledger.same_state(a, manifest("2", "v1.1.0", status="failed"))
    assert not ledger.same_state(None, a)


def test_diff_lists_only_changed_services():
    d = ledger.diff(HISTORY[2], HISTORY[1])
    assert list(d["services"]) == ["api"]
    assert d["services"]["api"]["from_id"] == "sha256:bad" and d["services"]["api"]["to_id"] == "sha256:a1"


def test_diff_reports_commit_and_alembic_revision():
    a = dict(HISTORY[1], alembic_revision="0004")
    b = dict(HISTORY[2], alembic_revision="0005")
    d = ledger.diff(a, b)
    assert d["commit"] == {"from": "v1.1.0", "to": "v1.3.0-crash"}
    assert d["alembic_revision"] == {"from": "0004", "to": "0005"}
    assert "alembic_revision" not in ledger.diff(a, dict(a))


def tagged(mid, status="good", tag=None, api=None):
    m = manifest(mid, "v" + mid, status=status, api=api or f"sha256:{mid}")
    m["services"]["api"]["rollback_tag"] = tag or f"aiwfe-rollback/p-api:{mid}"
    return m


@pytest.mark.parametrize("history, keep, protect, expected", [
    ([tagged("1"), tagged("2"), tagged("3")], 2, [], ["aiwfe-rollback/p-api:1"]),
    ([tagged("1"), tagged("2"), tagged("3")], 0, [], []),                       # 0 keeps everything
    ([tagged("1"), tagged("2"), tagged("3")], 5, [], []),
    ([tagged("1"), tagged("2"), tagged("3", status="failed")], 1, [], ["aiwfe-rollback/p-api:1"]),  # failed ones don't count
    ([tagged("1"), tagged("2", tag="aiwfe-rollback/p-api:1"), tagged("3")], 2, [], []),  # shared by a kept one
    ([tagged("1"), tagged("2"), tagged("3")], 1, ["aiwfe-rollback/p-api:1"], ["aiwfe-rollback/p-api:2"]),
    # snapshots of the same images count once: v1 stays among the newest 2 releases
    ([tagged("1"), tagged("2"), tagged("3", api="sha256:2"), tagged("4", api="sha256:2")], 2, [], []),
    ([tagged("1"), tagged("2"), tagged("3", api="sha256:2"), tagged("5")], 2, [], ["aiwfe-rollback/p-api:1"]),
])
def test_tags_to_release(history, keep, protect, expected):
    assert ledger.tags_to_release(history, keep, protect) == expected


def test_ids_and_tags():
    when = datetime.datetime(2026, 11, 25, 18, 15, tzinfo=datetime.timezone.utc)
    assert ledger.new_manifest_id(when, "v1.1.0", []) == "20261125T181500Z-v1.1.0"
    assert ledger.new_manifest_id(when, "v1.1.0", ["20261125T181500Z-v1.1.0"]) == "20261125T181500Z-v1.1.0.2"
    assert ledger.new_manifest_id(when, "feature/x y", []) == "20261125T181500Z-feature-x-y"
    assert ledger.rollback_tag("ai_workflow_engine", "perception-service", "X-v1") == \
        "aiwfe-rollback/ai_workflow_engine-perception-service:X-v1"


def test_write_and_load_roundtrip(tmp_path):
    m = manifest("20261125T181500Z-v1", "v1")
    path = ledger.write_manifest(str(tmp_path), m)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ledger.load_manifests(str(tmp_path), "p") == [m]
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.startswith(".tmp")]


def test_unreadable_manifest_is_reported(tmp_path):
    directory = tmp_path / "p" / "releases"
    directory.mkdir(parents=True)
    (directory / "bad.json").write_text("{not json")
    with pytest.raises(ledger.LedgerError, match=r"move it aside \(mv .*\.json .*\.json\.damaged\) and run again"):
        ledger.load_manifests(str(tmp_path), "p")


STATE = {
    "git": {"commit": "c0ffee" * 6 + "c0ff", "tag": None, "dirty": False},
    "files": {"compose.yaml": "f1"},
    "services": {"api": {"image": "aiwfe/api:v1", "image_id": "sha256:a", "repo_digests": [], "config_hash": "h",
                         "container_image_id": "sha256:old", "state": "running"}},
}


def test_new_manifest_from_an_observed_state():
    made = ledger.new_manifest("p", "/srv/p", ["compose.yaml"], STATE, "snapshot", "failed", note="before")
    assert made["release"] == STATE["git"]["commit"][:12]          # no tag: the short commit
    assert made["services"]["api"]["running"] is False              # the container runs another image
    assert made["note"] == "before" and made["backup_set"] is None and "id" not in made


def test_settle_keeps_the_newest_identical_state_and_names_new_ones():
    first, new = ledger.settle_manifest([], ledger.new_manifest("p", "/srv/p", [], STATE, "snapshot", "failed"))
    assert new and first["id"].endswith("-" + STATE["git"]["commit"][:12])
    again, new = ledger.settle_manifest([first], ledger.new_manifest("p", "/srv/p", [], STATE, "snapshot", "failed"))
    assert not new and again is first
    # a snapshot compares to the newest manifest whatever its kind
    deployed = dict(first, kind="deploy")
    same, new = ledger.settle_manifest([deployed], ledger.new_manifest("p", "/srv/p", [], STATE, "snapshot", "failed"))
    assert not new and same is deployed
    # ... also when the deploy read the Alembic revision and the snapshot could not (the pre-rollback record)
    migrated = dict(first, kind="deploy", alembic_revision="0004")
    same, new = ledger.settle_manifest([migrated], ledger.new_manifest("p", "/srv/p", [], STATE, "snapshot", "failed"))
    assert not new and same is migrated
    # a snapshot that read another revision is another state
    other, new = ledger.settle_manifest([migrated], ledger.new_manifest("p", "/srv/p", [], STATE, "snapshot", "failed",
                                                                        alembic_revision="0003"))
    assert new and other["alembic_revision"] == "0003"
    good, new = ledger.settle_manifest([first], ledger.new_manifest("p", "/srv/p", [], STATE, "snapshot", "good"))
    assert new and good["id"] != first["id"]
