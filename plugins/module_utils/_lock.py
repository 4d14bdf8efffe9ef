# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One rollback at a time: a per-project lock file on the managed host.

``<ledger_dir>/<project>/lock.json`` (mode 0600) names its holder: owner, operation, time, the pid and host
name of the ansible-playbook process that holds it, and a random token. A new lock is created with
``link(2)`` from a fully written temporary file, so it appears complete and only if no lock exists (two runs
racing cannot both win). Every change of the lock file (create, remove, take over) happens holding flock(2) on
the lock's directory, so removing a lock only if it still carries a token is one step: a lock taken by someone
else in between is never removed, and nobody can take the lock while it is being checked (no rename-aside window
in which a newcomer could slip in). The kernel drops the flock when a killed run's process ends.

A lock is stale when its holder process no longer exists on the same host (checked only when the lock was
taken from this host, the pid's start time guarding against pid reuse) or when it is older than max_age.
A stale lock is reported; it is taken over only when asked (steal_stale), or by naming its token.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import secrets
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._files import fsync_dir, utc_now, write_json_temp

LOCK_VERSION = 1
LOCK_NAME = "lock.json"
DEFAULT_MAX_AGE = 7200
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
REQUIRED = ("owner", "operation", "acquired", "acquired_epoch", "token")

Lock = t.Dict[str, t.Any]


class LockError(Exception):
    """A lock that cannot be taken or released; the message says what to do."""


class LockHeld(LockError):
    """Held by someone else (and not taken over)."""


def lock_path(ledger_dir: str, project: str) -> str:
    if not PROJECT_RE.match(project or ""):
        raise LockError(f"project name '{project}' is not a valid compose project name "
                        "(lower-case letters, digits, '_' and '-'): fix aiwfe_project_name. Nothing was changed.")
    return os.path.join(ledger_dir, project, LOCK_NAME)


def check_token(token: str, option: str) -> None:
    if token and not TOKEN_RE.match(token):
        raise LockError(f"{option} '{token}' is not a lock token (letters, digits, '_' and '-', up to 64): "
                        "copy it from the lock message or playbooks/unlock.yml. Nothing was changed.")


def new_token() -> str:
    return secrets.token_hex(8)


# --- processes -------------------------------------------------------------------------------------------------

def read_stat(pid: int, proc: str = "/proc") -> tuple[str, int, str] | None:
    """(comm, ppid, start time in clock ticks) of a process, None when it does not exist."""
    try:
        with open(os.path.join(proc, str(pid), "stat"), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # comm is in parentheses and may contain anything, so split at the last ')'
    head, _sep, rest = text.rpartition(")")
    fields = rest.split()
    if not _sep or len(fields) < 20:
        return None
    return head.split("(", 1)[1], int(fields[1]), fields[19]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int, proc: str = "/proc") -> str | None:
    stat = read_stat(pid, proc)
    return stat[2] if stat else None


def find_controller(start_pid: int, proc: str = "/proc") -> int | None:
    """The ansible-playbook (or ansible) process above ``start_pid``, when the module runs on the controller.

    Walks the parents up to the first process whose command name starts with ``ansible``, then further up while
    the parent has the same command name (the workers are forks of the main process). None when there is no
    such ancestor (a remote connection: the controller is another machine).
    """
    pid, seen = start_pid, set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        stat = read_stat(pid, proc)
        if stat is None:
            return None
        comm, ppid, _start = stat
        if comm.startswith("ansible"):
            while ppid > 1:
                parent = read_stat(ppid, proc)
                if parent is None or parent[0] != comm:
                    break
                pid, ppid = ppid, parent[1]
            return pid
        pid = ppid
    return None


# --- the lock record -------------------------------------------------------------------------------------------

def new_lock(project: str, owner: str, operation: str, pid: int | None, host: str, token: str,
             now: datetime.datetime, pid_start: str | None = None) -> Lock:
    return {
        "version": LOCK_VERSION,
        "project": project,
        "owner": owner,
        "operation": operation,
        "acquired": now.isoformat().replace("+00:00", "Z"),
        "acquired_epoch": int(now.timestamp()),
        "pid": pid,
        "pid_start": pid_start,
        "host": host,
        "token": token,
    }


def read_lock(path: str) -> Lock | None:
    """The lock at ``path``; None when there is none. A damaged file raises LockError saying what to do."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(f"cannot read the lock file {path}: {exc.strerror}. Run as a user who can (become: true). "
                        "Nothing was changed.") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        data, reason = None, f"not JSON ({exc})"
    else:
        missing = [key for key in REQUIRED if not isinstance(data, dict) or key not in data]
        reason = f"missing {', '.join(missing)}" if missing else ""
        if not missing and not (isinstance(data["token"], str) and TOKEN_RE.match(data["token"])):
            reason = "its token is not valid"
        if not missing and not isinstance(data["acquired_epoch"], int):
            reason = "acquired_epoch is not a number"
    if reason:
        raise LockError(f"the lock file {path} is damaged ({reason}), so it is unknown whether another rollback "
                        f"runs. Make sure none does (ps, the other operators), then move it aside: "
                        f"mv {path} {path}.damaged - and run again. Nothing was changed.")
    return data


def age_text(seconds: int) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def staleness(lock: Lock, now: datetime.datetime, max_age: int, this_host: str,
              alive: t.Callable[[int], bool] = pid_alive,
              start_of: t.Callable[[int], str | None] = process_start) -> str:
    """Why the lock is stale ('' when it is not)."""
    age = int(now.timestamp()) - int(lock["acquired_epoch"])
    pid = lock.get("pid")
    if isinstance(pid, int) and pid > 0 and lock.get("host") == this_host:
        if not alive(pid):
            return f"its process {pid} no longer exists on {this_host}"
        recorded = lock.get("pid_start")
        if recorded and start_of(pid) not in (None, recorded):
            return f"its process {pid} on {this_host} ended (the pid now belongs to another process)"
    if max_age > 0 and age > max_age:
        return f"it is {age_text(age)} old, older than max_age {age_text(max_age)}"
    return ""


def describe(lock: Lock, now: datetime.datetime) -> str:
    age = int(now.timestamp()) - int(lock["acquired_epoch"])
    pid = lock.get("pid")
    where = f"pid {pid} on {lock.get('host') or 'unknown host'}" if pid else f"host {lock.get('host') or 'unknown'} (pid unknown)"
    return (f"{lock['owner']} running {lock['operation']} since {lock['acquired']} ({age_text(age)} ago), "
            f"{where}, token {lock['token']}")


def how_to_clear(path: str, token: str) -> str:
    return (f"If you are sure it is no longer running, remove it with `ansible-playbook playbooks/unlock.yml "
            f"-e aiwfe_lock_break={token}` (or rerun with -e aiwfe_lock_break={token} to take it over; "
            f"lock file {path}).")


# --- file operations -------------------------------------------------------------------------------------------

@contextlib.contextmanager
def changing(directory: str) -> t.Iterator[None]:
    """Hold flock(2) on the lock's directory while the lock file changes (released when the process ends)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _link(tmp: str, path: str) -> None:
    # Holding changing(): link the fully written temporary ``tmp`` to ``path``, only if no lock exists.
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise LockHeld(f"another run took the lock {path} at the same moment: run again to see who holds it. "
                       "Nothing was changed.") from exc


def _unlink_if(path: str, token: str) -> None:
    # Holding changing(): remove the lock only if it carries ``token``.
    current = read_lock(path)
    if current is None:
        raise LockError(f"the lock {path} disappeared while it was being removed (another run removed it): run "
                        "again.")
    if current["token"] != token:
        raise LockHeld(f"the lock {path} changed while it was being removed (another run holds it now): run again "
                       "to see who. Nothing of theirs was removed.")
    os.unlink(path)


def create_exclusive(path: str, lock: Lock, replacing: str = "") -> None:
    """Write ``lock`` to a temporary file (0600, fsynced) and link it to ``path`` only if no lock exists - or, to take
    over, only if the lock there still carries the token ``replacing`` (removed and replaced in one step)."""
    directory = os.path.dirname(path)
    try:
        tmp = write_json_temp(directory, lock, 0o600, prefix=".tmp-lock-")  # written before changing(): it flocks too
    except OSError as exc:
        raise LockError(f"cannot write the lock {path}: {exc.strerror or exc}. Free space on (or fix the permissions of) "
                        f"{directory} and run again. Nothing was changed.") from exc
    try:
        with changing(directory):
            if replacing:
                _unlink_if(path, replacing)
            _link(tmp, path)
    finally:
        os.unlink(tmp)
    fsync_dir(directory)


def remove_if(path: str, token: str) -> None:
    """Remove the lock at ``path`` only if it still carries ``token``."""
    directory = os.path.dirname(path)
    with changing(directory):
        _unlink_if(path, token)
    fsync_dir(directory)


# --- the operations --------------------------------------------------------------------------------------------

def acquire(path: str, project: str, owner: str, operation: str, pid: int | None, host: str, this_host: str,
            token: str = "", break_token: str = "", steal_stale: bool = False, max_age: int = DEFAULT_MAX_AGE,
            check_mode: bool = False, now: datetime.datetime | None = None,
            alive: t.Callable[[int], bool] = pid_alive,
            start_of: t.Callable[[int], str | None] = process_start) -> dict[str, t.Any]:
    """Take the lock. Returns changed, token, lock, previous (a lock taken over), stale (its reason), msg."""
    check_token(token, "token")
    check_token(break_token, "break_token")
    now = now or utc_now()
    current = read_lock(path)
    token = token or new_token()
    pid_start = start_of(pid) if pid and host == this_host else None
    mine = new_lock(project, owner, operation, pid, host, token, now, pid_start)
    if current is None:
        if not check_mode:
            create_exclusive(path, mine)
        return {"changed": True, "token": token, "lock": mine, "previous": None, "stale": "",
                "msg": f"{'would take' if check_mode else 'took'} the lock {path} for {operation} (token {token})"}
    if current["token"] == token:
        return {"changed": False, "token": token, "lock": current, "previous": None, "stale": "",
                "msg": f"the lock {path} is already held by this run (token {token})"}
    stale = staleness(current, now, max_age, this_host, alive, start_of)
    if break_token and break_token != current["token"]:
        raise LockHeld(f"break_token {break_token} does not match the lock {path}, which is held by "
                       f"{describe(current, now)}. Nothing was changed: look at the lock again "
                       "(ansible-playbook playbooks/unlock.yml) and name its token.")
    if not (break_token or (stale and steal_stale)):
        if stale:
            head = f"Another operation holds a stale lock ({stale}) for project {project}"
            tail = " Or set steal_stale (-e aiwfe_lock_steal_stale=true) to take over stale locks."
        else:
            head, tail = f"Another operation holds the lock for project {project}", ""
        raise LockHeld(f"{head}: {describe(current, now)}. {'' if stale else 'Wait for it to finish. '}"
                       f"{how_to_clear(path, current['token'])}{tail} Nothing was changed.")
    why = f"named by break_token{f', stale: {stale}' if stale else ''}" if break_token else f"stale: {stale}"
    if not check_mode:
        create_exclusive(path, mine, replacing=current["token"])
    return {"changed": True, "token": token, "lock": mine, "previous": current, "stale": stale,
            "msg": f"{'would take' if check_mode else 'took'} over the lock {path} from {describe(current, now)} ({why}); token {token}"}


def release(path: str, token: str = "", break_token: str = "", check_mode: bool = False,
            now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Remove the lock if ``token`` (the holder's) or ``break_token`` (an operator's) matches it."""
    check_token(token, "token")
    check_token(break_token, "break_token")
    now = now or utc_now()
    current = read_lock(path)
    if current is None:
        return {"changed": False, "previous": None, "msg": f"no lock at {path}: nothing to release"}
    if current["token"] not in (token, break_token):
        given = " and ".join(f"{name} {value}" for name, value in (("token", token), ("break_token", break_token))
                             if value) or "no token"
        raise LockHeld(f"the lock {path} is held by {describe(current, now)}; {given} does not match it, so it was "
                       f"not released. {how_to_clear(path, current['token'])}")
    if not check_mode:
        remove_if(path, current["token"])
    return {"changed": True, "previous": current,
            "msg": f"{'would release' if check_mode else 'released'} the lock {path} held by {describe(current, now)}"}
