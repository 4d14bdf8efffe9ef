# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup sets of a project as the backup role writes them: <root>/<project>/<set id>/set.json (written last,
so a set without it never completed), the database dump under database/ with its manifest.

Here: the complete sets; the set whose database dump is at a given Alembic revision (the dump a migration
rollback restores when a downgrade would lose data or cannot run); the read-back of a set from disk (every file it
names against the checksum in its manifest) and the retention of aiwfe.rollback.backup_set, which deletes nothing
before the new set reads back, counts only complete sets and keeps the sets the ledger pairs with a release that can
still be rolled back to.
"""

from __future__ import annotations

import os
import re
import shutil
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._files import fsync_dir, load_manifest, manifest_path, read_json
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import LedgerError, load_manifests, tags_to_release
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import sha256_file

SET_MANIFEST = "set.json"


class PairedDump(t.NamedTuple):
    set_id: str
    path: str
    manifest: dict[str, t.Any]


def complete_sets(project_dir: str) -> list[tuple[str, dict[str, t.Any]]]:
    """(set id, set.json) of every complete set under a project's backup directory, oldest first (ids are UTC time
    stamps). A set.json that cannot be read counts as incomplete."""
    if not os.path.isdir(project_dir):
        return []
    found = []
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, SET_MANIFEST)
        if not os.path.isfile(path):
            continue
        try:
            manifest = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict):
            found.append((name, manifest))
    return found


def paired_dump(project_dir: str, database: str, revision: str | None,
                prefer: t.Sequence[str] = ()) -> PairedDump | None:
    """The dump of ``database`` at Alembic ``revision`` to restore: from the first set named in ``prefer`` (the sets
    the ledger pairs with the target release) that holds such a dump, else the newest complete set that does.
    None when no complete set has one (a dump whose file is gone does not count)."""
    candidates: dict[str, PairedDump] = {}
    for set_id, manifest in complete_sets(project_dir):
        recorded = manifest.get("database")
        dumped = manifest.get("database_manifest") or {}
        if not recorded or dumped.get("database") != database:
            continue
        if (dumped.get("alembic_revision") or None) != (revision or None):
            continue
        path = _local(os.path.join(project_dir, set_id), "database", recorded)
        if os.path.isfile(path):
            candidates[set_id] = PairedDump(set_id, path, dumped)
    for set_id in prefer:
        if set_id in candidates:
            return candidates[set_id]
    return candidates[max(candidates)] if candidates else None


# --- read-back and retention --------------------------------------------------------------------------------------

# A set's id is the UTC time stamp of its run: only directories named so are sets (config-before-rollback/ and
# pre-migration/ beside them are not).
SET_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class SetError(Exception):
    """A set that is not complete or does not read back; nothing was deleted."""


def set_ids(project_dir: str) -> list[str]:
    """The ids of every set directory, complete or not, oldest first (symlinks are never sets)."""
    if not os.path.isdir(project_dir):
        return []
    return sorted(name for name in os.listdir(project_dir) if SET_ID.match(name)
                  and os.path.isdir(os.path.join(project_dir, name)) and not os.path.islink(os.path.join(project_dir, name)))


def _local(set_dir: str, part: str, recorded: str) -> str:
    # set.json records paths as the modules returned them; a set moved to another root is found by name.
    if os.path.isabs(recorded) and os.path.isfile(recorded):
        return recorded
    return os.path.join(set_dir, part, os.path.basename(recorded))


def named_files(set_dir: str, manifest: dict[str, t.Any]) -> list[tuple[str, str | None]]:
    """(what, path) of every file set.json names - the dump, each volume's archive, the configuration archive; the
    path is None when set.json names none for a volume it lists."""
    files: list[tuple[str, str | None]] = []
    if manifest.get("database"):
        files.append(("the database dump", _local(set_dir, "database", manifest["database"])))
    for volume, archive in sorted((manifest.get("volumes") or {}).items()):
        files.append((f"the archive of volume {volume}", _local(set_dir, "volumes", archive) if archive else None))
    if manifest.get("config"):
        files.append(("the configuration archive", _local(set_dir, "config", manifest["config"])))
    return files


def read_back(set_dir: str) -> list[dict[str, t.Any]]:
    """Read a complete set back from disk: every file its set.json names exists, has its manifest next to it and
    hashes to the sha256 in that manifest (the dump also to the one set.json copied from it). Returns the files read
    ({what, path, sha256}); SetError naming every problem when one does not read back."""
    manifest = read_json(os.path.join(set_dir, SET_MANIFEST))
    if not isinstance(manifest, dict):
        raise SetError(f"{set_dir} has no readable {SET_MANIFEST}: it is not a complete backup set")
    problems: list[str] = []
    checked: list[dict[str, t.Any]] = []
    for what, path in named_files(set_dir, manifest):
        artifact = load_manifest(path) if path and os.path.isfile(path) else None
        if path is None:
            problems.append(f"{what} is not in the set")
        elif not os.path.isfile(path):
            problems.append(f"{what} {path} is missing")
        elif artifact is None:
            problems.append(f"{what} {path} has no readable manifest {manifest_path(path)}")
        else:
            sha = sha256_file(path)
            recorded = {artifact.get("sha256")}
            if what == "the database dump" and (manifest.get("database_manifest") or {}).get("sha256"):
                recorded.add(manifest["database_manifest"]["sha256"])
            if recorded != {sha}:
                problems.append(f"{what} {path} is damaged (sha256 {sha}, its manifest says "
                                f"{' / '.join(sorted(str(r) for r in recorded))})")
            else:
                checked.append({"what": what, "path": path, "sha256": sha})
    if problems:
        raise SetError(f"backup set {os.path.basename(set_dir)} does not read back: " + "; ".join(problems))
    return checked


def paired_sets(manifests: list[dict[str, t.Any]], keep_releases: int) -> dict[str, list[str]]:
    """Set id -> ids of the ledger manifests that pair with it (their backup_set) and can still be rolled back to:
    good manifests whose rollback tags the ledger keeps (_ledger.tags_to_release with the keep_releases the roles
    use; 0 keeps all). A good manifest without rollback tags counts as a target (nothing says it cannot be one)."""
    released = set(tags_to_release(manifests, keep_releases))
    paired: dict[str, list[str]] = {}
    for manifest in manifests:
        if manifest.get("status") != "good" or not manifest.get("backup_set"):
            continue
        tags = {svc.get("rollback_tag") for svc in (manifest.get("services") or {}).values() if svc.get("rollback_tag")}
        if tags and tags <= released:
            continue
        paired.setdefault(manifest["backup_set"], []).append(manifest.get("id", "?"))
    return paired


class Retention(t.NamedTuple):
    kept: list[str]                 # complete sets kept (the newest keep_sets, and the paired ones)
    deleted: list[str]              # complete sets beyond them
    incomplete: list[str]           # sets without set.json older than the new set (removed: they are not backups)
    paired: dict[str, list[str]]    # kept because a release that can be rolled back to pairs with them


def plan_retention(project_dir: str, new_set: str, keep_sets: int, paired: dict[str, list[str]],
                   assume_complete: bool = False) -> Retention:
    """What the retention after ``new_set`` keeps and deletes. Only complete sets count: the newest ``keep_sets``
    of them (``new_set`` among them, even when ``assume_complete`` says it is not written yet - check mode) and every
    set in ``paired`` are kept. Incomplete sets older than ``new_set`` go; the set being written and anything newer
    are never touched."""
    if keep_sets < 1:
        raise SetError(f"keep_sets is {keep_sets}: keep at least 1 set (the one just written)")
    complete = [set_id for set_id, _manifest in complete_sets(project_dir) if SET_ID.match(set_id)]
    if new_set not in complete:
        if not assume_complete:
            raise SetError(f"backup set {new_set} in {project_dir} is not complete (no readable {SET_MANIFEST})")
        complete = sorted(complete + [new_set])
    newest = set(complete[-keep_sets:]) | {new_set}
    kept = [s for s in complete if s in newest or s in paired]
    return Retention(
        kept=kept,
        deleted=[s for s in complete if s not in kept],
        incomplete=[s for s in set_ids(project_dir) if s not in complete and s < new_set],
        paired={s: ids for s, ids in paired.items() if s in kept and s not in newest},
    )


def remove_set(project_dir: str, set_id: str) -> None:
    """Delete a set, its set.json first (a crash in between leaves an incomplete set, never a complete-looking
    damaged one)."""
    set_dir = os.path.join(project_dir, set_id)
    manifest = os.path.join(set_dir, SET_MANIFEST)
    if os.path.exists(manifest):
        os.unlink(manifest)
        fsync_dir(set_dir)
    shutil.rmtree(set_dir)


def run(params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """aiwfe.rollback.backup_set: read a set back (verified), then apply the retention (retained)."""
    project_dir, set_id = params["backup_dir"], params["set_id"]
    result: dict[str, t.Any] = {"changed": False, "set_id": set_id, "verified": False, "files": [],
                                "deleted": [], "deleted_incomplete": [], "kept": [], "paired": {}}
    if not SET_ID.match(set_id or ""):
        raise JobFailed(f"set_id {set_id!r} is not a backup set's id (YYYYMMDDTHHMMSSZ, as playbooks/backup.yml "
                        "names them): pass one of the directories of backup_dir. Nothing was read or deleted.", result)
    if params["keep_releases"] < 0:
        raise JobFailed("keep_releases must be 0 (every release can be rolled back to) or more. Nothing was deleted.",
                        result)
    written = os.path.isfile(os.path.join(project_dir, set_id, SET_MANIFEST))
    try:
        if written or not check_mode or params["state"] == "verified":
            result["files"] = read_back(os.path.join(project_dir, set_id))
            result["verified"] = True
        if params["state"] == "verified":
            result["msg"] = f"backup set {set_id}: {len(result['files'])} files read back and match their manifests"
            return result
        paired = paired_sets(load_manifests(params["ledger_dir"], params["project_name"]), params["keep_releases"])
        plan = plan_retention(project_dir, set_id, params["keep_sets"], paired, assume_complete=check_mode)
    except (SetError, LedgerError) as exc:
        raise JobFailed(f"{exc}. Nothing was deleted. A set that does not read back is no backup: look at what "
                        f"changed in {project_dir}, then take a new backup set (playbooks/backup.yml).", result) from exc
    result.update(kept=plan.kept, paired=plan.paired, deleted=plan.deleted, deleted_incomplete=plan.incomplete,
                  changed=bool(plan.deleted or plan.incomplete))
    if not check_mode:
        for old in plan.deleted + plan.incomplete:
            remove_set(project_dir, old)
    result["msg"] = (f"backup set {set_id} {'read back' if result['verified'] else 'not written (check mode)'}; "
                     f"{'would delete' if check_mode else 'deleted'} "
                     f"{', '.join(plan.deleted) or 'no complete set'} and "
                     f"{len(plan.incomplete)} incomplete set(s); kept {', '.join(plan.kept)}")
    return result
