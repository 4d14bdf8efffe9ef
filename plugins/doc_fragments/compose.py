# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by the modules that look at a Docker Compose project."""

    DOCUMENTATION = r"""
options:
  project_dir:
    description:
      - The deploy directory of the stack, where its compose files live (C(docker compose --project-directory)).
    type: path
    required: true
  project_name:
    description:
      - The compose project name (C(docker compose -p)). Named volumes are prefixed with it.
    type: str
    required: true
  files:
    description:
      - Compose files, relative to O(project_dir) or absolute, merged in order.
      - When empty, compose finds C(compose.yaml) (or its other default names) itself.
    type: list
    elements: path
    default: []
  docker_cli:
    description:
      - The docker client to run. It needs the Compose v2 plugin (C(docker compose version)).
    type: path
    default: docker
requirements:
  - Docker CLI with the Compose v2 plugin on the managed host.
"""

    LEDGER = r"""
options:
  ledger_dir:
    description:
      - Directory of the release ledger on the managed host. Each project has C(<ledger_dir>/<project_name>/releases/).
    type: path
    default: /var/lib/aiwfe-rollback
"""
