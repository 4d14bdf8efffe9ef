# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run of aiwfe.rollback.release_snapshot: observe the stack, record its state in the ledger (with the database's
Alembic revision and the head of the image's migrations when asked), keep its images under rollback tags and release
the tags of releases beyond the retention."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic_head import image_heads
from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic_job import read_current
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import database_target, pin_path
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import (
    LedgerError, load_manifests, new_manifest, releases_dir, rollback_tag, settle_manifest, tags_to_release, write_manifest,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._postgres import PostgresError
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import parse_pin
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import observe

Warn = t.Callable[[str], None]


def database_revision(cli: DockerCli, database: dict[str, t.Any], state: dict[str, t.Any], warn: Warn) -> str | None:
    """The Alembic revision the database holds now (several joined by ','), or None with a warning when it cannot be
    read (a snapshot of a broken stack is still recorded)."""
    service = state["services"].get(database["service"]) or {}
    if service.get("state") != "running" or not service.get("container"):
        warn(f"database service {database['service']} is not running: the state is recorded without its "
             "Alembic revision")
        return None
    try:
        return ",".join(read_current(database_target(database, cli.docker, service["container"]))) or None
    except PostgresError as exc:
        warn(f"the Alembic revision could not be read ({exc}): the state is recorded without it")
        return None


def release_old_tags(cli: DockerCli, params: dict[str, t.Any], project: str, manifests: list[dict[str, t.Any]],
                     check_mode: bool) -> list[str]:
    """Remove the rollback tags beyond keep_releases that still exist; never those the pin file uses."""
    pin_file = pin_path(params["ledger_dir"], project)
    protect: list[str] = []
    if os.path.exists(pin_file):
        with open(pin_file, encoding="utf-8") as handle:
            protect = list(parse_pin(handle.read()).values())
    candidates = tags_to_release(manifests, params["keep_releases"], protect)
    present = cli.inspect("image", candidates) if candidates else {}
    untagged = []
    for tag in candidates:
        if present.get(tag) and (check_mode or cli.untag(tag)):
            untagged.append(tag)
    return untagged


def run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], check_mode: bool, warn: Warn) -> dict[str, t.Any]:
    """The module's whole run; returns its result or raises JobFailed."""
    try:
        return _run(cli, project, params, check_mode, warn)
    except LedgerError as exc:
        raise JobFailed(str(exc)) from exc
    except DockerCliError as exc:
        raise JobFailed.from_cli(exc) from exc


def _run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], check_mode: bool, warn: Warn) -> dict[str, t.Any]:
    state = observe(cli, project, params["hash_files"])
    manifests = load_manifests(params["ledger_dir"], project.name)
    meta = {key: params[key] for key in ("release", "rolled_back_from", "note", "alembic_revision", "backup_set")}
    if params["database"]:
        meta["alembic_revision"] = database_revision(cli, params["database"], state, warn) or params["alembic_revision"]
    if params["migrations"]:
        image = (state["services"].get(params["migrations"]["service"]) or {}).get("image_id")
        meta["alembic_head"] = image_heads(cli, params["ledger_dir"], project.name, image, params["migrations"], warn,
                                           check_mode)
    manifest, recorded = settle_manifest(manifests, new_manifest(
        project.name, project.directory, project.files, state, params["kind"], params["status"], **meta))
    tagged: list[str] = []
    if params["status"] == "good" and params["keep_images"]:
        wanted = {}
        for name, svc in manifest["services"].items():
            if svc.get("image_id"):
                svc["rollback_tag"] = svc.get("rollback_tag") or rollback_tag(project.name, name, manifest["id"])
                wanted[svc["rollback_tag"]] = svc["image_id"]
        have = cli.inspect("image", sorted(wanted)) if wanted else {}
        for tag in sorted(wanted):
            if (have.get(tag) or {}).get("Id") == wanted[tag]:
                continue
            tagged.append(tag)
            if not check_mode:
                cli.tag(wanted[tag], tag)
    path = os.path.join(releases_dir(params["ledger_dir"], project.name), manifest["id"] + ".json")
    if recorded and not check_mode:
        path = write_manifest(params["ledger_dir"], manifest)
    untagged = release_old_tags(cli, params, project.name, manifests if not recorded else manifests + [manifest],
                                check_mode)
    return {"changed": recorded or bool(tagged) or bool(untagged), "manifest": manifest, "path": path,
            "recorded": recorded, "tagged": tagged, "untagged": untagged}
