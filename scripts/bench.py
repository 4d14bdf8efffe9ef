# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench (run as: python3 scripts/bench.py): aiwfe.rollback.volume_backup against the runbook's own way, side by side, in one run.

The runbook's way: `tar czf` of the volume through a helper container, then sha256sum of the archive;
restore with `tar xzf` through a helper container after checking the sha256. Ours: the module, run by
ansible, with its checksum and verification included. Data: AIWFE_BENCH_MB (default 1024) of mixed
data (random, compressible text, many small files). Page cache warm for both (each reads it once first)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = int(os.environ.get("AIWFE_BENCH_MB", "1024"))
WORK = os.environ.get("AIWFE_BENCH_DIR", "/var/tmp/aiwfe-bench")
VOLUME = "aiwfe_bench_data"
IMAGE = "local/debian:bookworm"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)[:200]} failed (rc={proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    out = run(argv).stdout
    return time.monotonic() - start, out


def mountpoint(volume: str) -> str:
    return run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", volume]).stdout.strip()


def module(args: dict) -> tuple[float, dict]:
    return module_call("aiwfe.rollback.volume_backup", args)


def module_call(name: str, args: dict) -> tuple[float, dict]:
    argv = [os.path.join(ROOT, ".venv/bin/ansible"), "-i", os.path.join(ROOT, "inventories/local"), "localhost",
            "-m", name, "-a", json.dumps(args), "-o"]
    start = time.monotonic()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal")
    out = run(argv, env=env).stdout
    elapsed = time.monotonic() - start
    return elapsed, json.loads(out.split("=>", 1)[1])


DB_COMPOSE = """services:
  postgres:
    image: aiwfe/postgres:15
    pull_policy: never
    stop_signal: SIGINT
    environment:
      POSTGRES_DB: ai_workflow_engine
      POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password
    secrets: [postgres_password]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 1s
      retries: 60
secrets:
  postgres_password:
    file: ./postgres_password
"""


def db_bench() -> None:
    """pg_dump/pg_restore of a database of AIWFE_BENCH_DB_MB (default 1100) MB: the runbook's plain dump vs the module.
    AIWFE_BENCH_ONLY=db runs only this part."""
    size_mb = int(os.environ.get("AIWFE_BENCH_DB_MB", "1100"))
    project_dir = f"{WORK}/db"
    os.makedirs(project_dir, mode=0o700)
    with open(f"{project_dir}/compose.yaml", "w", encoding="utf-8") as handle:
        handle.write(DB_COMPOSE)
    with open(f"{project_dir}/postgres_password", "w", encoding="utf-8") as handle:
        handle.write(os.urandom(12).hex())
    os.chmod(f"{project_dir}/postgres_password", 0o600)
    compose = ["docker", "compose", "-p", "aiwfe_bench_db", "--project-directory", project_dir]
    exec_psql = compose + ["exec", "-T", "-u", "postgres", "postgres", "psql", "-q", "-v", "ON_ERROR_STOP=1"]
    try:
        run(compose + ["up", "-d", "--wait"])
        rows = size_mb * 1000
        print(f"filling a {size_mb} MB table ({rows} rows of 1 kB) ...", flush=True)
        run(exec_psql + ["-d", "ai_workflow_engine", "-c",
                         "CREATE TABLE documents AS SELECT g AS id, now() AS created_at, md5(g::text) || "
                         f"repeat(md5((g::bigint * 7919)::text), 30) AS body FROM generate_series(1, {rows}) g"])
        db_size = int(run(exec_psql + ["-d", "ai_workflow_engine", "-tAc", "SELECT pg_database_size('ai_workflow_engine')"]).stdout)
        start = time.monotonic()
        with open(f"{WORK}/db/runbook.sql", "wb") as out:
            subprocess.run(compose + ["exec", "-T", "-u", "postgres", "postgres", "pg_dump", "-U", "postgres", "ai_workflow_engine"],
                           stdout=out, check=True)
        rb_dump = time.monotonic() - start
        ours_dump, dumped = module_call("aiwfe.rollback.postgres_dump", {
            "project_dir": project_dir, "project_name": "aiwfe_bench_db", "backup_dir": f"{WORK}/db/ours"})
        start = time.monotonic()
        run(exec_psql + ["-d", "postgres", "-c", "DROP DATABASE ai_workflow_engine"])
        run(exec_psql + ["-d", "postgres", "-c", "CREATE DATABASE ai_workflow_engine"])
        with open(f"{WORK}/db/runbook.sql", "rb") as source:
            subprocess.run(exec_psql + ["-d", "ai_workflow_engine"], stdin=source, check=True, capture_output=True)
        rb_restore = time.monotonic() - start
        ours_restore, restored = module_call("aiwfe.rollback.postgres_dump", {
            "state": "restore", "project_dir": project_dir, "project_name": "aiwfe_bench_db", "backup_dir": f"{WORK}/db/ours",
            "dump_file": dumped["dump_file"]})
        print(f"\ndatabase dump/restore, database of {db_size / 2**20:.0f} MiB (pg_database_size)")
        print(f"{'':22}{'runbook (plain SQL)':>20}{'aiwfe.rollback':>18}{'ratio':>9}")
        print(f"{'dump':22}{rb_dump:>18.1f} s{ours_dump:>16.1f} s{rb_dump / ours_dump:>8.1f}x")
        print(f"{'restore':22}{rb_restore:>18.1f} s{ours_restore:>16.1f} s{rb_restore / ours_restore:>8.1f}x")
        print(f"{'dump size':22}{os.path.getsize(f'{WORK}/db/runbook.sql') / 2**20:>16.0f} MiB"
              f"{dumped['manifest']['bytes'] / 2**20:>14.0f} MiB")
        print("ours: -Fc, validated with pg_restore --list, row counts and versions recorded; its restore also dumps the "
              f"state before it and checks the row counts afterwards (rows back: {restored['after']['row_counts']})")
    finally:
        subprocess.run(compose + ["down", "-v"], capture_output=True, check=False)


def main() -> None:
    if os.environ.get("AIWFE_BENCH_ONLY") == "db":
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK, mode=0o700)
        try:
            db_bench()
        finally:
            shutil.rmtree(WORK, ignore_errors=True)
        return
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/runbook", mode=0o700)
    for vol in (VOLUME, VOLUME + "_r1", VOLUME + "_r2"):
        subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True, check=False)
        run(["docker", "volume", "create", vol])
    try:
        print(f"making {MB} MiB of mixed data in volume {VOLUME} ...", flush=True)
        run([sys.executable, os.path.join(ROOT, "tests/tools/make_tree.py"), mountpoint(VOLUME), str(MB)])
        data_bytes = int(run(["du", "-s", "--block-size=1", mountpoint(VOLUME)]).stdout.split()[0])
        run(["tar", "-C", mountpoint(VOLUME), "-cf", "/dev/null", "."])  # warm the page cache for both

        rb_backup, _out = timed(["docker", "run", "--rm", "-v", f"{VOLUME}:/data", "-v", f"{WORK}/runbook:/backup", IMAGE,
                                 "tar", "czf", "/backup/data.tar.gz", "-C", "/data", "."])
        rb_sum, rb_sha = timed(["sha256sum", f"{WORK}/runbook/data.tar.gz"])
        rb_backup += rb_sum
        ours_backup, result = module({"volume": VOLUME, "backup_dir": f"{WORK}/ours"})
        archive = result["archive"]

        rb_check, _out = timed(["sha256sum", f"{WORK}/runbook/data.tar.gz"])
        rb_restore, _out = timed(["docker", "run", "--rm", "-v", f"{VOLUME}_r1:/data", "-v", f"{WORK}/runbook:/backup", IMAGE,
                                  "tar", "xzf", "/backup/data.tar.gz", "-C", "/data"])
        rb_restore += rb_check
        ours_restore, restored = module({"state": "restore", "volume": VOLUME + "_r2", "backup_dir": f"{WORK}/ours", "archive": archive})

        same = run([sys.executable, os.path.join(ROOT, "tests/tools/tree_snapshot.py"), mountpoint(VOLUME)]).stdout == \
            run([sys.executable, os.path.join(ROOT, "tests/tools/tree_snapshot.py"), mountpoint(VOLUME + "_r2")]).stdout
        rb_size = os.path.getsize(f"{WORK}/runbook/data.tar.gz")
        ours_size = os.path.getsize(archive)
        mb = data_bytes / 1e6
        print(f"\nvolume backup/restore, {data_bytes / 2**20:.0f} MiB of mixed data on disk, {os.cpu_count()} cores")
        print(f"{'':22}{'runbook (tar czf)':>20}{'aiwfe.rollback':>18}{'ratio':>9}")
        print(f"{'backup + sha256':22}{rb_backup:>18.1f} s{ours_backup:>16.1f} s{rb_backup / ours_backup:>8.1f}x")
        print(f"{'  MB/s':22}{mb / rb_backup:>20.0f}{mb / ours_backup:>18.0f}")
        print(f"{'restore + sha256':22}{rb_restore:>18.1f} s{ours_restore:>16.1f} s{rb_restore / ours_restore:>8.1f}x")
        print(f"{'  MB/s':22}{mb / rb_restore:>20.0f}{mb / ours_restore:>18.0f}")
        print(f"{'archive size':22}{rb_size / 2**20:>16.0f} MiB{ours_size / 2**20:>14.0f} MiB{rb_size / ours_size:>8.2f}x")
        print(f"module's own timing: backup {result['manifest']['seconds']}, restore {restored['seconds']}; "
              f"wall times include ansible start-up; ours also verifies (full read + member scan)")
        print(f"restored tree identical to the original (modes, owners, links, sparse): {same}")
        print(f"runbook sha256 {rb_sha.split()[0][:16]}..., ours {result['manifest']['sha256'][:16]}...")
        if os.environ.get("AIWFE_BENCH_DB", "1") == "1":
            db_bench()
    finally:
        for vol in [VOLUME, VOLUME + "_r1", VOLUME + "_r2"] + run(["docker", "volume", "ls", "-q", "--filter", f"name={VOLUME}"]).stdout.split():
            subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True, check=False)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
