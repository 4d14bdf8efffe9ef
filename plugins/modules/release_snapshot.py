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
  - aiwfe.rollback.database.MIGRATIONS
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import (
    DATABASE_SPEC, MIGRATIONS_SPEC, STACK_ARGS, compose_project, docker_cli,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job
from ansible_collections.aiwfe.rollback.plugins.module_utils._snapshot import run
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import DEFAULT_HASH_FILES

ARGUMENT_SPEC = dict(
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
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if module.params["keep_releases"] < 0:
        module.fail_json(msg="keep_releases must be 0 (keep all) or more")
    project = compose_project(module)
    run_job(module, lambda: run(docker_cli(module), project, module.params, module.check_mode, module.warn))


if __name__ == "__main__":
    main()
