# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The states of aiwfe.rollback.postgres_dump: dump, verify and restore, in that order of steps; and restore_swap,
the restore by swap that postgres_dump, restore.yml and alembic_rollback's restore strategy share (docs/migrations.md).

The client calls (pg_dump, pg_restore, psql inside the container) are _postgres'; a dump is published through
_files.publish and found through _archive's one backup listing.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import time
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres as pg
from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import DUMP_SUFFIXES, BackupNotFound, find_backup
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import database_target
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import (
    ArtifactError, JournalError, StepJournal, failpoint, fresh_name, fresh_stamp, iso, publish, stamp, utc_now)
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service, sha256_file

# A restore first dumps the state it replaces: DATABASE-STAMP.pre-restore.dump.
PRE_RESTORE = ".pre-restore"


def dump_name(database: str, when: datetime.datetime, label: str = "") -> str:
    return f"{database}-{stamp(when)}{label}.dump"


def make_dump(target: pg.Target, directory: str, label: str = "") -> tuple[str, dict[str, t.Any]]:
    """Dump the database into ``directory`` (published with its manifest, or nothing); returns (path, manifest)."""
    name = fresh_name(directory, lambda when: dump_name(target.database, when, label))

    def write(tmp: str) -> dict[str, t.Any]:
        sha, found = pg.dump_with_facts(target, tmp)     # the row counts of the very state dumped (one snapshot)
        return dict(found, archive=name, sha256=sha, bytes=os.path.getsize(tmp),
                    toc_entries=pg.check_dump(target, tmp), client_version=pg.client_version(target),
                    database=target.database, format="custom", created=iso(), host=socket.gethostname())

    return publish(directory, name, write)


def verify_dump(target: pg.Target, path: str, manifest: dict[str, t.Any]) -> None:
    """The dump is the one its manifest describes (sha256) and pg_restore can read it."""
    if sha256_file(path) != manifest.get("sha256"):
        raise pg.PostgresError(f"checksum mismatch for {path}: the dump is damaged; nothing was changed")
    pg.check_dump(target, path)


# --- the restore by swap ------------------------------------------------------------------------------------------

JOURNAL = "db-restore.json"
# Test-only fault injection: when the module's environment sets it to a step's name, the process kills itself
# (SIGKILL, as a crash would) right after that step. Steps: created, restored, refused, renamed, swapped, allowed.
RESTORING, SWAPPING, SWAPPED, DONE, REVERTED = "restoring", "swapping", "swapped", "done", "reverted"
FINAL = (DONE, REVERTED)
KEEP_FINISHED_ENTRIES = 20
STAMP_RE = r"\d{8}t\d{6}z"
# <db>_pre_restore_<stamp>: 13 + 16 characters after the database's name, within PostgreSQL's 63.
MAX_DATABASE_NAME = pg.NAME_BYTES - len("_pre_restore_") - 16


