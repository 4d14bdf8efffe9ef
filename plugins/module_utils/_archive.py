# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Volume archives: member safety, names, manifests and retention (pure logic, no processes)."""

from __future__ import annotations

import datetime
import json
import os
import posixpath
import re
import tarfile
import typing as t

MANIFEST_SUFFIX = ".manifest.json"
EXTENSIONS = {"zstd": ".tar.zst", "gzip": ".tar.gz"}
NAME_RE = re.compile(r"^(?P<volume>.+)-(?P<stamp>\d{8}T\d{6}Z)(?P<ext>\.tar\.(zst|gz))$")


class UnsafeArchive(Exception):
    """The archive holds a member that could write outside the volume; the whole archive is refused."""


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse absolute paths, '..' components, links leaving the root, and device files."""
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchive(f"member '{name}' has an absolute path")
    if ".." in name.split("/"):
        raise UnsafeArchive(f"member '{name}' has a '..' component")
    if member.ischr() or member.isblk():
        raise UnsafeArchive(f"member '{name}' is a device file")
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            raise UnsafeArchive(f"symlink '{name}' points to the absolute path '{target}', outside the volume")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(posixpath.normpath(name)), target))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchive(f"symlink '{name}' -> '{target}' leaves the volume")
    if member.islnk():
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            raise UnsafeArchive(f"hard link '{name}' -> '{target}' leaves the volume")


class MemberStats:
    """Counts what a scan saw, for the manifest and for checking a restore."""

    def __init__(self) -> None:
        self.files = 0
        self.dirs = 0
        self.links = 0
        self.other = 0
        self.bytes = 0

    def add(self, member: tarfile.TarInfo) -> None:
        check_member(member)
        if member.isfile():
            self.files += 1
            self.bytes += member.size
        elif member.isdir():
            self.dirs += 1
        elif member.issym() or member.islnk():
            self.links += 1
        else:
            self.other += 1

    def as_dict(self) -> dict[str, int]:
        return {"files": self.files, "dirs": self.dirs, "links": self.links, "other": self.other, "bytes": self.bytes}


def scan_stream(fileobj: t.IO[bytes]) -> MemberStats:
    """Read a whole uncompressed tar stream; raises UnsafeArchive or tarfile.TarError."""
    stats = MemberStats()
    with tarfile.open(fileobj=fileobj, mode="r|") as archive:
        for member in archive:
            stats.add(member)
    return stats


def stamp(when: datetime.datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def archive_name(volume: str, when: datetime.datetime, compression: str) -> str:
    return f"{volume}-{stamp(when)}{EXTENSIONS[compression]}"


def manifest_path(archive_path: str) -> str:
    return archive_path + MANIFEST_SUFFIX


def load_manifest(archive_path: str) -> dict[str, t.Any] | None:
    try:
        with open(manifest_path(archive_path), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def list_backups(directory: str, volume: str | None = None) -> list[dict[str, t.Any]]:
    """Backups (archive + manifest) in directory, oldest first. Archives without a manifest are not backups."""
    found = []
    if not os.path.isdir(directory):
        return found
    for name in sorted(os.listdir(directory)):
        match = NAME_RE.match(name)
        if not match or (volume and match.group("volume") != volume):
            continue
        path = os.path.join(directory, name)
        manifest = load_manifest(path)
        if manifest is None or manifest.get("archive") != name:
            continue
        found.append({"path": path, "volume": match.group("volume"), "stamp": match.group("stamp"), "manifest": manifest})
    found.sort(key=lambda b: (b["stamp"], b["path"]))
    return found


def select_prune(backups: list[dict[str, t.Any]], keep: int | None, max_age_days: int | None,
                 now: datetime.datetime) -> list[dict[str, t.Any]]:
    """Backups to delete: beyond the newest `keep`, or older than `max_age_days`. The newest is always kept."""
    if not backups or (keep is None and max_age_days is None):
        return []
    newest_first = list(reversed(backups))
    doomed = []
    for index, backup in enumerate(newest_first):
        if index == 0:
            continue
        too_many = keep is not None and index >= keep
        when = datetime.datetime.strptime(backup["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        too_old = max_age_days is not None and (now - when) > datetime.timedelta(days=max_age_days)
        if too_many or too_old:
            doomed.append(backup)
    return doomed
