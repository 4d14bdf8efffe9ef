# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration rollback planner: pure functions over the inspector's graph (see _alembic_inspect).

Resolve a target (a revision id, ``-N``, ``base``), find the revisions a downgrade from the database's revision to it
removes (newest first), classify each step (reversible, noop, irreversible, lossy - with the row counts the runner
read), and choose the strategy. Nothing here runs a command; every refusal is a PlanError whose message says what to
do instead. The rules are docs/migrations.md's.
"""

from __future__ import annotations

import re
import typing as t

REVISION_ID = re.compile(r"^[0-9A-Za-z_]{1,64}$")
RELATIVE = re.compile(r"^-([1-9][0-9]{0,3})$")
# Table and column names the runner may count (others are reported as not countable: the step counts as lossy).
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
BASE = "base"
STRATEGIES = ("auto", "downgrade", "stamp", "restore")
SAFE_KINDS = ("reversible", "noop")

# A name the runner counts: (schema, table, column or None for the whole table).
CountKey = t.Tuple[str, str, t.Optional[str]]


class PlanError(Exception):
    """The request cannot be planned safely; the message says why and what to do."""


def check_id(text: str, what: str = "revision") -> str:
    """A revision id as Alembic writes them (hex ids, hand-written ones like 0004); anything else is refused before it
    reaches a command or a query."""
    if not isinstance(text, str) or not REVISION_ID.fullmatch(text):
        shown = text if isinstance(text, str) and len(text) <= 80 and text.isprintable() else repr(text)[:80]
        raise PlanError(f"{what} {shown!r} is not a revision id (letters, digits and '_', at most 64): "
                        "name a revision of the script directory, -N or base")
    return text


def check_target(text: str) -> str:
    """A target as given: a revision id, -N (N >= 1) or base."""
    if isinstance(text, str) and (text == BASE or RELATIVE.fullmatch(text)):
        return text
    return check_id(text, "target")


def split_revisions(text: str | None) -> list[str]:
    """The database's revision(s) as psql read them ("a,b" for several rows; None or "" for none), each checked."""
    if not text:
        return []
    return sorted(check_id(part.strip(), "the database's revision") for part in text.split(","))


def shown(revisions: t.Sequence[str] | str | None) -> str:
    if revisions is None:
        return BASE
    if isinstance(revisions, str):
        return revisions
    return ",".join(revisions) if revisions else BASE


class Graph:
    """The revisions of one image's script directory, as the inspector read them."""

    def __init__(self, inspected: dict[str, t.Any]) -> None:
        self.revisions: dict[str, dict[str, t.Any]] = dict(inspected.get("revisions") or {})
        self.heads: list[str] = sorted(inspected.get("heads") or [])
        self.script_location: str = inspected.get("script_location") or ""
        self.children: dict[str, list[str]] = {rev: [] for rev in self.revisions}
        for rev, entry in self.revisions.items():
            for down in entry.get("down_revision") or []:
                self.children.setdefault(down, []).append(rev)

    def knows(self, rev: str) -> bool:
        return rev in self.revisions

    def down(self, rev: str) -> list[str]:
        return list((self.revisions.get(rev) or {}).get("down_revision") or [])

    def ancestors(self, rev: str) -> set[str]:
        """Every revision below ``rev`` (not itself)."""
        seen: set[str] = set()
        todo = self.down(rev)
        while todo:
            item = todo.pop()
            if item not in seen:
                seen.add(item)
                todo.extend(self.down(item))
        return seen

    def forks(self, rev: str) -> str | None:
        """Why ``rev`` is a point where the graph branches or merges (None when it is not)."""
        if len(self.down(rev)) > 1:
            return f"{rev} merges {', '.join(self.down(rev))}"
        if len(self.children.get(rev) or []) > 1:
            return f"{rev} branches into {', '.join(sorted(self.children[rev]))}"
        return None


def known_current(graph: Graph, current: list[str], image: str) -> None:
    """The image's graph knows every revision the database is at (else it cannot move it)."""
    unknown = [rev for rev in current if not graph.knows(rev)]
    if unknown:
        raise PlanError(f"image {image} does not know revision {', '.join(unknown)} (the database's): pass "
                        "migrations.image of the release that wrote it (its migrations hold that revision)")


