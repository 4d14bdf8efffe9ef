#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: caddy_config
short_description: Validate, install and reload a Caddy proxy's Caddyfile, and read the certificate it serves
version_added: 0.1.0
description:
  - The one "validate a Caddyfile before it goes live" step of the collection (roles C(blue_green) and C(tls_rollback)).
  - V(validate) runs C(caddy validate) on the candidate in a throwaway container of the proxy's image (O(image)) -
    no network, never pulled, the candidate mounted read-only - and fails with Caddy's own error (RV(caddy_error)).
  - V(install) validates the candidate, then replaces the live file O(path) atomically (a temporary file beside it,
    fsynced, renamed over it), keeping its mode and owner. An invalid candidate is never installed. Nothing changes
    when the live file already holds the candidate (it is validated all the same, since the live file may be what breaks
    the proxy).
  - V(reload) makes the running proxy load its Caddyfile - C(caddy reload) through C(docker exec) (graceful, no
    dropped request) - or restarts the container instead when a reload cannot take, and says why (RV(reason)) - when
    the container is not running (a restart loop), or when it does not see the installed file (a single-file bind
    mount keeps the inode of the file that was replaced; compared when O(path) is given).
  - V(certificate) opens a TLS connection to O(host):O(port) with SNI O(server_name) and reports the certificate it
    presents - subject, issuer, validity, days left, subjectAltName - and whether the handshake succeeded. The
    certificate is not verified (Caddy's C(tls internal) CA is not in the host's trust store) unless O(ca_file) is
    given. A failed handshake is reported (RV(handshake), RV(error)), not failed.
  - The candidate is O(content), the file O(src), or O(path) as it is at the git commit O(git_commit) of
    O(project_dir); for V(validate) without any of them, the live file O(path) itself.
author: aiwfe.rollback maintainers (@aiwfe)
extends_documentation_fragment:
  - aiwfe.rollback.attributes
attributes:
  check_mode:
    support: full
    details:
      - V(install) validates the candidate (a throwaway container) and reports the change and its diff, writing nothing;
        V(reload) reports whether it would reload or restart. V(validate) and V(certificate) only read.
  diff_mode:
    support: full
    details: V(install) shows the live file before and after.
  idempotent:
    support: partial
    details:
      - V(validate) and V(certificate) never change anything; V(install) changes nothing once the live file holds the
        candidate.
      - V(reload) reloads (or restarts) every time it runs - run it when V(install) changed something or the proxy is
        not running.
options:
  state:
    description: What to do.
    type: str
    choices: [validate, install, reload, certificate]
    default: validate
  path:
    description:
      - The live Caddyfile on the managed host - relative to O(project_dir) when that is given, else absolute.
      - With O(project_dir), a path that is absolute, climbs out with C(..), or leads out of O(project_dir) through a
        symbolic link is refused, changing nothing.
      - Required for V(install). For V(reload), the installed file whose content the container must see.
    type: str
  project_dir:
    description:
      - The deploy directory O(path) is relative to and must stay inside; also the git work tree of O(git_commit).
    type: path
  content:
    description: The candidate configuration, as text.
    type: str
  src:
    description: The candidate configuration, a file on the managed host.
    type: path
  git_commit:
    description: Take the candidate from O(path) at this git commit of O(project_dir) (C(git show COMMIT:PATH)).
    type: str
  expect_sha256:
    description:
      - The sha256 the candidate must have (for example the one the release ledger recorded for the release's
        Caddyfile); a different candidate is refused before anything else.
    type: str
  image:
    description:
      - The Caddy image that validates the candidate (the proxy's own image; never pulled).
      - Default - the image of the proxy container (O(project_name) and O(service), or O(container)).
    type: str
  adapter:
    description: The config adapter (C(caddy --adapter)).
    type: str
    default: caddyfile
  mode:
    description: Mode of the live file when V(install) creates it; an existing file keeps its own.
    type: str
    default: "0644"
  project_name:
    description: The compose project of the proxy (with O(service)).
    type: str
  service:
    description: The proxy's compose service (with O(project_name)).
    type: str
  container:
    description: The proxy container's name or id, instead of O(project_name) and O(service).
    type: str
  config_in_container:
    description: The Caddyfile's path inside the proxy container (V(reload)).
    type: str
    default: /etc/caddy/Caddyfile
  host:
    description: Host to connect to (V(certificate)).
    type: str
    default: localhost
  port:
    description: Port to connect to (V(certificate)).
    type: int
    default: 443
  server_name:
    description: The name sent as SNI (V(certificate)); default O(host).
    type: str
  timeout:
    description: Seconds the connection and handshake may take (V(certificate)).
    type: float
    default: 5.0
  ca_file:
    description: Verify the certificate chain and name against this CA file (V(certificate)); RV(verified) says how it went.
    type: path
  docker_cli:
    description: The docker client.
    type: path
    default: docker
  git:
    description: The git executable (O(git_commit)).
    type: path
    default: git
requirements:
  - The Docker CLI on the managed host; git for O(git_commit).
"""

EXAMPLES = r"""
- name: Install the Caddyfile of release v1.2.0, validated by Caddy first
  aiwfe.rollback.caddy_config:
    state: install
    project_dir: /srv/ai_workflow_engine
    path: docker/caddy_reverse_proxy/Caddyfile
    git_commit: v1.2.0
    image: aiwfe/caddy:2.6
  register: caddyfile

- name: Make the proxy load it (graceful reload, or a restart when it is in a restart loop)
  aiwfe.rollback.caddy_config:
    state: reload
    project_name: ai_workflow_engine
    service: caddy_reverse_proxy
    project_dir: /srv/ai_workflow_engine
    path: docker/caddy_reverse_proxy/Caddyfile
  when: caddyfile is changed

- name: Read the certificate the proxy serves
  aiwfe.rollback.caddy_config:
    state: certificate
    host: localhost
    port: 18443
  register: cert

- name: Validate a rendered configuration before it replaces the live one
  aiwfe.rollback.caddy_config:
    state: install
    path: /srv/proxy/caddy/Caddyfile
    content: "{{ lookup('ansible.builtin.template', 'Caddyfile.j2') }}"
    image: caddy:2.6
"""

RETURN = r"""
valid:
  description: Whether Caddy accepted the candidate (V(validate); false on a failed V(validate) or V(install)).
  returned: state is validate, or when the candidate is rejected
  type: bool
validated:
  description: Whether V(install) validated the candidate (always true on success - a rejected one fails).
  returned: state is install
  type: bool
caddy_error:
  description: Caddy's own error - the C(Error:) lines of C(caddy validate) or C(caddy reload).
  returned: when Caddy rejects the candidate or the reload
  type: str
  sample: "Error: adapting config using caddyfile: Caddyfile:12 - Error during parsing: Unexpected EOF"
path:
  description: The live file, as an absolute path.
  returned: state is install
  type: str
sha256:
  description: The candidate's sha256.
  returned: state is validate or install
  type: str
previous_sha256:
  description: The live file's sha256 before (null when it did not exist).
  returned: state is install
  type: str
mode:
  description: The mode the installed file has.
  returned: state is install and the file changed
  type: str
method:
  description: V(reload) (graceful C(caddy reload)) or V(restart) (C(docker restart)).
  returned: state is reload
  type: str
reason:
  description: Why that method.
  returned: state is reload
  type: str
container:
  description: The proxy container (name).
  returned: state is reload
  type: str
container_state:
  description: The container's state before (running, restarting, exited...).
  returned: state is reload
  type: str
handshake:
  description: Whether the TLS handshake succeeded.
  returned: state is certificate
  type: bool
error:
  description: Why the handshake or the certificate's reading failed (null when it did not).
  returned: state is certificate
  type: str
verified:
  description: With O(ca_file), whether the chain and name verified; null without it.
  returned: state is certificate
  type: bool
subject:
  description: The certificate's subject (C(CN=...,O=...); empty for Caddy's own C(tls internal) leaf certificates).
  returned: state is certificate and the handshake succeeded
  type: str
