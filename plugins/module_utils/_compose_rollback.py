# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback step of the engine: observe the stack, plan against a recorded release, record the failed state,
pin, and bring up what must change - the whole recovery path in one module run.

The pure planning lives in _rollback; this file runs it against the engine and the ledger. Every docker call that
does not depend on another runs at the same time (concurrently), because this is the time an on-call engineer waits.
"""

from __future__ import annotations

import os
import tempfile
import time
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, concurrently
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import write_text_atomic
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import (
    load_manifests, new_manifest, select, settle_manifest, summary, write_manifest,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import (
    bind_changes, bind_sources, changed_since_start, file_changes, merge_paths, parse_pin, plan_quick, render_pin, services_to_start,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import (
    DEFAULT_HASH_FILES, configured_images, containers_by_service, git_state, hash_files, state_of,
)

STATES = ("planned", "pinned", "started")
# restart policies under which a service started before its dependencies are ready comes back by itself
RESTARTING = ("always", "unless-stopped", "on-failure")


class Request(t.NamedTuple):
    release: str = "previous"
    services: t.Sequence[str] = ()
    state: str = "started"
    rebuild_missing: bool = False
    record_failed: str | None = None
    start_together: bool = True
    check_mode: bool = False
    settle: int = 0


class Clock:
    """Seconds spent in each step, for the engine's per-phase report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


def _read(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def hashes_with_pin(cli: DockerCli, project: ComposeProject, pin_text: str) -> dict[str, str]:
    """The compose config hash of every service as the stack's files plus this pin text define it (the pin is
    written to a temporary file for compose to read, so a plan-only run writes nothing)."""
    if not pin_text:
        return cli.compose_config_hashes(project.with_pin(None))
    fd, path = tempfile.mkstemp(prefix=".aiwfe-pin-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(pin_text)
        return cli.compose_config_hashes(project.with_pin(path))
    finally:
        os.unlink(path)


def observe(cli: DockerCli, project: ComposeProject, ledger_dir: str) -> dict[str, t.Any]:
    """Everything the plan needs, read at the same time: the stack's own config (without the pin), the running
    containers, the ledger, the git state and the hashed configuration files."""
    stack = project.with_pin(None)
    seen = concurrently({
        "config": lambda: cli.compose_config(stack),
        "running": lambda: containers_by_service(cli, project, direct=True),
        "manifests": lambda: load_manifests(ledger_dir, project.name),
        "git": lambda: git_state(cli, project.directory),
        "files": lambda: hash_files(project.directory, DEFAULT_HASH_FILES),
    })
    configured = seen["config"].get("services") or {}
    seen["running"] = {name: c for name, c in seen["running"].items() if name in configured}
    return seen


def changed_under(cli: DockerCli, directory: str, commit: str | None, paths: t.Sequence[str]) -> list[str]:
    """Tracked files under ``paths`` (relative to the work tree ``directory``) whose content differs between the
    work tree and ``commit`` - what checking the commit out changes there. Empty when there is no commit, no path or
    no git work tree. Reads only (git takes no optional lock, so it does not refresh the index)."""
    if not commit or not paths:
        return []
    rc, out, _err = cli.run_command(["git", "--no-optional-locks", "-C", directory, "diff", "--relative", "--name-only",
                                     "-z", commit, "--"] + [f":(literal){p}" for p in paths])
    return sorted(name for name in out.split("\0") if name) if rc == 0 else []


def tracked_mtimes(cli: DockerCli, directory: str, paths: t.Sequence[str]) -> dict[str, float]:
    """Modification times of the tracked files under ``paths`` (relative to the work tree ``directory``): relative
    path -> mtime. Empty when there is no path or no git work tree; a tracked file missing from the work tree is left
    out. Reads only."""
    if not paths:
        return {}
    rc, out, _err = cli.run_command(["git", "--no-optional-locks", "-C", directory, "ls-files", "-z", "--"]
                                    + [f":(literal){p}" for p in paths])
    found = {}
    for name in (out.split("\0") if rc == 0 else []):
        try:
            found[name] = os.lstat(os.path.join(directory, name)).st_mtime if name else None
        except OSError:
            continue
    return {name: mtime for name, mtime in found.items() if mtime is not None}


def plan(cli: DockerCli, project: ComposeProject, seen: dict[str, t.Any], request: Request,
         pin_before: str) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any]]:
    """(target manifest, plan, configured images) for the request, from what ``observe`` saw."""
    target = select(seen["manifests"], request.release)
    wanted = {n: s.get("image_id") for n, s in (target.get("services") or {}).items() if s.get("image_id")}
    stack = project.with_pin(None)
    target_commit = (target.get("git") or {}).get("commit")
    mounts = bind_sources(seen["config"], project.directory)
    found = concurrently({
        "configured": lambda: configured_images(cli, stack, seen["config"]),
        "present": lambda: cli.inspect("image", sorted(set(wanted.values()))),
        "bind_diff": lambda: changed_under(cli, project.directory, target_commit if seen["git"] else None,
                                           sorted({p for paths in mounts.values() for p in paths})),
        "bind_mtimes": lambda: tracked_mtimes(cli, project.directory, sorted({p for paths in mounts.values() for p in paths})
                                              if seen["git"] else []),
    })
    configured = found["configured"]
    gone = {n for n, image_id in wanted.items() if not found["present"].get(image_id)}
    at_commit = bool(target_commit) and (seen["git"] or {}).get("commit") == target_commit
    result = plan_quick(target, {n: c["image_id"] for n, c in configured.items()},
                        {n: c["image_id"] for n, c in seen["running"].items()}, request.services, parse_pin(pin_before),
                        gone=gone, rebuild_missing=request.rebuild_missing, at_target_commit=at_commit)
    result["files"] = file_changes(seen["files"], target.get("files") or {})
    result["at_target_commit"] = at_commit
    # what a checkout of the target's commit changes in files bind-mounted into running services (acted on by the
    # engine role after the checkout: compose does not restart a service for the content of a file it mounts), and the
    # tracked mounted files already changed since the container started (a checkout interrupted before the restart)
    result["bind_changes"] = merge_paths(bind_changes(mounts, found["bind_diff"], seen["running"]),
                                         changed_since_start(mounts, found["bind_mtimes"], seen["running"]))
    return target, result, configured


