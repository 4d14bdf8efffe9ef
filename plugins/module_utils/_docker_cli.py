# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Thin, testable wrapper around the docker / docker compose CLI (private to this collection)."""

from __future__ import annotations

import json
import os
import threading
import typing as t

RunCommand = t.Callable[..., t.Tuple[int, str, str]]


def concurrently(calls: dict[str, t.Callable[[], t.Any]]) -> dict[str, t.Any]:
    """Run independent calls (docker CLI calls, mostly waiting on the engine) at the same time; their results by
    name. The first exception any of them raised is raised once all have finished."""
    results: dict[str, t.Any] = {}
    errors: list[BaseException] = []

    def one(name: str, call: t.Callable[[], t.Any]) -> None:
        try:
            results[name] = call()
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=item, daemon=True) for item in list(calls.items())[1:]]
    for thread in threads:
        thread.start()
    if calls:
        one(*next(iter(calls.items())))
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


# What the docker client says when the daemon does not answer (stopped, restarting, its socket gone).
DAEMON_GONE = ("Cannot connect to the Docker daemon", "Is the docker daemon running", "error during connect")


def daemon_gone(text: str) -> bool:
    """True when a docker command's error says the daemon did not answer."""
    return any(marker in text for marker in DAEMON_GONE)


class DockerCliError(Exception):
    """A docker CLI call failed; carries what an operator needs to see."""

    def __init__(self, msg: str, cmd: list[str] | None = None, rc: int | None = None, stderr: str = "") -> None:
        super().__init__(msg)
        self.msg = msg
        self.cmd = cmd or []
        self.rc = rc
        self.stderr = stderr

    def as_fail_kwargs(self) -> dict[str, t.Any]:
        return {"msg": self.msg, "cmd": self.cmd, "rc": self.rc, "stderr": self.stderr}


DEFAULT_COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def default_compose_files(directory: str) -> list[str]:
    """The files compose itself loads when none is named: the first default name, plus its override file."""
    for name in DEFAULT_COMPOSE_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            stem, ext = os.path.splitext(name)
            override = f"{stem}.override{ext}"
            return [name] + ([override] if os.path.isfile(os.path.join(directory, override)) else [])
    return []


class ComposeProject:
    """A compose project: name, directory and the compose files (relative to the directory or absolute).

    With no files given, the files compose would pick by itself are named explicitly, so that adding an
    override file (the rollback pin) never drops the stack's own files. ``pin``: the path of a rollback pin file
    that is part of what runs (merged last), or None.
    """

    def __init__(self, name: str, directory: str, files: t.Sequence[str] = (), pin: str | None = None) -> None:
        self.name = name
        self.directory = directory
        self.files = tuple(files) or tuple(default_compose_files(directory))
        self.pin = pin

    def with_pin(self, pin: str | None) -> "ComposeProject":
        """The same project with another pin file (None: the stack's own files only)."""
        return ComposeProject(self.name, self.directory, self.files, pin)

    def stack_paths(self) -> list[str]:
        """The stack's own compose files, as absolute paths."""
        return [f if os.path.isabs(f) else os.path.join(self.directory, f) for f in self.files]

    def file_paths(self) -> list[str]:
        """Every file compose merges: the stack's own, then the pin file."""
        return self.stack_paths() + ([self.pin] if self.pin else [])

    def base_argv(self, docker: str) -> list[str]:
        argv = [docker, "compose", "--ansi", "never", "--project-name", self.name, "--project-directory", self.directory]
        for path in self.file_paths():
            argv += ["--file", path]
        return argv


