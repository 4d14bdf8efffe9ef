# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The in-image inspector: its ast classification of revision files (run here on the script's own functions, which
need no Alembic), its argv, and how its output and docker's failures are read."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_inspect as inspector


@pytest.fixture(name="script", scope="module")
def fixture_script():
    namespace = {"__name__": "aiwfe_inspector_under_test"}
    exec(compile(inspector.SCRIPT, "inspector", "exec"), namespace)  # pylint: disable=exec-used
    return namespace


HEADER = '''"""doc

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
'''

# The reference stack's revision files (examples/reference_stack), and hand-written shapes real applications have.
SOURCES = {
    "rename (0005 incompatible)": (
        'def upgrade():\n    op.alter_column("documents", "body", new_column_name="content")\n\n\n'
        'def downgrade():\n    # A rename keeps every row\n    op.alter_column("documents", "content", new_column_name="body")\n',
        {"upgrade": "code", "downgrade": "code"}, [], 0),
    "add column (0004)": (
        'def upgrade():\n    op.add_column("jobs", sa.Column("priority", sa.Integer, nullable=False, server_default="0"))\n\n\n'
        'def downgrade():\n    op.drop_column("jobs", "priority")\n',
        {"upgrade": "code", "downgrade": "code"}, [("column", None, "jobs", "priority")], 0),
    "create table (0003)": (
        'def upgrade():\n    op.create_table("memories", sa.Column("id", sa.BigInteger, primary_key=True))\n\n\n'
        'def downgrade():\n    op.drop_index("ix_memories_document_id", table_name="memories")\n    op.drop_table("memories")\n',
        {"upgrade": "code", "downgrade": "code"}, [("table", None, "memories", None)], 0),
    "keywords and schema": (
        'def upgrade():\n    pass\n\n\ndef downgrade():\n'
        '    op.drop_column(table_name="jobs", column_name="attempts", schema="app")\n'
        '    op.drop_table(table_name="old", schema="app")\n',
        {"upgrade": "empty", "downgrade": "code"},
        [("column", "app", "jobs", "attempts"), ("table", "app", "old", None)], 0),
    "batch": (
        'def upgrade():\n    with op.batch_alter_table("jobs") as batch_op:\n        batch_op.add_column(sa.Column("x", sa.Text))\n\n\n'
        'def downgrade():\n    with op.batch_alter_table("jobs") as batch_op:\n        batch_op.drop_column("x")\n',
        {"upgrade": "code", "downgrade": "code"}, [("column", None, "jobs", "x")], 0),
    "names from variables": (
        'TABLE = "jobs"\n\n\ndef upgrade():\n    op.add_column(TABLE, sa.Column("y", sa.Text))\n\n\n'
        'def downgrade():\n    op.drop_column(TABLE, "y")\n',
        {"upgrade": "code", "downgrade": "code"}, [("column", None, None, "y")], 0),
    "raises": (
        'def upgrade():\n    op.execute("UPDATE jobs SET kind = lower(kind)")\n\n\n'
        'def downgrade():\n    """One way."""\n    raise NotImplementedError("data migration")\n',
        {"upgrade": "code", "downgrade": "raises"}, [], 0),
    "empty downgrade": (
        'def upgrade():\n    op.create_index("ix", "jobs", ["kind"])\n\n\ndef downgrade():\n    """Nothing."""\n    ...\n',
        {"upgrade": "code", "downgrade": "empty"}, [], 0),
    "both empty (merge)": (
        'def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n',
        {"upgrade": "empty", "downgrade": "empty"}, [], 0),
    "raw SQL": (
        'def upgrade():\n    op.execute("ALTER TABLE jobs ADD z int")\n\n\n'
        'def downgrade():\n    op.execute("ALTER TABLE jobs DROP z")\n    op.execute(sa.text("SELECT 1"))\n',
        {"upgrade": "code", "downgrade": "code"}, [], 2),
    "no downgrade": (
        'def upgrade():\n    op.create_index("ix", "jobs", ["kind"])\n',
        {"upgrade": "code", "downgrade": "missing"}, [], 0),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_classify_source(script, name):
    source, shapes, drops, executes = SOURCES[name]
    found = script["classify_source"](HEADER + source)
    assert {k: v["shape"] for k, v in found.items()} == shapes
    down = found["downgrade"]
    assert [(d["kind"], d["schema"], d["table"], d["column"]) for d in down.get("drops", [])] == drops
    assert down.get("executes", 0) == executes


def test_a_raise_is_shown(script):
    found = script["classify_source"](HEADER + SOURCES["raises"][0])
    assert found["downgrade"]["raise"] == "raise NotImplementedError('data migration')"


def test_argv_runs_the_script_from_stdin_without_network():
    assert inspector.argv("docker", "sha256:abc", "python3", "/opt/app/api/alembic.ini", "") == [
        "docker", "run", "--rm", "-i", "--network", "none", "--pull", "never", "--entrypoint", "python3", "sha256:abc",
        "-", "/opt/app/api/alembic.ini", ""]


ANSWER = {"ok": True, "alembic_version": "1.8.1", "script_location": "/opt/app/api/aiwfe_api/migrations",
          "heads": ["0005"], "bases": ["0001"], "revisions": {"0005": {"down_revision": ["0004"]}}}


@pytest.mark.parametrize("stdout", [
    "\n" + inspector.MARKER + json.dumps(ANSWER) + "\n",
    "INFO a revision file printed this\n" + inspector.MARKER + json.dumps(ANSWER) + "\n",
])
def test_parse(stdout):
    assert inspector.parse(stdout, "img") == ANSWER


@pytest.mark.parametrize("stdout, message", [
    ("", "the migration inspector printed no result in image img"),
    (inspector.MARKER + "{not json", "printed no result"),
    (inspector.MARKER + json.dumps({"ok": False, "error": "script_location_missing",
                                    "message": "the script directory /opt/app/nope does not exist in the image"}),
     "cannot read the migrations in image img: the script directory /opt/app/nope does not exist in the image"),
    (inspector.MARKER + json.dumps({"ok": False, "error": "config_missing", "message": "/x.ini does not exist in the image"}),
     "/x.ini does not exist in the image"),
    (inspector.MARKER + json.dumps({"ok": True}), "has no revisions"),
])
def test_parse_failures(stdout, message):
    with pytest.raises(inspector.InspectError, match=message):
        inspector.parse(stdout, "img")


@pytest.mark.parametrize("rc, stderr, message", [
    (125, "Unable to find image 'nope:1' locally\nError response from daemon: No such image: nope:1",
     "image img is not on this host: pass migrations.image"),
    (127, 'docker: Error response from daemon: failed to create task: exec: "python9": executable file not found in $PATH',
     "image img has no python9: set migrations.python"),
    (1, "Traceback ...\nMemoryError", r"failed \(rc=1\): Traceback ...\nMemoryError"),
])
def test_run_errors(rc, stderr, message):
    assert re.search(message, str(inspector.run_error("img", rc, stderr, "python9" if rc == 127 else "python3")))