def missing_tags(cli: DockerCli, target: dict[str, t.Any], the_plan: dict[str, t.Any]) -> dict[str, str]:
    """Rollback tags the pin uses that no longer point at the recorded image: ref -> image ID to tag again."""
    refs = {the_plan["pin"][n]: target["services"][n]["image_id"] for n in the_plan["selected"] if the_plan["pin"].get(n)}
    have = cli.inspect("image", sorted(refs)) if refs else {}
    return {ref: image_id for ref, image_id in refs.items() if (have.get(ref) or {}).get("Id") != image_id}


def running_images(cli: DockerCli, configured: dict[str, dict[str, t.Any]], pin_text: str) -> dict[str, dict[str, t.Any]]:
    """The configured images as the stack runs now, for the failed state's record: a service the current pin file
    names runs the pinned image, not the one the stack's own files resolve to (what release_snapshot records too)."""
    pin = parse_pin(pin_text)
    if not pin:
        return configured
    found = cli.inspect("image", sorted(set(pin.values())))
    now = dict(configured)
    for name, ref in pin.items():
        if name in now:
            info = found.get(ref) or {}
            now[name] = {"image": ref, "image_id": info.get("Id"), "repo_digests": info.get("RepoDigests") or []}
    return now


def together_refusal(the_plan: dict[str, t.Any], target: dict[str, t.Any], config: dict[str, t.Any],
                     running: dict[str, dict[str, t.Any]]) -> str | None:
    """Why the services to start may NOT all be started at once (None: they may).

    compose starts one depends_on level at a time and waits for each level's healthcheck. Starting them together is
    safe when the target release was recorded healthy with exactly these images (a good ledger state whose services
    all ran), nothing is rebuilt, every dependency outside the set already runs healthy, and every service in the set
    restarts by itself (so one that starts before its dependency is ready comes back)."""
    start = set(the_plan["start"])
    if not start:
        return "nothing to start"
    if len(start) < 2:
        return "one service to start"
    if the_plan["rebuild"]:
        return "images to build"
    if target.get("status") != "good":
        return "the target is not a good release"
    services = config.get("services") or {}
    recorded = target.get("services") or {}
    for name in sorted(start):
        if not (recorded.get(name) or {}).get("running"):
            return f"{name} did not run in the recorded release"
        if str((services.get(name) or {}).get("restart") or "no").split(":", maxsplit=1)[0] not in RESTARTING:
            return f"{name} has no restart policy"
        for dep in (services.get(name) or {}).get("depends_on") or {}:
            if dep in start:
                continue
            live = running.get(dep) or {}
            if live.get("state") != "running" or live.get("health") not in ("", "healthy"):
                return f"{name} depends on {dep}, which is not running healthy"
    if not any(dep in start for name in start for dep in (services.get(name) or {}).get("depends_on") or {}):
        return "no dependency among them"
    return None


