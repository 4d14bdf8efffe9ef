# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning a quick (image) rollback: which services move to which image, and the pin file that says so."""

from __future__ import annotations

import datetime
import json
import os
import re
import typing as t

PIN_HEADER = ("# Written by aiwfe.rollback (quick rollback). It pins services to the images of a recorded release.\n"
              "# Use it with the stack's own compose files: docker compose -f compose.yaml -f THIS_FILE ...\n"
              "# The next deploy through aiwfe.rollback removes it.\n")


class PlanError(Exception):
    """The requested rollback cannot be planned (unknown service, release without images...)."""


def plan_quick(target: dict[str, t.Any], configured_ids: dict[str, str | None], running_ids: dict[str, str | None],
               services: t.Sequence[str], existing_pin: dict[str, str], gone: t.Collection[str] = (),
               rebuild_missing: bool = False, at_target_commit: bool = False) -> dict[str, t.Any]:
    """Compute the quick rollback.

    target: the manifest to roll back to. configured_ids: image ID each service's unpinned config resolves
    to. running_ids: image ID of each service's container now. services: the subset to roll back (empty:
    all services of the target). existing_pin: service -> image ref of the current pin file. gone: services
    whose recorded image is no longer on the host; with rebuild_missing they are built from the checked-out
    release instead (listed in ``rebuild``), else the plan is refused. at_target_commit: the deploy directory
    is checked out at the target's commit, so a container already running the image built from it is done.
    """
    target_services = target.get("services") or {}
    known = sorted(set(target_services) & set(configured_ids))
    unknown = [s for s in services if s not in known]
    if unknown:
        raise PlanError(f"unknown service(s) {', '.join(unknown)}: the stack and release {target.get('release')} "
                        f"have {', '.join(known)}")
    selected = list(services) or known
    pin = {s: ref for s, ref in existing_pin.items() if s not in selected and s in known}
    changes = {}
    unchanged = []
    rebuild = []
    for name in selected:
        want = target_services[name]
        want_id = want.get("image_id")
        if not want_id or name in gone:
            if rebuild_missing:
                rebuild.append(name)
                pin.pop(name, None)
                if at_target_commit and configured_ids.get(name) and running_ids.get(name) == configured_ids.get(name):
                    unchanged.append(name)
                    continue
                changes[name] = {"from_id": running_ids.get(name), "to_id": None, "to_image": want.get("image"),
                                 "via": "build"}
                continue
            what = "recorded no image" if not want_id else f"has lost its image {want_id} (pruned?)"
            raise PlanError(f"release {target.get('release')} {what} for service {name}: nothing was changed. "
                            "Use the complete-system rollback (playbooks/rollback_full.yml), which checks out the "
                            "release and rebuilds missing images, or pick another release")
        if want_id != configured_ids.get(name):
            pin[name] = want.get("rollback_tag") or want.get("image")
        if want_id != running_ids.get(name):
            changes[name] = {"from_id": running_ids.get(name), "to_id": want_id, "to_image": want.get("image"),
                             "via": pin.get(name, want.get("image"))}
        else:
            unchanged.append(name)
    return {"selected": selected, "changes": changes, "unchanged": unchanged, "pin": pin, "rebuild": rebuild}


SHARED_NAMESPACE_KEYS = ("network_mode", "pid", "ipc")


def services_to_start(plan: dict[str, t.Any], running: dict[str, dict[str, t.Any]], want_hashes: dict[str, str],
                      config: dict[str, t.Any]) -> list[str]:
    """The selected services compose has to (re)create or start for the plan, and nothing else.

    A service is brought up when its image changes or is rebuilt, when its container is missing or not running,
    or when its running container's compose config hash differs from the one the files (with the pin) give it.
    compose itself would also recreate every service that depends on a recreated one (the proxy behind the api);
    naming only these services keeps the untouched ones running. Services that share the network, pid or ipc
    namespace or the volumes of a recreated one have to follow it, so they are added.
    """
    start = set(plan["changes"])
    for name in plan["selected"]:
        live = running.get(name) or {}
        if live.get("state") != "running" or (want_hashes.get(name) and live.get("config_hash") != want_hashes[name]):
            start.add(name)
    services = config.get("services") or {}
    grew = True
    while grew:
        grew = False
        for name, svc in services.items():
            if name in start:
                continue
            shared = [str(svc.get(key) or "") for key in SHARED_NAMESPACE_KEYS]
            sources = [str(v).split(":", 1)[0] for v in svc.get("volumes_from") or []]
            if any(v.startswith("service:") and v[8:] in start for v in shared) or any(src in start for src in sources):
                start.add(name)
                grew = True
    return sorted(start)


