# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fill a directory with mixed data for backup tests and benchmarks:
one third random bytes, one third compressible text (application log lines), one third many small files, plus owners, modes,
symlinks, hard links, empty directories and a sparse file.  Usage: make_tree.py ROOT MEGABYTES [SEED]"""

from __future__ import annotations

import os
import random
import sys

SERVICES = ("api", "worker", "perception-service", "memory-service", "reasoning-service", "postgres", "caddy")
LEVELS = ("INFO",) * 12 + ("DEBUG",) * 6 + ("WARNING",) * 2 + ("ERROR",)
MESSAGES = (
    "GET /health 200 {ms}ms", "POST /jobs 201 {ms}ms job_id={id}", "processed job {id} kind=embedding in {ms}ms",
    "connection pool size={n} in_use={m}", "checkpoint complete: wrote {n} buffers ({m}.{ms}%)",
    "memory {id} stored for document {n}", "reasoning step {n} of job {id} took {ms}ms", "retrying request to memory-service ({n}/3)",
    "alembic revision 0004 is current", "cache miss for key doc:{id}", "worker heartbeat jobs_processed={n}",
    "upstream api:8000 responded {ms}ms", "slow query ({ms}ms): SELECT * FROM jobs WHERE status = 'queued' LIMIT {n}",
)


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
        # Application log lines: what a service volume really holds.
        written, clock = 0, 1_764_000_000.0
        while written < third:
            lines = []
            for _line in range(2000):
                clock += rng.random() * 0.05
                message = rng.choice(MESSAGES).format(ms=rng.randint(1, 999), id=rng.randint(1, 10 ** 6), n=rng.randint(1, 500),
                                                      m=rng.randint(0, 99))
                lines.append(f"{clock:.3f} {rng.choice(LEVELS):<7} {rng.choice(SERVICES)}: {message}\n")
            block = "".join(lines)
            handle.write(block)
            written += len(block)
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
