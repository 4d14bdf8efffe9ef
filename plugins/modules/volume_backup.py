#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_backup
short_description: Back up, verify, prune and restore Docker named volumes
version_added: 0.1.0
description:
  - V(backup) streams the volume through C(tar) and a multi-threaded compressor (zstd when available, else gzip/pigz)
    into a temporary file (mode 0600) while hashing it and checking every member in tar's own listing (the same
    checks a restore makes - no absolute path, no C(..), no link leaving the volume, no device file), fsyncs it,
    writes a manifest (volume, sizes, counts, sha256, tool versions, time taken) and only then renames both into
    place. A failed or partial backup leaves nothing that looks like a backup.
  - The volume is read directly from its mountpoint when the module runs on the Docker host with access to it,
    otherwise through a short-lived helper container (O(helper_image)).
  - V(verify) checks the checksum and reads the whole archive back from disk (full decompression and member scan)
    without restoring it. A V(backup) does that read-back too before O(keep) / O(max_age_days) may delete any older
    backup; when it fails, the new backup is removed and nothing is pruned.
  - V(restore) refuses the whole archive when any member has an absolute path, a C(..) component, a link leaving the
    volume or is a device file; it extracts into a fresh staging volume while verifying, and only when everything
    agrees swaps the data in, keeping the old data as a new volume named in RV(kept_volume).
  - V(prune) applies O(keep) / O(max_age_days) after verifying the newest backup.
  - M(aiwfe.rollback.volume_backup_info) lists the backups.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
    details: Backups and prunes are reported, not made; a restore in check mode verifies the archive and reports the plan.
  diff_mode:
    support: full
    details:
      - V(backup) and V(prune) show the volume's archives in O(backup_dir) before and after (the new one added, the
        pruned ones gone); V(restore) shows what the volume holds before (file count, bytes) and after (the archive's
        members) and where the old data is kept. Works in check mode too.
  idempotent:
    support: partial
    details: V(verify) never changes anything; every V(backup) makes a new archive and every V(restore) restores.
