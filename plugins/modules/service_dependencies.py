#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: service_dependencies
short_description: What a compose service depends on, whether it reaches each dependency from inside, and its own files
version_added: 0.1.0
description:
  - The runbook's section B (service dependency failures) as one read-only look at one service of a Docker Compose
    project, from its compose config (C(docker compose config --format json)) and the engine.
  - The dependency graph - compose C(depends_on), followed transitively, and the other services the environment names
    (URLs such as C(MEMORY_SERVICE_URL=http://memory-service:8000), and C(NAME_HOST=service) with C(NAME_PORT)).
  - The probe, from inside the service's running container (C(docker exec), under a time limit) - its own health
    endpoint, then for each dependency a name lookup and a TCP connect, and an HTTP GET of O(health_path) when the
    address is an C(http://) URL (or O(endpoints) names a path); the addresses the service's own health answer names
    (a wrong port a release baked in) are probed too. One line each - ok, connection refused, timed out, name does not
    resolve, unreachable, or the HTTP status.
  - The probe is one short script - python3 when the image has it, else bash's C(/dev/tcp) (under C(timeout)), else
    curl, else nc; the result says which ran. With O(probe_from=image) (or V(auto) when the container does not run)
    it runs in a throwaway container of the service's image (or O(probe_image)) on the project's network instead.
  - The service's recent logs (C(docker logs --tail), both streams in time order), with the lines about connection
    trouble picked out.
  - The service's own files - the Dockerfile its build names and the directories of the build context its COPY/ADD
    sources name it in (C(app/<service>) for a context shared by all services), or O(paths) - and, with O(release_dir)
    (a checkout of a release), which of them differ from the release's, which the release does not have, and whether
    its compose entry differs (only this service's block - the compose files may come back - or others' too).
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode (the probe connects to the dependencies, which changes nothing).
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  service:
    description: The failing compose service. An unknown one is refused, naming the project's services.
    type: str
    required: true
  probe:
    description: Probe the service's own health endpoint and its dependencies. V(false) - graph, files and logs only.
    type: bool
    default: true
  probe_from:
    description:
      - V(container) - C(docker exec) in the service's container; fails, saying so, when it does not run.
      - V(image) - a throwaway container (C(docker run --rm)) of O(probe_image), else the service's image, on the first
        network the service uses. Its own health endpoint is then not probed.
      - V(auto) - the container when it runs, else the throwaway container.
    type: str
    choices: [container, image, auto]
    default: container
  probe_image:
    description: The image of the throwaway container (one with python3, bash, curl or nc); default the service's.
    type: str
  timeout:
    description: Seconds a connect, and an HTTP request, may take. The whole probe is stopped after twice this per target plus 15 s.
    type: int
    default: 3
  health_path:
    description: Path of the HTTP health endpoint, for the service itself and for every dependency an C(http://) URL names.
    type: str
    default: /health
  port:
    description:
      - The container port of the service's own health endpoint. Default - the port other services' C(http://) URLs
        name for it, else the one port its compose config declares (else it is not probed).
    type: int
  endpoints:
    description:
      - Per dependency (service name), C(port) to probe as well (for one no environment names) and C(path) for its
        HTTP GET (V('') - TCP only).
    type: dict
    default: {}
  logs_tail:
    description: How many of the service's last log lines to return (V(0) - none).
    type: int
    default: 100
  paths:
    description:
      - The service's own files and directories, relative to O(project_dir). Default - derived from the compose config
        (see the description). Absolute paths, patterns, paths that leave O(project_dir) and anything in C(.git) or
        C(secrets) are refused.
    type: list
    elements: str
  release_dir:
    description:
      - A directory holding a release's files (a checkout of its commit) to compare the service's own files and compose
        entry with (the result's C(restore)). Nothing is read from it but files.
    type: path
  require_build:
    description:
      - Refuse a service that cannot be rebuilt from its files - no build section, no own files known, or pinned to an
        image by a quick rollback - saying what to do instead.
    type: bool
    default: false
  fail_on_unreachable:
    description: Fail when the service's own health endpoint or a dependency does not answer ok (else only report).
    type: bool
    default: false
requirements:
  - C(sh) in the service's image (or in O(probe_image)) for the probe.
notes:
  - Port 0 in a probe means the name is only resolved (no port of that dependency is known - set O(endpoints)).
"""

EXAMPLES = r"""
- name: Why does perception-service fail its dependencies?
  aiwfe.rollback.service_dependencies:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    service: perception-service
  register: deps

- name: Show what it reaches and what not
  ansible.builtin.debug:
    msg: "{{ deps.report }}"

- name: Prove that every dependency answers (fails otherwise, one line each)
  aiwfe.rollback.service_dependencies:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    service: perception-service
    logs_tail: 0
    endpoints:
      postgres: {port: 5432}
    fail_on_unreachable: true
"""

RETURN = r"""
service:
  description: The service looked at.
  returned: always
  type: str
services:
  description: The project's services.
  returned: success
  type: list
  elements: str
project_dir:
  description: The deploy directory.
  returned: success
  type: str
project_name:
  description: The compose project.
  returned: success
  type: str
container:
  description: The service's container - id, name, state, health, image_id, restart_count; null without one.
  returned: success
  type: dict
graph:
  description:
    - The service and each dependency, found transitively - C(depends_on) (compose) and C(addresses) (other services
      its environment names - service, scheme, port, path, via).
  returned: success
  type: dict
dependencies:
  description: The dependencies, nearest first.
  returned: success
  type: list
  elements: str
dependents:
  description: The services that depend on it through depends_on, directly or not, each with its container's state.
  returned: success
  type: list
  elements: dict
  sample: [{"service": "reasoning-service", "state": "created"}]
probe:
  description: Where the probe ran (C(from) container or image, C(where)) and with which C(tool) (python3, bash, curl, nc, none).
  returned: when probed
  type: dict
self_check:
  description: The service's own health endpoint from inside its container - port, path, tcp, http, detail, body, ok, line.
  returned: always (null when not probed)
  type: dict
probes:
  description:
    - One per dependency address - dependency, host, port, path, via (where the address was found), tcp (ok, refused,
      timeout, dns, unreachable, error), http (the status; 0 - no HTTP answer; null - not asked), detail, ok, line.
  returned: always
  type: list
  elements: dict
ok:
  description: Whether the service itself and every dependency answered ok (null when not probed).
  returned: always
  type: bool
failing:
  description: The lines of what did not answer ok.
  returned: always
  type: list
  elements: str
logs:
  description: The service's last O(logs_tail) log lines, standard output and error in time order, with their time stamps.
  returned: always
  type: list
  elements: str
log_hints:
  description: The log lines about connection trouble (refused, timeout, name resolution, unreachable).
  returned: always
  type: list
  elements: str
build:
  description:
    - The service's build - context and dockerfile (relative to O(project_dir)), image (the reference it builds),
      image_id (now); null without a build section.
  returned: success
  type: dict
paths:
  description: The service's own files and directories (a directory ends in C(/) when given so), relative to O(project_dir).
  returned: success
  type: list
  elements: str
patterns:
  description: The same as patterns of M(aiwfe.rollback.config_archive) (a directory's files at any depth).
  returned: success
  type: list
  elements: str
pinned:
  description: The image a quick rollback's pin file pins the service to, or null.
  returned: success
  type: str
restore:
  description:
    - With O(release_dir) - C(changed) (files that differ from the release's or are missing), C(extra) (files the release
      does not have), C(current) (how many of the service's files there are now), C(patterns) (for config_archive; the
      compose files included when they come back) and C(compose) - C(status) V(same), V(take) (only this service's
      block differs - the release's compose C(files) come back whole), V(others_differ) (C(others) services' blocks or
      C(top) level keys differ too), V(missing) (the release has no such service) or V(missing_file).
  returned: when O(release_dir) is given
  type: dict
compose_files:
  description: The compose files (the rollback pin file last when it exists).
  returned: success
  type: list
  elements: str
compose_argv:
  description: The C(docker compose) command line of the project (its files and the pin included), to add a command to.
  returned: success
  type: list
  elements: str
notes:
  description: What was left out and why (a build context outside the deploy directory, its own endpoint not probed).
  returned: always
  type: list
  elements: str
report:
  description: One line per fact - the container, the graph, where the probe ran, each probe, the logs, the notes.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._deps import PROBE_FROM, run
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job

ARGUMENT_SPEC = dict(
    STACK_ARGS,
    service={"type": "str", "required": True},
    probe={"type": "bool", "default": True},
    probe_from={"type": "str", "choices": list(PROBE_FROM), "default": "container"},
    probe_image={"type": "str"},
    timeout={"type": "int", "default": 3},
    health_path={"type": "str", "default": "/health"},
    port={"type": "int"},
    endpoints={"type": "dict", "default": {}},
    logs_tail={"type": "int", "default": 100},
    paths={"type": "list", "elements": "str"},
    release_dir={"type": "path"},
    require_build={"type": "bool", "default": False},
    fail_on_unreachable={"type": "bool", "default": False},
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    project = compose_project(module)
    run_job(module, lambda: run(docker_cli(module), project, module.params))


if __name__ == "__main__":
    main()
