# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a hostile or damaged backup (archive + matching manifest) for the restore tests.
Usage: make_bad_archive.py KIND GOOD_ARCHIVE OUT_DIR VOLUME [OUTSIDE]
KIND: dotdot, absolute, symlink-escape, device (crafted), flipped-byte, truncated (damaged copies of
GOOD_ARCHIVE): all with a manifest whose checksum matches, so the scan and the decompression must catch
them; wrong-checksum: an intact copy whose manifest has another checksum; option-name: an intact copy whose
manifest names the volume "--help". Prints the archive path.
OUTSIDE (default /etc): the directory the crafted archives try to write into - by enough '..' to reach it from
anywhere, by its absolute path, and through a symlink to it - so a test can watch it."""

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
          "wrong-checksum": "20000101T000007Z", "option-name": "20000101T000008Z"}
UP = "../" * 16


def _file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def crafted(kind: str, outside: str) -> bytes:
    buf = io.BytesIO()
    inside = outside.lstrip("/")
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        _file(archive, "ok.txt", b"ok\n")
        if kind == "dotdot":
            _file(archive, f"sub/{UP}{inside}/escaped-dotdot", b"bad\n")
        elif kind == "absolute":
            _file(archive, f"{outside}/escaped-absolute", b"bad\n")
        elif kind == "symlink-escape":
            link = tarfile.TarInfo("link")
            link.type, link.linkname = tarfile.SYMTYPE, f"{UP}{inside}"
            archive.addfile(link)
            _file(archive, "link/escaped-symlink", b"bad\n")
        else:
            dev = tarfile.TarInfo("dev-null")
            dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
            archive.addfile(dev)
    return subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(), capture_output=True, check=True).stdout


def main() -> None:
    kind, good, out_dir, volume = sys.argv[1:5]
    outside = sys.argv[5] if len(sys.argv) > 5 else "/etc"
    if kind in ("flipped-byte", "truncated", "wrong-checksum", "option-name"):
        with open(good, "rb") as handle:
            data = bytearray(handle.read())
        if kind == "flipped-byte":
            data[len(data) // 2] ^= 0x01
        elif kind == "truncated":
            data = data[: len(data) * 2 // 3]
    else:
        data = bytearray(crafted(kind, outside))
    with open(good + ".manifest.json", encoding="utf-8") as handle:
        manifest = json.load(handle)
    name = f"{volume}-{STAMPS[kind]}.tar.zst"
    manifest.update(archive=name, volume=volume, sha256=hashlib.sha256(bytes(data)).hexdigest(), archive_bytes=len(data))
    manifest.pop("members", None)
    if kind == "option-name":
        manifest["volume"] = "--help"
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
