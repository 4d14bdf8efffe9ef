# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming backup, verification and restore of Docker named volumes.

Backup: tar (host, or a helper container) | compressor -> this process, which hashes and writes a
temporary file, fsyncs it, verifies it, then renames it and its manifest into place.
Restore: one pass reads the archive, hashes it, decompresses it, and feeds the tar stream both to a
scanner (refuses the whole archive on any unsafe member) and to `tar -x` into a fresh staging volume;
only when the checksum, the scan, tar and the counts all agree is the staging data swapped in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import MemberStats, UnsafeArchive, manifest_path, scan_stream

CHUNK = 1 << 20
TAR_CREATE = ["--numeric-owner", "--sparse", "--xattrs", "--acls", "-cf", "-", "."]
TAR_EXTRACT = ["--numeric-owner", "--same-owner", "--same-permissions", "--xattrs", "--acls", "-xf", "-"]


class VolumeError(Exception):
    """A backup, verify or restore step failed; the message says what happened and what to do."""


def compressor(kind: str, level: int) -> list[str]:
    if kind == "zstd":
        return ["zstd", "-q", "-c", f"-{level}", "-T0"]
    if shutil.which("pigz"):
        return ["pigz", "-c", f"-{min(level, 9)}"]
    return ["gzip", "-c", f"-{min(level, 9)}"]


def decompressor(path: str) -> list[str]:
    if path.endswith(".zst"):
        return ["zstd", "-q", "-d", "-c"]
    return ["pigz", "-d", "-c"] if shutil.which("pigz") else ["gzip", "-d", "-c"]