def start(cli: DockerCli, project: ComposeProject, services: list[str], build: bool, together: bool) -> None:
    """Bring up ``services`` of the project (pin included). Never --no-deps: compose records another config hash for
    containers created that way and the next full `up` would recreate them; unchanged dependencies are left alone."""
    if not together:
        cli.compose(project, ["up", "--detach", "--pull", "never"] + ([] if build else ["--no-build"]) + ["--"] + services,
                    "docker compose up")
        return
    # compose creates (or recreates) the containers with its own labels and config hash; they start all at once.
    cli.compose(project, ["create", "--pull", "never", "--no-build", "--"] + services, "docker compose create")
    ids = [c["id"] for name, c in containers_by_service(cli, project).items() if name in services]
    concurrently({cid: (lambda cid=cid: cli.run([cli.docker, "start", "--", cid], "docker start")) for cid in ids})


def settle(cli: DockerCli, project: ComposeProject, services: list[str], seconds: float,
           poll: float = 0.25, restarts: int = 3) -> str:
    """Wait quietly, up to ``seconds``, until every started service runs and reports healthy (Docker's own
    healthcheck; running is enough without one), with one docker call per ``poll``. The services boot on the same
    CPUs as this run: the proof that follows (many HTTP probes, Ansible's own work) is kinder to them afterwards.
    Stops early when a service has exited, is unhealthy or restarted ``restarts`` times (it will not settle). Never
    fails: the proof judges. Returns what it saw: settled, gave up (why) or timed out."""
    deadline = time.monotonic() + seconds
    first: dict[str, int] = {}
    while True:
        running = containers_by_service(cli, project, direct=True)
        waiting = []
        for name in services:
            live = running.get(name) or {}
            first.setdefault(name, int(live.get("restart_count") or 0))
            if live.get("state") in ("exited", "dead") or live.get("health") == "unhealthy" \
                    or int(live.get("restart_count") or 0) - first[name] >= restarts:
                return f"gave up: {name} is {live.get('health') or live.get('state')}"
            if live.get("state") != "running" or live.get("health") not in ("", "healthy"):
                waiting.append(name)
        if not waiting:
            return "settled"
        if time.monotonic() >= deadline:
            return f"timed out waiting for {', '.join(waiting)}"
        time.sleep(poll)


