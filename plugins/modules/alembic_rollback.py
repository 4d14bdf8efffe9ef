#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: alembic_rollback
short_description: Move the database of a compose stack back to an older Alembic revision, safely
version_added: 0.1.0
description:
  - Runbook section C without its shortcut (a hand-written C(UPDATE alembic_version)). The design and its decisions are
    in the collection's C(docs/migrations.md).
  - Reads the database's revision from C(alembic_version) inside the database container (C(psql) through
    C(docker exec), no published port) and the migration graph from the script directory B(inside the image) of the
    migrations service (Alembic's own C(ScriptDirectory), run in a throwaway container without network; the host
    needs no Alembic).
  - Classifies every step between the database's revision and the target - V(reversible), V(noop), V(irreversible)
    (a downgrade that raises, or is empty where the upgrade is not), V(lossy) (a downgrade that drops a column or
    table holding data; the rows are counted in the database) - and chooses the strategy.
  - Outside check mode and O(state=planned), in this order - stops O(stop_services) (the writers; they are B(left
    stopped), the caller starts the target release), dumps the database (C(DB-STAMP.pre-migration.dump) in
    O(backup_dir)), then moves it - and reads the revision back; the run fails when it is not the target.
  - V(downgrade) runs O(migrations.command) in a throwaway container of the migrations service (C(docker compose run
    --rm --no-deps -T), its own environment, networks and secrets) with the B(newer) image - by default the image of
    the service's newest container, the release that wrote the newer revision - pinned by a temporary compose file
    that is removed afterwards. A failed downgrade leaves PostgreSQL where it was (transactional DDL); the message says
    where the database is and what to run next.
  - V(stamp) only rewrites C(alembic_version), in one transaction, after checking the target exists; it warns that no
    schema change ran.
  - V(restore) restores O(restore_dump), the dump paired with the target release, into a new database and swaps it in
    by renaming (the old database is kept); rows the dump does not hold are counted in RV(lost_rows), and the
    pre-change dump holds them.
  - The password is read from O(database.password_file) on the managed host inside the module and goes to the
    container on standard input; it is never an option value, never on a command line and never in the result.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
  - aiwfe.rollback.database
  - aiwfe.rollback.database.MIGRATIONS
attributes:
  check_mode:
    support: full
    details:
      - Reads and plans as a real run does, and returns the SQL Alembic would run (its offline C(--sql) mode,
        O(migrations.sql_command); a failure there is reported in RV(sql), not fatal). Nothing is stopped, dumped or
        changed; C(changed) tells whether a real run would change the database.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A database already at the target is left alone (no dump, nothing stopped) and C(changed) is false.
