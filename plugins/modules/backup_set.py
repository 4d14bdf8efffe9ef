#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_set
short_description: Read a backup set back from disk, and apply the sets' retention after it
version_added: 0.1.0
description:
  - Works on the backup sets the role aiwfe.rollback.backup writes, C(<backup_dir>/<set id>/set.json) and the files
    it names.
  - V(verified) reads the set O(set_id) back from disk - its C(set.json), and every file it names (the database dump,
    each volume's archive, the configuration archive) present with its manifest beside it and matching the sha256 in
    that manifest (the dump also the one C(set.json) copied from it) - and fails, naming every file that does not,
    when one does not read back. It never changes anything.
  - V(retained) reads the set back the same way first and deletes nothing when it does not read back. Then it keeps the
    newest O(keep_sets) complete sets (those with a C(set.json); O(set_id) always among them) and every set a
    release of the ledger pairs with (a good manifest's C(backup_set)) while that release can still be rolled back to
    (its rollback tags are among those the newest O(keep_releases) distinct releases keep), and deletes the other
    complete sets, each C(set.json) first.
  - Directories of sets that never completed (no C(set.json)) are not backups - nothing restores from them and they
    do not count towards O(keep_sets). V(retained) removes those older than O(set_id); the set O(set_id) and anything
    newer are never touched.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose.LEDGER
attributes:
  check_mode:
    support: full
    details:
      - V(retained) reports what it would delete (RV(deleted), RV(deleted_incomplete)) and deletes nothing; a set not
        written yet (the backup role's own check mode) is counted as the newest complete set and not read back.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A second V(retained) with the same options finds nothing more to delete.
options:
  state:
    description: Only read the set back (V(verified)), or read it back and then apply the retention (V(retained)).
    type: str
    choices: [verified, retained]
    default: verified
  backup_dir:
    description: The project's backup directory, C(<backup root>/<project>), holding one directory per set.
    type: path
    required: true
  set_id:
    description: The set to read back (the one just written, for V(retained)), a UTC time stamp C(YYYYMMDDTHHMMSSZ).
    type: str
    required: true
  keep_sets:
    description: For V(retained), the number of newest complete sets to keep (at least 1).
    type: int
    default: 5
  keep_releases:
    description:
      - For V(retained), the number of distinct good releases whose rollback tags the ledger keeps - the
        O(aiwfe.rollback.release_snapshot#module:keep_releases) the collection's roles use (its default, 5); 0 keeps
        all. A set paired with such a release is kept beyond O(keep_sets).
    type: int
    default: 5
"""

EXAMPLES = r"""
- name: Read the backup set back before removing anything it archived
  aiwfe.rollback.backup_set:
    backup_dir: /var/backups/aiwfe-rollback/ai_workflow_engine
    set_id: 20261129T031500Z

- name: Keep the newest 5 complete sets and those the ledger pairs with a release that can be rolled back to
  aiwfe.rollback.backup_set:
    state: retained
    backup_dir: /var/backups/aiwfe-rollback/ai_workflow_engine
    set_id: 20261129T031500Z
    project_name: ai_workflow_engine
"""

RETURN = r"""
set_id:
  description: The set read back.
  returned: always
  type: str
verified:
  description:
    - Whether the set was read back and every file matched its manifest (false only for a set not written yet, in
      check mode).
  returned: always
  type: bool
files:
  description: The files read back, each with C(what), C(path) and C(sha256).
  returned: always
  type: list
  elements: dict
kept:
  description: For V(retained), the complete sets kept, oldest first.
  returned: always
  type: list
  elements: str
paired:
  description:
    - For V(retained), the sets kept beyond O(keep_sets) because the ledger pairs them with a release that can be
      rolled back to (set id -> manifest ids).
  returned: always
  type: dict
deleted:
  description: For V(retained), the complete sets deleted (in check mode, those that would be).
  returned: always
  type: list
  elements: str
deleted_incomplete:
  description:
    - For V(retained), the incomplete sets (no C(set.json)) older than O(set_id) deleted (in check mode, those that
      would be).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._backup_sets import run
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import LEDGER_ARGS
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job

ARGUMENT_SPEC = dict(
    LEDGER_ARGS,
    state={"type": "str", "choices": ["verified", "retained"], "default": "verified"},
    backup_dir={"type": "path", "required": True},
    set_id={"type": "str", "required": True},
    keep_sets={"type": "int", "default": 5},
    keep_releases={"type": "int", "default": 5},
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_job(module, lambda: run(module.params, module.check_mode))


if __name__ == "__main__":
    main()
