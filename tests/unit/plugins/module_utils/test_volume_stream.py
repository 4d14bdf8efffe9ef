# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""create_archive with the real tar and zstd: the members counted from tar's own listing must be what a
full read-back of the written archive finds."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _archive as archive
from ansible_collections.aiwfe.rollback.plugins.module_utils import _volume as volume

pytestmark = pytest.mark.skipif(not (shutil.which("tar") and shutil.which("zstd")), reason="needs GNU tar and zstd")


def make_tree(root):
    os.makedirs(root / "a" / "empty")
    (root / "a" / "file.txt").write_text("hello\n" * 1000)
    (root / 'odd "name"\n.txt').write_bytes(b"\x00\x01")
    os.symlink("file.txt", root / "a" / "link")
    os.link(root / "a" / "file.txt", root / "a" / "hard")


def test_listing_stats_match_the_read_back(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    out = str(tmp_path / "x.tar.zst")
    sha, stats = volume.create_archive(["tar", "-C", str(src)] + volume.TAR_CREATE, volume.compressor("zstd", 3), out)
    with open(out, "rb") as handle:
        assert sha == hashlib.sha256(handle.read()).hexdigest()
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert stats.as_dict() == {"files": 2, "dirs": 3, "links": 2, "other": 0, "bytes": 6002}
    read_back = volume.verify_archive(out, {"sha256": sha, "members": stats.as_dict()})
    assert read_back.as_dict() == stats.as_dict()


def test_link_leaving_the_volume_is_refused(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.symlink("/etc/passwd", src / "a" / "escape")
    with pytest.raises(archive.UnsafeArchive, match="absolute path '/etc/passwd'"):
        volume.create_archive(["tar", "-C", str(src)] + volume.TAR_CREATE, volume.compressor("zstd", 3), str(tmp_path / "x.tar.zst"))


def test_failed_tar_is_explained(tmp_path):
    with pytest.raises(volume.VolumeError, match=r"tar failed \(rc=2\): tar: .*missing"):
        volume.create_archive(["tar", "-C", str(tmp_path / "missing")] + volume.TAR_CREATE, volume.compressor("zstd", 3),
                              str(tmp_path / "x.tar.zst"))


class _Vfs:
    def __init__(self, free_blocks: int, size: int = 4096):
        self.f_bavail, self.f_frsize = free_blocks, size


def test_full_disk_note_names_the_full_disk_after_a_short_write(monkeypatch, tmp_path):
    # GNU tar's short write ("Wrote only") leaves the disk with nothing free; the note says so and what to do
    monkeypatch.setattr(volume.os, "statvfs", lambda path: _Vfs(0))
    note = volume.full_disk_note(str(tmp_path), "tar: ./blob: Wrote only 8192 of 10240 bytes")
    assert f"the disk of {tmp_path} is full (No space left on device: 0 bytes free)" in note
    assert "run again" in note


def test_full_disk_note_is_empty_when_the_disk_has_room_or_tar_said_it(monkeypatch, tmp_path):
    monkeypatch.setattr(volume.os, "statvfs", lambda path: _Vfs(1024))  # 4 MiB free: another failure
    assert volume.full_disk_note(str(tmp_path), "tar: Unexpected EOF in archive") == ""
    monkeypatch.setattr(volume.os, "statvfs", lambda path: _Vfs(0))
    assert volume.full_disk_note(str(tmp_path), "tar: ./blob: Cannot write: No space left on device") == ""


def test_full_disk_note_of_a_path_that_cannot_be_read_is_empty(tmp_path):
    assert volume.full_disk_note(str(tmp_path / "missing"), "tar: failed") == ""
