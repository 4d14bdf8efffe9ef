# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The option database (plugins/module_utils/_common.py DATABASE_SPEC): one description for every module that
    talks to the stack's database; MIGRATIONS (aiwfe.rollback.database.MIGRATIONS) the option migrations
    (MIGRATIONS_SPEC) of the modules that also read or run the application's migrations."""

    DOCUMENTATION = r"""
options:
  database:
    description: The PostgreSQL database of the stack.
    type: dict
    suboptions:
      service:
        description: The compose service running PostgreSQL.
        type: str
        default: postgres
      name:
        description: Database name.
        type: str
        default: ai_workflow_engine
      user:
        description: Database user.
        type: str
        default: postgres
      password_file:
        description:
          - A file B(on the managed host) holding the password of O(database.user), read inside the module (never an
            option, so never masked in, or shown by, what the module returns). The client then connects over TCP to
            127.0.0.1 inside the container so the password is checked.
          - The password is the file's one line, exactly - spaces at its start or end are part of it; only the line
            end after it is not. A file of more than one line is refused (a password cannot hold a line break).
          - Without it the client connects through the container's local socket as C(postgres).
        type: path
      timeout:
        description:
          - Seconds each client command inside the container (C(pg_dump), C(pg_restore), C(psql)) may run. When it
            expires the command is ended - its database session (found by its own C(application_name)) and its process
            inside the container too, not only the C(docker exec) client - and the module fails saying so; writers it
            stopped are started again.
          - Raise it for a database whose dump or restore takes longer.
        type: int
        default: 3600
      lock_timeout:
        description:
          - Seconds a statement may wait for a lock (C(lock_timeout) of every session, C(pg_dump --lock-wait-timeout),
            the restore's C(CREATE), C(ALTER) and C(DROP DATABASE) and renames). A session holding a lock the command
            needs then makes it fail with an error naming the lock wait, instead of a hang.
        type: int
        default: 30
"""

    MIGRATIONS = r"""
options:
  migrations:
    description: Where the application's Alembic migrations live and how they run.
    type: dict
    suboptions:
      service:
        description: The compose service whose image holds the migrations and whose environment, networks and secrets
          run them.
        type: str
        default: api
      image:
        description:
          - The image (id or reference) to read the graph from and to run the downgrade with. Default - the image of
            the service's newest container (running or exited), the release that wrote the newer revision.
          - An image whose migrations do not know the database's revision is refused.
        type: str
      script_location:
        description: The script directory inside the image. Default - the C(script_location) of O(migrations.config).
        type: str
      config:
        description: The C(alembic.ini) inside the image; V("") for none (then give O(migrations.script_location)).
        type: str
        default: /opt/app/api/alembic.ini
      command:
        description:
          - The argv of the downgrade, run in a throwaway container of the service (the first item becomes the
            entrypoint). C({revision}) (the target, or V(base)), C({config}) and C({script_location}) are replaced.
          - Flask-Migrate - V([flask, db, downgrade, -d, "{script_location}", "{revision}"]).
        type: list
        elements: str
        default: [python3, -m, alembic, -c, "{config}", downgrade, "{revision}"]
      sql_command:
        description:
          - The argv printing the downgrade's SQL without a database (check mode, or a plan only), run in a
            throwaway container of the image without network. C({from}) and C({to}) are replaced as well.
        type: list
        elements: str
        default: [python3, -m, alembic, -c, "{config}", downgrade, --sql, "{from}:{to}"]
      python:
        description: The Python interpreter inside the image that runs the graph inspector (it needs Alembic).
        type: str
        default: python3
"""
