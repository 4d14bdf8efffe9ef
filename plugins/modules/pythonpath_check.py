#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pythonpath_check
short_description: What Python sees in a service's container - PYTHONPATH, sys.path, imports - and its Dockerfiles' ENV PYTHONPATH
version_added: 0.1.0
description:
  - The runbook's section A (Python import issues, PYTHONPATH) as one module.
  - Inside the running container of O(service) (C(docker exec)), or of O(image) (a throwaway container without
    network, never pulled, removed after), reports the effective C(PYTHONPATH), C(sys.path) and working directory,
    and imports each of O(modules) with importlib, telling three outcomes apart - V(ok), V(not_found) (which module
    is missing) and V(error) (an exception the module raised while it was imported).
  - When the service's container does not run (a restart loop), the probe runs in a throwaway container of the image
    that container was created from, with its environment, working directory, user and (read-only) mounts, so that
    it sees the PYTHONPATH the service sees; RV(probe) says which.
  - With O(logs_since), scans the service container's logs since then for C(ImportError) and C(ModuleNotFoundError)
    lines and names what was missing.
  - With O(dockerfiles), reports their C(ENV PYTHONPATH) lines, and with O(fix) removes or sets them.
  - Every option is checked and every Dockerfile read before anything runs; nothing is written when anything fails.
    Read-only unless O(fix) asks for a change.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: Probes and reads as in a real run; reports which Dockerfiles O(fix) would change and writes none.
  diff_mode:
    support: full
    details: The Dockerfiles' text before and after O(fix), one entry per file.
  idempotent:
    support: full
    details: A second run with the same O(fix) finds nothing to change.
options:
  service:
    description:
      - The compose service whose container is probed (and whose logs O(logs_since) reads). It must be in the
        project's compose config and have a container.
      - Mutually exclusive with O(image).
    type: str
  image:
    description:
      - An image on this host to probe in a throwaway container (C(docker run --rm --network none --pull never),
        entrypoint replaced by O(python)) with the image's own environment and working directory.
      - Mutually exclusive with O(service). The compose options are then not used, except O(project_dir) for
        O(dockerfiles).
    type: str
  modules:
    description:
      - Dotted module names to import inside the container, as in an import statement (for example C(aiwfe_api.main)).
        Names that are not dotted Python identifiers are refused before anything runs.
    type: list
    elements: str
    default: []
  python:
    description: The Python interpreter inside the container (a name on its PATH or a path).
    type: str
    default: python3
  timeout:
    description:
      - Seconds the imports may take inside the container; the docker client is stopped 15 seconds after that (and a
        throwaway container removed). Also the time C(docker logs) may take.
    type: int
    default: 60
  logs_since:
    description:
      - Read the service container's logs since this time (as C(docker logs --since) takes it - an RFC 3339 timestamp,
        Unix seconds, or a duration back from now such as V(15m)) and report their import errors.
      - Needs O(service).
    type: str
  dockerfiles:
    description:
      - Dockerfiles to read, relative to O(project_dir) or absolute. Each must exist and resolve (symlinks followed)
        inside O(project_dir).
    type: list
    elements: path
    default: []
  fix:
    description:
      - What to do with the C(PYTHONPATH) assignments of O(dockerfiles).
      - V(none) only reports them.
      - V(remove) removes each assignment; the other variables of the same C(ENV) instruction are kept, an C(ENV)
        instruction of C(PYTHONPATH) alone goes whole.
      - V(set) sets every assignment to O(pythonpath) (one already holding it is left as written); a Dockerfile without
        any gets C(ENV PYTHONPATH=value) after the C(FROM) of its last stage.
      - Files are replaced atomically and keep their mode (and owner).
      - Not applied when an import fails and O(fail_on_error) is true.
    type: str
    choices: [none, remove, set]
    default: none
  pythonpath:
    description:
      - The value O(fix=set) writes, as Dockerfile text (variable references such as C($APP_HOME) are expanded by the
        build). Required with O(fix=set).
    type: str
  fail_on_error:
    description: Fail when an import is not V(ok), one line per failure. When false, only report.
    type: bool
    default: true
