# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming backup, verification and restore of Docker named volumes.

Backup: tar (host, or a helper container) | compressor -> this process, which hashes the stream and writes
a temporary file (flushed to disk as it grows, fsynced at the end), checks every member in tar's own
verbose listing; _files.publish then renames it and its manifest into place. The full read-back (decompression and
member scan of the file on disk) is verify_archive, run by `state: verify` and before any pruning.
Restore: one pass reads the archive, hashes it, decompresses it, and feeds the tar stream both to a
scanner (refuses the whole archive on any unsafe member) and to `tar -x` into a fresh staging volume;
only when the checksum, the scan, tar and the counts all agree is the staging data swapped in.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import LISTING_RE, MemberStats, UnsafeArchive, scan_listing

CHUNK = 1 << 20
# Pipes of 1 MiB instead of 64 KiB: fewer wake-ups between tar, the compressor and this process.
PIPE_BYTES = 1 << 20
# Start writing the archive to disk every this many bytes (fdatasync in a thread), so the final fsync
# does not wait for the whole file.
FLUSH_BYTES = 64 << 20
# tar -cvv with the archive on stdout writes its member listing (the `tar -tv` format) to stderr: the
# members are checked and counted from it while the archive is made, without reading the archive back.
TAR_LISTED = ["--numeric-owner", "-vv", "--quoting-style=c"]
# Owners (numeric), modes, links, hard links, empty dirs and sparse files; not xattrs/ACLs (they cost
# about a third of the time on many small files, and the stack's volumes do not use them).
TAR_CREATE = TAR_LISTED + ["--sparse", "-cf", "-", "."]
TAR_EXTRACT = ["--numeric-owner", "--same-owner", "--same-permissions", "-xf", "-"]
# -P shows member names exactly as stored (a leading '/' included), so the scan sees what is really there.
TAR_LIST = ["tar", "-tv", "-P", "--quoting-style=c", "--numeric-owner", "-f", "-"]


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


def _stderr(proc: subprocess.Popen) -> str:
    try:
        return proc.stderr.read().decode("utf-8", "replace").strip()[-500:] if proc.stderr else ""
    except (OSError, ValueError):
        return ""


# Less than this free on the disk after a failed write means the write filled it.
FULL_DISK_BYTES = 64 * 1024


def full_disk_note(path: str, stderr: str) -> str:
    """A clear cause when a write into ``path`` failed because its disk filled up. GNU tar names ENOSPC ("No space
    left on device") only when a write fails outright; when the last write is short it says "Wrote only N of M
    bytes", which depends on how much space happened to be left. Either way the disk then has (almost) nothing free:
    that is what is reported, with what to do. Empty when the disk has room (the failure was something else)."""
    if "No space left on device" in stderr:
        return ""
    try:
        stat = os.statvfs(path)
    except OSError:
        return ""
    free = stat.f_bavail * stat.f_frsize
    if free >= FULL_DISK_BYTES:
        return ""
    return (f" - the disk of {path} is full (No space left on device: {free} bytes free); free space there "
            "(or restore to a disk with room) and run again")


def _close(stream: t.Any) -> None:
    try:
        stream.close()
    except OSError:
        pass


