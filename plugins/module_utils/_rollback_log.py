# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback log: the runbook's "Lessons Learned Log", kept by the tool.

``<ledger_dir>/<project>/rollback-log.jsonl`` (mode 0600, in the ledger's project directory, made 0700 as the ledger
makes it) holds one JSON line per rollback. Appends happen holding flock(2) on the log file, so two runs never
interleave; annotate rewrites the file atomically (temporary file, fsync, rename) holding the same lock, and a
writer that waited on the old file opens the new one (the inode is checked after the lock is taken). A line that is
not an entry (the torn last line of a killed writer) is skipped with a warning when the log is read, kept as it is when
the log is rewritten, and ended with a line break before the next append, so it never swallows a new entry.

Times to detect and to recover are computed from the time stamps passed in, never typed. Nothing secret is written:
values of keys that look like secrets are stripped, passwords in URLs and ``password=...`` pairs in text are masked,
and every string of the caller's ``redact`` list is replaced, before anything is written or returned.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import re
import socket
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._files import utc_now, write_text_atomic
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import new_manifest_id

LOG_NAME = "rollback-log.jsonl"
ENTRY_VERSION = 1
MASK = "********"
# The engine's kinds (release_rollback_kind) and the runbook sections with a role of their own.
METHODS = {
    "automatic": "automatic rollback of a failed deploy (the deploy's health gate)",
    "blue-green": "blue-green switch back",
    "complete-system": "complete system rollback (runbook section E)",
    "configuration": "configuration rollback (runbook section 2)",
    "dependency": "service dependency rollback (runbook section B)",
    "migration": "database migration rollback (runbook section C)",
    "pythonpath": "Python import issues, PYTHONPATH (runbook section A)",
    "quick": "Docker container rollback (runbook section 1)",
    "restore": "restore from a backup set",
    "tls": "SSL/TLS certificate issues, Caddy (runbook section D)",
    "other": "other",
}
METHOD_ALIASES = {"config": "configuration", "full": "complete-system"}
RESULTS = ("recovered", "failed", "planned")
# What says which rollback an entry is: an entry of the same run id that differs in these is reported (and kept).
IDENTITY = ("method", "result", "from", "to", "backup_set", "failed_step")
# Clocks of controller and managed host may differ a little: a negative interval this small is taken as 0 (warned).
CLOCK_SLACK = 300
SHOW_KNOWN = 20
MIN_REDACT = 4

