# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The head(s) of the Alembic migrations in an image, as the ledger records them with a release (alembic_head).

The graph comes from the same inspector and the same per-image cache (<ledger_dir>/<project>/alembic-graphs/) that
aiwfe.rollback.alembic_rollback uses, so an image is read once for both.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic as plan
from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_inspect as inspector
from ansible_collections.aiwfe.rollback.plugins.module_utils._alembic_job import GraphCache, inspect_image
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError


def graph_cache(ledger_dir: str, project: str, write: bool) -> GraphCache:
    return GraphCache(os.path.join(ledger_dir, project, "alembic-graphs"), write=write)


def image_heads(cli: DockerCli, ledger_dir: str, project: str, image: str | None, migrations: dict[str, t.Any],
                warn: t.Callable[[str], None], check_mode: bool = False) -> str | None:
    """The heads of the migrations in ``image`` joined by ',' (None, with a warning, when they cannot be read)."""
    if not image:
        warn(f"service {migrations['service']} has no image in this state: recorded without alembic_head")
        return None
    try:
        inspected = inspect_image(cli, image, migrations, graph_cache(ledger_dir, project, write=not check_mode))
        return ",".join(plan.Graph(inspected).heads) or None
    except (inspector.InspectError, plan.PlanError, DockerCliError) as exc:
        warn(f"the migrations in image {image} could not be read ({exc}): recorded without alembic_head")
        return None
