# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a hostile or damaged backup (archive + matching manifest) for the restore tests.
Usage: make_bad_archive.py KIND GOOD_ARCHIVE OUT_DIR VOLUME
KIND: dotdot, absolute, symlink-escape, device (crafted), flipped-byte, truncated (damaged copies of
GOOD_ARCHIVE): all with a manifest whose checksum matches, so the scan and the decompression must catch
them; wrong-checksum: an intact copy whose manifest has another checksum. Prints the archive path."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

STAMPS = {"dotdot": "20000101T000001Z", "absolute": "20000101T000002Z", "symlink-escape": "20000101T000003Z",
          "device": "20000101T000004Z", "flipped-byte": "20000101T000005Z", "truncated": "20000101T000006Z",
          "wrong-checksum": "20000101T000007Z"}


def crafted(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 3
        archive.addfile(ok, io.BytesIO(b"ok\n"))
        bad = tarfile.TarInfo({"dotdot": "sub/../../escaped.txt", "absolute": "/etc/aiwfe-escaped",
                               "symlink-escape": "link", "device": "dev-null"}[kind])
        if kind == "symlink-escape":
            bad.type, bad.linkname = tarfile.SYMTYPE, "../../../etc"
        elif kind == "device":
            bad.type, bad.devmajor, bad.devminor = tarfile.CHRTYPE, 1, 3
        else:
            bad.size = 4
        archive.addfile(bad, io.BytesIO(b"bad\n") if bad.isfile() else None)
    return subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(), capture_output=True, check=True).stdout


def main() -> None:
    kind, good, out_dir, volume = sys.argv[1:5]
    if kind in ("flipped-byte", "truncated", "wrong-checksum"):
        with open(good, "rb") as handle:
            data = bytearray(handle.read())
        if kind == "flipped-byte":
            data[len(data) // 2] ^= 0x01
        elif kind == "truncated":
            data = data[: len(data) * 2 // 3]
    else:
        data = bytearray(crafted(kind))
    with open(good + ".manifest.json", encoding="utf-8") as handle:
        manifest = json.load(handle)
    name = f"{volume}-{STAMPS[kind]}.tar.zst"
    manifest.update(archive=name, volume=volume, sha256=hashlib.sha256(bytes(data)).hexdigest(), archive_bytes=len(data))
    manifest.pop("members", None)
    if kind == "wrong-checksum":
        manifest["sha256"] = "0" * 64
    path = os.path.join(out_dir, name)
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    with open(path + ".manifest.json", "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    print(path)


if __name__ == "__main__":
    main()
