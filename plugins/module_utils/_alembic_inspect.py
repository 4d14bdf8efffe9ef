# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration graph, read inside the application's image.

SCRIPT runs in a throwaway container of the image (`docker run --rm -i --network none --entrypoint PYTHON IMAGE -
CONFIG SCRIPT_LOCATION`, the script on standard input), so the managed host needs no Alembic and the graph is the one
of the code that wrote the database. It uses Alembic's own ScriptDirectory (the revision files, their down revisions,
heads, branch labels) and reads each revision file with ``ast``: the shape of ``upgrade`` and ``downgrade`` (empty,
raises, code), the columns and tables a downgrade drops (literal names), and whether it runs raw SQL. It prints one
line, MARKER followed by a JSON object; parse() reads it back. The script must run on the image's Python 3 alone
(no third-party imports besides Alembic).
"""

from __future__ import annotations

import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import marked_json

MARKER = "AIWFE-ALEMBIC-INSPECT "

SCRIPT = r'''
import ast
import json
import os
import sys

MARKER = "AIWFE-ALEMBIC-INSPECT "
DROPS = {"drop_column": "column", "drop_table": "table"}


def _literal(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _argument(call, index, keyword):
    for item in call.keywords:
        if item.arg == keyword:
            return _literal(item.value), True
    if len(call.args) > index:
        return _literal(call.args[index]), True
    return None, False


def _batches(function):
    """Names bound by `with op.batch_alter_table("t") as name`, with their table."""
    found = {}
    for node in ast.walk(function):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "batch_alter_table" and isinstance(item.optional_vars, ast.Name)):
                    table, _given = _argument(call, 0, "table_name")
                    found[item.optional_vars.id] = table
    return found


def shape(function):
    """What a migration function does, from its source: empty, raises, code, or missing."""
    if function is None:
        return {"shape": "missing"}
    body = [s for s in function.body
            if not isinstance(s, ast.Pass) and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    found = {"shape": "code", "drops": [], "executes": 0}
    if not body:
        found["shape"] = "empty"
        return found
    for statement in body:
        if isinstance(statement, ast.Raise):
            found["shape"] = "raises"
            found["raise"] = ast.unparse(statement)[:200] if hasattr(ast, "unparse") else "raise"
            return found
    batches = _batches(function)
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        if name == "execute":
            found["executes"] += 1
        if name not in DROPS:
            continue
        schema, _given = _argument(node, 99, "schema")
        drop = {"kind": DROPS[name], "schema": schema, "table": None, "column": None,
                "line": getattr(node, "lineno", None)}
        if owner in batches:
            drop["table"] = batches[owner]
            if name == "drop_column":
                drop["column"], _given = _argument(node, 0, "column_name")
        elif name == "drop_column":
            drop["table"], _given = _argument(node, 0, "table_name")
            drop["column"], _given = _argument(node, 1, "column_name")
        else:
            drop["table"], _given = _argument(node, 0, "table_name")
        found["drops"].append(drop)
    return found


def classify_source(text):
    """The shapes of upgrade() and downgrade() in a revision file's source."""
    tree = ast.parse(text)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    return {"upgrade": shape(functions.get("upgrade")), "downgrade": shape(functions.get("downgrade"))}


def _tuple(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def inspect(config_path, script_location):
    from alembic import __version__ as alembic_version
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if config_path and not os.path.isfile(config_path):
        return {"ok": False, "error": "config_missing", "message": "%s does not exist in the image" % config_path}
    config = Config(config_path or None)
    if script_location:
        config.set_main_option("script_location", script_location.replace("%", "%%"))
    location = config.get_main_option("script_location")
    if not location:
        return {"ok": False, "error": "script_location_missing",
                "message": "no script_location: %s names none and none was given" % (config_path or "no config")}
    if ":" not in location and not os.path.isdir(location):
        return {"ok": False, "error": "script_location_missing",
                "message": "the script directory %s does not exist in the image" % location}
    directory = ScriptDirectory.from_config(config)
    revisions = {}
    for script in directory.walk_revisions():
        entry = {"down_revision": _tuple(script.down_revision), "branch_labels": sorted(script.branch_labels or []),
                 "depends_on": _tuple(getattr(script, "dependencies", None)),
                 "doc": (script.doc or "").strip().splitlines()[0][:200] if (script.doc or "").strip() else "",
                 "path": script.path}
        try:
            with open(script.path, encoding="utf-8") as handle:
                entry.update(classify_source(handle.read()))
        except (OSError, SyntaxError, ValueError) as exc:
            entry["unreadable"] = str(exc)[:200]
        revisions[script.revision] = entry
    return {"ok": True, "alembic_version": alembic_version, "script_location": directory.dir,
            "heads": sorted(directory.get_heads()), "bases": sorted(directory.get_bases()), "revisions": revisions}


def main():
    args = sys.argv[1:] + ["", ""]
    try:
        found = inspect(args[0], args[1])
    except ImportError as exc:
        found = {"ok": False, "error": "alembic_missing", "message": "Alembic cannot be imported: %s" % exc}
    except Exception as exc:  # the message goes back to the module, which fails with it
        found = {"ok": False, "error": "error", "message": "%s: %s" % (type(exc).__name__, str(exc)[:800])}
    sys.stdout.write("\n" + MARKER + json.dumps(found, sort_keys=True) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
'''


class InspectError(Exception):
    """The image's migrations could not be read; the message says why and what to check."""


def argv(docker: str, image: str, python: str, config: str, script_location: str) -> list[str]:
    """The docker call that runs SCRIPT (given on standard input) in a throwaway container of ``image``: no network,
    never pulled, removed after."""
    return [docker, "run", "--rm", "-i", "--network", "none", "--pull", "never", "--entrypoint", python, image, "-", config, script_location]


def parse(stdout: str, image: str) -> dict[str, t.Any]:
    """The inspector's JSON object from its output (anything a revision file printed before it is ignored)."""
    found = marked_json(stdout, MARKER)
    if found is None:
        raise InspectError(f"the migration inspector printed no result in image {image}: {stdout.strip()[-300:]!r}")
    if not found.get("ok"):
        raise InspectError(f"cannot read the migrations in image {image}: {found.get('message') or found.get('error')}")
    revisions = found.get("revisions")
    if not isinstance(revisions, dict):
        raise InspectError(f"the migration inspector's answer for image {image} has no revisions")
    return found


def run_error(image: str, rc: int, stderr: str, python: str) -> InspectError:
    """Why ``docker run`` of the inspector failed, in words an operator acts on."""
    text = stderr.strip()
    lower = text.lower()
    if "no such image" in lower or "unable to find image" in lower or "pull access denied" in lower:
        return InspectError(f"image {image} is not on this host: pass migrations.image of the release that wrote "
                            "the database's revision (an image id or reference present on the host)")
    if rc in (126, 127) or "executable file not found" in lower:
        return InspectError(f"image {image} has no {python}: set migrations.python to its Python interpreter")
    return InspectError(f"running the migration inspector in image {image} failed (rc={rc}): {text[-500:]}")