def marked_json(text: str, marker: str) -> dict[str, t.Any] | None:
    """The JSON object on the last line of ``text`` that starts with ``marker`` (the answer a script run in a
    container prints after whatever the code it imports printed); None when there is none or it is not an object."""
    for line in reversed(text.splitlines()):
        if line.startswith(marker):
            try:
                found = json.loads(line[len(marker):])
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def parse_json_stream(text: str) -> list[dict[str, t.Any]]:
    """Parse docker output that is a JSON array, one JSON object, or one object per line."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        return [d for d in data if isinstance(d, dict)]
    items = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            obj = json.loads(line)
            if isinstance(obj, list):
                items.extend(d for d in obj if isinstance(d, dict))
            else:
                items.append(obj)
    return items


def parse_config_hashes(text: str) -> dict[str, str]:
    """Parse `docker compose config --hash '*'` output: one `service hash` pair per line."""
    hashes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            hashes[parts[0]] = parts[1]
    return hashes


class DockerCli:
    """Runs docker commands through a run_command callable (AnsibleModule.run_command in modules)."""

    def __init__(self, run_command: RunCommand, docker: str = "docker") -> None:
        self.run_command = run_command
        self.docker = docker

    def run(self, argv: list[str], what: str, cwd: str | None = None, check: bool = True) -> tuple[int, str, str]:
        kwargs: dict[str, t.Any] = {}
        if cwd:
            kwargs["cwd"] = cwd
        rc, out, err = self.run_command(argv, **kwargs)
        if check and rc != 0:
            detail = err.strip() or out.strip()
            if daemon_gone(detail):
                raise DockerCliError(f"{what} failed: the Docker daemon stopped answering ({detail[-400:]}); once "
                                     "`docker info` answers again, run the same command again (it finds what this run "
                                     "left and goes on from there)", cmd=argv, rc=rc, stderr=err)
            raise DockerCliError(f"{what} failed (rc={rc}): {detail}", cmd=argv, rc=rc, stderr=err)
        return rc, out, err

    # --- compose -------------------------------------------------------------------------
    def compose(self, project: ComposeProject, args: list[str], what: str, check: bool = True) -> tuple[int, str, str]:
        return self.run(project.base_argv(self.docker) + args, what, cwd=project.directory, check=check)

    def compose_config(self, project: ComposeProject) -> dict[str, t.Any]:
        _rc, out, _err = self.compose(project, ["config", "--format", "json"], "docker compose config")
        return json.loads(out)

    def compose_config_hashes(self, project: ComposeProject) -> dict[str, str]:
        _rc, out, _err = self.compose(project, ["config", "--hash", "*"], "docker compose config --hash")
        return parse_config_hashes(out)

    def compose_ps(self, project: ComposeProject) -> list[dict[str, t.Any]]:
        _rc, out, _err = self.compose(project, ["ps", "--all", "--no-trunc", "--format", "json"], "docker compose ps")
        return parse_json_stream(out)

    # --- engine objects ----------------------------------------------------------------
    def inspect(self, kind: str, refs: t.Sequence[str]) -> dict[str, dict[str, t.Any] | None]:
        """Inspect images or containers; a missing object maps to None.

        One docker call for all of them (its output keeps the order of the arguments); only when one is missing
        (docker then fails) are they inspected one by one, to tell which.
        """
        if len(refs) > 1:
            rc, out, _err = self.run([self.docker, kind, "inspect", "--"] + list(refs), f"docker {kind} inspect", check=False)
            items = parse_json_stream(out) if rc == 0 else []
            if len(items) == len(refs):
                return dict(zip(refs, items))
        found: dict[str, dict[str, t.Any] | None] = {}
        for ref in refs:
            rc, out, _err = self.run([self.docker, kind, "inspect", "--", ref], f"docker {kind} inspect", check=False)
            items = parse_json_stream(out) if rc == 0 else []
            found[ref] = items[0] if items else None
        return found

    def tag(self, source: str, target: str) -> None:
        self.run([self.docker, "image", "tag", source, target], "docker image tag")

    def untag(self, ref: str) -> bool:
        """Remove one image reference (the image itself goes only when nothing else uses it).

        False when the engine refuses (a container still uses it as its only name): it is then kept.
        """
        rc, _out, err = self.run([self.docker, "image", "rm", "--", ref], "docker image rm", check=False)
        if rc != 0 and "conflict" not in err.lower() and "no such image" not in err.lower():
            raise DockerCliError(f"docker image rm {ref} failed: {err.strip()}", rc=rc, stderr=err)
        return rc == 0

    def engine_ok(self) -> None:
        self.run([self.docker, "version", "--format", "{{.Server.Version}}"],
                 "talking to the Docker engine (is it running? `docker info` tells)")
