#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_info
short_description: List, show and compare releases recorded in the release ledger
version_added: 0.1.0
description:
  - Reads the release ledger written by M(aiwfe.rollback.release_snapshot). Never changes anything.
  - Resolves V(previous) to the last good deploy before the newest deploy, so a rollback to V(previous) run twice
    picks the same release.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose.LEDGER
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  release:
    description:
      - Release to show. V(previous), V(latest), a manifest id, or a release label (the newest good manifest with
        that label). When omitted only RV(releases) is returned.
    type: str
  compare_to:
    description: A second release (same forms as O(release)) to diff O(release) against.
    type: str
"""

EXAMPLES = r"""
- name: List the releases of the stack
  aiwfe.rollback.release_info:
    project_name: ai_workflow_engine
  register: ledger

- name: What would a rollback to the previous release change?
  aiwfe.rollback.release_info:
    project_name: ai_workflow_engine
    release: latest
    compare_to: previous
"""

RETURN = r"""
releases:
  description: Summaries of all manifests, oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "20261125T181500Z-v1.1.0", "release": "v1.1.0", "kind": "deploy", "status": "good"}]
release:
  description: The full manifest selected by O(release).
  returned: when O(release) is given
  type: dict
diff:
  description: Services (image from/to) and files (sha256 from/to) that differ from O(release) to O(compare_to).
  returned: when O(compare_to) is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import LEDGER_ARGS
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import LedgerError, diff, load_manifests, select, summary


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            LEDGER_ARGS,
            release={"type": "str"},
            compare_to={"type": "str"},
        ),
        required_by={"compare_to": "release"},
        supports_check_mode=True,
    )
    params = module.params
    try:
        manifests = load_manifests(params["ledger_dir"], params["project_name"])
        result = {"changed": False, "releases": [summary(m) for m in manifests]}
        if params["release"]:
            result["release"] = select(manifests, params["release"])
        if params["compare_to"]:
            result["diff"] = diff(result["release"], select(manifests, params["compare_to"]))
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
