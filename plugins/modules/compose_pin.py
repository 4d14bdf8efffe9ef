#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_pin
short_description: Pin Docker Compose services to the images of a recorded release (quick rollback plan)
version_added: 0.1.0
description:
  - Plans a quick container rollback (runbook section 1) from the release ledger, by comparing the image IDs the
    target release recorded with the images the stack's compose files resolve to and the images its containers run.
  - Writes a small compose override file (the pin file) that points only the services whose image differs at the
    release's rollback tags. Services whose image is unchanged are not mentioned, so compose leaves them running.
  - Checks that every image the rollback needs is still on the host (re-tagging it from its image ID when only the
    rollback tag was lost) and fails, changing nothing, when one is gone.
  - Bringing the containers up is left to M(community.docker.docker_compose_v2) with RV(compose_files).
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: Returns the plan and the diff of the pin file; writes and tags nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  release:
    description: The release to roll back to, V(previous) (default), a release label such as a git tag, or a manifest id.
    type: str
    default: previous
  services:
    description: Only roll back these services. Empty means every service of the release.
    type: list
    elements: str
    default: []
  pin_file:
    description: Path of the pin file. Defaults to C(<ledger_dir>/<project_name>/pin.compose.yaml).
    type: path
  rebuild_missing:
    description:
      - When a service's recorded image is gone from the host, plan to build it from the release's sources (the
        caller checks out the release's commit first) instead of failing. Such services are listed in C(plan.rebuild)
        and are neither pinned nor expected to run the recorded image ID.
    type: bool
    default: false
  record_failed:
    description:
      - When set and the plan changes something (an image, or a container to start or recreate), record the state
        as it is now in the release ledger, as a failed C(snapshot) for the post-mortem, before anything changes
        (from the same look at the stack as the plan; not in check mode). The value names the rollback in the
        note, for example V(quick rollback).
      - Only for rollbacks that keep the deploy directory as it is; one that checks out the release's commit records
        the state with M(aiwfe.rollback.release_snapshot) once its checks have passed.
    type: str
  write:
    description:
      - Write the pin file and re-create lost rollback tags. V(false) only plans, for example before the deploy
        directory is checked out at the release's commit.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Plan the rollback of api and worker to the previous release
  aiwfe.rollback.compose_pin:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    services: [api, worker]
  register: plan

- name: Bring the pinned images up without building
  community.docker.docker_compose_v2:
    project_src: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    files: "{{ plan.compose_files }}"
    services: "{{ plan.plan.start }}"
    build: never
    pull: never
    wait: true
  when: plan.plan.start | length > 0  # an empty list would mean every service
"""

RETURN = r"""
target:
  description: Summary of the release rolled back to.
  returned: success
  type: dict
  sample: {"id": "20261125T181500Z-v1.1.0", "release": "v1.1.0", "kind": "deploy", "status": "good",
           "commit": "6f1c...", "alembic_revision": "0004", "backup_set": null}
plan:
  description:
    - C(selected) services, C(changes) (service -> from_id, to_id, to_image, via), C(unchanged) services, the
      C(pin) (service -> image reference) written to the pin file, C(rebuild) (services built from the release's
      sources), C(files) (path -> sha256 from/to, the hashed configuration files that differ from the release's)
      and C(start), the services compose has to bring up - image changed, container missing or stopped, or compose
      config hash different - plus those sharing a namespace or volumes with one of them. Bring up only these;
      compose would otherwise also recreate every service that depends on a recreated one (the proxy).
  returned: success
  type: dict
pin_file:
  description: Path of the pin file (absent when nothing needs pinning).
  returned: success
  type: str
compose_files:
  description: The compose files to use from now on, the pin file last when it exists.
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
check_mode:
  description: Whether the module ran in check mode (task-level check_mode included), so later steps can skip.
  returned: success
  type: bool
failed_state:
  description:
    - Summary (id, release, kind, status, created...) of the failed state recorded for O(record_failed), or of the
      identical newest manifest; null when nothing was to be recorded.
  returned: success
  type: dict
retagged:
  description: Rollback tags recreated from image IDs.
  returned: success
  type: list
  elements: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import (
    LedgerError, load_manifests, new_manifest, select, settle_manifest, summary, write_manifest,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import write_text_atomic
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import (
    PlanError, file_changes, parse_pin, plan_quick, render_pin, services_to_start,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import (
    DEFAULT_HASH_FILES, configured_images, containers_by_service, git_state, hash_files, state_of,
)


def _hashes_with_pin(cli, project: ComposeProject, pin: str) -> dict[str, str]:
    """The compose config hash of every service as the stack's files plus this pin text define it (the pin is
    written to a temporary file for compose to read, so a plan-only run writes nothing)."""
    if not pin:
        return cli.compose_config_hashes(project)
    fd, path = tempfile.mkstemp(prefix=".aiwfe-pin-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(pin)
        return cli.compose_config_hashes(ComposeProject(project.name, project.directory, project.files + (path,)))
    finally:
        os.unlink(path)


def _read(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            STACK_ARGS,
            release={"type": "str", "default": "previous"},
            services={"type": "list", "elements": "str", "default": []},
            pin_file={"type": "path"},
            record_failed={"type": "str"},
            rebuild_missing={"type": "bool", "default": False},
            write={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    params = module.params
    project = compose_project(module)
    cli = docker_cli(module)
    pin_file = params["pin_file"] or os.path.join(params["ledger_dir"], project.name, "pin.compose.yaml")
    if pin_file in project.file_paths():
        module.fail_json(msg="pass the stack's own compose files in 'files', not the pin file")
    write = params["write"] and not module.check_mode
    try:
        manifests = load_manifests(params["ledger_dir"], project.name)
        target = select(manifests, params["release"])
        config = cli.compose_config(project)
        configured = configured_images(cli, project, config)
        running = containers_by_service(cli, project)
        before = _read(pin_file)
        wanted = {n: s.get("image_id") for n, s in (target.get("services") or {}).items() if s.get("image_id")}
        present = cli.inspect("image", sorted(set(wanted.values())))
        gone = {n for n, image_id in wanted.items() if not present.get(image_id)}
        files_now = hash_files(project.directory, DEFAULT_HASH_FILES)
        git = git_state(cli, project.directory)
        head = git or {}
        target_commit = (target.get("git") or {}).get("commit")
        at_commit = bool(target_commit) and head.get("commit") == target_commit
        plan = plan_quick(target, {n: c["image_id"] for n, c in configured.items()},
                          {n: c["image_id"] for n, c in running.items()}, params["services"], parse_pin(before),
                          gone=gone, rebuild_missing=params["rebuild_missing"], at_target_commit=at_commit)
        plan["files"] = file_changes(files_now, target.get("files") or {})
        retagged = []
        for name in plan["selected"]:
            ref = plan["pin"].get(name)
            if not ref:
                continue
            have = cli.inspect("image", [ref]).get(ref)
            if have and have.get("Id") == wanted[name]:
                continue
            retagged.append(ref)
            if write:
                cli.tag(wanted[name], ref)
        after = render_pin(plan["pin"], target["release"], target["id"])
        plan["start"] = services_to_start(plan, running, _hashes_with_pin(cli, project, after), config)
        failed_state, recorded = None, False
        if params["record_failed"] and (plan["changes"] or plan["start"]):
            state = state_of(configured, cli.compose_config_hashes(project), running, files_now, git)
            manifest, recorded = settle_manifest(manifests, new_manifest(
                project.name, project.directory, project.files, state, "snapshot", "failed",
                note=f"state before the {params['record_failed']} to {target['id']}"))
            if recorded and not module.check_mode:
                write_manifest(params["ledger_dir"], manifest)
            failed_state = summary(manifest)
    except (LedgerError, PlanError) as exc:
        module.fail_json(msg=str(exc))
    except DockerCliError as exc:
        module.fail_json(**exc.as_fail_kwargs())

    changed_file = after != before
    if changed_file and write:
        if after:
            write_text_atomic(pin_file, after, 0o644)
        else:
            os.unlink(pin_file)
    files = project.file_paths()
    own_config = at_commit and not plan["files"] and target.get("kind") == "deploy"
    expect = {}
    for name in plan["selected"]:
        want = target["services"][name]
        expect[name] = {} if name in plan["rebuild"] else {"image_id": want["image_id"]}
        if own_config and name not in plan["pin"] and want.get("config_hash"):
            expect[name]["config_hash"] = want["config_hash"]
    result = {
        "changed": (changed_file or bool(retagged)) and params["write"] or recorded,
        "failed_state": failed_state,
        "target": summary(target),
        "plan": plan,
        "pin_file": pin_file,
        # The pin file as it is on disk after this run (a plan-only run leaves the old one, or none, in place).
        "compose_files": files + ([pin_file] if (after if params["write"] else before) else []),
        "retagged": retagged,
        "check_mode": module.check_mode,
        "expect": expect,
        "diff": {"before": before, "after": after, "before_header": pin_file, "after_header": pin_file},
    }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
