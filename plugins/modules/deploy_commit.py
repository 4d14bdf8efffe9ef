#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_commit
short_description: Commit the files a rollback put right in the deploy directory, on a branch of their own
version_added: 0.1.0
description:
  - A rollback that brings back some files (a Dockerfile, a service's code, the Caddyfile) leaves the deploy directory
    different from its checked-out commit; the next deploy and configuration rollback then refuse it for local edits.
    This module commits those files, so the ledger records the commit whose files run.
  - The commit is made on a detached HEAD (a branch the operator had checked out never moves) and kept reachable under
    O(branch). HEAD stays detached, as M(aiwfe.rollback.deploy_checkout) leaves it.
  - Only the given O(paths) are committed - tracked changes under them, and untracked files named exactly; other local
    edits stay as they are. Nothing to commit is not a change.
  - Paths must be relative to O(project_dir) and stay inside it; a bad path or branch name is refused before anything
    changes.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose
attributes:
  check_mode:
    support: full
    details: Reports the files that would be committed; commits nothing.
  diff_mode:
    support: full
    details: The diff shows HEAD before and after, and the files committed.
  idempotent:
    support: full
    details: Once committed, the files no longer differ from HEAD and nothing is committed again.
options:
  paths:
    description:
      - Files and directories to commit, relative to O(project_dir). Directories take tracked changes (edits and
        deletions) under them; untracked files are committed only when named exactly.
    type: list
    elements: str
    required: true
  commit_message:
    description: The commit message (say which rollback, from which release).
    type: str
    required: true
  branch:
    description: The branch that keeps the commit reachable; it must not exist yet.
    type: str
    required: true
  author_name:
    description: The committer's and author's name.
    type: str
    default: aiwfe.rollback
  author_email:
    description: The committer's and author's e-mail address; by default C(aiwfe-rollback@<host name>).
    type: str
  git:
    description: The git executable.
    type: path
    default: git
requirements:
  - git on the managed host.
"""

EXAMPLES = r"""
- name: Commit the Dockerfiles the PYTHONPATH rollback brought back
  aiwfe.rollback.deploy_commit:
    project_dir: /srv/ai_workflow_engine
    project_name: ai_workflow_engine
    paths: [docker/api/Dockerfile, docker/worker/Dockerfile]
    commit_message: "PYTHONPATH rollback of api, worker: Dockerfiles from release v1.2.0"
    branch: aiwfe-rollback/pythonpath-20261130T080000Z
"""

RETURN = r"""
commit:
  description: HEAD after the commit (unchanged when nothing was committed, and in check mode).
  returned: success
  type: str
previous_commit:
  description: HEAD before.
  returned: success
  type: str
files:
  description: The files committed (or that would be, in check mode).
  returned: success
  type: list
  elements: str
branch:
  description: The branch made, or null when nothing was committed.
  returned: success
  type: str
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import STACK_ARGS
from ansible_collections.aiwfe.rollback.plugins.module_utils._git import GitError, open_deploy_repo, relative_paths


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            STACK_ARGS,
            paths={"type": "list", "elements": "str", "required": True},
            commit_message={"type": "str", "required": True},
            branch={"type": "str", "required": True},
            author_name={"type": "str", "default": "aiwfe.rollback"},
            author_email={"type": "str"},
            git={"type": "path", "default": "git"},
        ),
        supports_check_mode=True,
    )
    params = module.params
    repo = open_deploy_repo(module)
    try:
        paths = relative_paths(params["paths"])
        if not params["commit_message"].strip():
            raise GitError("commit_message is empty: say which rollback brought the files back. Nothing was changed.")
        if not repo.is_repo():
            raise GitError(f"{params['project_dir']} is not a git work tree: nothing to commit the files in. Nothing was changed.")
        head = repo.head()
        files = repo.pending(paths)
        branch = params["branch"]
        if files:
            if not repo.valid_branch(branch):
                raise GitError(f"'{branch}' is not a valid branch name (git check-ref-format --branch). Nothing was changed.")
            if repo.branch_exists(branch):
                raise GitError(f"branch {branch} exists already in {params['project_dir']}: name another. Nothing was changed.")
        commit = head
        if files and not module.check_mode:
            email = params["author_email"] or f"aiwfe-rollback@{socket.gethostname()}"
            commit = repo.commit_fix(files, params["commit_message"], branch, params["author_name"], email)
    except GitError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(files), commit=commit, previous_commit=head, files=files, branch=branch if files else None,
                     diff={"before": f"HEAD {head}\n",
                           "after": f"HEAD {'(new commit)' if files and module.check_mode else commit}\n"
                                    + "".join(f"committed: {f}\n" for f in files)})


if __name__ == "__main__":
    main()
