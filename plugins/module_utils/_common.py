# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs and helpers shared by the modules (one place for each option)."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._postgres import (
    DEFAULT_LOCK_TIMEOUT, DEFAULT_TIMEOUT, PostgresError, Target)

# The options of the action group aiwfe.rollback.stack (meta/runtime.yml): every module that works on a compose
# project takes them, so a play sets them once with module_defaults (playbooks/vars/stack.yml).
STACK_ARGS: dict[str, dict[str, t.Any]] = {
    "project_dir": {"type": "path", "required": True},
    "project_name": {"type": "str", "required": True},
    "files": {"type": "list", "elements": "path", "default": []},
    "ledger_dir": {"type": "path", "default": "/var/lib/aiwfe-rollback"},
    "docker_cli": {"type": "path", "default": "docker"},
}
# The options of the action group aiwfe.rollback.ledger: modules that only read or write the ledger directory.
LEDGER_ARGS: dict[str, dict[str, t.Any]] = {
    "project_name": STACK_ARGS["project_name"],
    "ledger_dir": STACK_ARGS["ledger_dir"],
}
PIN_FILE = "pin.compose.yaml"

# One dict option `database` for every module that talks to PostgreSQL (docs/migrations.md). The password is never an
# option: password_file names a file on the managed host, read inside the module (database_target).
DATABASE_SPEC: dict[str, t.Any] = {
    "type": "dict",
    "apply_defaults": True,
    "options": {
        "service": {"type": "str", "default": "postgres"},
        "name": {"type": "str", "default": "ai_workflow_engine"},
        "user": {"type": "str", "default": "postgres"},
        "password_file": {"type": "path"},
        "timeout": {"type": "int", "default": DEFAULT_TIMEOUT},
        "lock_timeout": {"type": "int", "default": DEFAULT_LOCK_TIMEOUT},
    },
}
# One dict option `migrations`: where the application's Alembic migrations live and how they run.
MIGRATIONS_SPEC: dict[str, t.Any] = {
    "type": "dict",
    "apply_defaults": True,
    "options": {
        "service": {"type": "str", "default": "api"},
        "image": {"type": "str"},
        "script_location": {"type": "str"},
        "config": {"type": "str", "default": "/opt/app/api/alembic.ini"},
        "command": {"type": "list", "elements": "str",
                    "default": ["python3", "-m", "alembic", "-c", "{config}", "downgrade", "{revision}"]},
        "sql_command": {"type": "list", "elements": "str",
                        "default": ["python3", "-m", "alembic", "-c", "{config}", "downgrade", "--sql", "{from}:{to}"]},
        "python": {"type": "str", "default": "python3"},
    },
}


def pin_path(ledger_dir: str, project_name: str) -> str:
    """Where a quick rollback's pin file lives: outside the deploy directory, so git status stays clean."""
    return os.path.join(ledger_dir, project_name, PIN_FILE)


def project_name_error(name: str) -> str | None:
    if not name or name.lower() != name or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in name):
        return f"project_name '{name}' is not a valid compose project name (lower-case letters, digits, '_' and '-')"
    return None


def compose_project(module: t.Any, with_pin: bool = True) -> ComposeProject:
    """Validate the shared options and build the project; fails the module with a plain message.

    with_pin: the rollback pin file, when there is one, is part of what runs and is merged last (what every module
    that observes the stack wants); the rollback planner asks for the stack's own files only.
    """
    params = module.params
    directory = params["project_dir"]
    if not os.path.isdir(directory):
        module.fail_json(msg=f"project_dir {directory} does not exist: point it at the stack's deploy directory")
    for path in params["files"]:
        full = path if os.path.isabs(path) else os.path.join(directory, path)
        if not os.path.isfile(full):
            module.fail_json(msg=f"compose file {full} does not exist: fix 'files'")
    name = params["project_name"]
    error = project_name_error(name)
    if error:
        module.fail_json(msg=error)
    pin = pin_path(params["ledger_dir"], name)
    if pin in [os.path.abspath(p if os.path.isabs(p) else os.path.join(directory, p)) for p in params["files"]]:
        module.fail_json(msg=f"pass the stack's own compose files in 'files', not the rollback pin file {pin} "
                             "(the modules add it themselves when it exists)")
    project = ComposeProject(name, directory, params["files"], pin if with_pin and os.path.isfile(pin) else None)
    if not project.files:
        module.fail_json(msg=f"no compose file (compose.yaml, docker-compose.yml...) in {directory}: set 'files'")
    return project


def docker_cli(module: t.Any) -> DockerCli:
    return DockerCli(module.run_command, module.params["docker_cli"])


def read_password_file(path: str | None) -> str | None:
    """The database password from a file on the managed host: its one line, exactly (spaces are part of it; only the
    line's end is not), or None without a file. A file with more than one line is refused: a password cannot hold a
    line break (it travels as the first line of the client's standard input)."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(65537)
    except OSError as exc:
        raise PostgresError(f"cannot read database.password_file {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PostgresError(f"database.password_file {path} is not UTF-8 text: write the password into it as text") from exc
    password = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if not password:
        raise PostgresError(f"database.password_file {path} is empty: write the database password into it")
    if any(c in password for c in "\n\r\0"):
        raise PostgresError(f"database.password_file {path} holds more than one line (or a NUL character): a password "
                            "cannot hold a line break; write it on the file's one line (a line end after it is fine)")
    return password


def database_target(database: dict[str, t.Any], docker: str, container: str) -> Target:
    """The database of the `database` option in ``container``, with the password read from password_file on the
    managed host and the option's timeout and lock_timeout (PostgresError when the file cannot be used)."""
    return Target(docker, container, database["name"], database["user"], read_password_file(database.get("password_file")),
                  timeout=DEFAULT_TIMEOUT if database.get("timeout") is None else database["timeout"],
                  lock_timeout=DEFAULT_LOCK_TIMEOUT if database.get("lock_timeout") is None else database["lock_timeout"])
