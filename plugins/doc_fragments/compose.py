# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options of the action groups: set them once per play with module_defaults."""

    # Action group aiwfe.rollback.stack: modules that look at or change a Docker Compose project.
    DOCUMENTATION = r"""
options:
  project_dir:
    description:
      - The deploy directory of the stack, where its compose files live (C(docker compose --project-directory)).
      - Set it once per play for every module of the collection with C(module_defaults) for the action group
        C(group/aiwfe.rollback.stack), as the collection's playbooks do (C(playbooks/vars/stack.yml)).
    type: path
    required: true
  project_name:
    description:
      - The compose project name (C(docker compose -p)). Named volumes are prefixed with it.
    type: str
    required: true
  files:
    description:
      - The stack's own compose files, relative to O(project_dir) or absolute, merged in order.
      - When empty, compose finds C(compose.yaml) (or its other default names, with its override file) itself.
      - The rollback pin file C(<ledger_dir>/<project_name>/pin.compose.yaml) is not named here; when it exists it is
        part of what runs and is merged last.
    type: list
    elements: path
    default: []
  ledger_dir:
    description:
      - Directory of the release ledger on the managed host. Each project has C(<ledger_dir>/<project_name>/) with
        its release manifests, its host lock and the rollback pin file.
    type: path
    default: /var/lib/aiwfe-rollback
  docker_cli:
    description:
      - The docker client to run. It needs the Compose v2 plugin (C(docker compose version)).
    type: path
    default: docker
requirements:
  - Docker CLI with the Compose v2 plugin on the managed host.
"""

    # Action group aiwfe.rollback.ledger: modules that only read or write the ledger directory.
    LEDGER = r"""
options:
  project_name:
    description:
      - The compose project name whose ledger directory C(<ledger_dir>/<project_name>/) is used.
      - Set it once per play with C(module_defaults) for the action group C(group/aiwfe.rollback.ledger)
        (C(playbooks/vars/stack.yml)).
    type: str
    required: true
  ledger_dir:
    description:
      - Directory of the release ledger on the managed host.
    type: path
    default: /var/lib/aiwfe-rollback
"""
