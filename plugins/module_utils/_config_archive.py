# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The states of aiwfe.rollback.config_archive: archive a stack's configuration files, and restore them.

An archive is made like a volume backup (tar | zstd, hashed and member-checked while written, _volume) and
published through _files.publish, with each file's sha256 in its manifest. A restore extracts into a staging
directory (refusing unsafe members), checks every file against the manifest, archives the current files first and
replaces only the files that differ, each by an atomic rename.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import BackupNotFound, UnsafeArchive, check_entry, find_backup
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import ArtifactError, copy_atomic, fresh_name, iso, publish, stamp
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import hash_files, sha256_file
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import TAR_LISTED, VolumeError, compressor, create_archive, verify_archive

NAME = "config"
# A restore first archives the files it replaces: config.pre-restore-STAMP.tar.zst (not a candidate for `latest`).
PRE_RESTORE = ".pre-restore"


def matching_files(project_dir: str, patterns: t.Sequence[str]) -> dict[str, str]:
    """The files to archive (relative path -> sha256); VolumeError when there is none."""
    files = hash_files(project_dir, patterns)
    if not files:
        raise VolumeError(f"no file of {project_dir} matches {list(patterns)}: nothing to archive")
    return files


def backup(project_dir: str, backup_dir: str, patterns: t.Sequence[str], label: str = "") -> tuple[str, dict[str, t.Any]]:
    """Archive the files of ``project_dir`` matching ``patterns`` into ``backup_dir``; returns (path, manifest)."""
    files = matching_files(project_dir, patterns)
    name = fresh_name(backup_dir, lambda when: f"{NAME}{label}-{stamp(when)}.tar.zst")
    tar_argv = ["tar", "-C", project_dir] + TAR_LISTED + ["-cf", "-", "--"] + sorted(files)

    def write(tmp: str) -> dict[str, t.Any]:
        sha, stats = create_archive(tar_argv, compressor("zstd", 3), tmp)
        return {"format": 1, "archive": name, "volume": NAME + label, "sha256": sha, "archive_bytes": os.path.getsize(tmp),
                "members": stats.as_dict(), "files": files, "project_dir": project_dir, "created": iso(),
                "host": socket.gethostname()}

    return publish(backup_dir, name, write)


def staged_files(path: str, manifest: dict[str, t.Any], staging: str) -> dict[str, str]:
    """Extract the archive into ``staging`` (checksum, member scan) and check every file against the manifest;
    returns the manifest's files (relative path -> sha256)."""
    verify_archive(path, manifest, staging)
    files = manifest.get("files") or {}
    for rel, sha in files.items():
        check_entry("-", rel)
        if not os.path.isfile(os.path.join(staging, rel)) or sha256_file(os.path.join(staging, rel)) != sha:
            raise VolumeError(f"{rel} in {path} does not match its manifest")
    return files


def inside(project_dir: str, rel: str) -> str:
    """The path ``rel`` (a name the manifest gives, already checked by check_entry) takes in ``project_dir``; VolumeError
    when a directory on the way is a symlink that leads out of ``project_dir`` (the file would be written there). The
    file itself may be a symlink: it is replaced, not written through."""
    root = os.path.realpath(project_dir)
    path = os.path.join(project_dir, rel)
    where = os.path.realpath(os.path.dirname(path))
    if where != root and not where.startswith(root + os.sep):
        raise VolumeError(f"{rel} would be written to {os.path.join(where, os.path.basename(rel))}, outside {project_dir} "
                          f"(a directory on its way is a symlink): make it a directory of {project_dir} and run again")
    return path


def restore(params: dict[str, t.Any], check_mode: bool, result: dict[str, t.Any]) -> None:
    """Put back the files of the archive O(archive) that differ from the project's; the current files are archived
    first. ``result`` gets archive, manifest, restored (and pre_restore_archive when files were replaced)."""
    project_dir, backup_dir = params["project_dir"], params["backup_dir"]
    path, manifest = find_backup(backup_dir, params["archive"], NAME, "configuration archive")
    result.update(archive=path, manifest=manifest)
    staging = tempfile.mkdtemp(prefix=".aiwfe-config-restore-", dir=os.path.dirname(project_dir.rstrip("/")) or "/")
    try:
        files = staged_files(path, manifest, staging)
        current = hash_files(project_dir, params["patterns"])
        result["restored"] = sorted(rel for rel, sha in files.items() if current.get(rel) != sha)
        targets = [inside(project_dir, rel) for rel in result["restored"]]
        if result["restored"] and not check_mode:
            result["pre_restore_archive"], _pre = backup(project_dir, backup_dir, params["patterns"], PRE_RESTORE)
            for rel, target in zip(result["restored"], targets):
                copy_atomic(os.path.join(staging, rel), target)
        result["changed"] = bool(result["restored"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run(params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """The module's whole run; returns its result or raises JobFailed (with the result so far)."""
    project_dir = params["project_dir"]
    if not os.path.isdir(project_dir):
        raise JobFailed(f"project_dir {project_dir} does not exist")
    result: dict[str, t.Any] = {"changed": False}
    try:
        if params["state"] == "restore":
            restore(params, check_mode, result)
        elif check_mode:
            result.update(changed=True, files=matching_files(project_dir, params["patterns"]))
        else:
            result["archive"], result["manifest"] = backup(project_dir, params["backup_dir"], params["patterns"])
            result["changed"] = True
    except BackupNotFound as exc:
        raise JobFailed(str(exc), result) from exc
    except (VolumeError, UnsafeArchive, ArtifactError, OSError) as exc:
        done = (f"the files before are in {result['pre_restore_archive']}" if "pre_restore_archive" in result
                else "nothing was changed")
        raise JobFailed(f"{exc}; {done}", result) from exc
    return result
