# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker side of volume backups: volumes, the containers using them, the helper container, and the swap of
a restored volume's data (renames in the Docker host's volume directory)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import StepJournal, failpoint
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import TAR_CREATE, VolumeError

RESTORE_LABEL = "org.aiwfe.rollback=restore"
# The restores' journal, <journal_dir>/volume-restore.json: one entry per restore, its state and every step.
JOURNAL = "volume-restore.json"
RESTORING, SWAPPING, SWAPPED, DONE, REVERTED = "restoring", "swapping", "swapped", "done", "reverted"
# The backups that stopped a volume's users, <journal_dir>/volume-backup.json: an entry is written before they are
# stopped and marked done once they run again, so a run killed in between leaves it pending and the next run of the
# module for that volume starts them (a SIGKILLed backup must not leave the database down).
BACKUP_JOURNAL = "volume-backup.json"
STOPPED = "stopped"
# What Docker accepts as a volume name (its own rule); anything else - an option, a path - is refused before use.
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,200}$")


def swap_journal(journal_dir: str) -> StepJournal:
    """The volume restores' journal (raises _files.JournalError when unreadable). Finished entries are forgotten
    (the newest 20 kept) once nothing of them is left: reverted, or their kept volume removed by retention."""
    return StepJournal(os.path.join(journal_dir, JOURNAL), (DONE, REVERTED),
                       forgettable=lambda entry: entry.get("state") == REVERTED or bool(entry.get("removed")))


def stop_journal(journal_dir: str) -> StepJournal:
    """The journal of the containers backups stopped (raises _files.JournalError when unreadable)."""
    return StepJournal(os.path.join(journal_dir, BACKUP_JOURNAL), (DONE,), key="backups")


def check_volume_name(name: t.Any, where: str) -> str:
    """``name`` when it is a Docker volume name, else VolumeError saying where it came from."""
    if not isinstance(name, str) or not VOLUME_NAME_RE.match(name):
        raise VolumeError(f"{where} {name!r} is not a Docker volume name (letters, digits, '_', '.', '-', not starting "
                          "with one of the last three): nothing was changed")
    return name


def volume_info(cli: DockerCli, name: str) -> dict[str, t.Any] | None:
    """`docker volume inspect` of one volume, None when it does not exist."""
    return cli.inspect("volume", [name]).get(name)


def volume_users(cli: DockerCli, volume: str) -> list[str]:
    """Names of the running containers that use the volume."""
    _rc, out, _err = cli.run([cli.docker, "ps", "--filter", f"volume={volume}", "--format", "{{.Names}}"], "docker ps")
    return [line for line in out.splitlines() if line]


def stop_containers(cli: DockerCli, names: list[str]) -> None:
    if names:
        cli.run([cli.docker, "stop", "--"] + names, "docker stop")


def start_containers(cli: DockerCli, names: list[str]) -> None:
    if names:
        cli.run([cli.docker, "start", "--"] + names, "docker start (start them by hand)")


def create_volume(cli: DockerCli, name: str) -> str:
    """Create a plain local volume labelled as made by a restore; returns its mountpoint."""
    cli.run([cli.docker, "volume", "create", "--label", RESTORE_LABEL, "--", check_volume_name(name, "volume")],
            "docker volume create")
    return (volume_info(cli, name) or {}).get("Mountpoint", "")


def remove_volume(cli: DockerCli, name: str, empty_first: bool = True) -> str:
    """Remove a volume made by a restore; returns '' or why the engine refused (e.g. a container uses it).

    ``empty_first`` (a staging volume, which nothing else uses): its data goes first, so a refusal leaves an empty,
    labelled volume. Without it (a kept volume) only the engine removes it, and only when no container uses it. A
    volume whose data directory a swap took away gets an empty one back first (the engine needs it)."""
    info = volume_info(cli, name)
    if info is None:
        return ""
    mountpoint = info.get("Mountpoint") or ""
    if mountpoint and empty_first and os.path.isdir(mountpoint):
        shutil.rmtree(mountpoint)
    if mountpoint and not os.path.isdir(mountpoint):
        os.makedirs(mountpoint, exist_ok=True)
    rc, _out, err = cli.run([cli.docker, "volume", "rm", "--", name], "docker volume rm", check=False)
    return "" if rc == 0 else (err.strip() or f"docker volume rm {name} failed (rc={rc})")


def swap(live: str, staged: str, keep: str) -> None:
    """live data -> keep volume, staged data -> live; every rename on the same filesystem.

    ``keep`` and ``staged`` are the data directories of two fresh volumes: ``keep`` (empty, or already gone) is
    replaced by the live data, ``staged`` is gone afterwards (remove_volume gives its volume an empty one back). When
    the second rename fails the live data goes back. A crash between the renames is finished by finish_swap.
    """
    if os.path.isdir(keep):
        os.rmdir(keep)
    os.rename(live, keep)
    failpoint("renamed")
    try:
        os.rename(staged, live)
    except OSError:
        os.rename(keep, live)
        os.mkdir(keep)
        raise


def finish_swap(live: str, staged: str, keep: str) -> str:
    """Bring a swap a crash interrupted to its end, from what the three data directories show; returns what it did
    (V(none): both renames were done; V(second rename); V(both renames): none was done). A state no crash of swap can
    leave (data where there should be none) raises VolumeError: it is not guessed."""
    if not os.path.lexists(staged):
        if os.path.isdir(live) and os.path.isdir(keep):
            return "none"
    elif not os.path.lexists(live):
        if os.path.isdir(keep):
            os.rename(staged, live)
            return "second rename"
    elif not (os.path.isdir(keep) and os.listdir(keep)):
        swap(live, staged, keep)
        return "both renames"
    raise VolumeError(f"cannot finish the interrupted swap: the data directories {live}, {staged} and {keep} are in a "
                      "state no interrupted swap leaves; compare them by hand")


def helper_name(volume: str) -> str:
    """The helper container's name (so a timeout can remove it: killing `docker run` leaves the container)."""
    return f"aiwfe-rollback-helper-{os.getpid()}-{volume}"[:200]


def tar_argv(cli: DockerCli, volume: str, mountpoint: str | None, helper_image: str) -> list[str]:
    """tar of the volume's contents to stdout: on the host when ``mountpoint`` is given (direct access), else in a
    helper container (named helper_name) without network that mounts the volume read-only."""
    if mountpoint:
        return ["tar", "-C", mountpoint] + TAR_CREATE
    return [cli.docker, "run", "--rm", "--name", helper_name(volume), "--network", "none", "--log-driver", "none",
            "-v", f"{check_volume_name(volume, 'volume')}:/volume:ro", helper_image, "tar", "-C", "/volume"] + TAR_CREATE


def remove_helper(cli: DockerCli, volume: str) -> None:
    """Remove the helper container of ``volume`` (after a timeout; best effort)."""
    cli.run([cli.docker, "rm", "-f", "--", helper_name(volume)], "docker rm", check=False)


def readable(path: str) -> bool:
    """True when this process can read the directory itself (the Docker host, as root)."""
    return bool(path) and os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)


def contents_line(volume: str, mountpoint: str) -> str:
    """One line about what a volume holds now (regular files and their bytes), for the diff."""
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
