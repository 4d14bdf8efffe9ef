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
  - Before it writes, V(backup) removes the temporary files (C(.tmp-*)) a killed run left in O(backup_dir) - those
    no running backup is writing and not modified for a minute (a day while another run writes there), see
    RV(removed_temporaries).
  - The volume is read directly from its mountpoint when the module runs on the Docker host with access to it,
    otherwise through a short-lived helper container (O(helper_image)).
  - V(verify) checks the checksum and reads the whole archive back from disk (full decompression and member scan)
    without restoring it. A V(backup) does that read-back too before O(keep) / O(max_age_days) may delete any older
    backup; when it fails, the new backup is removed and nothing is pruned.
  - V(restore) refuses the whole archive when any member has an absolute path, a C(..) component, a link leaving the
    volume or is a device file; it extracts into a fresh staging volume while verifying, and only when everything
    agrees swaps the data in, keeping the old data as a new volume named in RV(kept_volume).
  - The swap is two renames of data directories, journaled in C(<journal_dir>/volume-restore.json) (mode 0600,
    written atomically; states C(restoring), C(swapping), C(swapped), C(done), C(reverted)). A restore first
    finishes or reverts what a killed restore of the same volume left (RV(recovered)) - reverted when it was killed
    before its data was verified (its staging volume removed), finished from wherever the renames stopped when it was
    killed later - and starts the containers that restore stopped. When the finished restore was of the same archive,
    it is not restored again.
  - The kept volume is named (RV(kept_volume)) before the containers start again, so a failing start still says where
    the data before is; the staging volume is removed in every case. O(keep_pre_restore) sets how many kept volumes
    of a volume stay.
  - Names are checked as Docker volume names (O(volume) and the volume an archive's manifest names) before use.
  - tar, the compressor and the helper container stop after O(timeout); containers the module stopped are started
    again, also then.
  - V(prune) applies O(keep) / O(max_age_days) after verifying the newest backup.
  - M(aiwfe.rollback.volume_backup_info) lists the backups.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
    details:
      - Backups, prunes and restores are reported, not made. A backup's would-be archive counts for O(keep) as it will.
      - V(verify), V(prune) and V(restore) read the archive back from disk in check mode too, so a restore that
        would be refused fails in check mode as well.
  diff_mode:
    support: full
    details:
      - V(backup) and V(prune) show the volume's archives in O(backup_dir) before and after (the new one added, the
        pruned ones gone); V(restore) shows what the volume holds before (file count, bytes) and after (the archive's
        members) and where the old data is kept. Works in check mode too.
  idempotent:
    support: partial
    details:
      - V(verify) never changes anything, and V(prune) changes nothing once the backups it selects are gone.
      - Every V(backup) makes a new archive (named by the time, never replacing one) and every V(restore) restores
        again, keeping the data it replaces in another volume.
