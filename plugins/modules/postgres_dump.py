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
    details:
      - A V(dump) in check mode connects and reads the row counts; a V(restore) checks the dump (checksum,
        C(pg_restore --list)) and O(stop_services). Nothing is written, stopped or restored.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - V(verify) never changes anything.
      - Every V(dump) writes a new dump (named by the time, never replacing one) and every V(restore) restores again,
        after a new dump of the state it replaces.
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
    description:
      - For V(verify) and V(restore), the dump's path (or name in O(backup_dir)), or V(latest) for the newest dump of
        O(database) in O(backup_dir) (a restore's C(.pre-restore) dumps included).
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
  returned: success, except for O(state=dump) in check mode
  type: str
  sample: /var/backups/aiwfe/db/ai_workflow_engine-20261129T031500Z.dump
manifest:
  description:
    - The dump's manifest, C(DUMP.manifest.json) beside it.
    - C(archive) (its name), C(database), C(format), C(sha256), C(bytes), C(toc_entries), C(server_version),
      C(client_version), C(alembic_revision), C(row_counts) (table -> rows), C(created), C(host).
  returned: success, except for O(state=dump) in check mode
  type: dict
pre_restore_dump:
  description: The dump of the state before the restore.
  returned: state is restore and not check mode
  type: str
after:
  description: What the database holds after the restore - C(server_version), C(alembic_revision) and C(row_counts)
    of the tables the dump recorded. Also returned when they differ from the dump's (the restore then fails).
  returned: state is restore and not check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job
from ansible_collections.aiwfe.rollback.plugins.module_utils._postgres_job import run

ARGUMENT_SPEC = dict(
    STACK_ARGS,
    state={"type": "str", "choices": ["dump", "verify", "restore"], "default": "dump"},
    service={"type": "str", "default": "postgres"},
    database={"type": "str", "default": "ai_workflow_engine"},
    user={"type": "str", "default": "postgres"},
    password={"type": "str", "no_log": True},
    backup_dir={"type": "path", "required": True},
    dump_file={"type": "str", "default": "latest"},
    stop_services={"type": "list", "elements": "str", "default": []},
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    project = compose_project(module)
    run_job(module, lambda: run(docker_cli(module), project, module.params, module.check_mode))


if __name__ == "__main__":
    main()