def expectations(target: dict[str, t.Any], the_plan: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """Per selected service, the image ID it must run afterwards, and the compose config hash when the deploy
    directory holds the release's own files (same commit and file hashes) and the service is not pinned."""
    own_config = the_plan["at_target_commit"] and not the_plan["files"] and target.get("kind") == "deploy"
    expect = {}
    for name in the_plan["selected"]:
        want = target["services"][name]
        expect[name] = {} if name in the_plan["rebuild"] else {"image_id": want["image_id"]}
        if own_config and name not in the_plan["pin"] and want.get("config_hash"):
            expect[name]["config_hash"] = want["config_hash"]
    return expect


def run(cli: DockerCli, project: ComposeProject, ledger_dir: str, pin_file: str, request: Request) -> dict[str, t.Any]:
    """Plan the rollback and carry it as far as ``request.state`` (never further in check mode). Returns the result
    the module reports; raises LedgerError, PlanError or DockerCliError before changing anything when it cannot."""
    clock = Clock()
    writes = request.state != "planned" and not request.check_mode
    seen = observe(cli, project, ledger_dir)
    before = _read(pin_file)
    target, the_plan, configured = plan(cli, project, seen, request, before)
    after = render_pin(the_plan["pin"], target["release"], target["id"])
    retag = missing_tags(cli, target, the_plan)
    # The failed state's config hashes: those its containers carry (compose wrote them), unless a service has none.
    labelled = {n: c.get("config_hash") for n, c in seen["running"].items() if c.get("config_hash")}
    asked = request.record_failed and set(labelled) != set(seen["config"].get("services") or {})
    hashes = concurrently({
        "want": lambda: hashes_with_pin(cli, project, after),
        "now": lambda: cli.compose_config_hashes(project) if asked else labelled,
    })
    the_plan["start"] = services_to_start(the_plan, seen["running"], hashes["want"], seen["config"])
    clock.lap("plan")

    failed_state, recorded = None, False
    if request.record_failed and (the_plan["changes"] or the_plan["start"]):
        state = state_of(running_images(cli, configured, before), hashes["now"], seen["running"], seen["files"], seen["git"])
        manifest, recorded = settle_manifest(seen["manifests"], new_manifest(
            project.name, project.directory, project.files, state, "snapshot", "failed",
            note=f"state before the {request.record_failed} to {target['id']}"))
        if recorded and not request.check_mode:
            write_manifest(ledger_dir, manifest)
        failed_state = summary(manifest)
        clock.lap("record_failed")

    if writes:
        for ref, image_id in retag.items():
            cli.tag(image_id, ref)
        if after != before:
            if after:
                write_text_atomic(pin_file, after)
            else:
                os.unlink(pin_file)
    pinned = project.with_pin(pin_file if (after if writes else before) else None)
    refusal = together_refusal(the_plan, target, seen["config"], seen["running"]) if request.start_together else "not asked"
    started: list[str] = []
    settled = "nothing started"
    if writes and request.state == "started" and the_plan["start"]:
        start(cli, pinned, the_plan["start"], bool(the_plan["rebuild"]), refusal is None)
        started = the_plan["start"]
        clock.lap("start")
        if request.settle:
            settled = settle(cli, pinned, started, request.settle)
            clock.lap("settle")
    would_change = after != before or bool(retag) or (request.state == "started" and bool(the_plan["start"]))
    return {
        # what changed, or in check mode what would
        "changed": recorded or (request.state != "planned" and would_change),
        "project_dir": project.directory,
        "project_name": project.name,
        "failed_state": failed_state,
        "target": summary(target),
        "plan": the_plan,
        "pin_file": pin_file,
        "compose_files": pinned.file_paths(),
        "retagged": sorted(retag),
        "started": started,
        "start_mode": ("together" if refusal is None else "compose") if the_plan["start"] else "none",
        "settled": settled,
        "start_mode_reason": refusal or "every dependency outside the set healthy, release recorded healthy together",
        "expect": expectations(target, the_plan),
        "seconds": clock.seconds,
        "diff": {"before": before, "after": after, "before_header": pin_file, "after_header": pin_file},
    }
