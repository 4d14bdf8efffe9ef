# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The states of aiwfe.rollback.postgres_dump: dump, verify and restore, in that order of steps.

The client calls (pg_dump, pg_restore, psql inside the container) are _postgres'; a dump is published through
_files.publish and found through _archive's one backup listing.
"""

from __future__ import annotations

import datetime
import os
import socket
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres as pg
from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import DUMP_SUFFIXES, BackupNotFound, find_backup
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import ArtifactError, fresh_name, iso, publish, stamp
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service, sha256_file

# A restore first dumps the state it replaces: DATABASE-STAMP.pre-restore.dump.
PRE_RESTORE = ".pre-restore"


def dump_name(database: str, when: datetime.datetime, label: str = "") -> str:
    return f"{database}-{stamp(when)}{label}.dump"


def make_dump(target: pg.Target, directory: str, label: str = "") -> tuple[str, dict[str, t.Any]]:
    """Dump the database into ``directory`` (published with its manifest, or nothing); returns (path, manifest)."""
    name = fresh_name(directory, lambda when: dump_name(target.database, when, label))

    def write(tmp: str) -> dict[str, t.Any]:
        sha = pg.dump(target, tmp)
        return dict(pg.facts(target), archive=name, sha256=sha, bytes=os.path.getsize(tmp),
                    toc_entries=pg.check_dump(target, tmp), client_version=pg.client_version(target),
                    database=target.database, format="custom", created=iso(), host=socket.gethostname())

    return publish(directory, name, write)


def verify_dump(target: pg.Target, path: str, manifest: dict[str, t.Any]) -> None:
    """The dump is the one its manifest describes (sha256) and pg_restore can read it."""
    if sha256_file(path) != manifest.get("sha256"):
        raise pg.PostgresError(f"checksum mismatch for {path}: the dump is damaged; nothing was changed")
    pg.check_dump(target, path)


def restore_dump(cli: DockerCli, project: ComposeProject, target: pg.Target, path: str, manifest: dict[str, t.Any],
                 params: dict[str, t.Any], result: dict[str, t.Any]) -> None:
    """Dump the current state first, stop the writers, restore in one transaction, read revision and row counts,
    start the writers again (also when the restore failed); then compare with what the dump recorded."""
    result["pre_restore_dump"], _pre = make_dump(target, params["backup_dir"], PRE_RESTORE)
    result["changed"] = True
    writers = params["stop_services"]
    if writers:
        cli.compose(project, ["stop", "--"] + writers, "docker compose stop")
    try:
        pg.restore(target, path)
        after = pg.facts(target, list(manifest.get("row_counts") or {}))
    finally:
        if writers:
            cli.compose(project, ["start", "--"] + writers, "docker compose start")
    result["after"] = after
    recorded = (manifest.get("alembic_revision"), manifest.get("row_counts"))
    if (after["alembic_revision"], after["row_counts"]) != recorded:
        raise JobFailed(f"after the restore the database has Alembic revision {after['alembic_revision']} and row counts "
                        f"{after['row_counts']}, the dump recorded {recorded[0]} and {recorded[1]}; "
                        f"the state before is in {result['pre_restore_dump']}", result)


def run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """The module's whole run; returns its result or raises JobFailed (with the result so far)."""
    result: dict[str, t.Any] = {"changed": False}
    try:
        containers = containers_by_service(cli, project)
        container = containers.get(params["service"])
        if not container or container.get("state") != "running":
            raise JobFailed(f"service {params['service']} of project {project.name} has no running container: "
                            "start the database first", result)
        target = pg.Target(cli.docker, container["id"], params["database"], params["user"], params["password"])
        if params["state"] == "dump":
            if check_mode:
                pg.facts(target)
            else:
                result["dump_file"], result["manifest"] = make_dump(target, params["backup_dir"])
            result["changed"] = True
            return result
        path, manifest = find_backup(params["backup_dir"], params["dump_file"], params["database"],
                                     f"dump of {params['database']}", DUMP_SUFFIXES)
        result.update(dump_file=path, manifest=manifest)
        verify_dump(target, path, manifest)
        if params["state"] == "verify":
            return result
        unknown = [s for s in params["stop_services"] if s not in containers]
        if unknown:
            raise JobFailed(f"unknown service(s) {', '.join(unknown)} in stop_services; nothing was changed", result)
        if check_mode:
            result["changed"] = True
            return result
        restore_dump(cli, project, target, path, manifest, params, result)
    except (pg.PostgresError, BackupNotFound, ArtifactError) as exc:
        raise JobFailed(str(exc), result) from exc
    except DockerCliError as exc:
        raise JobFailed.from_cli(exc, result) from exc
    return result
