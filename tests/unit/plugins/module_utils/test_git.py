# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fix commit of a rollback (deploy_commit), on a real git repository."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils._git import DeployRepo, GitError, relative_paths

IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


def git(repo, *args):
    rc, out, err = run(["git", "-C", str(repo)] + list(args))
    assert rc == 0, err
    return out.strip()


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "app" / "memory").mkdir(parents=True)
    (tmp_path / "app" / "memory" / "main.py").write_text("v1\n")
    (tmp_path / "app" / "memory" / "old.py").write_text("old\n")
    (tmp_path / "Caddyfile").write_text(":80\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, *IDENTITY, "commit", "-qm", "r1")
    git(tmp_path, "tag", "v1")
    git(tmp_path, "checkout", "-q", "--detach", "v1")
    return tmp_path


@pytest.mark.parametrize("paths, expected", [
    (["Caddyfile"], ["Caddyfile"]),
    (["./app/memory/", "docker//api/Dockerfile"], ["app/memory", "docker/api/Dockerfile"]),
    (["-odd name"], ["-odd name"]),
])
def test_relative_paths(paths, expected):
    assert relative_paths(paths) == expected


@pytest.mark.parametrize("paths", [[], ["/etc/passwd"], ["../x"], ["app/../../x"], ["."], [""]])
def test_relative_paths_refuses_what_leaves_the_directory(paths):
    with pytest.raises(GitError, match="Nothing was changed"):
        relative_paths(paths)


def test_pending_takes_tracked_changes_and_only_named_untracked_files(repo):
    deploy = DeployRepo(run, str(repo))
    assert deploy.pending(["Caddyfile", "app/memory"]) == []
    (repo / "Caddyfile").write_text(":8080\n")
    (repo / "app" / "memory" / "old.py").unlink()
    (repo / "app" / "memory" / "new.py").write_text("new\n")
    (repo / "app" / "memory" / "junk.pyc").write_text("junk\n")
    (repo / "compose.yaml").write_text("services: {x: {}}\n")   # an edit outside the paths: not taken
    assert deploy.pending(["Caddyfile", "app/memory"]) == ["Caddyfile", "app/memory/old.py"]
    assert deploy.pending(["Caddyfile", "app/memory", "app/memory/new.py"]) == [
        "Caddyfile", "app/memory/new.py", "app/memory/old.py"]


def test_commit_fix_commits_only_the_files_on_a_detached_head_with_a_branch(repo):
    deploy = DeployRepo(run, str(repo))
    before = deploy.head()
    (repo / "Caddyfile").write_text(":8080\n")
    (repo / "app" / "memory" / "old.py").unlink()
    (repo / "app" / "memory" / "new.py").write_text("new\n")
    (repo / "compose.yaml").write_text("services: {x: {}}\n")
    files = deploy.pending(["Caddyfile", "app/memory", "app/memory/new.py"])
    commit = deploy.commit_fix(files, "TLS rollback", "aiwfe-rollback/tls-1", "aiwfe.rollback", "a@b.invalid")
    assert commit != before and git(repo, "rev-parse", "aiwfe-rollback/tls-1") == commit
    assert git(repo, "rev-parse", "HEAD^") == before
    assert run(["git", "-C", str(repo), "symbolic-ref", "-q", "HEAD"])[0] != 0
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()) == [
        "Caddyfile", "app/memory/new.py", "app/memory/old.py"]
    assert git(repo, "log", "-1", "--format=%an %s") == "aiwfe.rollback TLS rollback"
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == "M compose.yaml"   # left as it was
    assert git(repo, "rev-parse", "main") == before     # no branch of the operator's moved
    assert deploy.pending(["Caddyfile", "app/memory", "app/memory/new.py"]) == []


def test_commit_fix_from_a_checked_out_branch_does_not_move_it(repo):
    git(repo, "checkout", "-q", "main")
    deploy = DeployRepo(run, str(repo))
    before = deploy.head()
    (repo / "Caddyfile").write_text(":8080\n")
    deploy.commit_fix(["Caddyfile"], "fix", "aiwfe-rollback/x", "n", "e@x.invalid")
    assert git(repo, "rev-parse", "main") == before
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "aiwfe-rollback/x") != before


def test_branch_checks(repo):
    deploy = DeployRepo(run, str(repo))
    assert deploy.valid_branch("aiwfe-rollback/tls-20261130T080000Z")
    assert not deploy.valid_branch("a..b") and not deploy.valid_branch("-x")
    assert deploy.branch_exists("main") and not deploy.branch_exists("aiwfe-rollback/none")