class RestoreFailed(Exception):
    """restore_swap failed: ``msg`` says what happened, what is where and what to run; ``report`` is the swap's report
    so far; ``changed`` whether anything was changed (writers stopped, a dump written, a database touched)."""

    def __init__(self, msg: str, report: dict[str, t.Any], changed: bool, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.report = report
        self.changed = changed
        self.details = details


def swap_names(database: str, when: datetime.datetime) -> tuple[str, str]:
    """(<db>_restore_<stamp>, <db>_pre_restore_<stamp>); the stamp in lower case, so the names need no quotes."""
    if not pg.IDENTIFIER.match(database) or len(database) > MAX_DATABASE_NAME:
        raise pg.PostgresError(f"database name {database!r} must be a plain identifier of at most {MAX_DATABASE_NAME} "
                               "characters (the restore keeps the old database as <name>_pre_restore_<time stamp>)")
    suffix = stamp(when).lower()
    return f"{database}_restore_{suffix}", f"{database}_pre_restore_{suffix}"


def expected_facts(manifest: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"alembic_revision": manifest.get("alembic_revision"), "row_counts": manifest.get("row_counts") or {}}


def differs(found: dict[str, t.Any], expected: dict[str, t.Any]) -> str:
    """'' when the database holds what the dump recorded, else what differs."""
    if (found["alembic_revision"], found["row_counts"]) == (expected["alembic_revision"], expected["row_counts"]):
        return ""
    return (f"Alembic revision {found['alembic_revision']} and row counts {found['row_counts']}, the dump recorded "
            f"{expected['alembic_revision']} and {expected['row_counts']}")


class Journal(StepJournal):
    """<journal_dir>/db-restore.json (_files.StepJournal, key ``swaps``): one entry per restore by swap, with its state
    and every step. A re-run reads it to finish or revert a swap a crash interrupted; retention reads it to know which
    kept databases belong to a completed swap."""

    def __init__(self, directory: str) -> None:
        try:
            super().__init__(os.path.join(directory, JOURNAL), FINAL, key="swaps", keep_finished=KEEP_FINISHED_ENTRIES,
                             forgettable=lambda e: e.get("state") == REVERTED or bool(e.get("dropped")))
        except JournalError as exc:
            raise pg.PostgresError(f"{exc}: nothing was changed; compare it with the server's databases (<db>, "
                                   "<db>_restore_*, <db>_pre_restore_*) and move it aside") from exc

    def entries(self, database: str) -> list[dict[str, t.Any]]:
        return [e for e in self.all_entries if e.get("database") == database]

    def begin(self, state: str = RESTORING, **entry: t.Any) -> dict[str, t.Any]:
        return super().begin(state, **entry)


def _drop_restore_database(target: pg.Target, journal: Journal, entry: dict[str, t.Any], why: str) -> None:
    """Revert a swap that did not happen: the new database goes (only it), <db> takes connections again."""
    found = pg.databases(target)
    if entry["restore_database"] in found:
        pg.drop_database(target, entry["restore_database"], force=True)
    if found.get(entry["database"]) is False:
        pg.allow_connections(target, entry["database"])
    journal.step(entry, REVERTED, reason=why)


def _finish(target: pg.Target, journal: Journal, entry: dict[str, t.Any]) -> dict[str, t.Any]:
    """After the renames: both databases take connections again, the new <db> is read back, the swap is done."""
    pg.allow_connections(target, entry["database"], entry["pre_restore_database"])
    failpoint("allowed")
    after = pg.facts(target, list(entry["expected"]["row_counts"]))
    mismatch = differs(after, entry["expected"])
    journal.step(entry, DONE, after=after, mismatch=mismatch or None)
    return after


def _complete_renames(target: pg.Target, entry: dict[str, t.Any]) -> None:
    """Bring the names to the end of the swap from wherever a crash left them; refuse what the journal cannot
    explain."""
    live, old, new = entry["database"], entry["pre_restore_database"], entry["restore_database"]
    found = pg.databases(target)
    present = (live in found, old in found, new in found)
    if present == (True, True, False):        # both renames committed
        return
    if present == (True, False, True):        # not renamed yet (or rolled back)
        pg.refuse_connections(target, live)
        pg.swap(target, live, old, new)
    elif present == (False, True, True):      # only the first of two renames (a server without transactional renames)
        pg.rename(target, new, live)
    else:
        raise pg.PostgresError(
            f"cannot finish the interrupted restore {entry['id']}: the journal says {entry['state']}, the server has "
            f"{', '.join(n for n, there in zip((live, old, new), present) if there) or 'none'} of {live}, {old}, {new}; "
            "nothing was changed: look at the databases by hand")


def recover(target: pg.Target, journal: Journal, database: str) -> dict[str, t.Any] | None:
    """Finish or revert the swap a crash interrupted, from the journal and what the server holds: before the restored
    database was checked, it is dropped (<db> was never touched); after, the swap is finished. None when there is
    nothing to do."""
    pending = journal.pending()
    others = sorted({e.get("database") for e in pending} - {database})
    if others:
        raise pg.PostgresError(f"the journal {journal.path} holds an interrupted restore of database(s) "
                               f"{', '.join(map(str, others))}: run the restore of that database first; nothing was changed")
    if not pending:
        return None
    entry = pending[-1]
    for extra in pending[:-1]:      # never more than one, unless the journal was edited
        journal.step(extra, REVERTED, reason="superseded")
    if entry["state"] == RESTORING:
        _drop_restore_database(target, journal, entry, "interrupted before the restored database was checked")
        return {"action": "reverted", "id": entry["id"], "dropped": entry["restore_database"]}
    _complete_renames(target, entry)
    if entry["state"] != SWAPPED:
        journal.step(entry, SWAPPED)
    after = _finish(target, journal, entry)
    return {"action": "finished", "id": entry["id"], "kept_database": entry["pre_restore_database"], "after": after,
            "restored_from": entry["dump"], "dump_sha256": entry["dump_sha256"],
            "pre_restore_dump": entry.get("pre_restore_dump")}


def prune_kept(target: pg.Target, journal: Journal, database: str, keep: int) -> tuple[list[str], list[str]]:
    """Drop the <db>_pre_restore_* databases beyond the ``keep`` newest, only those of a swap the journal shows done
    (one this collection made and checked); a database still in use is kept (a note). Returns (dropped, notes)."""
    found = pg.databases(target)
    name_re = re.compile(rf"^{re.escape(database)}_pre_restore_{STAMP_RE}$")
    done = [e for e in journal.entries(database) if e.get("state") == DONE and not e.get("dropped")
            and name_re.match(str(e.get("pre_restore_database"))) and e["pre_restore_database"] in found]
    done.sort(key=lambda e: e["pre_restore_database"], reverse=True)
    dropped: list[str] = []
    notes: list[str] = []
    for entry in done[keep:]:
        try:
            pg.drop_database(target, entry["pre_restore_database"])
        except pg.PostgresError as exc:
            notes.append(f"kept {entry['pre_restore_database']} beyond keep_pre_restore={keep}: {exc}")
            continue
        dropped.append(entry["pre_restore_database"])
        entry["dropped"] = iso()
    if dropped:
        journal.save()
    return dropped, notes


def pending_swap(journal_dir: str) -> list[dict[str, t.Any]]:
    """The interrupted swaps a restore would finish or revert first (for check mode: reads, changes nothing)."""
    return [{"id": e.get("id"), "database": e.get("database"), "state": e.get("state"),
             "action": "revert" if e.get("state") == RESTORING else "finish"} for e in Journal(journal_dir).pending()]


def _after_failed_swap(target: pg.Target, journal: Journal, entry: dict[str, t.Any], exc: pg.PostgresError) -> None:
    """The renames failed (a session would not end, a lock timed out, the server went away): when the server shows
    they did not happen, revert (drop the new database, <db> takes connections again) and raise; when they did
    (only the answer was lost), return so that the swap is finished; when it cannot be read, raise naming the
    journal (a re-run finishes the swap)."""
    live, old, new = entry["database"], entry["pre_restore_database"], entry["restore_database"]
    try:
        found: dict[str, bool] | None = pg.databases(target)
    except pg.PostgresError:
        found = None
    if found is not None and old in found and live in found and new not in found:
        return
    if found is not None and live in found and new in found and old not in found:
        try:
            _drop_restore_database(target, journal, entry, str(exc))
        except pg.PostgresError:
            pass
        else:
            raise pg.PostgresError(f"swapping {new} in for {live} failed: {exc}; {new} was dropped, {live} takes "
                                   "connections again and holds what it held") from exc
    raise pg.PostgresError(f"swapping {new} in for {live} failed: {exc}; the journal {journal.path} records how far it "
                           "got: re-run the restore to finish the swap") from exc


def _swap(target: pg.Target, journal: Journal, path: str, manifest: dict[str, t.Any], report: dict[str, t.Any]) -> None:
    """Create <db>_restore_<stamp>, restore into it, check it, swap the names, read <db> back."""
    database = target.database
    expected = expected_facts(manifest)
    found = pg.databases(target)
    if database not in found:
        raise pg.PostgresError(f"database {database} does not exist on the server: nothing to swap with")
    when = fresh_stamp(lambda moment: any(name in found for name in swap_names(database, moment)))
    new, old = swap_names(database, when)
    props = pg.database_properties(target, database)
    entry = journal.begin(id=stamp(when), database=database, restore_database=new, pre_restore_database=old,
                          dump=path, dump_sha256=manifest.get("sha256"), pre_restore_dump=report["pre_restore_dump"],
                          expected=expected)
    try:
        pg.create_database(target, new, database, props)
        failpoint("created")
        pg.restore_into(target.on(new), path)
        failpoint("restored")
        mismatch = differs(pg.facts(target.on(new), list(expected["row_counts"])), expected)
        if mismatch:
            raise pg.PostgresError(f"the restored database {new} holds {mismatch}")
    except pg.PostgresError as exc:
        try:
            _drop_restore_database(target, journal, entry, str(exc))
        except pg.PostgresError as again:
            raise pg.PostgresError(f"the restore into the new database {new} failed: {exc}; dropping {new} failed too "
                                   f"({again}): {database} was not touched, a re-run drops {new} (journal "
                                   f"{journal.path})") from exc
        raise pg.PostgresError(f"the restore into the new database {new} failed: {exc}; {new} was dropped and "
                               f"{database} was not touched") from exc
    journal.step(entry, SWAPPING)
    try:
        pg.refuse_connections(target, database)
        failpoint("refused")
        pg.swap(target, database, old, new)
        failpoint("renamed")
    except pg.PostgresError as exc:
        _after_failed_swap(target, journal, entry, exc)
    journal.step(entry, SWAPPED)
    failpoint("swapped")
    report["kept_database"] = old
    report["after"] = _finish(target, journal, entry)
    if entry.get("mismatch"):
        raise pg.PostgresError(f"after the swap {database} holds {entry['mismatch']}; the database before is kept as "
                               f"{old}, its dump is {report['pre_restore_dump']}")


def restore_swap(cli: DockerCli, project: ComposeProject, target: pg.Target, path: str, manifest: dict[str, t.Any], *,
                 writers: t.Sequence[str], backup_dir: str, journal_dir: str, keep_pre_restore: int = 3,
                 restart_writers: bool = True, pre_restore_dump: str | None = None) -> dict[str, t.Any]:
    """Restore the dump ``path`` (described by ``manifest``) as the database ``target.database`` by swapping names.

    In order: check the dump (checksum, pg_restore --list) - stop ``writers`` - finish or revert a swap a crash left
    (journal) - dump the current state into ``backup_dir`` (DB-STAMP.pre-restore.dump; skipped when the caller passes
    ``pre_restore_dump``, one it took with the writers stopped) - CREATE DATABASE <db>_restore_<stamp> like <db> -
    pg_restore into it (one transaction, no --clean) - check its Alembic revision and row counts against the manifest
    - refuse connections to <db>, end its sessions, rename <db> -> <db>_pre_restore_<stamp> and the new one -> <db> in
    one transaction - allow connections to both, read <db> back - start the writers again (also on failure) when
    ``restart_writers`` - drop the kept databases of completed swaps beyond the ``keep_pre_restore`` newest.
    Every step goes to <journal_dir>/db-restore.json. A re-run after a crash finishes the swap when the restored
    database had been checked, else drops it; when that finished swap restored this same dump, nothing is restored
    again. Returns {database, restored_from, kept_database, dropped, pre_restore_dump, after, recovered, notes (what
    did not stop the restore but needs a look: a kept database in use that the retention could not drop), seconds};
    raises RestoreFailed (with that report so far)."""
    started = time.monotonic()
    report: dict[str, t.Any] = {"database": target.database, "restored_from": path, "kept_database": None, "dropped": [],
                                "pre_restore_dump": pre_restore_dump, "after": None, "recovered": None,
                                "notes": [], "seconds": 0.0}
    changed = False
    stopped = False
    failure: BaseException | None = None
    try:
        if keep_pre_restore < 1:
            raise pg.PostgresError(f"keep_pre_restore is {keep_pre_restore}: at least the database just replaced is kept")
        swap_names(target.database, utc_now())
        journal = Journal(journal_dir)
        verify_dump(target, path, manifest)
        if writers:
            stopped = changed = True
            cli.compose(project, ["stop", "--"] + list(writers), "docker compose stop")
        recovered = recover(target, journal, target.database)
        if recovered:
            changed = True
            report["recovered"] = recovered
        if recovered and recovered["action"] == "finished" and (recovered["restored_from"], recovered["dump_sha256"]) == (
                path, manifest.get("sha256")):
            report.update(kept_database=recovered["kept_database"], after=recovered["after"],
                          pre_restore_dump=recovered["pre_restore_dump"])
        else:
            if pre_restore_dump is None:
                report["pre_restore_dump"], _manifest = make_dump(target, backup_dir, PRE_RESTORE)
            changed = True
            _swap(target, journal, path, manifest, report)
    except (pg.PostgresError, ArtifactError, DockerCliError, OSError) as exc:
        failure = exc
    finally:
        if stopped and restart_writers:
            try:
                cli.compose(project, ["start", "--"] + list(writers), "docker compose start")
            except DockerCliError as exc:
                if failure is None:
                    failure = exc
                else:
                    report["notes"].append(f"starting {', '.join(writers)} again failed too: {exc.msg}")
        report["seconds"] = round(time.monotonic() - started, 1)
    if failure is None and report["kept_database"]:
        try:
            report["dropped"], notes = prune_kept(target, journal, target.database, keep_pre_restore)
            report["notes"] += notes
        except (pg.PostgresError, OSError) as exc:
            report["notes"].append(f"the retention of kept databases did not run: {exc}")
        report["seconds"] = round(time.monotonic() - started, 1)
    if isinstance(failure, DockerCliError):
        msg = failure.msg
        if report["after"] is not None and not report["notes"]:
            msg = (f"the database {target.database} was restored (the one it replaced is kept as "
                   f"{report['kept_database']}), but starting {', '.join(writers)} again failed: {msg}")
        raise RestoreFailed(msg, report, changed, cmd=failure.cmd, rc=failure.rc, stderr=failure.stderr) from failure
    if failure is not None:
        msg = str(failure) if not isinstance(failure, OSError) else f"{failure.filename}: {failure.strerror or failure}"
        if report["pre_restore_dump"] and report["pre_restore_dump"] not in msg:
            msg += f" (the state before the restore is in {report['pre_restore_dump']})"
        raise RestoreFailed(msg, report, changed) from failure
    return report


def run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """The module's whole run; returns its result or raises JobFailed (with the result so far)."""
    result: dict[str, t.Any] = {"changed": False}
    try:
        database = params["database"]
        containers = containers_by_service(cli, project)
        container = containers.get(database["service"])
        if not container or container.get("state") != "running":
            raise JobFailed(f"service {database['service']} of project {project.name} has no running container: "
                            "start the database first", result)
        target = database_target(database, cli.docker, container["id"])
        if params["state"] == "dump":
            if check_mode:
                pg.facts(target)
            else:
                result["dump_file"], result["manifest"] = make_dump(target, params["backup_dir"])
            result["changed"] = True
            return result
        path, manifest = find_backup(params["backup_dir"], params["dump_file"], target.database,
                                     f"dump of {target.database}", DUMP_SUFFIXES)
        result.update(dump_file=path, manifest=manifest)
        if params["state"] == "verify" or check_mode:
            verify_dump(target, path, manifest)     # a restore checks the dump itself, before anything stops
        if params["state"] == "verify":
            return result
        unknown = [s for s in params["stop_services"] if s not in containers]
        if unknown:
            raise JobFailed(f"unknown service(s) {', '.join(unknown)} in stop_services; nothing was changed", result)
        journal_dir = os.path.join(params["ledger_dir"], project.name)
        if check_mode:
            pending = pending_swap(journal_dir)
            if pending:
                result["pending"] = pending
            result["changed"] = True
            return result
        try:
            report = restore_swap(cli, project, target, path, manifest, writers=params["stop_services"],
                                  backup_dir=params["backup_dir"], journal_dir=journal_dir,
                                  keep_pre_restore=params["keep_pre_restore"])
        except RestoreFailed as exc:
            result.update(exc.report, changed=exc.changed)
            raise JobFailed(exc.msg, result, **exc.details) from exc
        result.update(report, changed=True)
    except (pg.PostgresError, BackupNotFound, ArtifactError) as exc:
        raise JobFailed(str(exc), result) from exc
    except DockerCliError as exc:
        raise JobFailed.from_cli(exc, result) from exc
    return result
