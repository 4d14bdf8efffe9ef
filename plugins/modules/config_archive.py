#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: config_archive
short_description: Archive and restore a stack's configuration files (compose files, .env, Dockerfiles, Caddyfile)
version_added: 0.1.0
description:
  - The runbook's C(config_backup_*.tar.gz), done safely. V(backup) archives the files of the deploy directory that
    match O(patterns) with a manifest holding each file's sha256, verified while written, published by rename,
    mode 0600.
  - V(restore) extracts the archive into a staging directory while verifying it (checksum, member scan), checks every
    file against the manifest, and only then, when some file differs, archives the current files and puts the
    differing ones in place one by one (atomic renames). Files not in the archive are left alone.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
    details:
      - V(backup) reports the files it would archive (RV(files)); V(restore) extracts and checks the archive in a
        staging directory and reports the files it would put back (RV(restored)). Nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - A V(restore) whose files already match changes nothing (and archives nothing).
      - Every V(backup) makes a new archive (named by the time, never replacing one).
options:
  state:
    description: What to do.
    type: str
    choices: [backup, restore]
    default: backup
  project_dir:
    description: The deploy directory.
    type: path
    required: true
  backup_dir:
    description: Directory of the archives.
    type: path
    required: true
  archive:
    description:
      - For V(restore), the archive path (or name in O(backup_dir)), or V(latest) for the newest C(config-STAMP.tar.zst)
        in O(backup_dir) (the archives a restore makes of the files it replaces are not candidates).
    type: str
    default: latest
  patterns:
    description: Glob patterns relative to O(project_dir) (C(**/NAME) matches at any depth). C(secrets/) and C(.git/) are never archived.
    type: list
    elements: str
    default: ["compose*.yaml", "compose*.yml", "docker-compose*.yaml", "docker-compose*.yml", ".env", "**/Dockerfile", "**/Caddyfile"]
"""

EXAMPLES = r"""
- name: Archive the configuration
  aiwfe.rollback.config_archive:
    project_dir: /srv/ai_workflow_engine
    backup_dir: /var/backups/aiwfe/config
"""

RETURN = r"""
archive:
  description: The archive made or restored.
  returned: success, except for O(state=backup) in check mode
  type: str
  sample: /var/backups/aiwfe/config/config-20261129T031500Z.tar.zst
manifest:
  description:
    - The archive's manifest, C(ARCHIVE.manifest.json) beside it.
    - C(files) (relative path -> sha256), C(format), C(archive) (its name), C(volume) (C(config)), C(sha256),
      C(archive_bytes), C(members) (counts), C(project_dir), C(created), C(host).
  returned: success, except for O(state=backup) in check mode
  type: dict
files:
  description: In check mode, the files a V(backup) would archive (relative path -> sha256).
  returned: state is backup and check mode
  type: dict
restored:
  description: Files put back (or, in check mode, that would be), relative to O(project_dir).
  returned: state is restore
  type: list
  elements: str
pre_restore_archive:
  description: Archive of the files as they were before the restore (C(config.pre-restore-STAMP.tar.zst)).
  returned: state is restore, files changed and not check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._config_archive import run
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import DEFAULT_HASH_FILES

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["backup", "restore"], "default": "backup"},
    "project_dir": {"type": "path", "required": True},
    "backup_dir": {"type": "path", "required": True},
    "archive": {"type": "str", "default": "latest"},
    "patterns": {"type": "list", "elements": "str", "default": DEFAULT_HASH_FILES},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_job(module, lambda: run(module.params, module.check_mode))


if __name__ == "__main__":
    main()
