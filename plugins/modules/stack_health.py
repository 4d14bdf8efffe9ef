#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_health
short_description: Health of a Docker Compose stack, and proof of which images it runs
version_added: 0.1.0
description:
  - The runbook's monitoring loop and post-rollback verification in one read-only module.
  - For every service of the project, reads the container state and Docker health, the image ID it runs, and
    queries its HTTP health endpoint through the port the container publishes for O(port) on the host.
  - Also queries extra URLs (for example HTTPS through the reverse proxy).
  - Waits up to O(timeout) seconds for every check to pass, polling every O(interval) seconds (each poll queries every
    endpoint at the same time), and fails with one
    line per failing service when they do not.
  - With O(expect), also proves identity - each named service must run the given image ID, report the given version
    and, when given, carry the given compose config hash.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  services:
    description: Only check these services. Empty means every service of the project.
    type: list
    elements: str
    default: []
  port:
    description: Container port of the services' HTTP health endpoint. Services that do not publish it are judged by container state and Docker health alone.
    type: int
    default: 8000
  path:
    description: Path of the health endpoint.
    type: str
    default: /health
  urls:
    description: Extra endpoints to check.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check in the result.
        type: str
        required: true
      url:
        description: The URL.
        type: str
        required: true
      validate_certs:
        description: Verify the TLS certificate.
        type: bool
        default: true
      ca_path:
        description: CA certificate file to verify against (for example the root of Caddy's internal CA).
        type: path
      status:
        description: Expected HTTP status.
        type: int
        default: 200
  expect:
    description:
      - Per service, what must hold besides health. Keys are service names, values dicts with C(image_id), C(version)
        and/or C(config_hash) (the compose config hash the container was created from).
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for every check to pass. V(0) checks once.
    type: int
    default: 0
  interval:
    description: Seconds between polls.
    type: float
    default: 1.0
  request_timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 3.0
  fail_on_unhealthy:
    description: Fail when a check still fails after O(timeout). When false, only report.
    type: bool
    default: true
  progress_file:
    description:
      - A file on the managed host to append one line to as each check first passes while the module waits (and one
        at the start and the end), so an operator can follow the wait with C(tail -f) - Ansible shows a task's output
        only when it ends. The same lines are returned in RV(progress). Its directory must exist.
    type: path
  progress_label:
    description: The first progress line's label (default the project name), e.g. the rollback that waits.
    type: str
"""

EXAMPLES = r"""
- name: Wait until every service is healthy and runs release v1.1.0
  aiwfe.rollback.stack_health:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    timeout: 120
    urls:
      - name: https
        url: https://localhost:18443/health
        validate_certs: false
"""

RETURN = r"""
project_name:
  description: The compose project that was checked.
  returned: success
  type: str
compose_files:
  description: The compose files read, the rollback pin file last when it exists.
  returned: success
  type: list
  elements: str
healthy:
  description: Whether every check passed.
  returned: always
  type: bool
failing:
  description: Names of the failing services and URLs.
  returned: always
  type: list
  elements: str
services:
  description: Per service - state, docker_health, image, image_id, restart_count, http_status, version, body, problems, ok.
  returned: always
  type: dict
urls:
  description: Per extra URL - http_status, version, body, problems, ok.
  returned: always
  type: dict
report:
  description: One human-readable line per service and URL.
  returned: always
  type: list
  elements: str
alembic_revision:
  description: The Alembic revision the health endpoints report (first service by name that reports one), else null.
  returned: always
  type: str
green_after:
  description: Per check (service or URL name), the seconds into the wait when it first passed; absent when it never did.
  returned: always
  type: dict
  sample: {"api": 4.12, "worker": 6.3}
progress:
  description: The progress lines, as written to O(progress_file).
  returned: always
  type: list
  elements: str
  sample: ["ai_workflow_engine: waiting for 7 check(s)", "4.1s api green (1/7)", "9.8s all green"]
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._health import run
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job

ARGUMENT_SPEC = dict(
    STACK_ARGS,
    services={"type": "list", "elements": "str", "default": []},
    port={"type": "int", "default": 8000},
    path={"type": "str", "default": "/health"},
    urls={"type": "list", "elements": "dict", "default": [], "options": {
        "name": {"type": "str", "required": True},
        "url": {"type": "str", "required": True},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "status": {"type": "int", "default": 200},
    }},
    expect={"type": "dict", "default": {}},
    timeout={"type": "int", "default": 0},
    interval={"type": "float", "default": 1.0},
    request_timeout={"type": "float", "default": 3.0},
    fail_on_unhealthy={"type": "bool", "default": True},
    progress_file={"type": "path"},
    progress_label={"type": "str"},
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    project = compose_project(module)
    run_job(module, lambda: run(docker_cli(module), project, module.params))


if __name__ == "__main__":
    main()