def resolve(graph: Graph, current: list[str], target: str) -> str | None:
    """The revision a target names (None for base). Relative targets only on a straight line of revisions."""
    target = check_target(target)
    if target == BASE:
        return None
    match = RELATIVE.fullmatch(target)
    if not match:
        if not graph.knows(target):
            known = ", ".join(sorted(graph.revisions)[:20]) or "none"
            raise PlanError(f"revision {target} does not exist in the script directory {graph.script_location} "
                            f"(revisions: {known}): name one of them, -N or base")
        return target
    steps = int(match.group(1))
    if len(graph.heads) > 1:
        raise PlanError(f"a relative target ({target}) is ambiguous: the migrations have several heads "
                        f"({', '.join(graph.heads)}); name the revision to go back to")
    if len(current) != 1:
        raise PlanError(f"a relative target ({target}) needs the database at one revision, it is at {shown(current)}: "
                        "name the revision to go back to")
    rev = current[0]
    for done in range(steps):
        fork = graph.forks(rev)
        if fork:
            raise PlanError(f"a relative target ({target}) crosses a branch point ({fork}); name the revision to "
                            "go back to")
        downs = graph.down(rev)
        if not downs:
            raise PlanError(f"{target} goes below the first revision: only {done} revision(s) are below "
                            f"{current[0]}; use base to remove them all")
        rev = downs[0]
    fork = graph.forks(rev)
    if fork:
        raise PlanError(f"a relative target ({target}) ends on a branch point ({fork}); name the revision to go back to")
    return rev


def path(graph: Graph, current: list[str], target: str | None) -> list[str]:
    """The revisions a downgrade from ``current`` to ``target`` removes, newest first (in the order it runs).

    Empty when the database is at the target. Refused when the target is newer than the database or on another
    branch (this module only moves back), and when the database is at several revisions.
    """
    if len(current) > 1:
        raise PlanError(f"the database is at several revisions ({shown(current)}): this module moves one line of "
                        "revisions back; restore a dump (strategy restore) or downgrade each branch by hand")
    if current == ([target] if target else []):
        return []
    if not current:
        raise PlanError(f"the database has no Alembic revision (base): it cannot go back to {target}; "
                        "it needs an upgrade, not a rollback")
    head = current[0]
    removed = {head} | graph.ancestors(head)
    if target is not None:
        if target not in removed:
            if head in graph.ancestors(target):
                raise PlanError(f"revision {target} is newer than the database's revision {head}: this module only "
                                "moves a database back (deploy the release that upgrades it)")
            raise PlanError(f"revision {target} is not below the database's revision {head} (another branch): "
                            "name a revision below it")
        removed -= {target} | graph.ancestors(target)
    # newest first: a revision comes before the ones it revises
    order: list[str] = []
    pending = set(removed)
    while pending:
        ready = sorted(rev for rev in pending if not any(child in pending for child in graph.children.get(rev, [])))
        order.extend(ready)
        pending -= set(ready)
    return order


def _drop_key(drop: dict[str, t.Any]) -> CountKey | None:
    table, column = drop.get("table"), drop.get("column")
    schema = drop.get("schema") or "public"
    if not table or not PLAIN_NAME.fullmatch(table) or not PLAIN_NAME.fullmatch(schema):
        return None
    if drop.get("kind") == "column":
        if not column or not PLAIN_NAME.fullmatch(column):
            return None
        return (schema, table, column)
    return (schema, table, None)


def count_keys(graph: Graph, steps: t.Sequence[str]) -> list[CountKey]:
    """The columns and tables the steps' downgrades drop whose rows the runner counts (literal, plain names)."""
    keys: list[CountKey] = []
    for rev in steps:
        for drop in ((graph.revisions.get(rev) or {}).get("downgrade") or {}).get("drops") or []:
            key = _drop_key(drop)
            if key and key not in keys:
                keys.append(key)
    return keys


def _name(drop: dict[str, t.Any]) -> str:
    parts = [p for p in (drop.get("schema"), drop.get("table") or "?", drop.get("column")) if p]
    if drop.get("kind") == "column" and not drop.get("column"):
        parts.append("?")
    return ".".join(parts)


