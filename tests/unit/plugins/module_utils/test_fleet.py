# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _fleet as fleet

HOSTS = ["h1", "h2", "h3", "h4", "h5"]


def ok(release="v1.2.0", mid=None, frm="v1.3.0-crashloop"):
    return {"ok": True, "error": "", "release": release, "id": mid or f"20261130T0000Z-{release}", "from": frm}


# --- agree -----------------------------------------------------------------------------------------------------------
def test_agree_one_label_on_every_host():
    got = fleet.agree({h: ok() for h in HOSTS}, "previous", HOSTS)
    assert got["target"] == "v1.2.0"
    assert got["problems"] == []


def test_agree_names_each_host_that_cannot_and_gives_no_target():
    checks = {h: ok("v1.1.0") for h in HOSTS}
    checks["h2"] = {"ok": False, "error": "unknown release 'v1.1.0'", "from": "v1.3.0"}
    checks["h4"] = {"ok": False, "error": "unknown release 'v1.1.0'", "from": "v1.3.0"}
    got = fleet.agree(checks, "v1.1.0", HOSTS)
    assert got["target"] is None
    assert got["problems"] == ["h2: unknown release 'v1.1.0'", "h4: unknown release 'v1.1.0'"]


def test_agree_a_host_without_a_check_is_a_problem():
    checks = {h: ok() for h in HOSTS if h != "h3"}
    got = fleet.agree(checks, "previous", HOSTS)
    assert got["target"] is None
    assert got["problems"] == ["h3: its check did not run (unreachable, or it failed before it)"]


def test_agree_refuses_hosts_resolving_previous_differently():
    checks = {h: ok() for h in HOSTS}
    checks["h5"] = ok("v1.1.0")
    got = fleet.agree(checks, "previous", HOSTS)
    assert got["target"] is None
    assert len(got["problems"]) == 1
    assert "v1.1.0 on h5; v1.2.0 on h1, h2, h3, h4" in got["problems"][0]
    assert "-e aiwfe_rollback_release=LABEL" in got["problems"][0]


def test_agree_refuses_one_hosts_manifest_id_on_a_fleet_but_not_on_one_host():
    mid = "20261130T0000Z-v1.2.0"
    checks = {h: ok(mid=mid) for h in HOSTS}
    assert fleet.agree(checks, mid, HOSTS)["target"] is None
    assert fleet.agree({"h1": checks["h1"]}, mid, ["h1"])["target"] == "v1.2.0"


def test_agree_rejects_no_hosts():
    with pytest.raises(fleet.FleetError):
        fleet.agree({}, "previous", [])


# --- decide ----------------------------------------------------------------------------------------------------------
def res(result, batch):
    return {"result": result, "batch": batch}


def test_decide_goes_on_after_a_good_batch_and_stops_after_the_last():
    batch = ["h1"]
    got = fleet.decide(HOSTS, batch, {"h1": res("rolled back", batch)}, 0)
    assert got == {"failed": [], "ok": ["h1"], "last": False, "stop": False, "reason": ""}
    last = ["h4", "h5"]
    got = fleet.decide(HOSTS, last, {"h4": res("rolled back", last), "h5": res("unchanged", last)}, 0)
    assert got["stop"] and got["last"] and got["reason"] == "this was the last batch"


def test_decide_stops_when_the_batch_crosses_the_limit():
    batch = ["h2", "h3"]
    results = {"h2": res("failed", batch), "h3": res("rolled back", batch)}
    got = fleet.decide(HOSTS, batch, results, 0)
    assert got["failed"] == ["h2"] and got["ok"] == ["h3"]
    assert got["stop"] and not got["last"]
    assert "1 of 2 hosts of this batch failed (50 %)" in got["reason"]
    # 50 % is not more than a limit of 50 %: the run goes on
    assert not fleet.decide(HOSTS, batch, results, 50)["stop"]
    assert fleet.decide(HOSTS, batch, results, 49.9)["stop"]


def test_decide_a_batch_whose_every_host_failed_stops_even_at_100():
    batch = ["h2", "h3"]
    got = fleet.decide(HOSTS, batch, {"h2": res("failed", batch), "h3": res("failed", batch)}, 100)
    assert got["stop"] and got["reason"].startswith("every host of this batch failed")