options:
  state:
    description: What to do.
    type: str
    choices: [backup, verify, restore, prune]
    default: backup
  volume:
    description:
      - The named volume. Required for V(backup) and V(prune), and for V(verify) and V(restore) when O(archive=latest).
      - For V(restore) of an archive given by path it is optional and defaults to the volume the archive's manifest names.
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
  timeout:
    description:
      - Seconds the archiving (V(backup)), reading back (V(verify), a backup's read-back) or extraction (V(restore))
        may take; then tar, the compressor and the helper container are stopped, the containers the module stopped
        are started again and the module fails saying so. Raise it for very large volumes.
    type: int
    default: 3600
  journal_dir:
    description:
      - Directory of the restores' journal C(volume-restore.json) and of C(volume-backup.json), which records the
        containers a V(backup) with O(stop_containers) stopped until it started them again (created mode 0700).
      - Every run on this host must use the same one, so that a re-run finds what a killed run left - a restore to
        finish or revert, containers a killed backup left stopped (a V(backup) or V(restore) of that volume starts
        them first, RV(restarted)).
    type: path
    default: /var/lib/aiwfe-rollback
  keep_pre_restore:
    description:
      - After a successful V(restore), keep the volumes holding the data before (C(<volume>-pre-restore-<time>)) of
        the newest N restores of the volume and remove older ones. Only volumes of a restore the journal shows done
        are removed, never one a container uses (RV(notes)) or one the journal does not know. At least 1.
      - Each kept volume is a full copy of the volume's data, so size the disk for N of them.
    type: int
    default: 3
  docker_cli:
    description: The docker client.
    type: path
    default: docker
notes:
  - "Test-only fault injection: with C(AIWFE_ROLLBACK_FAILPOINT=renamed) (or C(swapped)) in the module's environment,
    a V(restore) kills itself with SIGKILL between the swap's two renames (or after them), as a crash would. The
    molecule scenario volume_backup uses it; never set it otherwise."
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
  description:
    - Path of the archive made, verified or restored. In check mode, for V(backup), the archive that would be made.
  returned: when an archive is involved (not for V(prune) when nothing verifies)
  type: str
  sample: /var/backups/aiwfe/ai_workflow_engine_postgres_data-20261129T031500Z.tar.zst
manifest:
  description:
    - The archive's manifest, C(ARCHIVE.manifest.json) beside it.
    - C(format), C(archive) (its name), C(volume), C(sha256), C(archive_bytes), C(members) (counts of C(files),
      C(dirs), C(links), C(other) and the C(bytes) of the files), C(compression), C(level), C(access), C(tools)
      (versions of tar and the compressor), C(created), C(host), C(seconds), C(stopped_containers).
  returned: when an archive is involved, except for V(backup) in check mode
  type: dict
access:
  description: How the volume was read - V(direct) (its mountpoint) or V(helper) (a helper container).
  returned: state is backup
  type: str
  sample: direct
volume:
  description: The volume restored into (O(volume), or the volume the archive's manifest names).
  returned: state is restore
  type: str
pruned:
  description: Archives deleted (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
restarted:
  description: Containers an earlier, interrupted backup of the volume had stopped, started again by this run.
  returned: when there were any
  type: list
  elements: str
kept_volume:
  description:
    - After a restore, the volume holding the data the volume had before. Also returned when the restore fails after
      the swap (the containers did not start again).
  returned: state is restore and not check mode
  type: str
  sample: ai_workflow_engine_postgres_data-pre-restore-20261129T031500Z
recovered:
  description:
    - Restores of this volume a killed run left, finished or reverted before this one (C(id), C(action) V(finished)
      or V(reverted); for finished ones C(kept_volume), C(archive), C(sha256)).
  returned: state is restore and not check mode
  type: list
  elements: dict
pending_swaps:
  description: In check mode, the interrupted restores of this volume a real run would finish or revert first (C(id), C(state), C(action)).
  returned: state is restore and check mode
  type: list
  elements: dict
removed_volumes:
  description: Kept volumes of older restores removed by O(keep_pre_restore).
  returned: state is restore and not check mode
  type: list
  elements: str
notes:
  description: What was left and why (a kept volume in use beyond O(keep_pre_restore), an undeletable staging volume).
  returned: when there is something to note
  type: list
  elements: str
removed_temporaries:
  description: Temporary files of killed runs removed from O(backup_dir) before the backup was written.
  returned: state is backup and not check mode
  type: list
  elements: str
stopped:
  description: Containers stopped and started again.
  returned: always
  type: list
  elements: str
seconds:
  description: Time taken by each step (C(backup), C(verify), C(restore)), in seconds.
  returned: always
  type: dict
  sample: {"backup": 6.81, "verify": 2.02}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume_runner import VolumeBackup

ARGUMENT_SPEC = {
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
    "timeout": {"type": "int", "default": 3600},
    "journal_dir": {"type": "path", "default": "/var/lib/aiwfe-rollback"},
    "keep_pre_restore": {"type": "int", "default": 3},
    "docker_cli": {"type": "path", "default": "docker"},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "backup", ["volume"]), ("state", "prune", ["volume"])],
        supports_check_mode=True,
    )
    job = VolumeBackup(DockerCli(module.run_command, module.params["docker_cli"]), module.params, module.check_mode)
    run_job(module, lambda: job.run(module._diff))


if __name__ == "__main__":
    main()
