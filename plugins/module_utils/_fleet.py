# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One rollback on many hosts: the fleet's decisions, as pure functions (role aiwfe.rollback.fleet, filters
aiwfe.rollback.fleet_agree / fleet_decide / fleet_summary).

Decisions written down (README "Fleets"):

- **One target for the play.** Every host resolves the requested release from its own ledger (``previous`` included)
  and checks it can go there (the release is recorded good, its images exist or its commit can rebuild them, the
  deploy directory can be checked out) before any host changes. The fleet's target is the release *label* all hosts
  agree on; a host that cannot resolve or reach it, or hosts that resolve ``previous`` to different labels, stop the
  whole run before anything changes, each host named with its reason. A manifest id is one host's: it is refused on a
  fleet of more than one host.
- **The failure limit is counted when a batch has ended, never in its middle.** Ansible's own
  ``max_fail_percentage`` marks the batch's other hosts failed at the task where the limit is crossed - they would stop
  half way through their rollback (stack stopped, release checked out, not started). Here a host's failure is caught,
  reported and held until every host of the batch has finished; then the failed hosts fail (they count as failed for
  the recap and the job status) and, when this batch's failed hosts exceed the limit, the remaining batches do not run.
  The limit is per batch, as Ansible documents its own: failed hosts of the batch * 100 / hosts in the batch >
  max_fail_percentage. A batch in which every host failed always stops the run (Ansible's rule too).
- **Once per run, not once per batch**: the start notice is sent before the first batch, the end notice and the fleet
  summary by the batch that ends the run (the last one, or the one that crossed the limit) - ``run_once`` alone runs
  once per batch.
"""

from __future__ import annotations

import typing as t

# A host's result in the fleet summary.
ROLLED_BACK = "rolled back"
UNCHANGED = "unchanged"
FAILED = "failed"
CHECKED = "checked"
NOT_RUN = "not run"
RESULTS = (ROLLED_BACK, UNCHANGED, FAILED, CHECKED, NOT_RUN)
SPECIAL_TARGETS = ("previous", "latest")


class FleetError(ValueError):
    """Input the fleet functions cannot work with (a programming error of the caller, not an operator's)."""


def _host_list(hosts: t.Any, what: str) -> list[str]:
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(h, str) for h in hosts):
        raise FleetError(f"{what} must be a list of host names, got {hosts!r}")
    return list(hosts)


def collect(hostvars: t.Mapping[str, t.Any], hosts: t.Sequence[str], name: str) -> dict[str, t.Any]:
    """Host name -> the value of the variable ``name`` on that host, for the hosts of ``hosts`` that have it, in
    their order. The hosts of a later batch have none yet; ``map(attribute=..., default=...)`` over hostvars raises
    for them instead of skipping (found by molecule/fleet's second batch), so the fleet reads them by name here."""
    if not isinstance(name, str) or not name:
        raise FleetError(f"the variable to collect must be a name, got {name!r}")
    found = {}
    for host in _host_list(hosts, "hosts"):
        values = hostvars[host]
        if name in values:
            found[host] = values[name]
    return found


def agree(checks: t.Mapping[str, t.Any], requested: str, hosts: t.Sequence[str]) -> dict[str, t.Any]:
    """The fleet's one target from every host's check.

    ``checks``: host -> {ok, error, release (label), id, from}; a host of ``hosts`` without a check (unreachable, or
    its check never ran) is a problem too. Returns {target, requested, problems (one line per host or reason),
    releases (host -> label)}; target is None when there is any problem.
    """
    hosts = _host_list(hosts, "hosts")
    if not hosts:
        raise FleetError("no hosts in the play")
    problems: list[str] = []
    releases: dict[str, str] = {}
    for host in hosts:
        check = checks.get(host)
        if not isinstance(check, t.Mapping):
            problems.append(f"{host}: its check did not run (unreachable, or it failed before it)")
            continue
        if not check.get("ok"):
            problems.append(f"{host}: {check.get('error') or 'cannot roll back to ' + requested}")
            continue
        releases[host] = str(check.get("release") or "")
    labels = sorted(set(releases.values()))
    if len(labels) > 1:
        by_label = "; ".join(f"{label} on {', '.join(h for h in hosts if releases.get(h) == label)}" for label in labels)
        problems.append(f"the hosts resolve '{requested}' to different releases ({by_label}): name the one for every "
                        "host with -e aiwfe_rollback_release=LABEL")
    if (len(hosts) > 1 and requested not in SPECIAL_TARGETS and not problems
            and any(str(checks[h].get("id") or "") == requested for h in hosts)):
        problems.append(f"'{requested}' is one host's manifest id: a fleet rolls back to a release label every host "
                        f"has ({labels[0] if labels else 'see release_info'})")
    target = labels[0] if labels and not problems else None
    return {"target": target, "requested": requested, "problems": problems, "releases": releases}


def _batch_of(result: t.Mapping[str, t.Any] | None) -> tuple[str, ...]:
    return tuple((result or {}).get("batch") or ())


def decide(hosts: t.Sequence[str], batch: t.Sequence[str], results: t.Mapping[str, t.Any],
           max_fail_percentage: t.Any) -> dict[str, t.Any]:
    """After a batch: which of its hosts failed, and whether the run stops here.

    A host of the batch without a result (unreachable mid-way) counts as failed. Returns {failed, ok, last, stop,
    reason}.
    """
    hosts = _host_list(hosts, "hosts")
    batch = _host_list(batch, "batch")
    try:
        limit = float(max_fail_percentage)
    except (TypeError, ValueError):
        raise FleetError(f"max_fail_percentage must be a number from 0 to 100, got {max_fail_percentage!r}") from None
    if not 0 <= limit <= 100:
        raise FleetError(f"max_fail_percentage must be a number from 0 to 100, got {max_fail_percentage!r}")
    if not batch:
        raise FleetError("the batch is empty")
    failed = [h for h in batch if (results.get(h) or {}).get("result", FAILED) == FAILED]
    ok = [h for h in batch if h not in failed]
    last = hosts.index(batch[-1]) == len(hosts) - 1 if batch[-1] in hosts else True
    share = 100.0 * len(failed) / len(batch)
    if len(failed) == len(batch) and not last:
        stop, reason = True, f"every host of this batch failed ({', '.join(failed)})"
    elif failed and share > limit and not last:
        stop, reason = True, (f"{len(failed)} of {len(batch)} hosts of this batch failed ({share:.0f} %), more than "
                              f"the failure limit of {limit:g} % (aiwfe_fleet_max_fail_percentage): the remaining "
                              "batches do not run")
    elif last:
        stop, reason = True, "this was the last batch"
    else:
        stop, reason = False, ""
    return {"failed": failed, "ok": ok, "last": last, "stop": stop, "reason": reason}


def summary(hosts: t.Sequence[str], results: t.Mapping[str, t.Any], target: str | None, kind: str,
            reason: str = "", froms: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
    """The fleet summary: per host (in play order) batch number, from, to, result, time to recovery, backup set and log
    entry; totals; the overall result; and the lines printed at the end of the run. ``froms``: host -> the release it
    ran before the run (the fleet check's), for the hosts that did not run."""
    hosts = _host_list(hosts, "hosts")
    froms = froms or {}
    batches: list[tuple[str, ...]] = []
    for host in hosts:
        b = _batch_of(results.get(host))
        if b and b not in batches:
            batches.append(b)
    rows: dict[str, dict[str, t.Any]] = {}
    for host in hosts:
        result = dict(results.get(host) or {})
        b = _batch_of(result)
        res = result.get("result") or NOT_RUN
        if res not in RESULTS:
            raise FleetError(f"unknown result {res!r} for {host}")
        rows[host] = {
            "batch": batches.index(b) + 1 if b else None,
            "from": result.get("from") or froms.get(host) or "",
            "to": result.get("to") or (target if res != NOT_RUN else ""),
            "result": res,
            "time_to_recovery_s": result.get("time_to_recovery_s"),
            "backup_set": result.get("backup_set") or None,
            "log_entry": result.get("log_entry") or None,
            "error": result.get("error") or "",
        }
    totals = {r: sum(1 for row in rows.values() if row["result"] == r) for r in RESULTS}
    totals["hosts"] = len(hosts)
    times = [float(row["time_to_recovery_s"]) for row in rows.values()
             if row["result"] == ROLLED_BACK and row["time_to_recovery_s"] is not None]
    totals["slowest_recovery_s"] = max(times) if times else None
    if totals[FAILED]:
        overall = FAILED
    elif totals[NOT_RUN]:
        overall = "incomplete"
    elif totals[CHECKED]:
        overall = "check"
    elif totals[ROLLED_BACK]:
        overall = ROLLED_BACK
    else:
        overall = UNCHANGED
    lines = [f"Fleet {kind} rollback to {target or '(no target)'}: {overall} - "
             + ", ".join(f"{totals[r]} {r}" for r in RESULTS if totals[r]) + f" of {len(hosts)} hosts"
             + (f"; {reason}" if reason else "")]
    for host, row in rows.items():
        when = f" in {row['time_to_recovery_s']} s" if row["result"] == ROLLED_BACK and row["time_to_recovery_s"] else ""
        batch = f"batch {row['batch']}" if row["batch"] else "no batch"
        moved = f"{row['from'] or '?'} -> {row['to'] or '?'}" if row["result"] != NOT_RUN else f"{row['from'] or '?'} (left as it is)"
        lines.append(f"{host} ({batch}): {row['result']}{when}, {moved}"
                     + (f" - {row['error']}" if row["error"] else ""))
    return {"kind": kind, "target": target, "result": overall, "hosts": rows, "totals": totals, "lines": lines}
