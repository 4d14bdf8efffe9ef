#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_notify
short_description: Tell people that a rollback started, failed or recovered - JSON webhook and mail through an SMTP relay
version_added: 0.1.0
description:
  - The runbook's contacts (on-call engineer, database administrator, infrastructure lead) hear of a rollback through
    the targets in O(targets) - a generic JSON webhook (chat and pager gateways take these) and plain mail through a
    local SMTP relay. Python standard library only.
  - Every target gets the same message - the event, the project, the host(s), a summary line, the releases from and
    to, and the time to recovery (from O(entry), the M(aiwfe.rollback.rollback_log) entry of the run, or the options).
  - B(A failed notification never fails the task.) Each target ends in RV(sent) or RV(not_sent) with the reason (a
    target that is not usable - no URL, no recipient - too), with a warning per failure. All targets are sent to at the
    same time, each waiting at most O(timeout) seconds.
  - B(The webhook URL is never returned) - it may carry a token. Results and messages name its host (and port) only,
    and the option is hidden (C(no_log)) in what the task returns. Header values are hidden the same way.
  - An SMTP password is never an option value - it is read on the managed host from O(targets[].password_file) or
    the environment variable O(targets[].password_env).
  - Not idempotent by nature - each run sends again; the role C(aiwfe.rollback.rollback_log) (tasks C(notify)) sends
    once per run (C(run_once)).
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
    details: Sends nothing; returns what would be sent (RV(would_send), RV(message)) and the targets that are not usable.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run sends the notifications again.
options:
  targets:
    description:
      - Where to send. An empty list sends nothing (notifications are off by default).
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description:
          - V(webhook) (HTTP POST of a JSON body) or V(smtp) (mail through a relay).
          - A target without a usable type, or without what its type needs, is reported in RV(not_sent); it does not
            fail the task.
        type: str
      name:
        description: A name for the target in the results (for example V(on-call)). Default - the type and its number.
        type: str
      url:
        description:
          - V(webhook) - the http:// or https:// URL to POST to. It may carry a token; it is never returned (its host
            only) and hidden in the task's results.
        type: str
      headers:
        description: V(webhook) - more request headers (for example an C(Authorization) header); their values are hidden.
        type: dict
      validate_certs:
        description: V(webhook) - check the HTTPS server's certificate.
        type: bool
        default: true
      use_proxy:
        description: V(webhook) - use the proxy of the environment (C(https_proxy), C(no_proxy)).
        type: bool
        default: true
      host:
        description: V(smtp) - the relay's host name.
        type: str
      port:
        description: V(smtp) - the relay's port.
        type: int
        default: 25
      sender:
        description: V(smtp) - the C(From) address.
        type: str
      to:
        description: V(smtp) - the recipients.
        type: list
        elements: str
      starttls:
        description: V(smtp) - switch to TLS (C(STARTTLS), certificate checked) before anything else is sent.
        type: bool
        default: false
      username:
        description: V(smtp) - log in as this user (with the password of O(targets[].password_file) or O(targets[].password_env)).
        type: str
      password_file:
        description: V(smtp) - a file B(on the managed host) whose first line is the password.
        type: path
      password_env:
        description: V(smtp) - the name of an environment variable of the module (on the managed host) holding the password.
        type: str
      timeout:
        description: Seconds to wait for this target (default - O(timeout)).
        type: float
  event:
    description: What happened - V(start) (the rollback started), V(failure) (it stopped, the stack is not recovered)
      or V(recovery) (the stack is back).
    type: str
    required: true
    choices: [start, failure, recovery]
  project:
    description: The compose project (shown in every message).
    type: str
    required: true
  hosts:
    description: The hosts the rollback ran on. Default - the host of O(entry), else the managed host's name.
    type: list
    elements: str
    default: []
  summary:
    description: The summary line. Default - made from the event, the method and the releases.
    type: str
  entry:
    description:
      - The rollback log entry of the run (RV(aiwfe.rollback.rollback_log#module:entry)); its method, result, releases,
        time to recover, backup set, failed step and id go into the message.
    type: dict
  method:
    description: The rollback kind (default - the one of O(entry)).
    type: str
  from_release:
    description: The release rolled back from (default - the one of O(entry)).
    type: str
  to_release:
    description: The release rolled back to (default - the one of O(entry)).
    type: str
  time_to_recovery_s:
    description: Seconds to recovery (default - the one of O(entry)).
    type: float
  timeout:
    description: Seconds to wait for each target (connect and answer).
    type: float
    default: 5
seealso:
  - module: aiwfe.rollback.rollback_log
"""

EXAMPLES = r"""
- name: Tell on-call and the DBA that the stack is back
  aiwfe.rollback.rollback_notify:
    event: recovery
    project: ai_workflow_engine
    entry: "{{ rollback_log_result.entry }}"
    targets:
      - type: webhook
        name: on-call
        url: https://chat.example.com/hooks/T0KEN
      - type: smtp
        name: dba
        host: localhost
        sender: rollback@ops.example.com
        to: [dba@example.com, infra-lead@example.com]
  run_once: true
  register: notified

- name: What would be sent
  aiwfe.rollback.rollback_notify:
    event: start
    project: ai_workflow_engine
    summary: quick rollback of v1.3.0 started
    targets: "{{ aiwfe_notify_targets }}"
  check_mode: true
"""

RETURN = r"""
sent:
  description: The targets the message was sent to - name, type, target (host and port only) and detail (the HTTP
    status, or the recipients the relay accepted).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "on-call", "type": "webhook", "target": "chat.example.com", "detail": "HTTP 200"}]
