# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files and time stamps: the one place for atomic writes, artifact publishing and the collection's time formats.

Every file the collection writes (ledger manifests, the lock, pin files, backups and their manifests) goes through
here, so a crash never leaves a half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
import typing as t

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MANIFEST_SUFFIX = ".manifest.json"
# Every temporary file the collection writes starts with this (remove_stale_temporaries cleans them up).
TEMP_PREFIX = ".tmp-"
# A temporary is stale once nobody writes in its directory and it was not modified for this long (seconds) ...
STALE_AFTER = 60
# ... or, while another run writes in that directory, once it was not modified for this long (a day).
STALE_AFTER_BUSY = 24 * 3600


# --- time stamps ----------------------------------------------------------------------------------------------

def utc_now() -> datetime.datetime:
    """Now, in UTC, to the second (what every recorded time uses)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def stamp(when: datetime.datetime | None = None) -> str:
    """The compact UTC stamp used in file and id names: 20261129T031500Z."""
    return (when or utc_now()).strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)


def iso(when: datetime.datetime | None = None) -> str:
    """ISO 8601 in UTC with a Z: 2026-11-29T03:15:00Z."""
    return (when or utc_now()).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- atomic writes ----------------------------------------------------------------------------------------------

def json_text(data: t.Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def fsync_dir(directory: str) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def writing_in(directory: str) -> t.Iterator[None]:
    """Held while a temporary file of this run exists in ``directory``: a shared flock on the directory itself, which
    the kernel drops when the process dies, so remove_stale_temporaries can tell a dead run's temporaries from a live
    one's."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(directory: str, now: float | None = None) -> list[str]:
    """Remove the temporary files (names starting with TEMP_PREFIX, directly in ``directory``) that a killed run left.

    Stale means: no process of the collection is writing in ``directory`` (nobody holds writing_in's lock, which
    publish, write_temp and copy_atomic hold while their temporary exists; a killed run's lock is gone with it) and
    the file was not modified for STALE_AFTER seconds (the moment between write_temp and its caller's rename); or,
    while a run does write there, the file was not modified for STALE_AFTER_BUSY (a writer keeps its own temporary
    fresh). Call it before writing a new temporary in ``directory``; a missing directory has none. Returns the paths
    removed, sorted; a file that cannot be removed is left (the next call tries again)."""
    if not os.path.isdir(directory):
        return []
    now = time.time() if now is None else now
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            min_age = STALE_AFTER
        except BlockingIOError:
            min_age = STALE_AFTER_BUSY
        removed = []
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if not name.startswith(TEMP_PREFIX):
                continue
            try:
                info = os.lstat(path)
                if not os.path.isdir(path) and now - info.st_mtime > min_age:
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                continue
        return removed
    finally:
        os.close(dir_fd)