SECRET_KEY = re.compile(r"passw(or)?d|(^|[^a-z])pwd($|[^a-z])|secret|token|api[_-]?key|credential|private[_-]?key"
                        r"|authorization|cookie", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@")
PAIR_SECRET = re.compile(r"(?P<head>\b(?:password|passwd|pwd|secret|token|api[_-]?key)\b\s*[=:]\s*)"
                         r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)", re.IGNORECASE)
BEARER = re.compile(r"(?P<head>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)

Entry = t.Dict[str, t.Any]


class LogError(Exception):
    """Bad input or an unusable log file; the message says what to do. Nothing was written."""


# --- where ---------------------------------------------------------------------------------------------------------

def log_path(ledger_dir: str, project: str) -> str:
    return os.path.join(ledger_dir, project, LOG_NAME)


# --- time stamps ---------------------------------------------------------------------------------------------------

def parse_time(value: t.Any, option: str) -> datetime.datetime | None:
    """A time stamp given to the module: ISO 8601 (no offset - UTC; a space instead of the T is fine) or seconds since
    the epoch (C(date +%s)). None for None or ''."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            when = datetime.datetime.fromtimestamp(float(text), datetime.timezone.utc)
        else:
            when = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except (ValueError, OverflowError, OSError):
        raise LogError(f"{option} '{text}' is not a time stamp: give ISO 8601 (2026-11-29T03:15:00Z, as "
                       "ansible_date_time.iso8601 or now(utc=true) print it) or seconds since the epoch. "
                       "Nothing was written.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).replace(microsecond=when.microsecond // 1000 * 1000)


def iso_time(when: datetime.datetime | None) -> str | None:
    if when is None:
        return None
    spec = "milliseconds" if when.microsecond else "seconds"
    return when.astimezone(datetime.timezone.utc).isoformat(timespec=spec).replace("+00:00", "Z")


def interval(start: datetime.datetime | None, end: datetime.datetime | None, what: str, names: tuple[str, str],
             warnings: list[str]) -> int | float | None:
    """Seconds from start to end, to a tenth (None when either is unknown). A small negative interval (clocks of two
    machines) is 0 with a warning; a larger one is refused."""
    if start is None or end is None:
        return None
    seconds = (end - start).total_seconds()
    if seconds < -CLOCK_SLACK:
        raise LogError(f"{names[1]} {iso_time(end)} is before {names[0]} {iso_time(start)}: pass the time stamps in "
                       f"the order detected_at <= started_at <= recovered_at. Nothing was written.")
    if seconds < 0:
        warnings.append(f"{names[1]} {iso_time(end)} is {-seconds:g} s before {names[0]} {iso_time(start)} (the clocks "
                        f"of two machines?): {what} is recorded as 0 s")
        seconds = 0.0
    seconds = round(seconds, 1)
    return int(seconds) if seconds == int(seconds) else seconds


def human(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# --- secrets -------------------------------------------------------------------------------------------------------

class Redactor:
    """Masks secrets in what is about to be written: values under secret-looking keys, passwords in URLs,
    ``password=...`` pairs and ``Bearer ...`` credentials in text, and every string of ``redact``. ``found`` lists where
    (field paths, never the values)."""

    def __init__(self, redact: t.Sequence[str] | None = None) -> None:
        values = [v for v in (redact or []) if v]
        for number, value in enumerate(values, 1):
            if len(value) < MIN_REDACT:
                raise LogError(f"redact value {number} is shorter than {MIN_REDACT} characters: it would mask ordinary "
                               "words everywhere; list the secrets themselves. Nothing was written.")
        self.values = sorted(set(values), key=len, reverse=True)
        self.found: list[str] = []

    def text(self, value: str, where: str) -> str:
        out = value
        for secret in self.values:
            out = out.replace(secret, MASK)
        out = URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", out)
        out = PAIR_SECRET.sub(lambda m: m.group("head") + MASK, out)
        out = BEARER.sub(lambda m: m.group("head") + MASK, out)
        if out != value:
            self.found.append(where)
        return out

    def clean(self, value: t.Any, where: str) -> t.Any:
        if isinstance(value, str):
            return self.text(value, where)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                if SECRET_KEY.search(str(key)) and item not in (None, "", [], {}):
                    self.found.append(path)
                    out[key] = MASK
                else:
                    out[key] = self.clean(item, path)
            return out
        if isinstance(value, (list, tuple)):
            return [self.clean(item, f"{where}[{n}]") for n, item in enumerate(value)]
        return value

    def warning(self) -> str | None:
        if not self.found:
            return None
        return ("not written, as it looks secret (masked as " + MASK + "): " + ", ".join(sorted(set(self.found))))


# --- reading and writing -------------------------------------------------------------------------------------------

def parse_lines(data: bytes, path: str) -> tuple[list[bytes], list[Entry | None], list[str]]:
    """The log's lines (each with its line break, a last one without it when torn), the entry of each (None for a
    line that is not one) and a warning per such line."""
    lines = data.splitlines(keepends=True)
    entries: list[Entry | None] = []
    warnings = []
    for number, raw in enumerate(lines, 1):
        entry = None
        if raw.strip():
            try:
                entry = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                entry = None
            if not (isinstance(entry, dict) and isinstance(entry.get("id"), str)):
                entry = None
                torn = number == len(lines) and not raw.endswith(b"\n")
                why = "is cut short (a writer killed while writing it)" if torn else "is not a log entry"
                warnings.append(f"line {number} of {path} {why}: skipped")
        entries.append(entry)
    return lines, entries, warnings


def read_log(path: str) -> tuple[list[Entry], list[str]]:
    """The entries of the log, oldest first, and the warnings about lines skipped (no log - none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise LogError(f"cannot read the rollback log {path}: {exc.strerror}. Run as a user who can (become: true).") \
            from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        data = _read_all(fd)
    finally:
        os.close(fd)
    _lines, entries, warnings = parse_lines(data, path)
    return [e for e in entries if e is not None], warnings


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


@contextlib.contextmanager
def locked(path: str) -> t.Iterator[int]:
    """The log file opened for appending (created 0600, its directory 0700) and held with an exclusive flock(2). When
    the file was replaced (annotate's rename) while waiting for the lock, the new one is opened and locked instead."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            break
        os.close(fd)
    try:
        if held.st_mode & 0o777 != 0o600:
            os.fchmod(fd, 0o600)
        yield fd
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def entry_line(entry: Entry) -> bytes:
    return (json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def known_ids(entries: list[Entry]) -> str:
    ids = [str(e["id"]) for e in entries]
    if not ids:
        return "the log has no entries"
    if len(ids) > SHOW_KNOWN:
        return f"known (newest {SHOW_KNOWN} of {len(ids)}): " + ", ".join(ids[-SHOW_KNOWN:])
    return "known: " + ", ".join(ids)


def find(entries: list[Entry], wanted: str, path: str) -> int:
    """Index of the entry named ``wanted`` - latest, an entry id or a run id."""
    if not entries:
        raise LogError(f"the rollback log {path} has no entries, so there is nothing to annotate: every rollback "
                       "writes one (role aiwfe.rollback.rollback_log). Nothing was written.")
    if wanted == "latest":
        return len(entries) - 1
    for key in ("id", "run_id"):
        for index in range(len(entries) - 1, -1, -1):
            if entries[index].get(key) == wanted:
                return index
    raise LogError(f"no entry '{wanted}' in the rollback log {path} ({known_ids(entries)}); name one of them, its run "
                   "id, or latest. Nothing was written.")


# --- the entry -----------------------------------------------------------------------------------------------------

def method_name(method: str) -> str:
    name = METHOD_ALIASES.get(method, method)
    if name not in METHODS:
        raise LogError(f"method '{method}' is not a rollback kind: use one of {', '.join(sorted(METHODS))}. "
                       "Nothing was written.")
    return name


def build_entry(params: dict[str, t.Any], host: str, operator: str, now: datetime.datetime,
                warnings: list[str]) -> Entry:
    """The entry of O(state=present) (without id), checked and with its intervals computed; secrets are not yet
    removed (see Redactor)."""
    method = method_name(params["method"])
    result = params["result"]
    if result not in RESULTS:
        raise LogError(f"result '{result}' is not one of {', '.join(RESULTS)}. Nothing was written.")
    times = {key: parse_time(params.get(key), key) for key in ("detected_at", "started_at", "recovered_at")}
    if result != "recovered" and times["recovered_at"] is not None:
        raise LogError(f"recovered_at is given but result is {result}: only a recovered rollback has a recovery time. "
                       "Nothing was written.")
    if params.get("failed_step") and result != "failed":
        raise LogError(f"failed_step is given but result is {result}: name the failed step only with result=failed. "
                       "Nothing was written.")
    if result == "recovered" and times["recovered_at"] is None:
        times["recovered_at"] = now
    if result == "failed" and not params.get("failed_step"):
        warnings.append("result is failed but failed_step was not given: recorded as unknown")
    detect = interval(times["detected_at"], times["started_at"], "time_to_detect_s", ("detected_at", "started_at"),
                      warnings)
    recover = interval(times["started_at"], times["recovered_at"], "time_to_recover_s", ("started_at", "recovered_at"),
                       warnings)
    date = times["started_at"] or times["detected_at"] or now
    return {
        "version": ENTRY_VERSION,
        "run_id": params.get("run_id") or None,
        "project": params["project_name"],
        "date": iso_time(date),
        "recorded": iso_time(now),
        "host": host,
        "operator": operator,
        "failure": {"symptom": params.get("symptom") or "", "failed_checks": list(params.get("failed_checks") or [])},
        "method": method,
        "result": result,
        "from": {"release": params.get("from_release") or None, "manifest": params.get("from_manifest") or None},
        "to": {"release": params.get("to_release") or None, "manifest": params.get("to_manifest") or None},
        "backup_set": params.get("backup_set") or None,
        "failed_step": (params.get("failed_step") or "unknown") if result == "failed" else None,
        "detected_at": iso_time(times["detected_at"]),
        "started_at": iso_time(times["started_at"]),
        "recovered_at": iso_time(times["recovered_at"]),
        "time_to_detect_s": detect,
        "time_to_recover_s": recover,
        "root_cause": params.get("root_cause") or None,
        "prevention": params.get("prevention") or None,
        "extra": dict(params.get("extra") or {}),
        "annotated": None,
    }


# --- Markdown, in the runbook's "Lessons Learned Log" format -------------------------------------------------------

def _value(text: t.Any) -> str:
    """One list item's value: further lines indented under it."""
    return "\n  ".join(str(text).strip().splitlines()) if str(text).strip() else ""


def _release(side: dict[str, t.Any] | None) -> str:
    side = side or {}
    name, manifest = side.get("release"), side.get("manifest")
    if name and manifest and manifest != name:
        return f"{name} (manifest {manifest})"
    return str(name or manifest or "unknown")


def markdown_entry(entry: Entry) -> str:
    failure = entry.get("failure") or {}
    checks = failure.get("failed_checks") or []
    issue = failure.get("symptom") or ""
    if checks:
        issue = f"{issue}; failed checks: {', '.join(str(c) for c in checks)}" if issue else \
            f"failed checks: {', '.join(str(c) for c in checks)}"
    method = entry.get("method", "other")
    result = entry.get("result")
    if result == "recovered":
        recovery = f"{human(entry.get('time_to_recover_s'))} (from the start of the rollback to the proven recovery)"
    elif result == "failed":
        recovery = f"not recovered: the rollback failed at step {entry.get('failed_step') or 'unknown'}"
    else:
        recovery = "planned only (check mode): nothing was changed"
    todo = f"not recorded yet (add it: ansible-playbook playbooks/rollback_log.yml -e rollback_log_entry={entry['id']})"
    lines = [
        f"### {entry.get('date')} - {method} rollback, {result}",
        "",
        f"- Date/Time: {entry.get('date')} (UTC)",
        f"- Issue Description: {_value(issue) or 'not given'}",
        f"- Rollback Method Used: {method} - {METHODS.get(method, method)}",
        f"- Time to Recovery: {recovery}",
        f"- Root Cause: {_value(entry.get('root_cause') or '') or todo}",
        f"- Prevention Measures: {_value(entry.get('prevention') or '') or 'not recorded yet'}",
        f"- Result: {result}",
        f"- Time to Detect: {human(entry.get('time_to_detect_s'))}"
        + (f" (failure {entry['detected_at']}, rollback started {entry['started_at']})"
           if entry.get("detected_at") and entry.get("started_at") else ""),
        f"- From Release: {_release(entry.get('from'))}",
        f"- To Release: {_release(entry.get('to'))}",
        f"- Backup Set: {entry.get('backup_set') or 'none'}",
    ]
    if result == "failed":
        lines.append(f"- Failed Step: {entry.get('failed_step') or 'unknown'}")
    lines += [
        f"- Host: {entry.get('host')}",
        f"- Operator: {entry.get('operator')}",
        f"- Entry: {entry['id']}" + (f" (run {entry['run_id']})" if entry.get("run_id") else ""),
    ]
    for key, value in sorted((entry.get("extra") or {}).items()):
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"- {key}: {_value(shown)}")
    if entry.get("annotated"):
        lines.append(f"- Annotated: {entry['annotated'].get('at')} by {entry['annotated'].get('by')}")
    return "\n".join(lines) + "\n"


def markdown_log(entries: list[Entry], project: str, path: str) -> str:
    head = [f"# Lessons Learned Log - {project}", "",
            f"Every rollback event, newest last (kept by aiwfe.rollback in {path}).", ""]
    if not entries:
        head.append("No rollback recorded yet.\n")
        return "\n".join(head)
    return "\n".join(head) + "\n" + "\n".join(markdown_entry(e) for e in entries)


# --- the states ----------------------------------------------------------------------------------------------------

def present(path: str, params: dict[str, t.Any], host: str, operator: str, check_mode: bool,
            now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Append one entry (nothing when an entry of the same run_id exists). Returns changed, entry, warnings, msg."""
    now = now or utc_now()
    warnings: list[str] = []
    redactor = Redactor(params.get("redact"))
    entry = redactor.clean(build_entry(params, host, operator, now, warnings), "")
    if redactor.warning():
        warnings.append(redactor.warning() or "")
    run_id = entry["run_id"]
    if check_mode:
        entries, skipped = read_log(path)
        return _appended(path, entries, entry, run_id, now, skipped + warnings, check_mode, write=None)
    with locked(path) as fd:
        lines, parsed, skipped = parse_lines(_read_all(fd), path)
        entries = [e for e in parsed if e is not None]

        def write(line: bytes) -> None:
            # A torn last line gets its line break first, so it cannot swallow the new entry.
            _write_all(fd, (b"\n" if lines and not lines[-1].endswith(b"\n") else b"") + line)
            os.fsync(fd)
        return _appended(path, entries, entry, run_id, now, skipped + warnings, check_mode, write)


def _appended(path: str, entries: list[Entry], entry: Entry, run_id: str | None, now: datetime.datetime,
              warnings: list[str], check_mode: bool, write: t.Callable[[bytes], None] | None) -> dict[str, t.Any]:
    if run_id:
        for old in entries:
            if old.get("run_id") == run_id:
                differ = [k for k in IDENTITY if old.get(k) != entry.get(k)]
                if differ:
                    warnings.append(f"the entry {old['id']} of run {run_id} is kept as it is (it differs in "
                                    f"{', '.join(differ)}); add root cause and prevention with state=annotate")
                return {"changed": False, "entry": old, "warnings": warnings,
                        "msg": f"the log already has entry {old['id']} for run {run_id}: nothing appended"}
    # The ledger's naming: <stamp of the rollback's start>-<method>, .2, .3 ... when taken.
    entry = dict(entry, id=new_manifest_id(parse_time(entry["date"], "date") or now, entry["method"],
                                           [e["id"] for e in entries]))
    if write is not None:
        write(entry_line(entry))
    return {"changed": True, "entry": entry, "warnings": warnings,
            "diff": {"before": "", "after": markdown_entry(entry), "before_header": path,
                     "after_header": f"{path} (entry {entry['id']})"},
            "msg": f"{'would append' if check_mode else 'appended'} entry {entry['id']} to {path}"}


def annotate(path: str, wanted: str, root_cause: str | None, prevention: str | None, operator: str, check_mode: bool,
             redact: t.Sequence[str] | None = None, now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Set root_cause and/or prevention (None - leave it) of one entry (latest, an id or a run id); the file is
    rewritten atomically, every other line as it was. Returns changed, entry, before, warnings, msg, diff."""
    if root_cause is None and prevention is None:
        raise LogError("annotate needs root_cause or prevention (or both). Nothing was written.")
    now = now or utc_now()
    redactor = Redactor(redact)
    wanted_values = redactor.clean({"root_cause": root_cause, "prevention": prevention}, "")
    if check_mode or not os.path.exists(path):
        entries, warnings = read_log(path)
        return _annotated(path, entries, wanted, wanted_values, operator, now, redactor, warnings, None)
    with locked(path) as fd:
        lines, parsed, warnings = parse_lines(_read_all(fd), path)
        entries = [e for e in parsed if e is not None]

        def write(index: int, entry: Entry) -> None:
            line_no = [n for n, e in enumerate(parsed) if e is not None][index]
            new = list(lines)
            if new and not new[-1].endswith(b"\n"):
                new[-1] += b"\n"
            new[line_no] = entry_line(entry)
            text = b"".join(new).decode("utf-8", errors="replace")
            try:
                write_text_atomic(path, text, 0o600)
            except OSError as exc:
                raise LogError(f"cannot rewrite the rollback log {path}: {exc.strerror or exc}. Free space on (or fix "
                               "the permissions of) its directory and run again; the log is as it was.") from exc
        return _annotated(path, entries, wanted, wanted_values, operator, now, redactor, warnings, write)


def _annotated(path: str, entries: list[Entry], wanted: str, values: dict[str, t.Any], operator: str,
               now: datetime.datetime, redactor: Redactor, warnings: list[str],
               write: t.Callable[[int, Entry], None] | None) -> dict[str, t.Any]:
    index = find(entries, wanted, path)
    old = entries[index]
    new = dict(old)
    for key, value in values.items():
        if value is not None:
            new[key] = value or None
    if redactor.warning():
        warnings.append(redactor.warning() or "")
    if all(new.get(k) == old.get(k) for k in values):
        return {"changed": False, "entry": old, "before": old, "warnings": warnings,
                "msg": f"entry {old['id']} already has this root cause and prevention: nothing changed"}
    new["annotated"] = {"at": iso_time(now), "by": operator}
    if write is not None:
        write(index, new)
    return {"changed": True, "entry": new, "before": old, "warnings": warnings,
            "diff": {"before": markdown_entry(old), "after": markdown_entry(new),
                     "before_header": f"{path} (entry {old['id']})", "after_header": f"{path} (entry {old['id']})"},
            "msg": f"{'would annotate' if write is None else 'annotated'} entry {old['id']} in {path}"}


def query(path: str, last: int = 0) -> dict[str, t.Any]:
    """The entries (the newest ``last`` when > 0), oldest first."""
    if last < 0:
        raise LogError(f"last must be 0 (every entry) or more, not {last}")
    entries, warnings = read_log(path)
    total = len(entries)
    if last:
        entries = entries[-last:]
    return {"changed": False, "entries": entries, "count": total, "warnings": warnings,
            "msg": f"{len(entries)} of {total} entries of {path}"}


def check_markdown_path(path: str | None) -> None:
    """Refuse a markdown_path whose directory does not exist, before anything is written."""
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise LogError(f"markdown_path {path}: its directory {directory} does not exist. Create it or name another "
                       "file. Nothing was written.")


def write_markdown(path: str, text: str, check_mode: bool) -> bool:
    """Write the Markdown to ``path`` (0600, atomically) when it differs; whether it did (or would)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text and os.stat(handle.fileno()).st_mode & 0o777 == 0o600:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    if check_mode:
        return True
    try:
        write_text_atomic(os.path.abspath(path), text, 0o600)
    except OSError as exc:
        raise LogError(f"cannot write markdown_path {path}: {exc.strerror or exc}") from exc
    return True


def default_operator() -> str:
    """Who runs it when the caller does not say: AIWFE_OPERATOR, else the user the module runs as."""
    try:
        return os.environ.get("AIWFE_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def run(params: dict[str, t.Any], check_mode: bool, diff: bool, now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The module's work: the result to return (warnings in ``warnings``), or LogError."""
    host = params.get("host") or socket.gethostname()
    operator = params.get("operator") or default_operator()
    path = log_path(params["ledger_dir"], params["project_name"])
    check_markdown_path(params.get("markdown_path"))
    state = params["state"]
    if state == "present":
        result = present(path, params, host, operator, check_mode, now)
        result["markdown"] = markdown_entry(result["entry"])
    elif state == "annotate":
        result = annotate(path, params.get("entry") or "latest", params.get("root_cause"), params.get("prevention"),
                          operator, check_mode, params.get("redact"), now)
        result["markdown"] = markdown_entry(result["entry"])
    else:
        result = query(path, params.get("last") or 0)
        result["markdown"] = markdown_log(result["entries"], params["project_name"], path)
    result["log_file"] = path
    if params.get("markdown_path"):
        written = write_markdown(params["markdown_path"], result["markdown"], check_mode)
        result["markdown_written"] = written
        result["changed"] = result["changed"] or written
    if not diff:
        result.pop("diff", None)
    return result
