# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup sets of a project as the backup role writes them: <root>/<project>/<set id>/set.json (written last,
so a set without it never completed), the database dump under database/ with its manifest.

Here: the complete sets, and the set whose database dump is at a given Alembic revision (the dump a migration
rollback restores when a downgrade would lose data or cannot run).
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._files import read_json

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


def _dump_path(set_dir: str, recorded: str) -> str:
    # set.json records the dump's path as the module returned it; a set moved to another root is found by name.
    if os.path.isabs(recorded) and os.path.isfile(recorded):
        return recorded
    return os.path.join(set_dir, "database", os.path.basename(recorded))


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
        path = _dump_path(os.path.join(project_dir, set_id), recorded)
        if os.path.isfile(path):
            candidates[set_id] = PairedDump(set_id, path, dumped)
    for set_id in prefer:
        if set_id in candidates:
            return candidates[set_id]
    return candidates[max(candidates)] if candidates else None
