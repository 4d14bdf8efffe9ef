#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_log
short_description: The rollback log - the runbook's Lessons Learned Log, one entry per rollback, kept by the tool
version_added: 0.1.0
description:
  - Keeps C(<ledger_dir>/<project_name>/rollback-log.jsonl) on the managed host, next to the release ledger (file mode
    0600, the project directory made 0700 as the ledger makes it). One JSON line per rollback - date and time (UTC),
    host, operator, the failure seen (symptom and failed checks), the method, the result, the releases from and to
    (name and manifest id), the backup set, the failed step, time to detect and time to recover, root cause and
    prevention measures.
  - O(state=present) appends one entry. The times are B(computed) from the time stamps passed in (O(detected_at),
    O(started_at), O(recovered_at)), never typed. Appends hold C(flock) on the log file, so two runs never interleave.
  - O(state=annotate) sets the root cause and prevention measures of an entry later (the newest, or one named by its
    id or run id), rewriting the file atomically (temporary file, fsync, rename; mode 0600); every other line stays
    as it was.
  - O(state=query) returns the entries (optionally only the newest O(last)).
  - Every state returns the Markdown rendering in the runbook's own format (Date/Time, Issue Description, Rollback
    Method Used, Time to Recovery, Root Cause, Prevention Measures, then the other fields) and can write it to
    O(markdown_path).
  - A line of the log that is not an entry - the torn last line of a writer killed while writing - is skipped with a
    warning and never breaks the log; the next append starts on a line of its own.
  - B(Nothing secret is written.) Before an entry is written (or returned), values under keys that look like secrets
    (C(password), C(passwd), C(pwd), C(secret), C(token), C(api_key), C(credential), C(private_key), C(authorization),
    C(cookie)) are replaced by C(********), as are passwords in URLs (C(scheme://user:PASSWORD@host)),
    C(password=...) or C(token=...) pairs (also with a colon) and C(Bearer ...) credentials in any text, and every string of O(redact). A
    warning names the fields (never the values).
  - Use the role C(aiwfe.rollback.rollback_log) in playbooks; C(playbooks/rollback_log.yml) adds root cause and
    prevention and prints the log.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
  - aiwfe.rollback.compose.LEDGER
attributes:
  check_mode:
    support: full
    details: Reads the log and returns the entry as it would be written (or annotated) and its Markdown; writes nothing.
  diff_mode:
    support: full
    details: O(state=present) shows the appended entry, O(state=annotate) the entry before and after (as Markdown).
  idempotent:
    support: full
    details:
      - O(state=present) with a O(run_id) already in the log appends nothing. Without O(run_id) every run appends.
      - O(state=annotate) with the values the entry already has changes nothing; O(markdown_path) is written only when
        its content differs.
options:
  state:
    description:
      - V(present) appends an entry, V(annotate) sets root cause and prevention of an existing entry, V(query) reads.
    type: str
    choices: [present, annotate, query]
    default: present
  run_id:
    description:
      - The id of the run that writes the entry (for example the host lock's token, or the job runner's job id). An
        entry of this run id in the log makes O(state=present) append nothing (its entry is returned).
    type: str
  method:
    description:
      - The rollback kind. V(config) is taken as V(configuration), V(full) as V(complete-system).
      - Required with O(state=present).
    type: str
    choices: [automatic, blue-green, complete-system, config, configuration, dependency, full, migration, other, pythonpath,
              quick, restore, tls]
  result:
    description:
      - V(recovered) - the stack was proven healthy again; V(failed) - the rollback stopped (name O(failed_step));
        V(planned) - a check-mode run that changed nothing.
      - Required with O(state=present).
    type: str
    choices: [recovered, failed, planned]
  symptom:
    description: The failure seen, in words (for example the failing health check's answer).
    type: str
    default: ""
  failed_checks:
    description: The checks that failed (for example C(health api), C(import aiwfe_api.main)).
    type: list
    elements: str
    default: []
  from_release:
    description: The release rolled back from (its name; the failed state).
    type: str
  from_manifest:
    description: The ledger manifest id of the state rolled back from.
    type: str
  to_release:
    description: The release rolled back to.
    type: str
  to_manifest:
    description: The ledger manifest id of the release rolled back to.
    type: str
  backup_set:
    description: The id of the backup set taken before the change.
    type: str
  failed_step:
    description: The step that failed; only with O(result=failed) (without it the step is recorded as C(unknown)).
    type: str
  detected_at:
    description:
      - When the failure became known - the failed deploy's time (its ledger record) or the first failed check's.
      - O(started_at) minus this is the time to detect.
      - Time stamps are ISO 8601 (C(2026-11-29T03:15:00Z); without an offset - UTC; a space instead of the C(T) is
        fine) or seconds since the epoch.
    type: str
  started_at:
    description: When the rollback started (same forms as O(detected_at)).
    type: str
  recovered_at:
    description:
      - When the stack was proven healthy again (same forms as O(detected_at)); only with O(result=recovered).
      - Default with O(result=recovered) - the moment the module runs. This minus O(started_at) is the time to recover.
    type: str
  host:
    description: The host the rollback ran on. Default - the managed host's name.
    type: str
  operator:
    description:
      - Who ran the rollback (the job's user). Default - the module's environment variable E(AIWFE_OPERATOR), else
        the user it runs as.
    type: str
  root_cause:
    description:
      - The root cause, in the operator's words. With O(state=annotate) it replaces the entry's (V("") clears it;
        omitted - left as it is).
    type: str
  prevention:
    description: Prevention measures, in the operator's words (as O(root_cause)).
    type: str
  extra:
    description:
      - More fields to keep with the entry (for example the services rolled back, the steps run). Shown in the
        Markdown after the runbook's fields. Values under secret-looking keys are not written.
    type: dict
    default: {}
  redact:
    description:
      - Strings that must never be written (passwords, tokens the run handled), at least 4 characters each. Every
        occurrence in the entry is replaced by C(********) before it is written or returned.
      - Ansible also hides these values in everything the task returns.
    type: list
    elements: str
    default: []
  entry:
    description: With O(state=annotate), the entry to annotate - V(latest), an entry id or a run id.
    type: str
    default: latest
  last:
    description: With O(state=query), return only the newest so many entries (V(0) - all).
    type: int
    default: 0
  markdown_path:
    description:
      - Also write the Markdown (RV(markdown)) to this file on the managed host (mode 0600, atomically; its directory
        must exist). Written only when its content differs.
    type: path
notes:
  - The log grows by one line per rollback; nothing removes old entries.
seealso:
  - module: aiwfe.rollback.rollback_notify
  - module: aiwfe.rollback.release_info
"""

EXAMPLES = r"""
- name: Record a quick rollback that recovered
  aiwfe.rollback.rollback_log:
    project_name: ai_workflow_engine
    run_id: "{{ lock_token }}"
    method: quick
    result: recovered
    symptom: api answered 502 after the deploy of v1.3.0
    failed_checks: [health api, health worker]
    from_release: v1.3.0
    from_manifest: 20261129T030100Z-v1.3.0
    to_release: v1.2.0
    to_manifest: 20261128T120000Z-v1.2.0
    detected_at: "2026-11-29T03:01:10Z"
    started_at: "2026-11-29T03:04:00Z"
    recovered_at: "{{ now(utc=true).isoformat() }}"
    operator: alice
  register: logged

- name: Add the root cause later
  aiwfe.rollback.rollback_log:
    project_name: ai_workflow_engine
    state: annotate
    entry: latest
    root_cause: The v1.3.0 image was built without the memory-service client.
    prevention: Import smoke test in CI for every service image.

- name: Print the newest five entries as Markdown and keep them in a file
  aiwfe.rollback.rollback_log:
    project_name: ai_workflow_engine
    state: query
    last: 5
    markdown_path: /root/rollback-log.md
  register: rollback_log
"""

RETURN = r"""
log_file:
  description: The log file.
  returned: always
  type: str
  sample: /var/lib/aiwfe-rollback/ai_workflow_engine/rollback-log.jsonl
entry:
  description:
    - The entry written (or that would be written in check mode), the entry of the same run id already in the log, or
      the entry annotated.
    - Keys - version, id, run_id, project, date, recorded, host, operator, failure (symptom, failed_checks), method,
      result, from and to (release, manifest), backup_set, failed_step, detected_at, started_at, recovered_at,
      time_to_detect_s, time_to_recover_s, root_cause, prevention, extra, annotated (at, by).
  returned: when O(state=present) or O(state=annotate)
  type: dict
  sample: {"id": "20261129T030400Z-quick", "run_id": "3f9a0c2d41b7e655", "date": "2026-11-29T03:04:00Z",
           "method": "quick", "result": "recovered", "time_to_detect_s": 170, "time_to_recover_s": 42.5,
           "from": {"release": "v1.3.0", "manifest": "20261129T030100Z-v1.3.0"},
           "to": {"release": "v1.2.0", "manifest": "20261128T120000Z-v1.2.0"}}
before:
  description: The entry before it was annotated.
  returned: when O(state=annotate)
  type: dict
entries:
  description: The entries, oldest first (the newest O(last) when it is set).
  returned: when O(state=query)
  type: list
  elements: dict
count:
  description: The number of entries in the log.
  returned: when O(state=query)
  type: int
markdown:
  description:
    - The Markdown of the entry (O(state=present), O(state=annotate)) or of the entries returned, under the heading
      C(# Lessons Learned Log - <project>) (O(state=query)).
  returned: always
  type: str
markdown_written:
  description: Whether O(markdown_path) was written (would be, in check mode).
  returned: when O(markdown_path) is given
  type: bool
msg:
  description: What was done, in one sentence.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import LEDGER_ARGS, project_name_error
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback_log import METHOD_ALIASES, METHODS, RESULTS, LogError, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **LEDGER_ARGS,
            "state": {"type": "str", "choices": ["present", "annotate", "query"], "default": "present"},
            "run_id": {"type": "str"},
            "method": {"type": "str", "choices": sorted([*METHODS, *METHOD_ALIASES])},
            "result": {"type": "str", "choices": list(RESULTS)},
            "symptom": {"type": "str", "default": ""},
            "failed_checks": {"type": "list", "elements": "str", "default": []},
            "from_release": {"type": "str"},
            "from_manifest": {"type": "str"},
            "to_release": {"type": "str"},
            "to_manifest": {"type": "str"},
            "backup_set": {"type": "str"},
            "failed_step": {"type": "str"},
            "detected_at": {"type": "str"},
            "started_at": {"type": "str"},
            "recovered_at": {"type": "str"},
            "host": {"type": "str"},
            "operator": {"type": "str"},
            "root_cause": {"type": "str"},
            "prevention": {"type": "str"},
            "extra": {"type": "dict", "default": {}},
            "redact": {"type": "list", "elements": "str", "default": [], "no_log": True},
            "entry": {"type": "str", "default": "latest"},
            "last": {"type": "int", "default": 0},
            "markdown_path": {"type": "path"},
        },
        required_if=[("state", "present", ["method", "result"]),
                     ("state", "annotate", ["root_cause", "prevention"], True)],
        supports_check_mode=True,
    )
    params = module.params
    error = project_name_error(params["project_name"])
    if error:
        module.fail_json(msg=f"{error}: fix aiwfe_project_name. Nothing was written.")
    try:
        result = run(params, module.check_mode, module._diff)
    except LogError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