def classify(graph: Graph, rev: str, counts: dict[CountKey, int | None]) -> dict[str, t.Any]:
    """One step: {revision, down_revision, doc, kind, reason, rows, drops}. ``counts``: what the runner read for
    count_keys (None: not countable)."""
    entry = graph.revisions.get(rev) or {}
    step: dict[str, t.Any] = {"revision": rev, "down_revision": ",".join(entry.get("down_revision") or []) or None,
                              "doc": entry.get("doc") or "", "kind": "reversible", "reason": "", "rows": 0, "drops": []}
    up = entry.get("upgrade") or {"shape": "missing"}
    down = entry.get("downgrade") or {"shape": "missing"}
    if entry.get("unreadable"):
        step.update(kind="irreversible", reason=f"its file cannot be read to classify it: {entry['unreadable']}", rows=None)
        return step
    if down.get("shape") == "raises":
        step.update(kind="irreversible", reason=f"its downgrade raises ({down.get('raise') or 'raise'})", rows=None)
        return step
    if down.get("shape") in ("empty", "missing"):
        if up.get("shape") in ("empty", "missing"):
            step.update(kind="noop", reason="its upgrade and downgrade do nothing")
        else:
            step.update(kind="irreversible", rows=None,
                        reason=f"its downgrade is {down.get('shape')} while its upgrade changes the schema")
        return step
    lossy: list[str] = []
    notes: list[str] = []
    rows: int | None = 0
    for drop in down.get("drops") or []:
        key = _drop_key(drop)
        count = counts.get(key) if key else None
        what = "rows" if drop.get("kind") == "table" else "non-null values"
        name = _name(drop)
        step["drops"].append({"kind": drop.get("kind"), "name": name, "rows": count})
        if key is None:
            lossy.append(f"drops a {drop.get('kind')} it does not name literally ({name})")
            rows = None
        elif count is None:
            lossy.append(f"drops {name}, which could not be counted")
            rows = None
        elif count > 0:
            lossy.append(f"drops {name} holding {count} {what}")
            rows = None if rows is None else rows + count
        else:
            notes.append(f"drops {name} (no {what})")
    if down.get("executes"):
        notes.append("runs SQL the planner cannot read (op.execute)")
    step["rows"] = rows
    if lossy:
        step.update(kind="lossy", reason="; ".join(lossy + notes))
    else:
        step["reason"] = "; ".join(notes)
    return step


def choose(strategy: str, steps: t.Sequence[dict[str, t.Any]], restore_dump: str | None,
           allow_lossy: bool) -> tuple[str, str]:
    """(strategy to run, why), or PlanError. ``steps``: classified, non-empty."""
    unsafe = [s for s in steps if s["kind"] not in SAFE_KINDS]
    named = "; ".join(f"{s['revision']} is {s['kind']}: {s['reason']}" for s in unsafe)
    if strategy == "stamp":
        return "stamp", ("requested: only alembic_version is rewritten, no schema change runs - the schema stays "
                         "the one of the current revision")
    if strategy == "restore":
        return "restore", "requested: the paired dump is restored (swap into a new database)"
    irreversible = [s for s in unsafe if s["kind"] == "irreversible"]
    if strategy == "downgrade":
        if irreversible:
            raise PlanError(f"a downgrade cannot move the schema back: {named}. Use strategy restore with the dump "
                            "paired with the target release (restore_dump), or stamp if the schema is known to match")
        if unsafe and not allow_lossy:
            raise PlanError(f"the downgrade would drop data written since the upgrade: {named}. Use strategy "
                            "restore (or auto) with the paired dump, or allow_lossy=true to drop it (the pre-change "
                            "dump keeps it)")
        return "downgrade", ("requested" + (" with allow_lossy: " + named if unsafe else
                                            ": every step is reversible or a no-op"))
    if not unsafe:
        return "downgrade", "every step is reversible or a no-op"
    if restore_dump:
        return "restore", f"not every step can be downgraded without loss ({named}): restoring the paired dump"
    raise PlanError(f"not every step can be downgraded without loss ({named}) and no dump to restore was given: pass "
                    "restore_dump (the dump of the backup set paired with the target release), or strategy=downgrade "
                    "with allow_lossy=true to drop the data (the pre-change dump keeps it)")


def lost_rows(current: dict[str, int], restored: dict[str, int]) -> dict[str, int]:
    """Rows of each table the restored dump does not hold (current count minus the dump's; alembic_version aside)."""
    lost = {}
    for table, rows in sorted(current.items()):
        if table == "alembic_version":
            continue
        missing = int(rows) - int(restored.get(table) or 0)
        if missing > 0:
            lost[table] = missing
    return lost


def fill(argv: t.Sequence[str], values: dict[str, str]) -> list[str]:
    """A configured command with its {placeholders} replaced (plain replacement: other braces stay)."""
    out = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        out.append(arg)
    return out
