#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_dump
short_description: Dump, verify and restore the PostgreSQL database of a compose stack, inside its container
version_added: 0.1.0
description:
  - V(dump) runs C(pg_dump -Fc) inside the database service's container (C(docker exec), no TTY), streams it into a
    temporary file (mode 0600) while hashing it, validates it with C(pg_restore --list), records the server and client
    versions, the Alembic revision and exact row counts, and only then renames the dump and its manifest into place.
  - V(verify) checks the checksum and C(pg_restore --list) of a dump.
  - V(restore) verifies the dump, stops O(stop_services) (the writers), keeps a dump of the current state first,
    restores in one transaction (C(pg_restore --clean --single-transaction)), checks the Alembic revision and the
    row counts against the manifest, and starts the writers again, also when something failed.
  - The password goes to the container on standard input, never on a command line, and never into the output.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: A dump or restore in check mode checks the connection (and the dump) and reports; nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: V(verify) never changes anything; every V(dump) writes a new dump and every V(restore) restores.
options:
  state:
    description: What to do.
    type: str
    choices: [dump, verify, restore]
    default: dump
  service:
    description: The compose service running PostgreSQL.
    type: str
    default: postgres
  database:
    description: Database name.
    type: str
    default: ai_workflow_engine
  user:
    description: Database user.
    type: str
    default: postgres
  password:
    description:
      - Password of O(user). When given, the client connects over TCP to 127.0.0.1 inside the container so it is
        checked; when omitted, through the local socket as the container's postgres user.
    type: str
  backup_dir:
    description: Directory of the dumps and their manifests.
    type: path
    required: true
  dump_file:
    description: For V(verify) and V(restore), the dump's path (or name in O(backup_dir)), or V(latest).
    type: str
    default: latest
  stop_services:
    description: For V(restore), compose services that write to the database; stopped before and started after.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Dump the stack's database
  aiwfe.rollback.postgres_dump:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    backup_dir: /var/backups/aiwfe/db
    password: "{{ postgres_password }}"

- name: Restore the newest dump, stopping the writers
  aiwfe.rollback.postgres_dump:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    state: restore
    backup_dir: /var/backups/aiwfe/db
    password: "{{ postgres_password }}"
    stop_services: [api, worker]
"""

RETURN = r"""
dump_file:
  description: The dump made, verified or restored.
  returned: success
  type: str
manifest:
  description: The dump's manifest (sha256, bytes, toc_entries, server_version, client_version, alembic_revision, row_counts).
  returned: success
  type: dict
pre_restore_dump:
  description: The dump of the state before the restore.
  returned: state is restore and not check mode
  type: str
"""

import os
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import iso, load_manifest, stamp
from ansible_collections.aiwfe.rollback.plugins.module_utils._postgres import (
    PostgresError, Target, check_dump, client_version, dump, facts, restore,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service, sha256_file
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import VolumeError, write_manifest_and_publish


def make_dump(target: Target, directory: str, label: str = "") -> tuple[str, dict]:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = f"{target.database}-{stamp()}{label}.dump"
    final = os.path.join(directory, name)
    tmp = os.path.join(directory, ".tmp-" + name)
    try:
        sha = dump(target, tmp)
        manifest = dict(facts(target), archive=name, sha256=sha, bytes=os.path.getsize(tmp), toc_entries=check_dump(target, tmp),
                        client_version=client_version(target), database=target.database, format="custom",
                        created=iso(), host=socket.gethostname())
        write_manifest_and_publish(tmp, final, manifest)
    except (PostgresError, VolumeError):
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final, manifest


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            STACK_ARGS,
            state={"type": "str", "choices": ["dump", "verify", "restore"], "default": "dump"},
            service={"type": "str", "default": "postgres"},
            database={"type": "str", "default": "ai_workflow_engine"},
            user={"type": "str", "default": "postgres"},
            password={"type": "str", "no_log": True},
            backup_dir={"type": "path", "required": True},
            dump_file={"type": "str", "default": "latest"},
            stop_services={"type": "list", "elements": "str", "default": []},
        ),
        supports_check_mode=True,
    )
    params = module.params
    project = compose_project(module)
    cli = docker_cli(module)
    result = {"changed": False}
    try:
        container = containers_by_service(cli, project).get(params["service"])
        if not container or container.get("state") != "running":
            module.fail_json(msg=f"service {params['service']} of project {project.name} has no running container: start the database first")
        target = Target(cli.docker, container["id"], params["database"], params["user"], params["password"])
        if params["state"] == "dump":
            if module.check_mode:
                facts(target)
                module.exit_json(changed=True, msg="would dump")
            result["dump_file"], result["manifest"] = make_dump(target, params["backup_dir"])
            result["changed"] = True
            module.exit_json(**result)
        path = params["dump_file"]
        if path == "latest":
            dumps = sorted(f for f in os.listdir(params["backup_dir"]) if f.startswith(params["database"] + "-") and f.endswith(".dump")
                           and load_manifest(os.path.join(params["backup_dir"], f))) if os.path.isdir(params["backup_dir"]) else []
            if not dumps:
                module.fail_json(msg=f"no dump of {params['database']} in {params['backup_dir']}")
            path = dumps[-1]
        if not os.path.isabs(path):
            path = os.path.join(params["backup_dir"], path)
        manifest = load_manifest(path)
        if manifest is None:
            module.fail_json(msg=f"{path} has no readable manifest: it is not a complete dump; nothing was changed")
        result.update(dump_file=path, manifest=manifest)
        if sha256_file(path) != manifest.get("sha256"):
            module.fail_json(msg=f"checksum mismatch for {path}: the dump is damaged; nothing was changed", **result)
        check_dump(target, path)
        if params["state"] == "verify" or module.check_mode:
            result["changed"] = params["state"] == "restore"
            module.exit_json(**result)
        known = containers_by_service(cli, project)
        unknown = [s for s in params["stop_services"] if s not in known]
        if unknown:
            module.fail_json(msg=f"unknown service(s) {', '.join(unknown)} in stop_services; nothing was changed", **result)
        result["pre_restore_dump"], _pre = make_dump(target, params["backup_dir"], ".pre-restore")
        result["changed"] = True
        if params["stop_services"]:
            cli.compose(project, ["stop", "--"] + params["stop_services"], "docker compose stop")
        try:
            restore(target, path)
            after = facts(target, list(manifest.get("row_counts") or {}))
        finally:
            if params["stop_services"]:
                cli.compose(project, ["start", "--"] + params["stop_services"], "docker compose start")
        if (after["alembic_revision"], after["row_counts"]) != (manifest.get("alembic_revision"), manifest.get("row_counts")):
            module.fail_json(msg=(f"after the restore the database has Alembic revision {after['alembic_revision']} and row counts "
                                  f"{after['row_counts']}, the dump recorded {manifest.get('alembic_revision')} and {manifest.get('row_counts')}; "
                                  f"the state before is in {result['pre_restore_dump']}"), after=after, **result)
        result["after"] = after
    except PostgresError as exc:
        module.fail_json(msg=str(exc), **result)
    except (VolumeError, DockerCliError) as exc:
        module.fail_json(msg=getattr(exc, "msg", str(exc)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
