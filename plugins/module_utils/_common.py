# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs and helpers shared by the modules (one place for each option)."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli

COMPOSE_ARGS: dict[str, dict[str, t.Any]] = {
    "project_dir": {"type": "path", "required": True},
    "project_name": {"type": "str", "required": True},
    "files": {"type": "list", "elements": "path", "default": []},
    "docker_cli": {"type": "path", "default": "docker"},
}
LEDGER_ARGS: dict[str, dict[str, t.Any]] = {
    "ledger_dir": {"type": "path", "default": "/var/lib/aiwfe-rollback"},
}


def compose_project(module: t.Any) -> ComposeProject:
    """Validate the shared options and build the project; fails the module with a plain message."""
    params = module.params
    directory = params["project_dir"]
    if not os.path.isdir(directory):
        module.fail_json(msg=f"project_dir {directory} does not exist: point it at the stack's deploy directory")
    for path in params["files"]:
        full = path if os.path.isabs(path) else os.path.join(directory, path)
        if not os.path.isfile(full):
            module.fail_json(msg=f"compose file {full} does not exist: fix 'files'")
    name = params["project_name"]
    if not name or name.lower() != name or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in name):
        module.fail_json(msg=f"project_name '{name}' is not a valid compose project name (lower-case letters, digits, '_' and '-')")
    project = ComposeProject(name, directory, params["files"])
    if not project.files:
        module.fail_json(msg=f"no compose file (compose.yaml, docker-compose.yml...) in {directory}: set 'files'")
    return project


def docker_cli(module: t.Any) -> DockerCli:
    return DockerCli(module.run_command, module.params["docker_cli"])
