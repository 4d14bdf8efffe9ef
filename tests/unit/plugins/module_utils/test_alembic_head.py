# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_alembic_head: the heads of an image's migrations, read once per image and kept beside the ledger."""

from __future__ import annotations

import json
import os

from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_head as heads
from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_inspect as inspector
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli

MIGRATIONS = {"service": "api", "config": "/opt/app/api/alembic.ini", "script_location": None, "python": "python3"}
ANSWER = {"ok": True, "alembic_version": "1.8.1", "script_location": "/opt/app/api/aiwfe_api/migrations",
          "heads": ["0005"], "bases": ["0001"],
          "revisions": {"0001": {"down_revision": []}, "0005": {"down_revision": ["0001"]}}}


class Recorder:
    def __init__(self, answers):
        self.calls = []
        self.answers = list(answers)

    def __call__(self, argv, **kwargs):
        self.calls.append(argv)
        return self.answers.pop(0)


def test_read_once_per_image_and_kept(tmp_path):
    ledger = str(tmp_path)
    os.makedirs(os.path.join(ledger, "proj"))
    run = Recorder([(0, "\n" + inspector.MARKER + json.dumps(ANSWER) + "\n", "")])
    warnings = []
    assert heads.image_heads(DockerCli(run), ledger, "proj", "sha256:abc", MIGRATIONS, warnings.append) == "0005"
    assert run.calls[0][:9] == ["docker", "run", "--rm", "-i", "--network", "none", "--pull", "never", "--entrypoint"]
    # the second time the kept answer is used: no container
    assert heads.image_heads(DockerCli(run), ledger, "proj", "sha256:abc", MIGRATIONS, warnings.append) == "0005"
    assert len(run.calls) == 1 and not warnings
    cached = os.listdir(os.path.join(ledger, "proj", "alembic-graphs"))
    assert len(cached) == 1
    assert oct(os.stat(os.path.join(ledger, "proj", "alembic-graphs", cached[0])).st_mode & 0o777) == "0o600"


def test_check_mode_writes_nothing(tmp_path):
    ledger = str(tmp_path)
    os.makedirs(os.path.join(ledger, "proj"))
    run = Recorder([(0, inspector.MARKER + json.dumps(ANSWER), "")])
    assert heads.image_heads(DockerCli(run), ledger, "proj", "sha256:abc", MIGRATIONS, print, check_mode=True) == "0005"
    assert not os.path.exists(os.path.join(ledger, "proj", "alembic-graphs"))


def test_an_image_that_cannot_be_read_is_a_warning(tmp_path):
    run = Recorder([(1, "", "exec: python3: not found")])
    warnings = []
    assert heads.image_heads(DockerCli(run), str(tmp_path), "proj", "sha256:abc", MIGRATIONS, warnings.append) is None
    assert len(warnings) == 1 and "sha256:abc" in warnings[0]


def test_no_image_is_a_warning(tmp_path):
    warnings = []
    assert heads.image_heads(DockerCli(Recorder([])), str(tmp_path), "proj", None, MIGRATIONS, warnings.append) is None
    assert "no image" in warnings[0]


def test_two_heads_are_joined(tmp_path):
    answer = dict(ANSWER, heads=["0005", "0005b"])
    run = Recorder([(0, inspector.MARKER + json.dumps(answer), "")])
    assert heads.image_heads(DockerCli(run), str(tmp_path), "proj", "sha256:abc", MIGRATIONS, print) == "0005,0005b"