not_sent:
  description:
    - The targets it could not be sent to (or that are not usable) - name, type, target and reason.
    - Not called C(failed) - Ansible would take a key of that name for the task's own failure.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "dba", "type": "smtp", "target": "localhost:25", "reason": "cannot hand the mail to the relay:
           [Errno 111] Connection refused"}]
would_send:
  description: In check mode, the targets that would be sent to (name, type, target, and the recipients of mail).
  returned: in check mode
  type: list
  elements: dict
message:
  description: The message - event, subject, text (the line chat gateways show), body (the webhook's JSON body) and
    mail (the mail's text).
  returned: always
  type: dict
  sample: {"event": "recovery", "text": "[aiwfe.rollback] RECOVERED ai_workflow_engine on ops-1: recovered by a quick
           rollback: v1.3.0 -> v1.2.0 - time to recovery 42.5 s"}
msg:
  description: What was done, in one sentence.
  returned: always
  type: str
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._notify import DEFAULT_TIMEOUT, build_message, notify


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "targets": {"type": "list", "elements": "dict", "default": [], "options": {
                "type": {"type": "str"},
                "name": {"type": "str"},
                "url": {"type": "str", "no_log": True},
                "headers": {"type": "dict", "no_log": True},
                "validate_certs": {"type": "bool", "default": True},
                "use_proxy": {"type": "bool", "default": True},
                "host": {"type": "str"},
                "port": {"type": "int", "default": 25},
                "sender": {"type": "str"},
                "to": {"type": "list", "elements": "str"},
                "starttls": {"type": "bool", "default": False},
                "username": {"type": "str"},
                "password_file": {"type": "path", "no_log": False},
                "password_env": {"type": "str", "no_log": False},
                "timeout": {"type": "float"},
            }},
            "event": {"type": "str", "required": True, "choices": ["start", "failure", "recovery"]},
            "project": {"type": "str", "required": True},
            "hosts": {"type": "list", "elements": "str", "default": []},
            "summary": {"type": "str"},
            "entry": {"type": "dict"},
            "method": {"type": "str"},
            "from_release": {"type": "str"},
            "to_release": {"type": "str"},
            "time_to_recovery_s": {"type": "float"},
            "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be more than 0 seconds, not {params['timeout']:g}. Nothing was sent.")
    this_host = socket.gethostname()
    message = build_message(params, this_host)
    result = notify(params["targets"], message, module.check_mode, params["timeout"], this_host)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(message=message, **result)


if __name__ == "__main__":
    main()
