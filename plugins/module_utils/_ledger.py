# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release ledger: one JSON manifest per recorded state of a compose project.

Pure functions (selection, comparison, naming) plus atomic file I/O. Layout:
``<ledger_dir>/<project>/releases/<manifest id>.json``.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import socket
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._files import iso, parse_iso, stamp, utc_now, write_json_atomic

LEDGER_VERSION = 1
KINDS = ("deploy", "rollback", "snapshot")
STATUSES = ("good", "failed")
ROLLBACK_REPO_PREFIX = "aiwfe-rollback"

Manifest = t.Dict[str, t.Any]


class LedgerError(Exception):
    """Raised for an unknown release, an empty ledger or an unreadable manifest."""


def slug(text: str) -> str:
    """Lower-case, docker-tag-safe rendering of a release label."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-")
    return out[:80] or "unnamed"


def new_manifest_id(created: datetime.datetime, release: str, existing: t.Iterable[str]) -> str:
    base = f"{stamp(created)}-{slug(release)}"
    taken = set(existing)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def rollback_tag(project: str, service: str, manifest_id: str) -> str:
    """Image reference under which a recorded release keeps its image for later rollbacks."""
    repo = re.sub(r"[^a-z0-9_.-]+", "-", f"{project}-{service}".lower()).strip("._-")
    return f"{ROLLBACK_REPO_PREFIX}/{repo}:{manifest_id}"


def releases_dir(ledger_dir: str, project: str) -> str:
    return os.path.join(ledger_dir, project, "releases")


def load_manifests(ledger_dir: str, project: str) -> list[Manifest]:
    """All manifests of a project, oldest first."""
    directory = releases_dir(ledger_dir, project)
    if not os.path.isdir(directory):
        return []
    manifests = []
    for name in os.listdir(directory):
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError) as exc:
            raise LedgerError(f"cannot read ledger manifest {path}: {exc}; move it aside (mv {path} {path}.damaged) "
                              "and run again") from exc
        manifests.append(manifest)
    manifests.sort(key=lambda m: (m.get("created", ""), m.get("id", "")))
    return manifests


def write_manifest(ledger_dir: str, manifest: Manifest) -> str:
    path = os.path.join(releases_dir(ledger_dir, manifest["project"]), manifest["id"] + ".json")
    write_json_atomic(path, manifest)
    return path


def new_manifest(project: str, project_dir: str, compose_files: t.Sequence[str], state: dict[str, t.Any], kind: str,
                 status: str, **meta: t.Any) -> Manifest:
    """A manifest (without id) of an observed state (see _stack.observe). ``meta``: release, rolled_back_from, note,
    alembic_revision, alembic_head, backup_set. The release defaults to the git tag at HEAD, else the short commit."""
    git = state["git"] or {}
    created = utc_now()
    manifest: Manifest = {
        "ledger_version": LEDGER_VERSION,
        "project": project,
        "project_dir": project_dir,
        "compose_files": list(compose_files),
        "release": meta.get("release") or git.get("tag") or (git.get("commit") or "")[:12] or "unversioned",
        "kind": kind,
        "status": status,
        "created": iso(created),
        "host": socket.gethostname(),
        "user": os.environ.get("AIWFE_OPERATOR") or getpass.getuser(),
        "git": state["git"],
        "files": state["files"],
        "services": {},
    }
    for key in ("rolled_back_from", "note", "alembic_revision", "alembic_head", "backup_set"):
        manifest[key] = meta.get(key)
    for name, svc in state["services"].items():
        manifest["services"][name] = {k: svc[k] for k in ("image", "image_id", "repo_digests", "config_hash")}
        manifest["services"][name]["running"] = svc["state"] == "running" and svc["container_image_id"] == svc["image_id"]
    return manifest


def settle_manifest(manifests: list[Manifest], manifest: Manifest) -> tuple[Manifest, bool]:
    """(manifest to keep, whether it is new): the newest recorded one when it describes the same state (a snapshot
    compares to the newest manifest whatever its kind, and without an Alembic revision of its own matches any), else
    ``manifest`` with a fresh id."""
    newest = manifests[-1] if manifests else None
    if newest is not None:
        compare = newest
        if manifest["kind"] == "snapshot":
            # A snapshot that did not read the Alembic revision says nothing new about it either.
            revision = newest.get("alembic_revision") if manifest.get("alembic_revision") else None
            compare = dict(newest, kind="snapshot", alembic_revision=revision)
        if same_state(compare, manifest):
            return newest, False
    created = parse_iso(manifest["created"])
    manifest["id"] = new_manifest_id(created, manifest["release"], [m.get("id", "") for m in manifests])
    return manifest, True


def state_key(manifest: Manifest) -> dict[str, t.Any]:
    """What makes two recorded states the same: images, config, git commit, status and kind."""
    services = {
        name: (svc.get("image"), svc.get("image_id"), svc.get("config_hash"))
        for name, svc in sorted(manifest.get("services", {}).items())
    }
    return {
        "services": services,
        "commit": (manifest.get("git") or {}).get("commit"),
        "dirty": (manifest.get("git") or {}).get("dirty"),
        "files": manifest.get("files", {}),
        "status": manifest.get("status"),
        "kind": manifest.get("kind"),
        "release": manifest.get("release"),
        "alembic_revision": manifest.get("alembic_revision"),
    }


def same_state(a: Manifest | None, b: Manifest | None) -> bool:
    if a is None or b is None:
        return False
    return state_key(a) == state_key(b)


def image_ids(manifest: Manifest) -> dict[str, str | None]:
    return {name: svc.get("image_id") for name, svc in manifest.get("services", {}).items()}


def summary(manifest: Manifest) -> dict[str, t.Any]:
    return {
        "id": manifest.get("id"),
        "release": manifest.get("release"),
        "kind": manifest.get("kind"),
        "status": manifest.get("status"),
        "created": manifest.get("created"),
        "commit": (manifest.get("git") or {}).get("commit"),
        "alembic_revision": manifest.get("alembic_revision"),
        "backup_set": manifest.get("backup_set"),
    }


def _known(manifests: list[Manifest]) -> str:
    labels = []
    for m in manifests:
        if m.get("status") == "good" and m.get("release") not in labels:
            labels.append(m.get("release"))
    return ", ".join(str(x) for x in labels) or "none"


def select(manifests: list[Manifest], target: str) -> Manifest:
    """Pick a manifest.

    ``previous``: the last good *deploy* before the newest deploy (when the newest deploy failed,
    that is simply the newest good deploy). It depends on deploys only, so running the same
    rollback twice selects the same release (idempotent).
    ``latest``: the newest manifest of any kind. Otherwise a manifest id, or a release label
    (the newest good deploy with that label, else the newest good manifest with it).
    """
    if not manifests:
        raise LedgerError("the ledger has no releases for this project: deploy with playbooks/deploy.yml first, "
                          "or name an image set that exists")
    if target == "latest":
        return manifests[-1]
    if target == "previous":
        deploys = [m for m in manifests if m.get("kind") == "deploy"]
        if not deploys:
            raise LedgerError("no deploy is recorded for this project, so there is no 'previous' release: "
                              "name the release to roll back to")
        newest = deploys[-1]
        candidates = [m for m in deploys[:-1] if m.get("status") == "good"]
        if newest.get("status") == "good":
            candidates = [m for m in candidates if image_ids(m) != image_ids(newest)]
        if not candidates:
            raise LedgerError(f"no good release is recorded before {newest.get('release')} "
                              f"(known good releases: {_known(manifests)}): name one explicitly")
        return candidates[-1]
    for m in manifests:
        if m.get("id") == target:
            return m
    good = [m for m in manifests if m.get("release") == target and m.get("status") == "good"]
    # A deploy of that label wins over the records rollbacks to it wrote: rolling back to a label twice must pick the
    # same manifest (its rollback tags), or the second run would pin other tags and recreate what the first brought back.
    deployed = [m for m in good if m.get("kind") == "deploy"]
    if deployed or good:
        return (deployed or good)[-1]
    raise LedgerError(f"unknown release '{target}': known good releases are {_known(manifests)} "
                      "(or use 'previous', 'latest' or a manifest id from release_info)")


def tags_to_release(manifests: list[Manifest], keep: int, protect: t.Iterable[str] = ()) -> list[str]:
    """Rollback tags of good manifests older than the newest ``keep`` distinct good releases (0: keep all).

    Releases are told apart by their images (service -> image ID): repeated records of the same images (a
    snapshot after a deploy, a rollback back to them) count once, so they cannot push an older release out.
    A tag also named by a kept manifest, or listed in ``protect``, is never returned.
    """
    if keep <= 0:
        return []
    kept: list[Manifest] = []
    old: list[Manifest] = []
    releases: set[tuple[tuple[str, str], ...]] = set()
    for m in reversed([m for m in manifests if m.get("status") == "good"]):
        images = tuple(sorted((name, str(svc.get("image_id"))) for name, svc in (m.get("services") or {}).items()))
        if images in releases or len(releases) < keep:
            releases.add(images)
            kept.append(m)
        else:
            old.insert(0, m)
    keep_tags = set(protect)
    for m in kept:
        keep_tags.update(s.get("rollback_tag") for s in (m.get("services") or {}).values() if s.get("rollback_tag"))
    out: list[str] = []
    for m in old:
        for svc in (m.get("services") or {}).values():
            tag = svc.get("rollback_tag")
            if tag and tag not in keep_tags and tag not in out:
                out.append(tag)
    return out


def diff(a: Manifest, b: Manifest) -> dict[str, t.Any]:
    """Per-service and per-file differences from manifest a to manifest b."""
    services = {}
    for name in sorted(set(a.get("services", {})) | set(b.get("services", {}))):
        sa = a.get("services", {}).get(name) or {}
        sb = b.get("services", {}).get(name) or {}
        if (sa.get("image_id"), sa.get("config_hash")) != (sb.get("image_id"), sb.get("config_hash")):
            services[name] = {"from": sa.get("image"), "to": sb.get("image"),
                              "from_id": sa.get("image_id"), "to_id": sb.get("image_id")}
    files = {}
    for name in sorted(set(a.get("files", {})) | set(b.get("files", {}))):
        if a.get("files", {}).get(name) != b.get("files", {}).get(name):
            files[name] = {"from": a.get("files", {}).get(name), "to": b.get("files", {}).get(name)}
    out: dict[str, t.Any] = {"services": services, "files": files}
    for key, get in (("commit", lambda m: (m.get("git") or {}).get("commit")),
                     ("alembic_revision", lambda m: m.get("alembic_revision"))):
        if get(a) != get(b):
            out[key] = {"from": get(a), "to": get(b)}
    return out
