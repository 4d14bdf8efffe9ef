#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_rollback
short_description: Roll a Docker Compose stack back to the images of a recorded release (plan, pin, bring up)
version_added: 0.1.0
description:
  - The rollback step of the engine role M(aiwfe.rollback.release_rollback), in one run on the managed host, because
    this is the time an on-call engineer waits.
  - Plans the rollback from the release ledger by comparing the image IDs the target release recorded with the images
    the stack's compose files resolve to and the images its containers run.
  - With O(state=pinned) or O(state=started), writes a small compose override file, the pin file
    C(<ledger_dir>/<project_name>/pin.compose.yaml), that points only the services whose image differs at the
    release's rollback tags (re-creating a lost rollback tag from its image ID). Services whose image is unchanged are
    not mentioned, so compose leaves them running. Every module of the collection merges the pin file last.
  - With O(state=started), brings up only the services that must change (RV(plan.start)); everything else keeps
    running. It does not wait for health - prove the result with M(aiwfe.rollback.stack_health) and RV(expect).
  - Fails, changing nothing, when the release is unknown, a service is unknown, or an image the rollback needs is
    gone from the host (unless O(rebuild_missing)).
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: Returns the plan and the diff of the pin file; writes, tags and starts nothing.
  diff_mode:
    support: full
    details: The pin file before and after.
  idempotent:
    support: full
    details: A second run to the same release finds every service on its image and changes nothing.
