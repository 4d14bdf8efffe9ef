#!/usr/bin/env python3
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fill a directory with mixed data for backup tests and benchmarks:
one third random bytes, one third compressible text, one third many small files, plus owners, modes,
symlinks, hard links, empty directories and a sparse file.  Usage: make_tree.py ROOT MEGABYTES [SEED]"""

from __future__ import annotations

import os
import random
import sys

WORDS = ("rollback release manifest volume backup postgres alembic caddy worker api health "
         "perception memory reasoning service compose deploy verify restore checksum").split()


def fill(root: str, megabytes: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    third = max(1, megabytes * (1 << 20) // 3)
    os.makedirs(os.path.join(root, "random"), exist_ok=True)
    with open(os.path.join(root, "random", "blob.bin"), "wb") as handle:
        left = third
        while left > 0:
            chunk = min(left, 1 << 20)
            handle.write(rng.randbytes(chunk))
            left -= chunk
    os.makedirs(os.path.join(root, "text"), exist_ok=True)
    with open(os.path.join(root, "text", "log.txt"), "w", encoding="utf-8") as handle:
        written = 0
        while written < third:
            line = " ".join(rng.choice(WORDS) for _ in range(12)) + f" {rng.randint(0, 10 ** 6)}\n"
            handle.write(line)
            written += len(line)
    small = os.path.join(root, "small")
    count = max(10, third // 4096)
    for index in range(count):
        sub = os.path.join(small, f"{index // 1000:03d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{index:06d}.dat"), "wb") as handle:
            handle.write(rng.randbytes(rng.randint(0, 2048)) + b"x" * rng.randint(0, 4096))
    special = os.path.join(root, "special")
    os.makedirs(os.path.join(special, "empty-dir"), exist_ok=True)
    with open(os.path.join(special, "owned.txt"), "w", encoding="utf-8") as handle:
        handle.write("owned by 999:998, mode 0640\n")
    os.chown(os.path.join(special, "owned.txt"), 999, 998)
    os.chmod(os.path.join(special, "owned.txt"), 0o640)
    os.chmod(os.path.join(special, "empty-dir"), 0o1777)
    os.symlink("owned.txt", os.path.join(special, "symlink"))
    os.symlink("../text/log.txt", os.path.join(special, "up-but-inside"))
    os.link(os.path.join(special, "owned.txt"), os.path.join(special, "hardlink"))
    with open(os.path.join(special, "sparse.img"), "wb") as handle:
        handle.seek(64 << 20)
        handle.write(b"end")


if __name__ == "__main__":
    fill(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 7)
