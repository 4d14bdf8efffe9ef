#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_dump
short_description: Dump, verify and restore the PostgreSQL database of a compose stack, inside its container
version_added: 0.1.0
description:
  - V(dump) runs C(pg_dump -Fc) inside the database service's container (C(docker exec), no TTY), streams it into a
    temporary file (mode 0600) while hashing it, validates it with C(pg_restore --list), records the server and client
    versions, the Alembic revision and exact row counts, and only then renames the dump and its manifest into place.
  - V(verify) checks the checksum and C(pg_restore --list) of a dump.
  - V(restore) works across schema changes (an upgrade that added a table referencing a dumped one, or dropped a
    column) because it never restores over the live database. It verifies the dump, stops O(stop_services) (the writers),
    then dumps the current state (C(DB-STAMP.pre-restore.dump)), creates the database C(DB_restore_STAMP) like the
    current one (owner, encoding, locale, privileges, settings), restores into it in one transaction
    (C(pg_restore --single-transaction --exit-on-error --no-owner), no C(--clean)) and checks its Alembic revision and
    row counts against the manifest. Then it refuses connections to the database, ends its sessions and renames both
    in one transaction (C(DB) becomes C(DB_pre_restore_STAMP), C(DB_restore_STAMP) becomes C(DB)), allows connections
    again, reads the database back and starts the writers again, also when something failed.
  - A failed restore drops only the new database; the database in use is left as it was.
  - The database replaced is kept as C(DB_pre_restore_STAMP) (returned as RV(kept_database)); the O(keep_pre_restore)
    newest of them are kept, older ones are dropped, only those whose swap the journal shows completed.
  - Every step goes to the journal C(LEDGER_DIR/PROJECT_NAME/db-restore.json) (mode 0600). A run that finds a swap
    that a crash interrupted finishes it (when the restored database had been checked) or drops the new database
    (when not) before anything else; when the finished swap restored the same dump, it is not restored again.
  - The user must be allowed to create databases and to rename, alter and end the sessions of O(database.name) (a
    superuser, or the database's owner with CREATEDB); the statements run connected to the database C(postgres).
  - The database is O(database) (service, name, user, password file, timeouts), as for M(aiwfe.rollback.alembic_rollback).
    The password is never an option - it is read from O(database.password_file) on the managed host inside the module,
    goes to the container on standard input, never on a command line, and never into the output; so a password equal
    to the database's or the user's name does not mask them in what the module returns.
  - A dump's row counts and Alembic revision are read in the very snapshot C(pg_dump) dumps (a C(REPEATABLE READ)
    transaction exporting its snapshot, C(pg_dump --snapshot)), so they are exact also while the writers write.
  - Every client command (C(pg_dump), C(pg_restore), C(psql)) is ended after O(database.timeout) seconds - its database
    session and its process inside the container too - and waits at most O(database.lock_timeout) seconds for a lock;
    a restore then fails with a clear error, the writers are started again and the database in use is left as it was.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
  - aiwfe.rollback.database
attributes:
  check_mode:
    support: full
    details:
      - A V(dump) in check mode connects and reads the row counts; a V(restore) checks the dump (checksum,
        C(pg_restore --list)) and O(stop_services), and reports an interrupted swap it would finish or revert
        (RV(pending)). Nothing is written, stopped, created, renamed or restored.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - V(verify) never changes anything.
      - Every V(dump) writes a new dump (named by the time, never replacing one) and every V(restore) restores again,
        after a new dump of the state it replaces, keeping the database it replaces.
      - A V(restore) re-run after a crash finishes or reverts the interrupted swap first; when the swap it finishes
        restored the same dump, that is the whole run.
options:
  state:
    description: What to do.
    type: str
    choices: [dump, verify, restore]
    default: dump
  backup_dir:
    description: Directory of the dumps and their manifests.
    type: path
    required: true
  dump_file:
    description:
      - For V(verify) and V(restore), the dump's path (or name in O(backup_dir)), or V(latest) for the newest dump of
        O(database.name) in O(backup_dir). A restore's C(.pre-restore) dumps are never V(latest) (re-running a restore would
        undo it); name one to restore it.
    type: str
    default: latest
  stop_services:
    description: For V(restore), compose services that write to the database; stopped before and started after.
    type: list
    elements: str
    default: []
  keep_pre_restore:
    description:
      - For V(restore), how many databases replaced by a restore (C(DATABASE_pre_restore_STAMP)) to keep, the one just
        replaced included; older ones are dropped after a successful restore, but only those the journal shows as
        replaced by a completed, checked swap (a database of that name made otherwise is never dropped), and never
        one with open sessions (a warning instead).
    type: int
    default: 3
