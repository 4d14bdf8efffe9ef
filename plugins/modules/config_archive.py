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
  - V(restore) verifies the archive (checksum, member scan), archives the current files first, extracts into a
    staging directory, checks every file against the manifest, and only then puts the files in place one by one
    (atomic renames). Files not in the archive are left alone.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: A V(restore) whose files already match changes nothing; every V(backup) makes a new archive.
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
    description: For V(restore), the archive path (or name in O(backup_dir)), or V(latest).
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
  returned: success
  type: str
manifest:
  description: The archive's manifest, with C(files) (path -> sha256).
  returned: success
  type: dict
restored:
  description: Files put back (or, in check mode, that would be).
  returned: state is restore
  type: list
  elements: str
pre_restore_archive:
  description: Archive of the files as they were before the restore.
  returned: state is restore and files changed
  type: str
"""

import os
import shutil
import socket
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import UnsafeArchive, list_backups
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import iso, load_manifest, stamp
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import DEFAULT_HASH_FILES, hash_files, sha256_file
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import (
    TAR_LISTED, VolumeError, compressor, create_archive, verify_archive, write_manifest_and_publish,
)

NAME = "config"


def backup(project_dir: str, backup_dir: str, patterns: list[str], suffix: str = "") -> tuple[str, dict]:
    files = hash_files(project_dir, patterns)
    if not files:
        raise VolumeError(f"no file of {project_dir} matches {patterns}: nothing to archive")
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    name = f"{NAME}{suffix}-{stamp()}.tar.zst"
    final = os.path.join(backup_dir, name)
    tmp = os.path.join(backup_dir, ".tmp-" + name)
    tar_argv = ["tar", "-C", project_dir] + TAR_LISTED + ["-cf", "-", "--"] + sorted(files)
    try:
        sha, stats = create_archive(tar_argv, compressor("zstd", 3), tmp)
        manifest = {"format": 1, "archive": name, "volume": NAME + suffix, "sha256": sha, "archive_bytes": os.path.getsize(tmp),
                    "members": stats.as_dict(), "files": files, "project_dir": project_dir,
                    "created": iso(), "host": socket.gethostname()}
        write_manifest_and_publish(tmp, final, manifest)
    except (VolumeError, UnsafeArchive):
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final, manifest


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["backup", "restore"], "default": "backup"},
            "project_dir": {"type": "path", "required": True},
            "backup_dir": {"type": "path", "required": True},
            "archive": {"type": "str", "default": "latest"},
            "patterns": {"type": "list", "elements": "str", "default": DEFAULT_HASH_FILES},
        },
        supports_check_mode=True,
    )
    params = module.params
    project_dir, backup_dir = params["project_dir"], params["backup_dir"]
    if not os.path.isdir(project_dir):
        module.fail_json(msg=f"project_dir {project_dir} does not exist")
    result: dict = {"changed": False}
    try:
        if params["state"] == "backup":
            if module.check_mode:
                module.exit_json(changed=True, files=hash_files(project_dir, params["patterns"]))
            result["archive"], result["manifest"] = backup(project_dir, backup_dir, params["patterns"])
            result["changed"] = True
            module.exit_json(**result)
        path = params["archive"]
        if path == "latest":
            found = list_backups(backup_dir, NAME)
            if not found:
                module.fail_json(msg=f"no configuration archive in {backup_dir}")
            path = found[-1]["path"]
        elif not os.path.isabs(path):
            path = os.path.join(backup_dir, path)
        manifest = load_manifest(path)
        if manifest is None:
            module.fail_json(msg=f"{path} has no readable manifest: it is not a complete archive; nothing was changed")
        result.update(archive=path, manifest=manifest)
        staging = tempfile.mkdtemp(prefix=".aiwfe-config-restore-", dir=os.path.dirname(project_dir.rstrip("/")) or "/")
        try:
            verify_archive(path, manifest, staging)
            for rel, sha in manifest["files"].items():
                if sha256_file(os.path.join(staging, rel)) != sha:
                    raise VolumeError(f"{rel} in {path} does not match its manifest")
            current = hash_files(project_dir, params["patterns"])
            restored = sorted(rel for rel, sha in manifest["files"].items() if current.get(rel) != sha)
            result["restored"] = restored
            if restored and not module.check_mode:
                result["pre_restore_archive"], _pre = backup(project_dir, backup_dir, params["patterns"], ".pre-restore")
                for rel in restored:
                    dest = os.path.join(project_dir, rel)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.copy2(os.path.join(staging, rel), dest + ".aiwfe-tmp")
                    os.replace(dest + ".aiwfe-tmp", dest)
            result["changed"] = bool(restored)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (VolumeError, UnsafeArchive) as exc:
        module.fail_json(msg=f"{exc}; nothing was changed", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
