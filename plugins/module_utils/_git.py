# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Git operations on a deploy directory whose tags are releases."""

from __future__ import annotations

import os
import posixpath
import typing as t

RunCommand = t.Callable[..., t.Tuple[int, str, str]]


class GitError(Exception):
    """A git step failed or was refused; the message says what to do."""


def open_deploy_repo(module: t.Any) -> "DeployRepo":
    """The deploy directory's repository for a module with the options project_dir and git; fails the module when the
    directory does not exist."""
    params = module.params
    if not os.path.isdir(params["project_dir"]):
        module.fail_json(msg=f"project_dir {params['project_dir']} does not exist: point it at the stack's deploy directory")
    return DeployRepo(module.run_command, params["project_dir"], params["git"])


def relative_paths(paths: list[str]) -> list[str]:
    """Paths relative to the deploy directory, normalised; GitError for an empty list or one that leaves it."""
    if not paths:
        raise GitError("no paths given: name the files to commit, relative to the deploy directory. Nothing was changed.")
    out = []
    for path in paths:
        norm = posixpath.normpath(path)
        if not path or path.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
            raise GitError(f"path '{path}' is not a file or directory inside the deploy directory (give it relative to "
                           "it, without '..'). Nothing was changed.")
        out.append(norm)
    return out


class DeployRepo:
    def __init__(self, run_command: RunCommand, directory: str, git: str = "git") -> None:
        self._run = run_command
        self.directory = directory
        self.git = git

    def _git(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self._run([self.git, "-C", self.directory] + list(args))
        if check and rc != 0:
            raise GitError(f"git {' '.join(args)} failed in {self.directory}: {err.strip() or out.strip()}")
        return rc, out, err

    def is_repo(self) -> bool:
        rc, out, _err = self._git("rev-parse", "--is-inside-work-tree", check=False)
        return rc == 0 and out.strip() == "true"

    def head(self) -> str:
        return self._git("rev-parse", "HEAD")[1].strip()

    def exact_tag(self) -> str | None:
        rc, out, _err = self._git("describe", "--tags", "--exact-match", "HEAD", check=False)
        return out.strip() if rc == 0 else None

    def state(self) -> dict[str, t.Any] | None:
        """Commit, exact tag and dirtiness of HEAD, or None when the directory is not a git work tree."""
        if not self.is_repo():
            return None
        return {"commit": self.head(), "tag": self.exact_tag(), "dirty": bool(self.local_changes())}

    def tags(self) -> list[str]:
        return [line for line in self._git("tag", "--list", "--sort=creatordate")[1].splitlines() if line]

    def resolve(self, release: str) -> str:
        """Commit of a tag, branch or commit; GitError naming the known releases when unknown."""
        if release.startswith("-"):
            raise GitError(f"invalid release name '{release}'")
        rc, out, _err = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", release + "^{commit}", check=False)
        if rc != 0:
            known = ", ".join(self.tags()) or "none"
            raise GitError(f"unknown release '{release}' in {self.directory}: known releases are {known}. Nothing was changed.")
        return out.strip()

    def local_changes(self) -> list[str]:
        """Uncommitted changes to tracked files (untracked files such as secrets/ do not count)."""
        return [line for line in self._git("status", "--porcelain", "--untracked-files=no")[1].splitlines() if line]

    def checkout(self, commit: str) -> None:
        self._git("checkout", "--quiet", "--detach", commit)

    def pending(self, paths: list[str]) -> list[str]:
        """Files a fix commit of `paths` takes: tracked changes under them, and untracked files named exactly."""
        named = set(paths)
        out = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)[1]
        entries = out.split("\0")
        files: list[str] = []
        index = 0
        while index < len(entries):
            entry = entries[index]
            index += 1
            if len(entry) < 4:
                continue
            status, path = entry[:2], entry[3:]
            if status[0] in "RC":
                index += 1  # the original path of a staged rename or copy follows
            if status == "!!" or (status == "??" and path not in named):
                continue
            files.append(path)
        return sorted(set(files))

    def branch_exists(self, branch: str) -> bool:
        return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)[0] == 0

    def valid_branch(self, branch: str) -> bool:
        return not branch.startswith("-") and self._git("check-ref-format", "--branch", branch, check=False)[0] == 0

    def commit_fix(self, files: list[str], message: str, branch: str, name: str, email: str) -> str:
        """Commit `files` on a detached HEAD (no branch of the user's moves) and keep it reachable under `branch`."""
        identity = ("-c", f"user.name={name}", "-c", f"user.email={email}")
        self._git("checkout", "--quiet", "--detach")
        self._git("add", "--all", "--", *files)
        self._git(*identity, "commit", "--quiet", "--no-verify", "-m", message, "--", *files)
        self._git("branch", "--", branch, "HEAD")
        return self.head()
