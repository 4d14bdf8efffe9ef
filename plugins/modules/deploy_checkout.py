#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_checkout
short_description: Check out a release (git tag or commit) in a deploy directory, never over local edits
version_added: 0.1.0
description:
  - Resolves O(release) in the deploy directory's git repository and checks it out (detached HEAD).
  - Fails, changing nothing, when the release is unknown (the message lists the known tags) or when tracked files
    have uncommitted changes (unless O(allow_dirty)), so local edits are never silently thrown away.
  - With O(drop_pin), a deploy's checkout also removes the quick rollback's pin file
    C(<ledger_dir>/<project_name>/pin.compose.yaml), so the release's own files take over.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the commit before and after.
  idempotent:
    support: full
options:
  release:
    description: Git tag, branch or commit to check out.
    type: str
    required: true
  allow_dirty:
    description: Check out even when tracked files have uncommitted changes (git itself still refuses to overwrite them).
    type: bool
    default: false
  drop_pin:
    description: Remove the rollback pin file once the release is checked out (a deploy supersedes a rollback).
    type: bool
    default: false
  git:
    description: The git executable.
    type: path
    default: git
requirements:
  - git on the managed host.
"""

EXAMPLES = r"""
- name: Check out release v1.1.0
  aiwfe.rollback.deploy_checkout:
    project_dir: /srv/ai_workflow_engine
    release: v1.1.0
"""

RETURN = r"""
commit:
  description: The commit of the release.
  returned: success
  type: str
pin_dropped:
  description: The pin file removed (or that would be, in check mode); null when there was none or O(drop_pin) is false.
  returned: success
  type: str
previous_commit:
  description: The commit checked out before.
  returned: success
  type: str
tags:
  description: The release tags of the repository, oldest first.
  returned: success
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS, pin_path
from ansible_collections.aiwfe.rollback.plugins.module_utils._git import GitError, open_deploy_repo


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            STACK_ARGS,
            release={"type": "str", "required": True},
            allow_dirty={"type": "bool", "default": False},
            drop_pin={"type": "bool", "default": False},
            git={"type": "path", "default": "git"},
        ),
        supports_check_mode=True,
    )
    params = module.params
    repo = open_deploy_repo(module)
    try:
        if not repo.is_repo():
            module.fail_json(msg=f"{params['project_dir']} is not a git work tree: releases are git tags of the deploy directory")
        commit = repo.resolve(params["release"])
        head = repo.head()
        changed = commit != head
        if changed:
            edits = repo.local_changes()
            if edits and not params["allow_dirty"]:
                module.fail_json(msg=(f"{params['project_dir']} has uncommitted changes ({'; '.join(edits)}): commit or stash "
                                      "them, or set allow_dirty. Nothing was changed."), local_changes=edits)
            if not module.check_mode:
                repo.checkout(commit)
        tags = repo.tags()
    except GitError as exc:
        module.fail_json(msg=str(exc))
    pin = pin_path(params["ledger_dir"], params["project_name"])
    dropped = pin if params["drop_pin"] and os.path.exists(pin) else None
    if dropped and not module.check_mode:
        os.unlink(dropped)
    module.exit_json(changed=changed or bool(dropped), commit=commit, previous_commit=head, tags=tags, pin_dropped=dropped,
                     diff={"before": f"HEAD {head}\n", "after": f"HEAD {commit}\n"})


if __name__ == "__main__":
    main()
