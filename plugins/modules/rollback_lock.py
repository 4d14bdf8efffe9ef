#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_lock
short_description: One rollback at a time - take or release the per-project lock on the managed host
version_added: 0.2.0
description:
  - Takes (O(state=present)) or releases (O(state=absent)) the lock file C(<ledger_dir>/<project_name>/lock.json)
    (mode 0600). It names its holder - owner, operation, time, the pid and host name of the ansible-playbook
    process holding it - and a random token.
  - A new lock is created from a complete temporary file with a hard link, so it appears whole and only when no
    lock exists; two runs racing cannot both win. Taking over or removing a lock checks its token and changes it
    in one step, holding C(flock) on the lock's directory, so a lock taken by someone else in between is never
    removed and nobody takes the lock while it is being checked.
  - When the lock is held by another token the module fails, naming the holder and how to clear the lock if the
    holder is dead. A lock is B(stale) when its holder process no longer exists on the same host (only checked when
    the lock was taken from the host the module runs on; the process start time guards against pid reuse) or when
    it is older than O(max_age). A stale lock is reported, and taken over only with O(steal_stale=true) or by
    naming its token in O(break_token).
  - Use the role M(aiwfe.rollback.lock) (tasks C(acquire) and C(release)) in playbooks; it fills O(pid), O(host)
    and O(owner) from the controller.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose.LEDGER
attributes:
  check_mode:
    support: full
    details: Reads the lock and reports what would happen (including the refusal of a held lock); writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Taking the lock again with the same O(token) and releasing a lock that does not exist report no change.
options:
  state:
    description:
      - V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  operation:
    description: What the holder does, shown to whoever finds the lock held (for example V(rollback_quick)).
    type: str
    default: ansible
  owner:
    description:
      - Who holds the lock. Default - the environment variable E(AIWFE_OPERATOR) of the module, else the user it
        runs as. The role passes the controller's E(AIWFE_OPERATOR) or user.
    type: str
  pid:
    description:
      - Process id of the ansible-playbook process holding the lock, on O(host).
      - When omitted, the module looks for the ansible process among its own parents (works with a local
        connection); without one the pid is not recorded and only O(max_age) makes the lock stale.
    type: int
  host:
    description:
      - Host name (C(uname -n)) of the machine O(pid) runs on. Default - the managed host's name.
    type: str
  token:
    description:
      - The holder's token. With O(state=present) and a lock carrying this token nothing changes; when omitted a new
        random token is made and returned in RV(token). With O(state=absent) the lock is removed only if it carries
        this token.
    type: str
    default: ""
  break_token:
    description:
      - The token of a lock held by someone else that you know is dead (the failure message and
        C(playbooks/unlock.yml) show it). O(state=present) takes that lock over, O(state=absent) removes it. A lock
        carrying any other token is left alone.
    type: str
    default: ""
  steal_stale:
    description: Take over a stale lock (see the description) instead of failing.
    type: bool
    default: false
  max_age:
    description: Seconds after which a lock is stale whatever its process. V(0) turns the age limit off.
    type: int
    default: 7200
"""

EXAMPLES = r"""
- name: Take the lock for a quick rollback
  aiwfe.rollback.rollback_lock:
    project_name: ai_workflow_engine
    operation: rollback_quick
  register: lock

- name: Release it
  aiwfe.rollback.rollback_lock:
    project_name: ai_workflow_engine
    state: absent
    token: "{{ lock.token }}"

- name: Remove a lock whose holder is known to be dead
  aiwfe.rollback.rollback_lock:
    project_name: ai_workflow_engine
    state: absent
    break_token: 3f9a0c2d41b7e655
"""

RETURN = r"""
lock_file:
  description: The lock file.
  returned: always
  type: str
  sample: /var/lib/aiwfe-rollback/ai_workflow_engine/lock.json
token:
  description: The token of the lock held by this run; pass it to O(state=absent) (and to a repeated O(state=present)).
  returned: when O(state=present)
  type: str
  sample: 3f9a0c2d41b7e655
lock:
  description: The lock now held (as written, or as it would be written in check mode).
  returned: when O(state=present)
  type: dict
  sample: {"owner": "alice", "operation": "rollback_quick", "acquired": "2026-11-25T18:15:00Z", "acquired_epoch": 1795630500,
           "pid": 4242, "pid_start": "123456", "host": "ops-1", "token": "3f9a0c2d41b7e655", "project": "ai_workflow_engine",
           "version": 1}
previous:
  description: The lock that was taken over or released (null when there was none).
  returned: always
  type: dict
stale:
  description: Why the lock taken over was stale (empty when it was not stale or nothing was taken over).
  returned: when O(state=present)
  type: str
msg:
  description: What was done, in one sentence.
  returned: always
  type: str
"""

import getpass
import os
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import LEDGER_ARGS
from ansible_collections.aiwfe.rollback.plugins.module_utils._lock import LockError, acquire, find_controller, lock_path, release


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **LEDGER_ARGS,
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "operation": {"type": "str", "default": "ansible"},
            "owner": {"type": "str"},
            "pid": {"type": "int"},
            "host": {"type": "str"},
            "token": {"type": "str", "default": "", "no_log": False},
            "break_token": {"type": "str", "default": "", "no_log": False},
            "steal_stale": {"type": "bool", "default": False},
            "max_age": {"type": "int", "default": 7200},
        },
        supports_check_mode=True,
    )
    params = module.params
    this_host = socket.gethostname()
    path = os.path.join(params["ledger_dir"], params["project_name"], "lock.json")
    try:
        path = lock_path(params["ledger_dir"], params["project_name"])
        if params["state"] == "absent":
            result = release(path, params["token"], params["break_token"], module.check_mode)
        else:
            pid = params["pid"]
            host = params["host"] or this_host
            if pid is None and host == this_host:
                pid = find_controller(os.getppid())
            result = acquire(
                path, params["project_name"],
                owner=params["owner"] or os.environ.get("AIWFE_OPERATOR") or user_name(),
                operation=params["operation"], pid=pid, host=host, this_host=this_host,
                token=params["token"], break_token=params["break_token"], steal_stale=params["steal_stale"],
                max_age=params["max_age"], check_mode=module.check_mode)
    except LockError as exc:
        module.fail_json(msg=str(exc), lock_file=path)
    if result.get("stale") and result["changed"]:
        module.warn(result["msg"])
    module.exit_json(lock_file=path, **result)


if __name__ == "__main__":
    main()