notes:
  - Imports run the modules' code inside the container (as in the service); a throwaway container has no network.
  - The action groups of C(meta/runtime.yml) decide whether C(module_defaults) for C(group/aiwfe.rollback.stack)
    reach this module; otherwise give O(project_dir) and O(project_name) to it.
"""

EXAMPLES = r"""
- name: Why does the api not start? (restart loop after a deploy)
  aiwfe.rollback.pythonpath_check:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    service: api
    modules: [aiwfe_api.main, aiwfe_common]
    logs_since: 30m
    dockerfiles: [docker/api/Dockerfile]
  register: api_imports

- name: Probe an image that is not deployed, report only
  aiwfe.rollback.pythonpath_check:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    image: aiwfe/api:v1.3.0-pythonpath
    modules: [aiwfe_api.main]
    fail_on_error: false

- name: Put the Dockerfiles' PYTHONPATH back (then rebuild the images)
  aiwfe.rollback.pythonpath_check:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    dockerfiles: [docker/api/Dockerfile, docker/worker/Dockerfile]
    fix: set
    pythonpath: /opt/app/api:/opt/app/common
"""

RETURN = r"""
probe:
  description: Where the probe ran - V(exec) (the service's running container), V(image) (a throwaway container) or
    V(none) (no O(service) or O(image) given).
  returned: always
  type: str
container:
  description: The service's container.
  returned: with O(service)
  type: str
image_id:
  description: The ID of O(image).
  returned: with O(image)
  type: str
pythonpath:
  description: The C(PYTHONPATH) inside the container, null when it is not set.
  returned: always
  type: str
pythonpath_entries:
  description: Each entry of C(PYTHONPATH) - path, exists, is_dir (inside the container).
  returned: always
  type: list
  elements: dict
sys_path:
  description: The interpreter's C(sys.path) inside the container (V('') is the working directory).
  returned: always
  type: list
  elements: str
cwd:
  description: The working directory inside the container.
  returned: always
  type: str
python_version:
  description: The version of O(python) inside the container.
  returned: when probed
  type: str
imports:
  description:
    - Per module of O(modules) - status (V(ok), V(not_found) or V(error)), missing (the module that was not found -
      the one asked for, or one it imports), error (type and message), error_type, traceback (the last traceback line
      outside importlib), file (where an imported module was loaded from).
  returned: always
  type: dict
  sample: {"aiwfe_api.main": {"status": "not_found", "missing": "aiwfe_api",
           "error": "ModuleNotFoundError: No module named 'aiwfe_api'", "error_type": "ModuleNotFoundError",
           "traceback": null, "file": null}}
failed_imports:
  description: The modules whose status is not V(ok).
  returned: always
  type: list
  elements: str
log_import_errors:
  description: The distinct import error lines of the logs since O(logs_since) - line, missing (module, or
    C(module.name) for C(cannot import name)), kind (V(module) or V(name)), count.
  returned: always
  type: list
  elements: dict
dockerfiles:
  description: Per Dockerfile as given - path (real path), pythonpath_lines (line, instruction, value of each
    C(PYTHONPATH) assignment, before the fix), changed (in check mode - would change).
  returned: always
  type: dict
report:
  description: One human-readable line per check.
  returned: always
  type: list
  elements: str
diff:
  description: Per changed Dockerfile, its text before and after (before, after, before_header, after_header).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, compose_project, docker_cli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job
from ansible_collections.aiwfe.rollback.plugins.module_utils._pythonpath import FIXES, run

ARGUMENT_SPEC = dict(
    STACK_ARGS,
    service={"type": "str"},
    image={"type": "str"},
    modules={"type": "list", "elements": "str", "default": []},
    python={"type": "str", "default": "python3"},
    timeout={"type": "int", "default": 60},
    logs_since={"type": "str"},
    dockerfiles={"type": "list", "elements": "path", "default": []},
    fix={"type": "str", "choices": list(FIXES), "default": "none"},
    pythonpath={"type": "str"},
    fail_on_error={"type": "bool", "default": True},
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("service", "image")],
        required_if=[("fix", "set", ["pythonpath"])],
        supports_check_mode=True,
    )
    project = compose_project(module) if module.params["service"] else None
    run_job(module, lambda: run(docker_cli(module), project, module.params, module.check_mode))


if __name__ == "__main__":
    main()