options:
  state:
    description:
      - V(planned) reads and plans, and returns the plan and the SQL; it never changes anything.
      - V(rolled_back) moves the database to the target.
    type: str
    choices: [planned, rolled_back]
    default: rolled_back
  target:
    description:
      - The revision to go back to - a revision id of the script directory (V(0004), V(ae1027a6acf)), V(-N) (N
        revisions below the database's; refused when the graph has several heads or the path crosses a branch or
        merge point), or V(base) (no revision).
      - Ids are letters, digits and V(_) (at most 64) and must exist in the script directory; anything else is refused
        before a command runs.
      - Exactly one of O(target) and O(release).
    type: str
  release:
    description:
      - A release of the ledger - a label such as a git tag, a manifest id, or V(previous) - whose recorded
        C(alembic_revision) (else C(alembic_head), else the head of the migrations in its image) is the target.
    type: str
  strategy:
    description:
      - V(auto) - V(downgrade) when every step is reversible or a no-op, else V(restore) of O(restore_dump); refused
        when neither is possible (the message says what to pass).
      - V(downgrade) - refused when a step is irreversible, or lossy without O(allow_lossy).
      - V(stamp) - rewrite C(alembic_version) only (no schema change).
      - V(restore) - restore O(restore_dump) by swap.
    type: str
    choices: [auto, downgrade, stamp, restore]
    default: auto
  restore_dump:
    description:
      - The dump (a file written by M(aiwfe.rollback.postgres_dump), with its manifest beside it) paired with the target
        release, for V(restore). Its recorded Alembic revision must be the target. The role
        C(aiwfe.rollback.migration_rollback) finds it in the backup sets.
    type: path
  backup_sets:
    description:
      - The directory of the project's backup sets (C(<backup root>/<project>), as M(aiwfe.rollback.postgres_dump) and
        the role C(aiwfe.rollback.backup) write them). Without O(restore_dump), the newest complete set whose database
        dump is at the target revision is the dump to restore (RV(restore_set) names it) - what V(auto) falls back to
        and V(restore) uses.
    type: path
  backup_dir:
    description:
      - Where the pre-change dump goes. Required for O(state=rolled_back).
    type: path
  stop_services:
    description:
      - Compose services that write to the database. Stopped before the pre-change dump and B(left stopped) (starting
        the newer release again would upgrade the database again - the caller starts the target release).
    type: list
    elements: str
    default: []
  allow_lossy:
    description:
      - Let an explicit V(downgrade) drop columns or tables that hold data (the pre-change dump keeps them).
    type: bool
    default: false
notes:
  - The writers must not start again with the newer image after the database moved back when that image upgrades
    the database on start (the reference api does) - start the target release next.
seealso:
  - module: aiwfe.rollback.postgres_dump
  - module: aiwfe.rollback.release_snapshot
"""

EXAMPLES = r"""
- name: Show what a rollback to revision 0004 would do (steps, strategy, SQL)
  aiwfe.rollback.alembic_rollback:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    target: "0004"
    state: planned
    database:
      password_file: /srv/ai_workflow_engine/secrets/postgres_password
  register: migration_plan

- name: Move the database back to the revision the previous release recorded, stopping the writers
  aiwfe.rollback.alembic_rollback:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    release: previous
    backup_dir: /var/backups/aiwfe/db
    restore_dump: /var/backups/aiwfe/sets/20261129T031500Z/db/ai_workflow_engine-20261129T031500Z.dump
    stop_services: [api, worker]
    database:
      password_file: /srv/ai_workflow_engine/secrets/postgres_password

- name: A Flask-Migrate application
  aiwfe.rollback.alembic_rollback:
    project_dir: /srv/notes
    project_name: notes
    target: "-1"
    strategy: downgrade
    backup_dir: /var/backups/notes/db
    stop_services: [web]
    database:
      name: notes
    migrations:
      service: web
      config: ""
      script_location: /app/migrations
      command: [flask, db, downgrade, -d, "{script_location}", "{revision}"]
      sql_command: [flask, db, downgrade, --sql, -d, "{script_location}", "{from}:{to}"]
"""

RETURN = r"""
from_revision:
  description: The database's revision before the run (several joined by C(,)); null when it had none.
  returned: when the database was read
  type: str
  sample: "0005"
to_revision:
  description: The database's revision read back after the run (the same as RV(from_revision) when nothing moved).
  returned: when the database was read
  type: str
  sample: "0004"
target_revision:
  description: The revision the target or release names; null for V(base).
  returned: when the target was resolved
  type: str
  sample: "0004"
release:
  description: The ledger release the target came from (C(id), C(release)).
  returned: when O(release) was given
  type: dict
heads:
  description: The heads of the migrations in RV(image).
  returned: when the image was inspected
  type: list
  elements: str
  sample: ["0005"]
image:
  description: The image id the graph was read from and the downgrade runs with.
  returned: when the image was found
  type: str