def write_temp(directory: str, text: str, mode: int = 0o600, prefix: str = TEMP_PREFIX) -> str:
    """Write text to a new temporary file in ``directory`` (created 0700), fsynced, with ``mode``; returns its path."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with writing_in(directory):
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
        except BaseException:
            os.unlink(tmp)
            raise
    return tmp


def write_json_temp(directory: str, data: t.Any, mode: int = 0o600, prefix: str = TEMP_PREFIX) -> str:
    """write_temp of ``data`` as JSON."""
    return write_temp(directory, json_text(data), mode, prefix)


def write_text_atomic(path: str, text: str, mode: int = 0o600) -> None:
    """Write text to a temporary file in the same directory, fsync, then rename over ``path`` (the temporaries a
    killed run left there are removed first)."""
    directory = os.path.dirname(path)
    remove_stale_temporaries(directory)
    tmp = write_temp(directory, text, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    fsync_dir(directory)


def write_json_atomic(path: str, data: t.Any, mode: int = 0o600) -> None:
    """write_text_atomic of ``data`` as JSON."""
    write_text_atomic(path, json_text(data), mode)


def copy_atomic(source: str, path: str) -> None:
    """Copy ``source`` (content, mode, times) to a temporary file beside ``path``, fsync, then rename it over
    ``path``: whoever reads ``path`` sees the old file or the new one, never a part."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with writing_in(directory):
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle, open(source, "rb") as src:
                shutil.copyfileobj(src, handle, 1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
            shutil.copystat(source, tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    fsync_dir(directory)


def read_json(path: str) -> t.Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


# --- artifacts: a file plus its manifest, both or neither ----------------------------------------------------------

class ArtifactError(Exception):
    """Publishing an artifact failed; nothing of it is left behind."""


def manifest_path(artifact_path: str) -> str:
    return artifact_path + MANIFEST_SUFFIX


def load_manifest(artifact_path: str) -> dict[str, t.Any] | None:
    """The manifest next to an artifact, or None when it has none (an incomplete artifact)."""
    data = read_json(manifest_path(artifact_path))
    return data if isinstance(data, dict) else None


def artifact_exists(path: str) -> bool:
    """True when the artifact or its manifest (even one alone) is there."""
    return os.path.lexists(path) or os.path.lexists(manifest_path(path))


def fresh_stamp(taken: t.Callable[[datetime.datetime], bool]) -> datetime.datetime:
    """``utc_now()`` unless ``taken(now)`` says a name made from it exists already (names carry a time stamp to the
    second: a second backup or restore right after the first); then the next second's."""
    when = utc_now()
    for _attempt in range(2):
        if not taken(when):
            return when
        time.sleep(1.01 - datetime.datetime.now().microsecond / 1e6)
        when = utc_now()
    if taken(when):
        raise ArtifactError(f"the names made from the time stamp {stamp(when)} are taken: try again in a second")
    return when


def fresh_name(directory: str, name_at: t.Callable[[datetime.datetime], str]) -> str:
    """``name_at(time)`` for an artifact in ``directory`` that does not exist yet (see fresh_stamp): an existing
    artifact is never replaced."""
    return name_at(fresh_stamp(lambda when: artifact_exists(os.path.join(directory, name_at(when)))))


def publish(directory: str, name: str, write: t.Callable[[str], dict[str, t.Any]]) -> tuple[str, dict[str, t.Any]]:
    """Create the artifact ``directory/name`` (directory created 0700) with its manifest ``name.manifest.json``.

    ``write(tmp_path)`` fills a temporary file in the same directory and returns the artifact's manifest. The
    manifest is written under a temporary name, then the artifact and then the manifest are renamed to their final
    names and the directory is fsynced: an artifact only counts once its manifest exists, so a crash at any point
    leaves no artifact that looks complete. On any error every temporary file (and an artifact renamed without its
    manifest) is removed and the error propagates (OSError as ArtifactError). An existing artifact of that name is
    never replaced (ArtifactError before ``write`` runs; fresh_name picks a free name). The temporaries a killed run
    left in ``directory`` are removed first. Returns (path, manifest).
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    remove_stale_temporaries(directory)
    final = os.path.join(directory, name)
    if artifact_exists(final):
        raise ArtifactError(f"{final} already exists: an artifact is never replaced")
    tmp_artifact = os.path.join(directory, TEMP_PREFIX + name)
    tmp_manifest = ""
    try:
        with writing_in(directory):
            manifest = write(tmp_artifact)
            tmp_manifest = write_json_temp(directory, manifest)
            os.replace(tmp_artifact, final)
            os.replace(tmp_manifest, manifest_path(final))
        fsync_dir(directory)
    except BaseException as exc:
        for leftover in (tmp_manifest, tmp_artifact):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
        if os.path.exists(final) and not os.path.exists(manifest_path(final)):
            os.unlink(final)
        if isinstance(exc, OSError):
            raise ArtifactError(f"writing {final} failed: {exc.strerror or exc}") from exc
        raise
    return final, manifest


def remove_artifact(path: str) -> None:
    """Remove an artifact, its manifest first (so a crash in between never leaves a manifest without its file
    looking complete: an artifact without a manifest is not listed)."""
    manifest = manifest_path(path)
    if os.path.exists(manifest):
        os.unlink(manifest)
    if os.path.exists(path):
        os.unlink(path)


# --- step journals: what a multi-step change did so far, for a re-run after a crash -----------------------------------

# Test-only fault injection: when the module's environment sets it to a step's name, the process kills itself (SIGKILL,
# as a crash would) right after that step (the molecule scenarios postgres_dump and volume_backup use it).
FAILPOINT_ENV = "AIWFE_ROLLBACK_FAILPOINT"


def failpoint(step: str) -> None:
    """Test-only: die like a crash right after ``step`` when FAILPOINT_ENV names it."""
    if os.environ.get(FAILPOINT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class JournalError(Exception):
    """The journal cannot be read: nothing was changed."""


class StepJournal:
    """A JSON file ``{"version": 1, KEY: [entry, ...]}`` (0600, every write atomic), one entry per change, each with
    its ``state`` and the ``steps`` it went through (``begin`` then ``step``). Entries whose state is in ``final`` are
    finished; of those ``forgettable`` accepts, the newest ``keep_finished`` are kept and older ones forgotten. A file
    that exists but is not such a journal raises JournalError (the caller must change nothing then). The shared shape
    of the collection's restore journals (volume-restore.json; db-restore.json has the same shape with KEY swaps)."""

    def __init__(self, path: str, final: t.Sequence[str], key: str = "entries", keep_finished: int = 20,
                 forgettable: t.Callable[[dict[str, t.Any]], bool] = lambda entry: True) -> None:
        self.path = path
        self.final = tuple(final)
        self.key = key
        self.keep_finished = keep_finished
        self.forgettable = forgettable
        data = read_json(path)
        if data is None and os.path.lexists(path):
            raise JournalError(f"the journal {path} is unreadable")
        if data is not None and not (isinstance(data, dict) and isinstance(data.get(key), list)
                                     and all(isinstance(e, dict) for e in data[key])):
            raise JournalError(f"the journal {path} is not one this collection wrote")
        self.data = data or {"version": 1, key: []}

    @property
    def all_entries(self) -> list[dict[str, t.Any]]:
        return self.data[self.key]

    def pending(self, **match: t.Any) -> list[dict[str, t.Any]]:
        """Unfinished entries whose fields equal ``match``, oldest first."""
        return [e for e in self.all_entries if e.get("state") not in self.final
                and all(e.get(k) == v for k, v in match.items())]

    def save(self) -> None:
        forgotten = [e for e in self.all_entries if e.get("state") in self.final and self.forgettable(e)]
        for old in forgotten[:-self.keep_finished]:
            self.all_entries.remove(old)
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        write_json_atomic(self.path, self.data)

    def begin(self, state: str, **entry: t.Any) -> dict[str, t.Any]:
        entry.update(state=state, started=iso(), steps=[{"step": state, "at": iso()}])
        self.all_entries.append(entry)
        self.save()
        return entry

    def step(self, entry: dict[str, t.Any], state: str, **extra: t.Any) -> None:
        entry.update(extra, state=state)
        entry["steps"].append({"step": state, "at": iso()})
        self.save()