options:
  release:
    description: The release to roll back to, V(previous) (the last good deploy before the newest deploy), a release
      label such as a git tag, or a manifest id (M(aiwfe.rollback.release_info) lists them).
    type: str
    default: previous
  services:
    description: Only roll back these services. Empty means every service of the release.
    type: list
    elements: str
    default: []
  state:
    description:
      - V(planned) only plans (and records the failed state when O(record_failed) asks).
      - V(pinned) also writes the pin file and re-creates lost rollback tags.
      - V(started) also brings up the services of RV(plan.start).
    type: str
    choices: [planned, pinned, started]
    default: started
  rebuild_missing:
    description:
      - When a service's recorded image is gone from the host, plan to build it from the release's sources (the
        caller checks out the release's commit first) instead of failing. Such services are listed in
        RV(plan.rebuild), are not pinned, and are not expected to run the recorded image ID.
    type: bool
    default: false
  record_failed:
    description:
      - When set and the plan changes something (an image, or a container to start or recreate), record the state as
        it is now in the release ledger as a failed C(snapshot) for the post-mortem, before anything changes, from the
        same look at the stack as the plan. The value names the rollback in the note, for example V(quick rollback).
    type: str
  settle:
    description:
      - With O(state=started), wait up to this many seconds, quietly (one docker call every 0.25 s), until the
        services it started run and report healthy (Docker's healthcheck; running is enough without one), so that
        the proof that follows does not take the CPU they boot with. Stops early when one exits, turns unhealthy or
        keeps restarting. Never fails - prove the result with M(aiwfe.rollback.stack_health). V(0) does not wait.
    type: int
    default: 0
  start_together:
    description:
      - Compose starts one C(depends_on) level at a time and waits for each level's healthcheck. With V(true), the
        services to start are created by compose (its labels and config hash) and then started all at once, when
        that is safe - the target is a good release whose services all ran with these images, nothing is rebuilt,
        every dependency outside the set already runs healthy, and every service in the set has a restart policy.
        Otherwise (and with V(false)) C(docker compose up) starts them. RV(start_mode) says which happened and why.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Roll api and worker back to the previous release and bring them up
  aiwfe.rollback.compose_rollback:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    services: [api, worker]
    record_failed: quick rollback
  register: rollback

- name: Prove it
  aiwfe.rollback.stack_health:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    expect: "{{ rollback.expect }}"
    timeout: 120

- name: Only plan a rollback to v1.1.0 (writes nothing)
  aiwfe.rollback.compose_rollback:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    release: v1.1.0
    state: planned
"""

RETURN = r"""
target:
  description: Summary of the release rolled back to.
  returned: success
  type: dict
  sample: {"id": "20261125T181500Z-v1.1.0", "release": "v1.1.0", "kind": "deploy", "status": "good",
           "commit": "6f1c...", "alembic_revision": "0004", "backup_set": null, "created": "2026-11-25T18:15:00Z"}
plan:
  description: The rollback plan.
  returned: success
  type: dict
  contains:
    selected:
      description: The services rolled back (O(services), or every service of the release).
      type: list
      elements: str
    changes:
      description: Per service whose image changes, C(from_id), C(to_id), C(to_image) and C(via) (the pinned reference).
      type: dict
    unchanged:
      description: Selected services already on the release's image.
      type: list
      elements: str
    pin:
      description: Service -> image reference, what the pin file says.
      type: dict
    rebuild:
      description: Services built from the release's sources (their recorded image is gone; O(rebuild_missing)).
      type: list
      elements: str
    files:
      description: The hashed configuration files that differ from the release's (path -> sha256 from/to).
      type: dict
    at_target_commit:
      description: Whether the deploy directory is checked out at the release's commit.
      type: bool
    bind_changes:
      description:
        - Services whose running (or restarting) container bind-mounts, from inside the deploy directory, a tracked file
          whose content differs from the release's commit - service -> those files. Checking the commit out changes
          them, and compose does not restart a service for the content of a file it mounts; the engine role restarts
          them after its checkout. Not acted on by this module.
      type: dict
    start:
      description:
        - The services to bring up - image changed, container missing or stopped, or compose config hash different -
          plus those sharing a namespace or volumes with one of them. Only these are started; compose would
          otherwise also recreate every service that depends on a recreated one (the proxy).
      type: list
      elements: str
project_dir:
  description: The deploy directory of the stack.
  returned: success
  type: str
project_name:
  description: The compose project name.
  returned: success
  type: str
pin_file:
  description: Path of the pin file (it exists only while something is pinned).
  returned: success
  type: str
compose_files:
  description: The compose files that run after this step, the pin file last when it exists.
  returned: success
  type: list
  elements: str
expect:
  description:
    - Per selected service, the image ID it must run after the rollback, and the compose config hash when the deploy
      directory holds the release's own files (same commit and file hashes) and the service is not pinned.
    - Pass it to O(aiwfe.rollback.stack_health#module:expect) to prove the rollback.
  returned: success
  type: dict
failed_state:
  description:
    - Summary (id, release, kind, status, created...) of the failed state recorded for O(record_failed), or of the
      identical newest manifest; null when nothing was to be recorded.
  returned: success
  type: dict
retagged:
  description: Rollback tags recreated from image IDs (or to be, in check mode).
  returned: success
  type: list
  elements: str
started:
  description: The services brought up (empty unless O(state=started) and something had to start).
  returned: success
  type: list
  elements: str
start_mode:
  description: V(together) (created by compose, started at once), V(compose) (C(docker compose up)) or V(none).
  returned: success
  type: str
settled:
  description: What O(settle) saw - V(settled), V(nothing started), or why it stopped waiting.
  returned: success
  type: str
start_mode_reason:
  description: Why the services were (or would be) started that way.
  returned: success
  type: str
seconds:
  description: Seconds spent planning, recording the failed state, starting and settling.
  returned: success
  type: dict
  sample: {"plan": 0.41, "record_failed": 0.01, "start": 1.2, "settle": 0.8}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli, pin_path
from ansible_collections.aiwfe.rollback.plugins.module_utils._compose_rollback import STATES, Request, run
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import LedgerError
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import PlanError


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            STACK_ARGS,
            release={"type": "str", "default": "previous"},
            services={"type": "list", "elements": "str", "default": []},
            state={"type": "str", "choices": list(STATES), "default": "started"},
            rebuild_missing={"type": "bool", "default": False},
            record_failed={"type": "str"},
            start_together={"type": "bool", "default": True},
            settle={"type": "int", "default": 0},
        ),
        supports_check_mode=True,
    )
    params = module.params
    project = compose_project(module)
    if params["settle"] < 0:
        module.fail_json(msg="settle must be 0 (do not wait) or a number of seconds")
    request = Request(params["release"], params["services"], params["state"], params["rebuild_missing"],
                      params["record_failed"], params["start_together"], module.check_mode, params["settle"])
    try:
        result = run(docker_cli(module), project, params["ledger_dir"], pin_path(params["ledger_dir"], project.name), request)
    except (LedgerError, PlanError) as exc:
        module.fail_json(msg=str(exc))
    except DockerCliError as exc:
        module.fail_json(**exc.as_fail_kwargs())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