"""

EXAMPLES = r"""
- name: Dump the stack's database
  aiwfe.rollback.postgres_dump:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    backup_dir: /var/backups/aiwfe/db
    database:
      password_file: /srv/ai_workflow_engine/secrets/postgres_password

- name: Restore the newest dump, stopping the writers
  aiwfe.rollback.postgres_dump:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    state: restore
    backup_dir: /var/backups/aiwfe/db
    database:
      name: ai_workflow_engine
      user: postgres
      password_file: /srv/ai_workflow_engine/secrets/postgres_password
      timeout: 7200
    stop_services: [api, worker]
    keep_pre_restore: 2
  register: restore

- name: Say which database holds the state before
  ansible.builtin.debug:
    msg: "{{ restore.kept_database }} (dump {{ restore.pre_restore_dump }}); dropped {{ restore.dropped }}"
"""

RETURN = r"""
dump_file:
  description: The dump made, verified or restored.
  returned: success, except for O(state=dump) in check mode
  type: str
  sample: /var/backups/aiwfe/db/ai_workflow_engine-20261129T031500Z.dump
manifest:
  description:
    - The dump's manifest, C(DUMP.manifest.json) beside it.
    - C(archive) (its name), C(database), C(format), C(sha256), C(bytes), C(toc_entries), C(server_version),
      C(client_version), C(alembic_revision), C(row_counts) (table -> rows), C(created), C(host).
  returned: success, except for O(state=dump) in check mode
  type: dict
pre_restore_dump:
  description: The dump of the state before the restore (taken with the writers stopped).
  returned: state is restore and not check mode
  type: str
  sample: /var/backups/aiwfe/db/ai_workflow_engine-20261129T031500Z.pre-restore.dump
after:
  description: What the database holds after the restore - C(server_version), C(alembic_revision) and C(row_counts)
    of the tables the dump recorded. Also returned when they differ from the dump's (the restore then fails).
  returned: state is restore and not check mode, once the swap is done
  type: dict
database:
  description: The database restored (O(database.name)).
  returned: state is restore and not check mode
  type: str
  sample: ai_workflow_engine
restored_from:
  description: The dump restored (same as RV(dump_file)).
  returned: state is restore and not check mode
  type: str
kept_database:
  description: The database replaced, kept under this name (null when the restore failed before the swap).
  returned: state is restore and not check mode
  type: str
  sample: ai_workflow_engine_pre_restore_20261129t031502z
dropped:
  description:
    - Older kept databases dropped by the retention (O(keep_pre_restore)).
    - One that could not be dropped (open sessions) is kept and named in RV(notes).
  returned: state is restore and not check mode
  type: list
  elements: str
recovered:
  description:
    - What the run did first with a swap a crash had interrupted (null when there was none) - C(action) (C(finished)
      or C(reverted)), C(id), and for C(finished) C(kept_database), C(after), C(restored_from), C(pre_restore_dump);
      for C(reverted) C(dropped) (the new database dropped).
  returned: state is restore and not check mode
  type: dict
notes:
  description:
    - What did not stop the restore but needs a look (a kept database in use that the retention could not drop, writers
      that would not start again after a failure). Also shown as warnings.
  returned: state is restore and not check mode
  type: list
  elements: str
seconds:
  description: Duration of the restore, from the dump's check to the writers started again (and the retention).
  returned: state is restore and not check mode
  type: float
pending:
  description: In check mode, the interrupted swaps a real run would finish or revert first (C(id), C(database),
    C(state), C(action) finish or revert).
  returned: state is restore, check mode, when the journal holds one
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import DATABASE_SPEC, STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job
from ansible_collections.aiwfe.rollback.plugins.module_utils._postgres_job import run

ARGUMENT_SPEC = dict(
    STACK_ARGS,
    state={"type": "str", "choices": ["dump", "verify", "restore"], "default": "dump"},
    database=DATABASE_SPEC,
    backup_dir={"type": "path", "required": True},
    dump_file={"type": "str", "default": "latest"},
    stop_services={"type": "list", "elements": "str", "default": []},
    keep_pre_restore={"type": "int", "default": 3},
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    project = compose_project(module)

    def work() -> dict:
        result = run(docker_cli(module), project, module.params, module.check_mode)
        for note in result.get("notes") or []:
            module.warn(note)
        return result

    run_job(module, work)


if __name__ == "__main__":
    main()
