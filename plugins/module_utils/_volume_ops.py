# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker side of volume backups: volumes, the containers using them, the helper container, and the swap of
a restored volume's data (renames in the Docker host's volume directory)."""

from __future__ import annotations

import os
import shutil
import stat
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import TAR_CREATE

RESTORE_LABEL = "org.aiwfe.rollback=restore"


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
    cli.run([cli.docker, "volume", "create", "--label", RESTORE_LABEL, name], "docker volume create")
    return (volume_info(cli, name) or {}).get("Mountpoint", "")


def remove_volume(cli: DockerCli, name: str) -> None:
    """Empty a volume made by a restore and remove it (best effort: a failure leaves an empty, labelled volume)."""
    mountpoint = (volume_info(cli, name) or {}).get("Mountpoint", "")
    if mountpoint and os.path.isdir(mountpoint):
        shutil.rmtree(mountpoint)
    if mountpoint:
        os.makedirs(mountpoint, exist_ok=True)
    cli.run([cli.docker, "volume", "rm", name], "docker volume rm", check=False)


def swap(live: str, staged: str, keep: str) -> None:
    """live data -> keep volume, staged data -> live; every rename on the same filesystem.

    ``keep`` and ``staged`` are the data directories of two fresh volumes: ``keep`` (empty) is replaced by the live
    data, and ``staged`` is left as an empty directory. When the second rename fails the live data goes back.
    """
    os.rmdir(keep)
    os.rename(live, keep)
    try:
        os.rename(staged, live)
    except OSError:
        os.rename(keep, live)
        os.mkdir(keep)
        raise
    os.mkdir(staged)


def tar_argv(cli: DockerCli, volume: str, mountpoint: str | None, helper_image: str) -> list[str]:
    """tar of the volume's contents to stdout: on the host when ``mountpoint`` is given (direct access), else in a
    helper container without network that mounts the volume read-only."""
    if mountpoint:
        return ["tar", "-C", mountpoint] + TAR_CREATE
    return [cli.docker, "run", "--rm", "--network", "none", "--log-driver", "none", "-v", f"{volume}:/volume:ro",
            helper_image, "tar", "-C", "/volume"] + TAR_CREATE


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
