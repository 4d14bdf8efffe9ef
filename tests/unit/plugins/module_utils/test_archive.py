# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import io
import json
import tarfile

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _archive as archive


def member(name, kind="file", link=""):
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                 "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = link
    return info


@pytest.mark.parametrize("info", [
    member("."), member("./a/b.txt"), member("a/../b.txt".replace("../", "")), member("dir", "dir"),
    member("a/link", "sym", "b.txt"), member("a/up", "sym", "../c.txt"), member("a/b/deep", "sym", "../../top"),
    member("hard", "hard", "a/b.txt"), member("pipe", "fifo"),
])
def test_safe_members(info):
    archive.check_member(info)


@pytest.mark.parametrize("info, reason", [
    (member("/etc/passwd"), "absolute path"),
    (member("a/../../x"), "'..' component"),
    (member(".."), "'..' component"),
    (member("dev", "chr"), "device file"),
    (member("disk", "blk"), "device file"),
    (member("a/link", "sym", "/etc"), "absolute path"),
    (member("a/link", "sym", "../../etc"), "leaves the volume"),
    (member("link", "sym", ".."), "leaves the volume"),
    (member("hard", "hard", "../outside"), "leaves the volume"),
    (member("hard", "hard", "/etc/shadow"), "leaves the volume"),
])
def test_unsafe_members(info, reason):
    with pytest.raises(archive.UnsafeArchive, match=reason):
        archive.check_member(info)


def test_scan_refuses_whole_archive_and_counts():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
    buf.seek(0)
    assert archive.scan_stream(buf).as_dict() == {"files": 1, "dirs": 0, "links": 0, "other": 0, "bytes": 2}
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        tar.addfile(ok, io.BytesIO(b"ok"))
        tar.addfile(member("../evil"), io.BytesIO(b""))
    evil.seek(0)
    with pytest.raises(archive.UnsafeArchive):
        archive.scan_stream(evil)


def _backup(directory, volume, stamp):
    name = f"{volume}-{stamp}.tar.zst"
    (directory / name).write_bytes(b"x")
    (directory / (name + ".manifest.json")).write_text(json.dumps({"archive": name}))


def test_list_and_prune(tmp_path):
    for stamp in ("20261101T000000Z", "20261110T000000Z", "20261120T000000Z", "20261124T000000Z"):
        _backup(tmp_path, "vol", stamp)
    _backup(tmp_path, "other", "20261101T000000Z")
    (tmp_path / "vol-20261125T000000Z.tar.zst").write_bytes(b"no manifest: not a backup")
    (tmp_path / ".tmp-vol-20261125T010000Z.tar.zst").write_bytes(b"partial")
    backups = archive.list_backups(str(tmp_path), "vol")
    assert [b["stamp"] for b in backups] == ["20261101T000000Z", "20261110T000000Z", "20261120T000000Z", "20261124T000000Z"]
    now = datetime.datetime(2026, 11, 25, tzinfo=datetime.timezone.utc)
    assert [b["stamp"] for b in archive.select_prune(backups, 2, None, now)] == ["20261110T000000Z", "20261101T000000Z"]
    assert [b["stamp"] for b in archive.select_prune(backups, None, 10, now)] == ["20261110T000000Z", "20261101T000000Z"]
    assert archive.select_prune(backups, None, None, now) == []
    assert archive.select_prune(backups[:1], 1, 0, now) == []     # the newest is never deleted
