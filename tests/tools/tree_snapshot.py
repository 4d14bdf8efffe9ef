# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print a JSON snapshot of a directory tree: per entry type, mode, owner, size, sha256, link target,
hard-link group and whether a file is sparse. Two trees are equal when their snapshots are."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys


def snapshot(root: str) -> dict:
    entries = {}
    inodes: dict[tuple[int, int], str] = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files) + ([] if base != root else ["."]):
            path = os.path.normpath(os.path.join(base, name))
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            entry = {"mode": oct(stat.S_IMODE(st.st_mode)), "type": stat.S_IFMT(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                entry.update(size=st.st_size, sha256=digest.hexdigest(), sparse=st.st_blocks * 512 < st.st_size // 2)
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1:
                    entry["hardlink_group"] = inodes.setdefault(key, rel)
            elif not stat.S_ISDIR(st.st_mode):
                entry["rdev"] = st.st_rdev
            entries[rel] = entry
    return entries


if __name__ == "__main__":
    json.dump(snapshot(sys.argv[1]), sys.stdout, sort_keys=True)