class _Verifier:
    """Decompress a compressed tar stream and check its listing, fed block by block (runs beside the writer)."""

    def __init__(self, decomp_argv: list[str]) -> None:
        self.decomp = subprocess.Popen(decomp_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lister = subprocess.Popen(TAR_LIST, stdin=self.decomp.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.decomp.stdout.close()
        self.outcome: dict[str, t.Any] = {}
        self.thread = threading.Thread(target=self._scan, daemon=True)
        self.thread.start()
        self.broken = False

    def _scan(self) -> None:
        lines = (raw.decode("utf-8", "surrogateescape") for raw in self.lister.stdout)
        try:
            self.outcome["stats"] = scan_listing(lines)
        except UnsafeArchive as exc:
            self.outcome["unsafe"] = exc
        finally:
            for _raw in self.lister.stdout:
                pass

    def write(self, block: bytes) -> None:
        if not self.broken:
            try:
                self.decomp.stdin.write(block)
            except (BrokenPipeError, OSError):
                self.broken = True

    def kill(self) -> None:
        for proc in (self.decomp, self.lister):
            proc.kill()
        _close(self.decomp.stdin)
        self.thread.join()
        self.decomp.wait()
        self.lister.wait()

    def finish(self, what: str) -> MemberStats:
        _close(self.decomp.stdin)
        decomp_rc = self.decomp.wait()
        lister_rc = self.lister.wait()
        self.thread.join()
        if "unsafe" in self.outcome:
            raise self.outcome["unsafe"]
        if decomp_rc != 0 or self.broken:
            raise VolumeError(f"{what} is corrupt or truncated: decompression failed (rc={decomp_rc}): {_stderr(self.decomp)}")
        if lister_rc != 0 or "stats" not in self.outcome:
            raise VolumeError(f"{what} is not a complete tar archive: {_stderr(self.lister)}")
        return self.outcome["stats"]


def _big_pipe(stream: t.Any) -> None:
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass  # a 64 KiB pipe only costs speed


class _Listing:
    """Reads `tar -cvv`'s stderr while tar runs: member lines are checked and counted, anything else
    (tar's warnings and errors, a helper container's messages) is kept to explain a failure."""

    def __init__(self, stream: t.Any) -> None:
        self.stream = stream
        self.stats = MemberStats()
        self.unsafe: UnsafeArchive | None = None
        self.other: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for raw in self.stream:
            line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
            match = LISTING_RE.match(line)
            if not match:
                self.other.append(line)
            elif self.unsafe is None:
                try:
                    self.stats.add_listing_match(match)
                except UnsafeArchive as exc:
                    self.unsafe = exc

    def messages(self) -> str:
        self.thread.join()
        return "; ".join(self.other)[-500:]

    def finish(self) -> MemberStats:
        self.thread.join()
        if self.unsafe is not None:
            raise self.unsafe
        for line in self.other:
            if not line.startswith("tar: "):
                raise UnsafeArchive(f"cannot understand the archive listing line {line.strip()!r}")
        return self.stats


def _datasync(fd: int, errors: list[OSError]) -> None:
    try:
        os.fdatasync(fd)
    except OSError as exc:
        errors.append(exc)


class Watchdog:
    """Kills the processes of a step that runs longer than ``seconds`` (None or 0: never) and then calls ``on_expiry``
    (e.g. removes a helper container), so a hang of tar, a compressor or a container never holds the caller (and the
    containers it stopped) for good. Use as a context manager around the step; ``check()`` raises the timeout."""

    def __init__(self, seconds: float | None, what: str, on_expiry: t.Callable[[], t.Any] | None = None) -> None:
        self.seconds = seconds
        self.what = what
        self.on_expiry = on_expiry
        self.procs: list[subprocess.Popen] = []
        self.expired = False
        self.timer = threading.Timer(seconds, self._expire) if seconds else None

    def watch(self, proc: subprocess.Popen) -> subprocess.Popen:
        self.procs.append(proc)
        if self.expired:
            proc.kill()
        return proc

    def _expire(self) -> None:
        self.expired = True
        for proc in self.procs:
            try:
                proc.kill()
            except OSError:
                pass
        if self.on_expiry is not None:
            # best effort: the timeout is reported whatever this does
            try:
                self.on_expiry()
            except Exception:  # pylint: disable=broad-exception-caught
                pass

    def __enter__(self) -> "Watchdog":
        if self.timer is not None:
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *_exc: t.Any) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def check(self) -> None:
        if self.expired:
            raise VolumeError(f"{self.what} took longer than {self.seconds} s and was stopped (timeout): is the disk or "
                              "the Docker engine hanging? Raise the timeout option if the volume is that large")


def create_archive(tar_argv: list[str], comp_argv: list[str], tmp_path: str,
                   watchdog: Watchdog | None = None) -> tuple[str, MemberStats]:
    """Run tar | compressor and write the compressed stream to tmp_path (0600, fsynced), hashing it as it
    is written and checking every member in tar's own listing (tar_argv must hold TAR_LISTED).
    ``watchdog`` (started by the caller) kills both when they take too long. Returns (sha256, member stats)."""
    watchdog = watchdog or Watchdog(None, "tar")
    digest = hashlib.sha256()
    tar = watchdog.watch(subprocess.Popen(tar_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    listing = _Listing(tar.stderr)
    _big_pipe(tar.stdout)
    comp = watchdog.watch(subprocess.Popen(comp_argv, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    tar.stdout.close()
    _big_pipe(comp.stdout)
    flush_errors: list[OSError] = []
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            written = flushed = 0
            flusher = None
            for block in iter(lambda: comp.stdout.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
                written += len(block)
                if written - flushed >= FLUSH_BYTES and (flusher is None or not flusher.is_alive()):
                    out.flush()
                    flusher = threading.Thread(target=_datasync, args=(out.fileno(), flush_errors), daemon=True)
                    flusher.start()
                    flushed = written
            out.flush()
            if flusher is not None:
                flusher.join()
            if flush_errors:
                raise flush_errors[0]
            watchdog.check()
            os.fsync(out.fileno())
    except OSError as exc:
        for proc in (tar, comp):
            proc.kill()
            proc.wait()
        listing.messages()
        raise VolumeError(f"writing {tmp_path} failed: {exc.strerror or exc}") from exc
    except VolumeError:
        for proc in (tar, comp):
            proc.wait()
        listing.messages()
        raise
    comp_rc = comp.wait()
    tar_rc = tar.wait()
    watchdog.check()
    if tar_rc != 0:
        raise VolumeError(f"tar failed (rc={tar_rc}): {listing.messages()}")
    if comp_rc != 0:
        raise VolumeError(f"{comp_argv[0]} failed (rc={comp_rc}): {_stderr(comp)}")
    return digest.hexdigest(), listing.finish()


def stream_archive(path: str, extract_dir: str | None = None, timeout: float | None = None) -> tuple[str, MemberStats]:
    """Read the archive once: sha256 of the file, full decompression, member scan, optional extraction.

    The compressed file is hashed and fed to the verifier (decompressor | `tar -tv`, whose listing is
    checked line by line); with extract_dir, a second decompressor feeds `tar -x` running in that
    directory at the same time. Every process is killed after ``timeout`` seconds. Raises VolumeError (corrupt,
    truncated, timed out) or UnsafeArchive; callers must discard extract_dir when this raises.
    """
    with Watchdog(timeout, f"reading {path}") as watchdog:
        digest = hashlib.sha256()
        verifier = _Verifier(decompressor(path))
        watchdog.watch(verifier.decomp)
        watchdog.watch(verifier.lister)
        extract = None
        if extract_dir is not None:
            unpack = watchdog.watch(subprocess.Popen(decompressor(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE))
            extract = watchdog.watch(subprocess.Popen(["tar", "-C", extract_dir] + TAR_EXTRACT, stdin=unpack.stdout,
                                                      stderr=subprocess.PIPE))
            unpack.stdout.close()
        broken = False
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    watchdog.check()
                    digest.update(block)
                    verifier.write(block)
                    if extract is not None and not broken:
                        try:
                            unpack.stdin.write(block)
                        except (BrokenPipeError, OSError):
                            broken = True
        except (OSError, VolumeError) as exc:
            verifier.kill()
            if extract is not None:
                unpack.kill()
                extract.kill()
                unpack.wait()
                extract.wait()
            if isinstance(exc, VolumeError):
                raise
            raise VolumeError(f"reading {path} failed: {exc.strerror or exc}") from exc
        finally:
            if extract is not None:
                _close(unpack.stdin)
        try:
            stats = verifier.finish(path)
        except (VolumeError, UnsafeArchive):
            watchdog.check()
            raise
        if extract is not None:
            unpack_rc = unpack.wait()
            extract_rc = extract.wait()
            watchdog.check()
            if unpack_rc != 0 or extract_rc != 0 or broken:
                error = _stderr(extract)
                raise VolumeError(f"tar -x into {extract_dir} failed (rc={extract_rc}): {error}"
                                  f"{full_disk_note(extract_dir, error)}")
    return digest.hexdigest(), stats


def verify_archive(path: str, manifest: dict[str, t.Any], extract_dir: str | None = None,
                   timeout: float | None = None) -> MemberStats:
    """Checksum, full read and member scan against the manifest; raises VolumeError or UnsafeArchive."""
    if not os.path.isfile(path):
        raise VolumeError(f"archive {path} does not exist")
    sha, stats = stream_archive(path, extract_dir, timeout)
    if sha != manifest.get("sha256"):
        raise VolumeError(f"checksum mismatch for {path}: manifest says {manifest.get('sha256')}, file is {sha}; "
                          "the archive is damaged or not the one the manifest describes")
    expected = manifest.get("members")
    if expected and {k: expected.get(k) for k in stats.as_dict()} != stats.as_dict():
        raise VolumeError(f"{path} holds {stats.as_dict()} but its manifest lists {expected}")
    return stats


def timed(func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> tuple[t.Any, float]:
    start = time.monotonic()
    result = func(*args, **kwargs)
    return result, round(time.monotonic() - start, 3)
