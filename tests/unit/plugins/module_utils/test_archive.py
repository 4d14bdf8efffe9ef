# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import json
import os

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _archive as archive


@pytest.mark.parametrize("kind, name, link", [
    ("d", "./", ""), ("-", "./a/b.txt", ""), ("d", "dir/", ""), ("l", "a/link", "b.txt"), ("l", "a/up", "../c.txt"),
    ("l", "a/b/deep", "../../top"), ("h", "hard", "a/b.txt"), ("p", "pipe", ""), ("-", "a..b/c..", ""),
])
def test_safe_entries(kind, name, link):
    archive.check_entry(kind, name, link)


@pytest.mark.parametrize("kind, name, link, reason", [
    ("-", "/etc/passwd", "", "absolute path"),
    ("-", "a/../../x", "", "'..' component"),
    ("d", "..", "", "'..' component"),
    ("c", "dev", "", "device file"),
    ("b", "disk", "", "device file"),
    ("l", "a/link", "/etc", "absolute path"),
    ("l", "a/link", "../../etc", "leaves the volume"),
    ("l", "link", "..", "leaves the volume"),
    ("h", "hard", "../outside", "leaves the volume"),
    ("h", "hard", "/etc/shadow", "leaves the volume"),
])
def test_unsafe_entries(kind, name, link, reason):
    with pytest.raises(archive.UnsafeArchive, match=reason):
        archive.check_entry(kind, name, link)


# Recorded from GNU tar 1.34: tar -tv -P --quoting-style=c --numeric-owner
LISTING = r"""drwxr-xr-x 0/0               0 2026-11-25 19:13 "./"
drwxr-xr-x 0/0               0 2026-11-25 19:13 "./d/"
-rw-r--r-- 0/0               3 2026-11-25 19:13 "./d/a b.txt"
-rw-r--r-- 0/0               1 2026-11-25 19:13 "./d/we\"ird\nname"
hrw-r--r-- 0/0               0 2026-11-25 19:13 "./d/h" link to "./d/a b.txt"
prw-r--r-- 0/0               0 2026-11-25 19:13 "./d/p"
lrwxrwxrwx 0/0               0 2026-11-25 19:13 "./d/l" -> "a b.txt"
-rw-r--r--+ 999/998     12345 2026-11-25 19:13 "./d/caf\303\251"
"""


def test_scan_listing_counts():
    stats = archive.scan_listing(LISTING.splitlines(True))
    assert stats.as_dict() == {"files": 3, "dirs": 2, "links": 2, "other": 1, "bytes": 12349}


@pytest.mark.parametrize("line, reason", [
    ('crw-r--r-- 0/0             1,3 1970-01-01 00:00 "dev-null"', "device file"),
    ('-rw-r--r-- 0/0               4 1970-01-01 00:00 "/etc/aiwfe-escaped"', "absolute path"),
    ('-rw-r--r-- 0/0               4 1970-01-01 00:00 "sub/../../escaped.txt"', "'..' component"),
    ('lrw-r--r-- 0/0               0 1970-01-01 00:00 "link" -> "../../../etc"', "leaves the volume"),
    ('-rw-r--r-- 0/0               4 1970-01-01 00:00 "\\056\\056/x"', "'..' component"),
    ("garbage", "cannot understand"),
])
def test_scan_listing_refuses(line, reason):
    with pytest.raises(archive.UnsafeArchive, match=reason):
        archive.scan_listing(["-rw-r--r-- 0/0 3 1970-01-01 00:00 \"ok.txt\"\n", line + "\n"])


def test_c_unquote():
    assert archive.c_unquote(r"we\"ird\nname") == 'we"ird\nname'
    assert archive.c_unquote(r"caf\303\251") == "café"


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


def _artifact(directory, name):
    (directory / name).write_bytes(b"x")
    (directory / (name + ".manifest.json")).write_text(json.dumps({"archive": name}))


@pytest.mark.parametrize("name, suffixes, volume", [
    ("db-20261101T000000Z.dump", archive.DUMP_SUFFIXES, "db"),
    ("db-20261101T000000Z.pre-restore.dump", archive.DUMP_SUFFIXES, "db"),     # a restore's dump of the state before it
    ("db-x-20261101T000000Z.dump", archive.DUMP_SUFFIXES, "db-x"),             # another database, not a dump of db
    ("config.pre-restore-20261101T000000Z.tar.zst", archive.ARCHIVE_SUFFIXES, "config.pre-restore"),
    ("vol-20261101T000000Z.tar.gz", archive.ARCHIVE_SUFFIXES, "vol"),
])
def test_one_listing_for_archives_and_dumps(tmp_path, name, suffixes, volume):
    _artifact(tmp_path, name)
    other = archive.DUMP_SUFFIXES if suffixes == archive.ARCHIVE_SUFFIXES else archive.ARCHIVE_SUFFIXES
    assert [(b["volume"], b["path"]) for b in archive.list_backups(str(tmp_path), None, suffixes)] == [(volume, str(tmp_path / name))]
    assert archive.list_backups(str(tmp_path), volume + "x", suffixes) == []
    assert archive.list_backups(str(tmp_path), None, other) == []


def test_find_backup(tmp_path):
    for name in ("db-20261101T000000Z.dump", "db-20261102T000000Z.pre-restore.dump", "db_old-20261201T000000Z.dump"):
        _artifact(tmp_path, name)
    (tmp_path / "db-20261203T000000Z.dump").write_bytes(b"no manifest")
    # a restore's dump of the state before it is never `latest` (issue 12 defect 5): the newest plain dump is
    newest = str(tmp_path / "db-20261101T000000Z.dump")
    assert archive.find_backup(str(tmp_path), "latest", "db", "dump of db", archive.DUMP_SUFFIXES) == (newest, {"archive": os.path.basename(newest)})
    pre = "db-20261102T000000Z.pre-restore.dump"
    assert archive.find_backup(str(tmp_path), pre, "db", "dump of db", archive.DUMP_SUFFIXES) == (str(tmp_path / pre), {"archive": pre})
    by_name = archive.find_backup(str(tmp_path), "db-20261101T000000Z.dump", "db", "dump of db", archive.DUMP_SUFFIXES)
    assert by_name[0] == str(tmp_path / "db-20261101T000000Z.dump")
    with pytest.raises(archive.BackupNotFound, match="has no readable manifest .* not a complete dump of db; nothing was changed"):
        archive.find_backup(str(tmp_path), str(tmp_path / "db-20261203T000000Z.dump"), "db", "dump of db", archive.DUMP_SUFFIXES)
    with pytest.raises(archive.BackupNotFound, match="no dump of x in .*: nothing to verify or restore; nothing was changed"):
        archive.find_backup(str(tmp_path), "latest", "x", "dump of x", archive.DUMP_SUFFIXES)
    with pytest.raises(archive.BackupNotFound, match="'latest' needs a name"):
        archive.find_backup(str(tmp_path), "latest", None, "backup", archive.DUMP_SUFFIXES)