def tool_versions(kind: str) -> dict[str, str]:
    versions = {}
    for tool, arg in (("tar", "--version"), (compressor(kind, 3)[0], "--version")):
        try:
            out = subprocess.run([tool, arg], capture_output=True, text=True, check=False, timeout=10)
            versions[tool] = (out.stdout or out.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            versions[tool] = "unknown"
    return versions


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stderr(proc: subprocess.Popen) -> str:
    try:
        return proc.stderr.read().decode("utf-8", "replace").strip()[-500:] if proc.stderr else ""
    except (OSError, ValueError):
        return ""


def create_archive(tar_argv: list[str], comp_argv: list[str], tmp_path: str) -> str:
    """Run tar | compressor, write the compressed stream to tmp_path (0600, fsynced); return its sha256."""
    digest = hashlib.sha256()
    tar = subprocess.Popen(tar_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    comp = subprocess.Popen(comp_argv, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tar.stdout.close()
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                block = comp.stdout.read(CHUNK)
                if not block:
                    break
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        tar.kill()
        comp.kill()
        tar.wait()
        comp.wait()
        raise VolumeError(f"writing {tmp_path} failed: {exc.strerror or exc}") from exc
    comp_rc = comp.wait()
    tar_rc = tar.wait()
    if tar_rc != 0:
        raise VolumeError(f"tar failed (rc={tar_rc}): {_stderr(tar)}")
    if comp_rc != 0:
        raise VolumeError(f"{comp_argv[0]} failed (rc={comp_rc}): {_stderr(comp)}")
    return digest.hexdigest()


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def stream_archive(path: str, extract_dir: str | None = None) -> tuple[str, MemberStats]:
    """Read the archive once: sha256 of the file, full decompression, member scan, optional extraction.

    Raises VolumeError (corrupt or truncated) or UnsafeArchive. With extract_dir, `tar -x` runs in it
    concurrently; callers must discard extract_dir when this raises.
    """
    digest = hashlib.sha256()
    decomp = subprocess.Popen(decompressor(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    scan_r, scan_w = os.pipe()
    scan_reader = os.fdopen(scan_r, "rb", buffering=CHUNK)
    scan_writer = os.fdopen(scan_w, "wb", buffering=0)
    outcome: dict[str, t.Any] = {}
    extract = None
    if extract_dir is not None:
        extract = subprocess.Popen(["tar", "-C", extract_dir] + TAR_EXTRACT, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed() -> None:
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(block)
                    decomp.stdin.write(block)
        except (OSError, ValueError) as exc:
            outcome["feed_error"] = str(exc)
        finally:
            try:
                decomp.stdin.close()
            except OSError:
                pass

    def scan() -> None:
        try:
            outcome["stats"] = scan_stream(scan_reader)
        except UnsafeArchive as exc:
            outcome["unsafe"] = exc
        except Exception as exc:  # pylint: disable=broad-exception-caught
            outcome["scan_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            # Drain, so the writer never blocks on a scanner that stopped early.
            while scan_reader.read(CHUNK):
                pass

    feeder = threading.Thread(target=feed, daemon=True)
    scanner = threading.Thread(target=scan, daemon=True)
    feeder.start()
    scanner.start()
    extract_broken = False
    try:
        while True:
            block = decomp.stdout.read(CHUNK)
            if not block:
                break
            scan_writer.write(block)
            if extract is not None and not extract_broken:
                try:
                    extract.stdin.write(block)
                except (BrokenPipeError, OSError):
                    extract_broken = True
    finally:
        scan_writer.close()
        if extract is not None:
            try:
                extract.stdin.close()
            except OSError:
                pass
    feeder.join()
    decomp_rc = decomp.wait()
    scanner.join()
    scan_reader.close()
    extract_rc = extract.wait() if extract is not None else 0
    if "unsafe" in outcome:
        raise outcome["unsafe"]
    if "feed_error" in outcome:
        raise VolumeError(f"reading {path} failed: {outcome['feed_error']}")
    if decomp_rc != 0:
        raise VolumeError(f"{path} is corrupt or truncated: decompression failed (rc={decomp_rc}): {_stderr(decomp)}")
    if "scan_error" in outcome:
        raise VolumeError(f"{path} is not a complete tar archive: {outcome['scan_error']}")
    if extract is not None and (extract_rc != 0 or extract_broken):
        raise VolumeError(f"tar -x into {extract_dir} failed (rc={extract_rc}): {_stderr(extract)}")
    return digest.hexdigest(), outcome["stats"]


def verify_archive(path: str, manifest: dict[str, t.Any], extract_dir: str | None = None) -> MemberStats:
    """Checksum, full read and member scan against the manifest; raises VolumeError or UnsafeArchive."""
    if not os.path.isfile(path):
        raise VolumeError(f"archive {path} does not exist")
    sha, stats = stream_archive(path, extract_dir)
    if sha != manifest.get("sha256"):
        raise VolumeError(f"checksum mismatch for {path}: manifest says {manifest.get('sha256')}, file is {sha}; "
                          "the archive is damaged or not the one the manifest describes")
    expected = manifest.get("members")
    if expected and {k: expected.get(k) for k in stats.as_dict()} != stats.as_dict():
        raise VolumeError(f"{path} holds {stats.as_dict()} but its manifest lists {expected}")
    return stats


def write_manifest_and_publish(tmp_archive: str, final_archive: str, manifest: dict[str, t.Any]) -> None:
    """Manifest first (temporary name), then rename archive, then manifest: a backup is only listed
    once both exist under their final names."""
    directory = os.path.dirname(final_archive)
    fd, tmp_manifest = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_manifest, 0o600)
        os.replace(tmp_archive, final_archive)
        os.replace(tmp_manifest, manifest_path(final_archive))
        _fsync_dir(directory)
    except OSError as exc:
        for leftover in (tmp_manifest, tmp_archive):
            if os.path.exists(leftover):
                os.unlink(leftover)
        if os.path.exists(final_archive) and not os.path.exists(manifest_path(final_archive)):
            os.unlink(final_archive)
        raise VolumeError(f"publishing the backup in {directory} failed: {exc.strerror or exc}") from exc


def timed(func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> tuple[t.Any, float]:
    start = time.monotonic()
    result = func(*args, **kwargs)
    return result, round(time.monotonic() - start, 3)
