# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backups on disk (volume and configuration archives, database dumps): member safety, names, the one listing of
a backup directory, finding the backup to verify or restore, and retention (pure logic, no processes)."""

from __future__ import annotations

import datetime
import os
import posixpath
import re
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._files import load_manifest, manifest_path, parse_stamp, stamp

EXTENSIONS = {"zstd": ".tar.zst", "gzip": ".tar.gz"}
ARCHIVE_SUFFIXES = tuple(EXTENSIONS.values())
DUMP_SUFFIXES = (".dump",)
# NAME-STAMP[.pre-restore].EXT: volume archives, configuration archives (NAME is `config` or `config.pre-restore`)
# and database dumps (NAME is the database; a restore's dump of the state before it has the .pre-restore label).
NAME_RE = re.compile(r"^(?P<volume>.+)-(?P<stamp>\d{8}T\d{6}Z)(?P<label>\.pre-restore)?(?P<ext>\.tar\.zst|\.tar\.gz|\.dump)$")


class UnsafeArchive(Exception):
    """The archive holds a member that could write outside the volume; the whole archive is refused."""


class BackupNotFound(Exception):
    """There is no (complete) backup to verify or restore; nothing was changed."""


LISTING_RE = re.compile(r'^(?P<mode>\S+) (?P<owner>\S+)\s+(?P<size>\S+) (?P<date>\S+) (?P<time>\S+) '
                        r'"(?P<name>(?:[^"\\]|\\.)*)"(?: (?P<rel>->|link to) "(?P<link>(?:[^"\\]|\\.)*)")?$')
C_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "f": b"\f", "v": b"\v", "a": b"\a", "b": b"\b", "\\": b"\\", '"': b'"', "?": b"?"}


def c_unquote(text: str) -> str:
    """Undo GNU tar's --quoting-style=c (C escapes, octal bytes)."""
    if "\\" not in text:
        return text
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            nxt = text[index + 1]
            if nxt in "01234567":
                digits = re.match(r"[0-7]{1,3}", text[index + 1:]).group(0)
                out.append(int(digits, 8) & 0xFF)
                index += 1 + len(digits)
                continue
            out += C_ESCAPES.get(nxt, nxt.encode())
            index += 2
            continue
        out += char.encode("utf-8", "surrogateescape")
        index += 1
    return out.decode("utf-8", "surrogateescape")


def check_entry(kind: str, name: str, link: str = "") -> None:
    """Refuse absolute paths, '..' components, links leaving the root, and device files.

    kind is the first character of `tar -tv`'s mode column: '-' file, 'd', 'l' symlink, 'h' hard link,
    'c' / 'b' devices, 'p' fifo, 's' socket.
    """
    if name.startswith("/"):
        raise UnsafeArchive(f"member '{name}' has an absolute path")
    if ".." in name.split("/"):
        raise UnsafeArchive(f"member '{name}' has a '..' component")
    if kind in ("c", "b"):
        raise UnsafeArchive(f"member '{name}' is a device file")
    if kind == "l":
        if link.startswith("/"):
            raise UnsafeArchive(f"symlink '{name}' points to the absolute path '{link}', outside the volume")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(posixpath.normpath(name)), link))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchive(f"symlink '{name}' -> '{link}' leaves the volume")
    if kind == "h" and (link.startswith("/") or ".." in link.split("/")):
        raise UnsafeArchive(f"hard link '{name}' -> '{link}' leaves the volume")


class MemberStats:
    """Counts what a scan saw, for the manifest and for checking a restore."""

    def __init__(self) -> None:
        self.files = 0
        self.dirs = 0
        self.links = 0
        self.other = 0
        self.bytes = 0

    def add_listing_line(self, line: str) -> None:
        """Check and count one line of `tar -tv -P --quoting-style=c --numeric-owner`."""
        match = LISTING_RE.match(line.rstrip("\n"))
        if not match:
            raise UnsafeArchive(f"cannot understand the archive listing line {line.strip()!r}")
        self.add_listing_match(match)

    def add_listing_match(self, match: re.Match) -> None:
        """Check and count one member from a LISTING_RE match."""
        kind = match.group("mode")[0]
        check_entry(kind, c_unquote(match.group("name")), c_unquote(match.group("link") or ""))
        if kind == "-":
            self.files += 1
            self.bytes += int(match.group("size"))
        elif kind == "d":
            self.dirs += 1
        elif kind in ("l", "h"):
            self.links += 1
        else:
            self.other += 1

    def as_dict(self) -> dict[str, int]:
        return {"files": self.files, "dirs": self.dirs, "links": self.links, "other": self.other, "bytes": self.bytes}


def scan_listing(lines: t.Iterable[str]) -> MemberStats:
    """Check every member of a `tar -tv` listing; raises UnsafeArchive on the first unsafe one."""
    stats = MemberStats()
    for line in lines:
        stats.add_listing_line(line)
    return stats


def archive_name(volume: str, when: datetime.datetime, compression: str) -> str:
    return f"{volume}-{stamp(when)}{EXTENSIONS[compression]}"


def list_backups(directory: str, volume: str | None = None,
                 suffixes: t.Sequence[str] = ARCHIVE_SUFFIXES) -> list[dict[str, t.Any]]:
    """Backups (file + manifest) in directory whose names end with one of ``suffixes``, of ``volume`` (the name
    before the time stamp: a volume, C(config), a database) when given; oldest first. Files without a manifest
    naming them are not backups."""
    found = []
    if not os.path.isdir(directory):
        return found
    for name in sorted(os.listdir(directory)):
        match = NAME_RE.match(name)
        if not match or match.group("ext") not in suffixes or (volume and match.group("volume") != volume):
            continue
        path = os.path.join(directory, name)
        manifest = load_manifest(path)
        if manifest is None or manifest.get("archive") != name:
            continue
        found.append({"path": path, "volume": match.group("volume"), "stamp": match.group("stamp"), "manifest": manifest})
    found.sort(key=lambda b: (b["stamp"], b["path"]))
    return found


def find_backup(directory: str, given: str, volume: str | None, what: str,
                suffixes: t.Sequence[str] = ARCHIVE_SUFFIXES) -> tuple[str, dict[str, t.Any]]:
    """The backup to verify or restore and its manifest: ``given`` is a path, a name in ``directory``, or C(latest)
    (the newest backup of ``volume`` in list_backups that is no restore's copy of the state before it: a
    C(.pre-restore) dump is never C(latest), else re-running a restore would undo it). ``what`` names it in messages
    (C(backup of volume x)). Raises BackupNotFound when there is none or it has no manifest (an incomplete backup)."""
    if given != "latest":
        path = given if os.path.isabs(given) else os.path.join(directory, given)
    elif not volume:
        raise BackupNotFound(f"'latest' needs a name: whose newest {what}?")
    else:
        backups = [b for b in list_backups(directory, volume, suffixes)
                   if not NAME_RE.match(os.path.basename(b["path"])).group("label")]
        if not backups:
            raise BackupNotFound(f"no {what} in {directory}: nothing to verify or restore; nothing was changed")
        path = backups[-1]["path"]
    manifest = load_manifest(path)
    if manifest is None:
        raise BackupNotFound(f"{path} has no readable manifest ({os.path.basename(manifest_path(path))}): it is not a "
                             f"complete {what}; nothing was changed")
    return path, manifest


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
        when = parse_stamp(backup["stamp"])
        too_old = max_age_days is not None and (now - when) > datetime.timedelta(days=max_age_days)
        if too_many or too_old:
            doomed.append(backup)
    return doomed