options:
  state:
    description: What to do.
    type: str
    choices: [backup, verify, restore, prune]
    default: backup
  volume:
    description: The named volume. Required for V(backup) and V(restore) of an archive given by path is optional (defaults to the archive's volume).
    type: str
  backup_dir:
    description: Directory of the archives and their manifests. Created (mode 0700) for V(backup) when missing.
    type: path
    required: true
  archive:
    description: For V(verify) and V(restore), the archive path, or V(latest) for the newest backup of O(volume).
    type: str
    default: latest
  compression:
    description: V(auto) picks zstd when its command exists, else gzip (pigz when present).
    type: str
    choices: [auto, zstd, gzip]
    default: auto
  level:
    description: Compression level.
    type: int
    default: 3
  access:
    description: V(direct) reads the volume's mountpoint, V(helper) runs tar in a helper container, V(auto) prefers direct.
    type: str
    choices: [auto, direct, helper]
    default: auto
  helper_image:
    description: Image with GNU tar for the helper container (never pulled).
    type: str
    default: local/debian:bookworm
  stop_containers:
    description:
      - V(backup) - stop the running containers that use the volume for a consistent copy, and start them again afterwards, also when the backup fails.
      - V(restore) - required to restore into a volume that running containers use; they are stopped and started again.
    type: bool
    default: false
  keep:
    description: After a verified backup (or with V(prune)), keep only the newest N backups of the volume.
    type: int
  max_age_days:
    description: After a verified backup (or with V(prune)), delete backups of the volume older than this. The newest is always kept.
    type: int
  docker_cli:
    description: The docker client.
    type: path
    default: docker
requirements:
  - GNU tar, and zstd or gzip, on the managed host (the Docker host).
"""

EXAMPLES = r"""
- name: Back up the database volume, stopping its writers, keeping 7 backups
  aiwfe.rollback.volume_backup:
    volume: ai_workflow_engine_postgres_data
    backup_dir: /var/backups/aiwfe
    stop_containers: true
    keep: 7

- name: Verify the newest backup without restoring it
  aiwfe.rollback.volume_backup:
    state: verify
    volume: ai_workflow_engine_postgres_data
    backup_dir: /var/backups/aiwfe

- name: Restore it (the old data is kept as a volume named in kept_volume)
  aiwfe.rollback.volume_backup:
    state: restore
    volume: ai_workflow_engine_postgres_data
    backup_dir: /var/backups/aiwfe
    stop_containers: true
"""

RETURN = r"""
archive:
  description: Path of the archive made, verified or restored.
  returned: when an archive is involved
  type: str
manifest:
  description: The archive's manifest (volume, sha256, archive_bytes, members counts, compression, tools, seconds).
  returned: when an archive is involved
  type: dict
pruned:
  description: Archives deleted (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
kept_volume:
  description: After a restore, the volume holding the data the volume had before.
  returned: state is restore and not check mode
  type: str
stopped:
  description: Containers stopped and started again.
  returned: always
  type: list
  elements: str
seconds:
  description: Time taken by each step.
  returned: always
  type: dict
"""

import os
import shutil
import socket
import stat
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import UnsafeArchive, archive_name, list_backups, select_prune
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import iso, load_manifest, manifest_path, stamp, utc_now
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import (
    TAR_CREATE, VolumeError, compressor, create_archive, timed, tool_versions, verify_archive, write_manifest_and_publish,
)


class Runner:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.cli = DockerCli(module.run_command, module.params["docker_cli"])
        self.result: dict = {"changed": False, "pruned": [], "stopped": [], "seconds": {}}

    # --- helpers -------------------------------------------------------------------------
    def fail(self, msg: str, **extra) -> None:
        self.module.fail_json(msg=msg, **dict(self.result, **extra))

    def volume_info(self, name: str) -> dict | None:
        return self.cli.inspect("volume", [name]).get(name)

    def users(self, volume: str) -> list[str]:
        _rc, out, _err = self.cli.run([self.cli.docker, "ps", "--filter", f"volume={volume}", "--format", "{{.Names}}"],
                                      "docker ps")
        return [line for line in out.splitlines() if line]

    def stop(self, names: list[str]) -> None:
        if names:
            self.cli.run([self.cli.docker, "stop", "--"] + names, "docker stop")
            self.result["stopped"] = names

    def start(self, names: list[str]) -> None:
        if names:
            self.cli.run([self.cli.docker, "start", "--"] + names, "docker start (start them by hand)")

    def resolve_archive(self) -> str:
        archive = self.params["archive"]
        if archive != "latest":
            return archive if os.path.isabs(archive) else os.path.join(self.params["backup_dir"], archive)
        if not self.params["volume"]:
            self.fail("archive 'latest' needs 'volume'")
        backups = list_backups(self.params["backup_dir"], self.params["volume"])
        if not backups:
            self.fail(f"no backup of volume {self.params['volume']} in {self.params['backup_dir']}: nothing to verify or restore")
        return backups[-1]["path"]

    def compression(self) -> str:
        kind = self.params["compression"]
        if kind == "auto":
            return "zstd" if shutil.which("zstd") else "gzip"
        if kind == "zstd" and not shutil.which("zstd"):
            self.fail("compression zstd asked for but the zstd command is missing: install zstd or use compression: gzip")
        return kind

    def prune(self, prove: t.Callable[[], None] | None = None) -> None:
        """Delete the backups O(keep) / O(max_age_days) select; ``prove`` runs first, only when one would go."""
        backups = list_backups(self.params["backup_dir"], self.params["volume"])
        doomed = select_prune(backups, self.params["keep"], self.params["max_age_days"], utc_now())
        if doomed and prove is not None and not self.module.check_mode:
            prove()
        for backup in doomed:
            self.result["pruned"].append(backup["path"])
            if not self.module.check_mode:
                os.unlink(manifest_path(backup["path"]))
                os.unlink(backup["path"])
        if doomed:
            self.result["changed"] = True

    # --- states ----------------------------------------------------------------------------
    def backup(self) -> None:
        params = self.params
        volume = params["volume"]
        info = self.volume_info(volume)
        if info is None:
            self.fail(f"volume {volume} does not exist (`docker volume ls` lists the volumes): nothing was changed")
        directory = params["backup_dir"]
        if os.path.exists(directory) and not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)):
            self.fail(f"backup_dir {directory} is not a writable directory: fix its permissions or pick another; nothing was changed")
        kind = self.compression()
        mountpoint = info.get("Mountpoint") or ""
        direct = params["access"] != "helper" and os.path.isdir(mountpoint) and os.access(mountpoint, os.R_OK | os.X_OK)
        if params["access"] == "direct" and not direct:
            self.fail(f"cannot read {mountpoint} directly: run on the Docker host as root, or use access: helper")
        name = archive_name(volume, utc_now(), kind)
        final = os.path.join(directory, name)
        self.result.update(changed=True, archive=final, access="direct" if direct else "helper")
        if self.module.check_mode:
            self.prune()
            return
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        if direct:
            tar_argv = ["tar", "-C", mountpoint] + TAR_CREATE
        else:
            tar_argv = [self.cli.docker, "run", "--rm", "--network", "none", "--log-driver", "none",
                        "-v", f"{volume}:/volume:ro", params["helper_image"], "tar", "-C", "/volume"] + TAR_CREATE
        tmp = os.path.join(directory, ".tmp-" + name)
        users = self.users(volume) if params["stop_containers"] else []
        try:
            self.stop(users)
            try:
                (sha, stats), self.result["seconds"]["backup"] = timed(
                    create_archive, tar_argv, compressor(kind, params["level"]), tmp)
            finally:
                self.start(users)
        except (VolumeError, UnsafeArchive, DockerCliError) as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            self.result["changed"] = bool(users)
            msg = exc.msg if isinstance(exc, DockerCliError) else str(exc)
            self.fail(f"backup of {volume} failed, nothing was kept: {msg}")
        manifest = {
            "format": 1, "archive": name, "volume": volume, "sha256": sha, "archive_bytes": os.path.getsize(tmp),
            "members": stats.as_dict(), "compression": kind, "level": params["level"], "access": self.result["access"],
            "tools": tool_versions(kind), "created": iso(), "host": socket.gethostname(),
            "seconds": dict(self.result["seconds"]), "stopped_containers": users,
        }
        try:
            write_manifest_and_publish(tmp, final, manifest)
        except VolumeError as exc:
            self.fail(f"backup of {volume} failed, nothing was kept: {exc}")
        self.result["manifest"] = manifest
        self.prune(lambda: self.read_back(final, manifest))

    def read_back(self, path: str, manifest: dict) -> None:
        """Older backups go only once the new one is proven readable from disk; a new one that is not is removed."""
        try:
            _stats, self.result["seconds"]["verify"] = timed(verify_archive, path, manifest)
        except (VolumeError, UnsafeArchive) as exc:
            os.unlink(manifest_path(path))
            os.unlink(path)
            self.fail(f"the new backup of {manifest['volume']} failed its read-back and was removed; nothing was pruned: {exc}")

    def verify(self) -> None:
        path = self.resolve_archive()
        manifest = load_manifest(path)
        if manifest is None:
            self.fail(f"{path} has no readable manifest ({os.path.basename(manifest_path(path))}): it is not a complete backup")
        try:
            _stats, self.result["seconds"]["verify"] = timed(verify_archive, path, manifest)
        except (VolumeError, UnsafeArchive) as exc:
            self.fail(f"{path} failed verification: {exc}", archive=path)
        self.result.update(archive=path, manifest=manifest)

    def restore(self) -> None:
        params = self.params
        path = self.resolve_archive()
        manifest = load_manifest(path)
        if manifest is None:
            self.fail(f"{path} has no readable manifest: it is not a complete backup; nothing was changed")
        volume = params["volume"] or manifest.get("volume")
        self.result.update(archive=path, manifest=manifest, volume=volume)
        info = self.volume_info(volume)
        if info is not None and (info.get("Driver") != "local" or info.get("Options")):
            self.fail(f"volume {volume} uses driver {info.get('Driver')} with options {info.get('Options')}: only plain local volumes can be swapped")
        users = self.users(volume) if info is not None else []
        if users and not params["stop_containers"]:
            self.fail(f"volume {volume} is used by running containers {', '.join(users)}: stop them or set stop_containers: true; "
                      "nothing was changed")
        if self.module.check_mode:
            try:
                _stats, self.result["seconds"]["verify"] = timed(verify_archive, path, manifest)
            except (VolumeError, UnsafeArchive) as exc:
                self.fail(f"{path} failed verification, it would not be restored: {exc}")
            self.result["changed"] = True
            return
        when = stamp()
        staging = f"{volume}-restore-{when}"
        kept = f"{volume}-pre-restore-{when}"
        staging_mp = self.create_volume(staging)
        if not os.access(staging_mp, os.W_OK):
            self.remove_volume(staging)
            self.fail("restore needs direct access to volume mountpoints: run it on the Docker host as root; nothing was changed")
        try:
            _stats, self.result["seconds"]["restore"] = timed(verify_archive, path, manifest, staging_mp)
        except (VolumeError, UnsafeArchive) as exc:
            self.remove_volume(staging)
            self.fail(f"{path} was refused, nothing was changed: {exc}")
        if info is None:
            info = {"Mountpoint": self.create_volume(volume)}
        try:
            self.stop(users)
            self.swap(info["Mountpoint"], staging_mp, self.create_volume(kept))
        finally:
            self.start(users)
        self.remove_volume(staging)
        self.result.update(changed=True, kept_volume=kept)

    def create_volume(self, name: str) -> str:
        self.cli.run([self.cli.docker, "volume", "create", "--label", "org.aiwfe.rollback=restore", name], "docker volume create")
        return (self.volume_info(name) or {}).get("Mountpoint", "")

    def remove_volume(self, name: str) -> None:
        info = self.volume_info(name) or {}
        mountpoint = info.get("Mountpoint", "")
        if mountpoint and os.path.isdir(mountpoint):
            shutil.rmtree(mountpoint)
        if mountpoint:
            os.makedirs(mountpoint, exist_ok=True)
        self.cli.run([self.cli.docker, "volume", "rm", name], "docker volume rm", check=False)

    @staticmethod
    def swap(live: str, staged: str, keep: str) -> None:
        """live data -> keep volume, staged data -> live; every rename on the same filesystem."""
        os.rmdir(keep)
        os.rename(live, keep)
        try:
            os.rename(staged, live)
        except OSError:
            os.rename(keep, live)
            os.mkdir(keep)
            raise
        os.mkdir(staged)

    def archives(self) -> list[str]:
        volume = self.params["volume"] or (self.result.get("manifest") or {}).get("volume")
        return [os.path.basename(b["path"]) for b in list_backups(self.params["backup_dir"], volume)] if volume else []

    def contents(self, volume: str) -> str:
        """One line about what a volume holds now (file count and bytes), for the diff."""
        mountpoint = (self.volume_info(volume) or {}).get("Mountpoint") or ""
        if not os.path.isdir(mountpoint):
            return f"volume {volume}: absent\n"
        files = size = 0
        for root, _dirs, names in os.walk(mountpoint):
            for name in names:
                info = os.lstat(os.path.join(root, name))
                if stat.S_ISREG(info.st_mode):
                    files += 1
                    size += info.st_size
        return f"volume {volume}: {files} files, {size} bytes\n"

    def diff(self, state: str, before: str) -> dict:
        header = os.path.join(self.params["backup_dir"], str(self.params["volume"] or ""))
        if state == "restore":
            members = (self.result.get("manifest") or {}).get("members") or {}
            kept = self.result.get("kept_volume") or f"{self.result.get('volume')}-pre-restore-<time>"
            after = (f"volume {self.result.get('volume')}: contents of {os.path.basename(self.result.get('archive') or '')} "
                     f"({members.get('files', '?')} files, {members.get('bytes', '?')} bytes); the data before is kept in "
                     f"volume {kept}\n")
            return {"before": before, "after": after, "before_header": self.result.get("volume"),
                    "after_header": self.result.get("volume")}
        names = [n for n in before.splitlines() if n]
        if self.module.check_mode:
            pruned = {os.path.basename(p) for p in self.result["pruned"]}
            names = [n for n in names if n not in pruned]
            if state == "backup" and self.result.get("archive"):
                names.append(os.path.basename(self.result["archive"]))
        else:
            names = self.archives()
        return {"before": before, "after": "".join(n + "\n" for n in names), "before_header": header, "after_header": header}

    def prune_verified(self) -> None:
        """Prune only when the newest backup verifies."""
        self.verify()
        self.prune()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["backup", "verify", "restore", "prune"], "default": "backup"},
            "volume": {"type": "str"},
            "backup_dir": {"type": "path", "required": True},
            "archive": {"type": "str", "default": "latest"},
            "compression": {"type": "str", "choices": ["auto", "zstd", "gzip"], "default": "auto"},
            "level": {"type": "int", "default": 3},
            "access": {"type": "str", "choices": ["auto", "direct", "helper"], "default": "auto"},
            "helper_image": {"type": "str", "default": "local/debian:bookworm"},
            "stop_containers": {"type": "bool", "default": False},
            "keep": {"type": "int"},
            "max_age_days": {"type": "int"},
            "docker_cli": {"type": "path", "default": "docker"},
        },
        required_if=[("state", "backup", ["volume"]), ("state", "prune", ["volume"])],
        supports_check_mode=True,
    )
    if module.params["keep"] is not None and module.params["keep"] < 1:
        module.fail_json(msg="keep must be at least 1 (the newest backup is never deleted)")
    if module.params["max_age_days"] is not None and module.params["max_age_days"] < 0:
        module.fail_json(msg="max_age_days must be >= 0")
    runner = Runner(module)
    state = module.params["state"]
    try:
        before = ""
        if module._diff and state == "restore":
            volume = module.params["volume"] or (load_manifest(runner.resolve_archive()) or {}).get("volume")
            before = runner.contents(volume) if volume else ""
        elif module._diff and state != "verify":
            before = "".join(n + "\n" for n in runner.archives())
        actions = {"backup": runner.backup, "verify": runner.verify, "restore": runner.restore,
                   "prune": runner.prune_verified}
        actions[state]()
        if module._diff and state != "verify":
            runner.result["diff"] = runner.diff(state, before)
    except DockerCliError as exc:
        module.fail_json(**dict(runner.result, **exc.as_fail_kwargs()))
    module.exit_json(**runner.result)


if __name__ == "__main__":
    main()