steps:
  description:
    - The revisions the move removes, newest first (the order a downgrade runs them), each with C(revision),
      C(down_revision), C(doc) (first line of its docstring), C(kind) (V(reversible), V(noop), V(irreversible),
      V(lossy)), C(reason), C(rows) (values/rows a lossy step drops; null when unknown) and C(drops) (C(kind),
      C(name), C(rows) per column or table its downgrade drops).
  returned: when the plan was made
  type: list
  elements: dict
  sample: [{"revision": "0005", "down_revision": "0004", "doc": "rename documents.body to documents.content",
            "kind": "reversible", "reason": "", "rows": 0, "drops": []}]
strategy:
  description: The strategy run (or that would run) - V(downgrade), V(stamp), V(restore); the requested one when
    there is nothing to do.
  returned: when the plan was made
  type: str
strategy_reason:
  description: Why that strategy.
  returned: when the plan was made
  type: str
command:
  description: The downgrade argv (placeholders replaced); null for other strategies.
  returned: when a move was planned
  type: list
  elements: str
sql:
  description: The SQL Alembic would run (offline mode), the stamp's SQL, or C(SQL not available - ...) when the
    offline mode failed.
  returned: in check mode and with O(state=planned), when a downgrade or stamp was planned
  type: str
restore_set:
  description: The backup set (id) whose dump O(backup_sets) gave for the target revision.
  returned: when O(backup_sets) gave the dump
  type: str
  sample: 20261129T031500Z
restore_dump:
  description: The dump the restore strategy uses (verified).
  returned: when the strategy is V(restore)
  type: str
lost_rows:
  description: Per table, the rows of the current database that the restored dump does not hold (current count
    minus the dump's). RV(pre_change_dump) holds them (in check mode, a real run's pre-change dump would).
  returned: when the strategy is V(restore)
  type: dict
  sample: {"documents": 3, "jobs": 3}
pre_change_dump:
  description: The dump of the database taken before it moved (C(DB-STAMP.pre-migration.dump) in O(backup_dir),
    with its manifest).
  returned: when the database was changed
  type: str
stopped:
  description: The services stopped (and left stopped).
  returned: when O(stop_services) were stopped
  type: list
  elements: str
restore:
  description: The swap restore's report (C(database), C(restored_from), C(kept_database), C(dropped),
    C(pre_restore_dump), C(after), C(recovered), C(warnings), C(seconds)).
  returned: when the strategy V(restore) ran
  type: dict
seconds:
  description: Seconds per phase (C(read), C(inspect), C(plan), C(sql), C(stop), C(dump), C(migrate), C(verify)) and
    C(total).
  returned: always
  type: dict
  sample: {"read": 0.1, "inspect": 0.9, "plan": 0.1, "stop": 1.2, "dump": 0.4, "migrate": 2.1, "verify": 0.1,
           "total": 4.9}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic import STRATEGIES
from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic_job import run
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import (
    DATABASE_SPEC, MIGRATIONS_SPEC, STACK_ARGS, compose_project, docker_cli)
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job

ARGUMENT_SPEC = dict(
    STACK_ARGS,
    state={"type": "str", "choices": ["planned", "rolled_back"], "default": "rolled_back"},
    target={"type": "str"},
    release={"type": "str"},
    strategy={"type": "str", "choices": list(STRATEGIES), "default": "auto"},
    restore_dump={"type": "path"},
    backup_sets={"type": "path"},
    backup_dir={"type": "path"},
    stop_services={"type": "list", "elements": "str", "default": []},
    allow_lossy={"type": "bool", "default": False},
    database=DATABASE_SPEC,
    migrations=MIGRATIONS_SPEC,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("target", "release")],
        required_one_of=[("target", "release")],
        required_if=[("state", "rolled_back", ["backup_dir"]), ("strategy", "restore", ["restore_dump", "backup_sets"], True)],
        supports_check_mode=True,
    )
    project = compose_project(module)
    run_job(module, lambda: run(docker_cli(module), project, module.params, module.check_mode, module.warn))


if __name__ == "__main__":
    main()
