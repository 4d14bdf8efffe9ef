#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_snapshot
short_description: Record the state of a Docker Compose stack in the release ledger
version_added: 0.1.0
description:
  - Records a release manifest for a compose project on the managed host, per service the image reference, image ID,
    repo digests and compose config hash; the git commit of the deploy directory and sha256 of its compose files,
    C(.env), Dockerfiles and Caddyfile; time, host and user.
  - Tags the images of a recorded release under C(aiwfe-rollback/<project>-<service>:<manifest id>), so that a re-pushed
    tag or an image prune cannot take away what a rollback needs.
  - When the newest manifest already describes the same state, nothing is written and RV(ignore:changed) is false.
  - With O(database), the Alembic revision is read from the database (C(alembic_version), C(psql) inside its container)
    and recorded as the state's C(alembic_revision), winning over O(alembic_revision); when the database cannot be read
    a warning says why and O(alembic_revision) is kept. With O(migrations), the head of the migrations in the image of
    O(migrations.service) is recorded as C(alembic_head) (read once per image, cached beside the ledger); only
    O(migrations.service), O(migrations.config), O(migrations.script_location) and O(migrations.python) are used.
    Without them nothing is read.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
  - aiwfe.rollback.database
attributes:
  check_mode:
    support: full
    details: Computes the manifest and reports whether it would be written; writes and tags nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Recording an unchanged state again changes nothing.
options:
  kind:
    description:
      - Why the state is recorded. V(deploy) after a deploy, V(rollback) after a rollback, V(snapshot) for the state
        seen before a rollback (kept for the post-mortem).
    type: str
    choices: [deploy, rollback, snapshot]
    default: snapshot
  status:
    description: Whether this state is a good one to come back to.
    type: str
    choices: [good, failed]
    required: true
  release:
    description:
      - Label of the release, for example the git tag. Defaults to the git tag at C(HEAD), else the short commit,
        else V(unversioned).
    type: str
  rolled_back_from:
    description: Manifest id of the state a rollback moved away from.
    type: str
  note:
    description: Free text stored with the manifest. Never put secrets here.
    type: str
  hash_files:
    description: Glob patterns (relative to O(project_dir); C(**/NAME) matches at any depth) of files whose sha256 is recorded.
    type: list
    elements: str
    default: ["compose*.yaml", "compose*.yml", "docker-compose*.yaml", "docker-compose*.yml", ".env", "**/Dockerfile", "**/Caddyfile"]
  keep_images:
    description: Tag the images of a V(good) state under rollback tags.
    type: bool
    default: true
  keep_releases:
    description:
      - Keep the rollback tags of the newest N good releases; older ones are removed (the image itself goes only when
        no other tag or container uses it). Good manifests of the same images (service to image ID) count as one
        release, so repeated snapshots cannot push an older release out. Tags named by the quick-rollback pin file are
        always kept. V(0) keeps all.
    type: int
    default: 5
  alembic_revision:
    description:
      - Alembic revision of the database in this state, when the caller knows it (for example from a health endpoint
        that reports it). O(database) reads it from the database instead, and wins.
    type: str
  backup_set:
    description: Id of the backup set taken before the change this state belongs to (see M(aiwfe.rollback.volume_backup)).
    type: str
"""

EXAMPLES = r"""
- name: Record the release that was just deployed
  aiwfe.rollback.release_snapshot:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    kind: deploy
    status: good

- name: Keep the failed state for the post-mortem before rolling back
  aiwfe.rollback.release_snapshot:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    kind: snapshot
    status: failed
"""

RETURN = r"""
manifest:
  description: The manifest recorded (or the identical newest one).
  returned: success
  type: dict
  sample:
    id: 20261125T181500Z-v1.1.0
    release: v1.1.0
    kind: deploy
    status: good
    services:
      api:
        image: aiwfe/api:v1.1.0
        image_id: sha256:4b1c...
        config_hash: 9a0e...
        rollback_tag: aiwfe-rollback/ai_workflow_engine-api:20261125T181500Z-v1.1.0
path:
  description: File of the manifest in the ledger.
  returned: success
  type: str
recorded:
  description: Whether a new manifest was (or in check mode would be) written.
  returned: success
  type: bool