issuer:
  description: The certificate's issuer.
  returned: state is certificate and the handshake succeeded
  type: str
  sample: CN=Caddy Local Authority - ECC Intermediate
subject_alt_names:
  description: The subjectAltName entries (C(DNS:localhost), C(IP:127.0.0.1)).
  returned: state is certificate and the handshake succeeded
  type: list
  elements: str
not_before:
  description: Start of validity (ISO 8601, UTC).
  returned: state is certificate and the handshake succeeded
  type: str
not_after:
  description: End of validity (ISO 8601, UTC).
  returned: state is certificate and the handshake succeeded
  type: str
days_left:
  description: Whole days until RV(not_after) (negative once expired).
  returned: state is certificate and the handshake succeeded
  type: int
hours_left:
  description: Whole hours until RV(not_after) (Caddy's C(tls internal) certificates last 12 hours).
  returned: state is certificate and the handshake succeeded
  type: int
expired:
  description: Whether the certificate has expired.
  returned: state is certificate and the handshake succeeded
  type: bool
serial:
  description: The serial number, in hex.
  returned: state is certificate and the handshake succeeded
  type: str
protocol:
  description: The TLS version negotiated.
  returned: state is certificate and the handshake succeeded
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiwfe.rollback.plugins.module_utils._caddy import STATES, run
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import run_job

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": list(STATES), "default": "validate"},
    "path": {"type": "str"},
    "project_dir": {"type": "path"},
    "content": {"type": "str"},
    "src": {"type": "path"},
    "git_commit": {"type": "str"},
    "expect_sha256": {"type": "str"},
    "image": {"type": "str"},
    "adapter": {"type": "str", "default": "caddyfile"},
    "mode": {"type": "str", "default": "0644"},
    "project_name": {"type": "str"},
    "service": {"type": "str"},
    "container": {"type": "str"},
    "config_in_container": {"type": "str", "default": "/etc/caddy/Caddyfile"},
    "host": {"type": "str", "default": "localhost"},
    "port": {"type": "int", "default": 443},
    "server_name": {"type": "str"},
    "timeout": {"type": "float", "default": 5.0},
    "ca_file": {"type": "path"},
    "docker_cli": {"type": "path", "default": "docker"},
    "git": {"type": "path", "default": "git"},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("content", "src", "git_commit")],
        required_if=[("state", "install", ["path"])],
        required_by={"git_commit": ["project_dir", "path"]},
        supports_check_mode=True,
    )
    cli = DockerCli(module.run_command, module.params["docker_cli"])
    run_job(module, lambda: run(cli, module.params, module.check_mode))


if __name__ == "__main__":
    main()