def bind_sources(config: dict[str, t.Any], project_dir: str) -> dict[str, list[str]]:
    """Per service, the sources of its bind mounts that lie inside the deploy directory, relative to it (from
    `docker compose config --format json`, whose sources are absolute). Files outside it are not the release's."""
    root = os.path.normpath(project_dir)
    found: dict[str, list[str]] = {}
    for name, svc in (config.get("services") or {}).items():
        for volume in svc.get("volumes") or []:
            if not isinstance(volume, dict) or volume.get("type") != "bind" or not volume.get("source"):
                continue
            source = os.path.normpath(os.path.join(root, str(volume["source"])))
            if source == root or source.startswith(root.rstrip(os.sep) + os.sep):
                found.setdefault(name, []).append(os.path.relpath(source, root))
    return {name: sorted(set(paths)) for name, paths in found.items()}


def started_epoch(started_at: str) -> float | None:
    """Seconds since the epoch of Docker's State.StartedAt (RFC 3339, nanoseconds, UTC), None when unset or unparsable."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", started_at or "")
    if not match or match.group(1).startswith("0001-"):
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    stamp = datetime.datetime.fromisoformat(match.group(1) + zone).timestamp()
    return stamp + float("0." + match.group(2)) if match.group(2) else stamp


def changed_since_start(sources: dict[str, list[str]], mtimes: dict[str, float],
                        running: dict[str, dict[str, t.Any]]) -> dict[str, list[str]]:
    """The running (or restart-looping) services with a bind-mounted tracked file modified after their container
    started: service -> those files. A checkout that was interrupted before the restart leaves exactly this (the deploy
    directory already at the release's commit, the old file still served); ``mtimes`` are the tracked files' (relative
    path -> modification time), so files the application writes into a mounted directory do not count."""
    found = {}
    for name, mounts in sorted(sources.items()):
        container = running.get(name) or {}
        started = started_epoch(container.get("started_at", ""))
        if container.get("state") not in ("running", "restarting") or started is None:
            continue
        hits = [p for p, mtime in sorted(mtimes.items()) if mtime > started
                and any(m == "." or p == m or p.startswith(m.rstrip("/") + "/") for m in mounts)]
        if hits:
            found[name] = hits
    return found


def merge_paths(*found: dict[str, list[str]]) -> dict[str, list[str]]:
    """Service -> paths maps merged (paths sorted, once each)."""
    merged: dict[str, set[str]] = {}
    for one in found:
        for name, paths in one.items():
            merged.setdefault(name, set()).update(paths)
    return {name: sorted(paths) for name, paths in sorted(merged.items())}


def bind_changes(sources: dict[str, list[str]], changed: t.Iterable[str], running: dict[str, dict[str, t.Any]]) -> dict[str, list[str]]:
    """The services whose running (or restart-looping) container has a bind mount covering a changed file (relative
    paths): service -> those files. compose recreates a service for its image and its compose config, not for the
    content of a file it mounts, so these keep serving the old file until they restart. A container that is not
    running mounts the new file when it starts."""
    paths = sorted(set(changed))
    found = {}
    for name, mounts in sorted(sources.items()):
        if (running.get(name) or {}).get("state") not in ("running", "restarting"):
            continue
        hits = [p for p in paths if any(m == "." or p == m or p.startswith(m.rstrip("/") + "/") for m in mounts)]
        if hits:
            found[name] = hits
    return found


def file_changes(now: dict[str, str], target: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """Hashed configuration files that differ between the deploy directory now and a release (path -> from/to)."""
    return {path: {"from": now.get(path), "to": target.get(path)}
            for path in sorted(set(now) | set(target)) if now.get(path) != target.get(path)}


def render_pin(pin: dict[str, str], release: str, manifest_id: str) -> str:
    if not pin:
        return ""
    lines = [PIN_HEADER, f"# release: {release} (ledger manifest {manifest_id})\n", "services:\n"]
    for name in sorted(pin):
        lines.append(f"  {json.dumps(name)}:\n    image: {json.dumps(pin[name])}\n")
    return "".join(lines)


def parse_pin(text: str) -> dict[str, str]:
    """Read back a pin file written by render_pin (no YAML library needed on the managed host)."""
    pin: dict[str, str] = {}
    service = None
    for raw in text.splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        if raw.startswith("  ") and not raw.startswith("    ") and raw.rstrip().endswith(":"):
            service = json.loads(raw.strip()[:-1])
        elif raw.startswith("    image:") and service:
            pin[service] = json.loads(raw.split(":", 1)[1].strip())
    return pin