def test_decide_a_batch_host_without_a_result_counts_as_failed():
    batch = ["h2", "h3"]
    got = fleet.decide(HOSTS, batch, {"h3": res("rolled back", batch)}, 0)
    assert got["failed"] == ["h2"] and got["stop"]


@pytest.mark.parametrize("limit", [-1, 101, "many", None])
def test_decide_rejects_a_bad_limit(limit):
    with pytest.raises(fleet.FleetError, match="max_fail_percentage"):
        fleet.decide(HOSTS, ["h1"], {"h1": res("rolled back", ["h1"])}, limit)


# --- summary ---------------------------------------------------------------------------------------------------------
def test_summary_rows_batches_totals_and_lines():
    b1, b2 = ["h1"], ["h2", "h3"]
    results = {
        "h1": dict(res("rolled back", b1), **{"from": "v1.3.0", "to": "v1.2.0", "time_to_recovery_s": 41.5,
                                              "backup_set": "20261130T1", "log_entry": "e1"}),
        "h2": dict(res("failed", b2), **{"from": "v1.3.0", "to": "v1.2.0", "error": "backup: disk full"}),
        "h3": dict(res("unchanged", b2), **{"from": "v1.2.0", "to": "v1.2.0"}),
    }
    got = fleet.summary(HOSTS, results, "v1.2.0", "complete-system", "stopped", {"h4": "v1.3.0", "h5": "v1.3.0"})
    assert [got["hosts"][h]["batch"] for h in HOSTS] == [1, 2, 2, None, None]
    assert [got["hosts"][h]["result"] for h in HOSTS] == ["rolled back", "failed", "unchanged", "not run", "not run"]
    assert got["hosts"]["h4"]["from"] == "v1.3.0" and got["hosts"]["h4"]["to"] == ""
    assert got["totals"]["failed"] == 1 and got["totals"]["not run"] == 2 and got["totals"]["hosts"] == 5
    assert got["totals"]["slowest_recovery_s"] == 41.5
    assert got["result"] == "failed"
    assert got["lines"][0].startswith("Fleet complete-system rollback to v1.2.0: failed - 1 rolled back, 1 unchanged")
    assert got["lines"][1] == "h1 (batch 1): rolled back in 41.5 s, v1.3.0 -> v1.2.0"
    assert got["lines"][2] == "h2 (batch 2): failed, v1.3.0 -> v1.2.0 - backup: disk full"
    assert got["lines"][4] == "h4 (no batch): not run, v1.3.0 (left as it is)"


@pytest.mark.parametrize("results,overall", [
    ({"h1": {"result": "rolled back", "batch": ["h1"]}}, "rolled back"),
    ({"h1": {"result": "unchanged", "batch": ["h1"]}}, "unchanged"),
    ({"h1": {"result": "checked", "batch": ["h1"]}}, "check"),
])
def test_summary_overall_result(results, overall):
    assert fleet.summary(["h1"], results, "v1.2.0", "quick")["result"] == overall


def test_summary_incomplete_when_hosts_did_not_run_and_none_failed():
    got = fleet.summary(["h1", "h2"], {"h1": {"result": "rolled back", "batch": ["h1"]}}, "v1.2.0", "quick")
    assert got["result"] == "incomplete"


def test_summary_rejects_an_unknown_result():
    with pytest.raises(fleet.FleetError):
        fleet.summary(["h1"], {"h1": {"result": "fine"}}, "v1.2.0", "quick")


def test_collect_reads_the_hosts_that_have_the_variable_in_play_order():
    hostvars = {"h1": {"r": {"result": "ok"}, "other": 1}, "h2": {"other": 2}, "h3": {"r": {"result": "failed"}}}
    got = fleet.collect(hostvars, ["h3", "h2", "h1"], "r")
    assert got == {"h3": {"result": "failed"}, "h1": {"result": "ok"}}
    assert list(got) == ["h3", "h1"]


def test_collect_of_hosts_none_has_is_empty_and_bad_input_is_refused():
    assert fleet.collect({"h1": {}}, ["h1"], "r") == {}
    with pytest.raises(fleet.FleetError, match="a list of host names"):
        fleet.collect({"h1": {}}, "h1", "r")
    with pytest.raises(fleet.FleetError, match="must be a name"):
        fleet.collect({"h1": {}}, ["h1"], "")
