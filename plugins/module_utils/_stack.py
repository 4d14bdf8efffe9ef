# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Observing a compose project: configured images, running containers, git state, file hashes."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._git import DeployRepo

DEFAULT_HASH_FILES = ["compose*.yaml", "compose*.yml", "docker-compose*.yaml", "docker-compose*.yml", ".env",
                      "**/Dockerfile", "**/Caddyfile"]
SKIP_DIRS = {".git", "secrets", "node_modules", "__pycache__"}
STATE_RANK = {"running": 0, "restarting": 1, "paused": 2, "created": 3, "exited": 4, "dead": 5}


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _match(rel: str, patterns: t.Sequence[str]) -> bool:
    base = os.path.basename(rel)
    for pattern in patterns:
        if pattern.startswith("**/"):
            if fnmatch.fnmatch(base, pattern[3:]):
                return True
        elif fnmatch.fnmatch(rel, pattern):
            return True
    return False


def hash_files(directory: str, patterns: t.Sequence[str]) -> dict[str, str]:
    """sha256 of every file under ``directory`` matching one of ``patterns`` (secrets/ and .git/ skipped)."""
    found = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if os.path.isfile(path) and _match(rel, patterns):
                found[rel] = sha256_file(path)
    return found


def git_state(cli: DockerCli, directory: str) -> dict[str, t.Any] | None:
    """Commit, tag and dirtiness of the deploy directory, or None when it is not a git work tree."""
    return DeployRepo(cli.run_command, directory).state()


def _publishers(ports: dict[str, t.Any] | None) -> list[dict[str, t.Any]]:
    """docker inspect's NetworkSettings.Ports in compose ps's Publishers shape."""
    found = []
    for key, bindings in (ports or {}).items():
        target, _sep, protocol = key.partition("/")
        for binding in bindings or []:
            found.append({"URL": binding.get("HostIp"), "TargetPort": int(target), "Protocol": protocol,
                          "PublishedPort": int(binding.get("HostPort") or 0)})
    return found


def project_containers(cli: DockerCli, project: ComposeProject) -> list[dict[str, t.Any]]:
    """The project's containers (orphans of services no longer configured included), in compose ps's shape, from the
    engine directly: docker ps and one docker inspect, a third of the time of `docker compose ps`, which parses the
    whole compose project first."""
    _rc, out, _err = cli.run([cli.docker, "ps", "--all", "--no-trunc", "--quiet", "--filter",
                              f"label=com.docker.compose.project={project.name}", "--filter",
                              "label=com.docker.compose.oneoff=False"], "docker ps")
    ids = [line for line in out.split() if line]
    entries = []
    for details in cli.inspect("container", ids).values():
        if not details:
            continue
        labels = (details.get("Config") or {}).get("Labels") or {}
        state = details.get("State") or {}
        entries.append({"ID": details.get("Id"), "Service": labels["com.docker.compose.service"],
                        "Name": (details.get("Name") or "").lstrip("/"), "State": state.get("Status"),
                        "Health": (state.get("Health") or {}).get("Status") or "",
                        "Image": (details.get("Config") or {}).get("Image"),
                        "Publishers": _publishers((details.get("NetworkSettings") or {}).get("Ports")),
                        "_inspected": details})
    return entries


def containers_by_service(cli: DockerCli, project: ComposeProject, direct: bool = False) -> dict[str, dict[str, t.Any]]:
    """One container per service (the most alive one), inspected: found by `docker compose ps`, or with ``direct``
    by the engine itself (faster; orphans included - the caller filters by its compose config)."""
    chosen: dict[str, dict[str, t.Any]] = {}
    entries = project_containers(cli, project) if direct else cli.compose_ps(project)
    for entry in entries:
        service = entry.get("Service")
        if not service:
            continue
        current = chosen.get(service)
        if current is None or STATE_RANK.get(entry.get("State", ""), 9) < STATE_RANK.get(current.get("State", ""), 9):
            chosen[service] = entry
    missing = [c["ID"] for c in chosen.values() if "_inspected" not in c]
    inspected = cli.inspect("container", missing) if missing else {}
    result = {}
    for service, entry in chosen.items():
        details = entry.get("_inspected") or inspected.get(entry["ID"]) or {}
        state = details.get("State") or {}
        result[service] = {
            "id": entry["ID"],
            "name": entry.get("Name"),
            "state": entry.get("State"),
            "health": (state.get("Health") or {}).get("Status") or entry.get("Health") or "",
            "image": entry.get("Image"),
            "image_id": details.get("Image"),
            "config_hash": ((details.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.config-hash"),
            "restart_count": details.get("RestartCount", 0),
            "started_at": state.get("StartedAt") or "",
            "publishers": entry.get("Publishers") or [],
        }
    return result


def configured_images(cli: DockerCli, project: ComposeProject, config: dict[str, t.Any] | None = None) -> dict[str, dict[str, t.Any]]:
    """Per service of the compose config (read unless given): the image reference, its local image ID (None if
    absent), digests."""
    config = cli.compose_config(project) if config is None else config
    refs = {}
    for name, svc in (config.get("services") or {}).items():
        refs[name] = svc.get("image") or f"{project.name}-{name}"
    images = cli.inspect("image", sorted(set(refs.values())))
    result = {}
    for name, ref in refs.items():
        info = images.get(ref) or {}
        result[name] = {"image": ref, "image_id": info.get("Id"), "repo_digests": info.get("RepoDigests") or []}
    return result


def state_of(configured: dict[str, dict[str, t.Any]], hashes: dict[str, str], running: dict[str, dict[str, t.Any]],
             files: dict[str, str], git: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """A release manifest's view of the project, from what configured_images, compose_config_hashes,
    containers_by_service, hash_files and git_state found."""
    services = {}
    for name, conf in configured.items():
        live = running.get(name) or {}
        services[name] = {
            "image": conf["image"],
            "image_id": conf["image_id"],
            "repo_digests": conf["repo_digests"],
            "config_hash": hashes.get(name),
            "container_image_id": live.get("image_id"),
            "container": live.get("id"),
            "state": live.get("state") or "absent",
        }
    return {"services": services, "files": files, "git": git}


def observe(cli: DockerCli, project: ComposeProject, patterns: t.Sequence[str]) -> dict[str, t.Any]:
    """Everything a release manifest records about the project as it is now."""
    return state_of(configured_images(cli, project), cli.compose_config_hashes(project), containers_by_service(cli, project),
                    hash_files(project.directory, patterns), git_state(cli, project.directory))