tagged:
  description: Rollback tags created in this run.
  returned: success
  type: list
  elements: str
untagged:
  description: Rollback tags of older releases removed in this run (beyond O(keep_releases)).
  returned: success
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic_head import image_heads
from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic_job import read_current
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import (
    DATABASE_SPEC, MIGRATIONS_SPEC, STACK_ARGS, compose_project, database_target, docker_cli, pin_path,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._postgres import PostgresError
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import (
    LedgerError, load_manifests, new_manifest, releases_dir, rollback_tag, settle_manifest, tags_to_release, write_manifest,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import parse_pin
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import DEFAULT_HASH_FILES, observe


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            STACK_ARGS,
            kind={"type": "str", "choices": ["deploy", "rollback", "snapshot"], "default": "snapshot"},
            status={"type": "str", "choices": ["good", "failed"], "required": True},
            release={"type": "str"},
            rolled_back_from={"type": "str"},
            note={"type": "str"},
            hash_files={"type": "list", "elements": "str", "default": DEFAULT_HASH_FILES},
            keep_images={"type": "bool", "default": True},
            keep_releases={"type": "int", "default": 5},
            alembic_revision={"type": "str"},
            database=dict(DATABASE_SPEC, apply_defaults=False),
            migrations=dict(MIGRATIONS_SPEC, apply_defaults=False),
            backup_set={"type": "str"},
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["keep_releases"] < 0:
        module.fail_json(msg="keep_releases must be 0 (keep all) or more")
    project = compose_project(module)
    cli = docker_cli(module)
    try:
        state = observe(cli, project, params["hash_files"])
        manifests = load_manifests(params["ledger_dir"], project.name)
    except (DockerCliError, LedgerError) as exc:
        if isinstance(exc, DockerCliError):
            module.fail_json(**exc.as_fail_kwargs())
        module.fail_json(msg=str(exc))
    meta = {key: params[key] for key in ("release", "rolled_back_from", "note", "alembic_revision", "backup_set")}
    if params["database"]:
        meta["alembic_revision"] = _database_revision(module, cli, params["database"], state) or params["alembic_revision"]
    if params["migrations"]:
        image = (state["services"].get(params["migrations"]["service"]) or {}).get("image_id")
        meta["alembic_head"] = image_heads(cli, params["ledger_dir"], project.name, image, params["migrations"],
                                           module.warn, module.check_mode)
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
            if not module.check_mode:
                try:
                    cli.tag(wanted[tag], tag)
                except DockerCliError as exc:
                    module.fail_json(**exc.as_fail_kwargs())
    path = os.path.join(releases_dir(params["ledger_dir"], project.name), manifest["id"] + ".json")
    if recorded and not module.check_mode:
        path = write_manifest(params["ledger_dir"], manifest)
    untagged = _release_old_tags(module, cli, params, project.name, manifests if not recorded else manifests + [manifest])
    module.exit_json(changed=recorded or bool(tagged) or bool(untagged), manifest=manifest, path=path, recorded=recorded,
                     tagged=tagged, untagged=untagged)


def _database_revision(module: AnsibleModule, cli, database: dict, state: dict) -> str | None:
    """The Alembic revision the database holds now (several joined by ','), or None with a warning when it cannot be
    read (a snapshot of a broken stack is still recorded)."""
    service = (state["services"].get(database["service"]) or {})
    if service.get("state") != "running" or not service.get("container"):
        module.warn(f"database service {database['service']} is not running: the state is recorded without its "
                    "Alembic revision")
        return None
    try:
        return ",".join(read_current(database_target(database, cli.docker, service["container"]))) or None
    except PostgresError as exc:
        module.warn(f"the Alembic revision could not be read ({exc}): the state is recorded without it")
        return None


def _release_old_tags(module: AnsibleModule, cli, params: dict, project: str, manifests: list) -> list[str]:
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
        if not present.get(tag):
            continue
        if module.check_mode:
            untagged.append(tag)
            continue
        try:
            if cli.untag(tag):
                untagged.append(tag)
        except DockerCliError as exc:
            module.fail_json(**exc.as_fail_kwargs())
    return untagged


if __name__ == "__main__":
    main()
