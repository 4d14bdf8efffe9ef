#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_backup_info
short_description: List the volume backups made by aiwfe.rollback.volume_backup
version_added: 0.1.0
description:
  - Lists the backups (archive plus manifest) in a backup directory, oldest first. Archives without a manifest,
    and temporary files of unfinished backups, are not backups and are not listed. Never changes anything.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  backup_dir:
    description: Directory of the archives and their manifests.
    type: path
    required: true
  volume:
    description: Only the backups of this volume.
    type: str
"""

EXAMPLES = r"""
- name: List the backups of the database volume
  aiwfe.rollback.volume_backup_info:
    backup_dir: /var/backups/aiwfe
    volume: ai_workflow_engine_postgres_data
  register: backups
"""

RETURN = r"""
backups:
  description: Backups, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The archive.
      type: str
      sample: /var/backups/aiwfe/ai_workflow_engine_postgres_data-20261129T031500Z.tar.zst
    volume:
      description: The volume it holds (the name before the time stamp).
      type: str
    stamp:
      description: When it was made (UTC, C(YYYYMMDDTHHMMSSZ)).
      type: str
      sample: 20261129T031500Z
    manifest:
      description: Its manifest (see RV(aiwfe.rollback.volume_backup#module:manifest)).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import list_backups


def main() -> None:
    module = AnsibleModule(
        argument_spec={"backup_dir": {"type": "path", "required": True}, "volume": {"type": "str"}},
        supports_check_mode=True,
    )
    module.exit_json(changed=False, backups=list_backups(module.params["backup_dir"], module.params["volume"]))


if __name__ == "__main__":
    main()
