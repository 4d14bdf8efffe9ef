# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""config_archive's backup and restore with the real tar and zstd: what is archived, what a restore replaces, and
that check mode and a refused archive change nothing."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _config_archive as config
from ansible_collections.aiwfe.rollback.plugins.module_utils import _files as files
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import DEFAULT_HASH_FILES, sha256_file

pytestmark = pytest.mark.skipif(not (shutil.which("tar") and shutil.which("zstd")), reason="needs GNU tar and zstd")

FILES = {"compose.yaml": "services: {}\n", ".env": "TAG=v1\n", "images/api/Dockerfile": "FROM scratch\n",
         "caddy/Caddyfile": ":443 {\n}\n", "secrets/postgres_password": "never archived\n", "README.md": "not matched\n"}


@pytest.fixture(name="project")
def fixture_project(tmp_path):
    root = tmp_path / "project"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(project, check_mode=False, **overrides):
    params = {"state": "backup", "project_dir": str(project), "backup_dir": str(project.parent / "backups"),
              "archive": "latest", "patterns": DEFAULT_HASH_FILES}
    params.update(overrides)
    return config.run(params, check_mode)


def listing(project):
    directory = project.parent / "backups"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_backup_archives_the_matching_files_but_never_secrets(project):
    result = run(project)
    assert sorted(result["manifest"]["files"]) == [".env", "caddy/Caddyfile", "compose.yaml", "images/api/Dockerfile"]
    assert result["manifest"]["volume"] == "config" and result["changed"]
    name = os.path.basename(result["archive"])
    assert name.startswith("config-") and listing(project) == [name, name + ".manifest.json"]


def test_backup_in_check_mode_lists_the_files_and_writes_nothing(project):
    result = run(project, check_mode=True)
    assert result["changed"] and sorted(result["files"]) == [".env", "caddy/Caddyfile", "compose.yaml", "images/api/Dockerfile"]
    assert listing(project) == []


@pytest.mark.parametrize("check_mode", [True, False])
def test_backup_with_nothing_to_archive_fails(project, check_mode):
    with pytest.raises(JobFailed, match="nothing to archive; nothing was changed"):
        run(project, check_mode=check_mode, patterns=["*.toml"])
    assert listing(project) == []


def test_restore_four_ways(project):
    """check -> changed, apply -> changed (current files archived first), check -> unchanged, apply -> unchanged."""
    made = run(project)
    (project / "compose.yaml").write_text("services: {broken: {}}\n")
    (project / "images/api/Dockerfile").unlink()
    check = run(project, check_mode=True, state="restore")
    assert check["changed"] and check["restored"] == ["compose.yaml", "images/api/Dockerfile"]
    assert "pre_restore_archive" not in check and (project / "compose.yaml").read_text() == "services: {broken: {}}\n"
    assert len(listing(project)) == 2
    apply = run(project, state="restore")
    assert apply["changed"] and apply["restored"] == check["restored"] and apply["archive"] == made["archive"]
    assert (project / "compose.yaml").read_text() == FILES["compose.yaml"]
    assert (project / "images/api/Dockerfile").read_text() == FILES["images/api/Dockerfile"]
    pre = files.load_manifest(apply["pre_restore_archive"])
    assert os.path.basename(apply["pre_restore_archive"]).startswith("config.pre-restore-") and "images/api/Dockerfile" not in pre["files"]
    for check_mode in (True, False):
        again = run(project, check_mode=check_mode, state="restore")
        assert not again["changed"] and again["restored"] == [] and "pre_restore_archive" not in again
        assert again["archive"] == made["archive"]
    assert len(listing(project)) == 4
    assert not [n for n in os.listdir(project.parent) if n.startswith(".aiwfe-config-restore-")]


def test_a_tampered_file_is_refused_and_nothing_changes(project, monkeypatch):
    made = run(project)
    (project / ".env").write_text("TAG=v2\n")
    manifest = dict(made["manifest"], files=dict(made["manifest"]["files"], **{".env": "0" * 64}))
    files.write_json_atomic(files.manifest_path(made["archive"]), manifest)
    with pytest.raises(JobFailed, match=r"\.env in .* does not match its manifest; nothing was changed"):
        run(project, state="restore")
    assert (project / ".env").read_text() == "TAG=v2\n" and len(listing(project)) == 2


def test_no_archive_to_restore(project):
    with pytest.raises(JobFailed, match="no configuration archive in .*: nothing to verify or restore; nothing was changed"):
        run(project, state="restore")


def test_missing_project_dir(tmp_path):
    with pytest.raises(JobFailed, match="does not exist"):
        run(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["../planted.txt", "caddy/../../planted.txt", "{tmp}/planted.txt"])
def test_a_manifest_name_leaving_the_project_is_refused(project, tmp_path, name):
    """Issue 12, defect 9: the manifest's names are joined to project_dir; one that is absolute or climbs out with '..'
    is refused before anything is written (a file planted where it points would otherwise be 'restored' there)."""
    name = name.format(tmp=tmp_path)
    planted = tmp_path / "planted.txt"
    planted.write_text("outside\n")
    made = run(project)
    manifest = dict(made["manifest"], files=dict(made["manifest"]["files"], **{name: sha256_file(str(planted))}))
    files.write_json_atomic(files.manifest_path(made["archive"]), manifest)
    (project / ".env").write_text("TAG=v2\n")
    with pytest.raises(JobFailed, match=r"(absolute path|'\.\.' component).*; nothing was changed"):
        run(project, state="restore")
    assert planted.read_text() == "outside\n" and (project / ".env").read_text() == "TAG=v2\n"
    assert len(listing(project)) == 2 and sorted(os.listdir(tmp_path)) == ["backups", "planted.txt", "project"]


def test_a_directory_symlinked_out_of_the_project_is_not_written_through(project, tmp_path):
    """Issue 12, defect 9: caddy/ replaced by a symlink to a directory outside the project - the restore of
    caddy/Caddyfile would write there. Refused, in check mode too, and nothing changes on either side."""
    run(project)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Caddyfile").write_text("elsewhere\n")
    shutil.rmtree(project / "caddy")
    (project / "caddy").symlink_to(outside)
    for check_mode in (True, False):
        with pytest.raises(JobFailed, match=r"caddy/Caddyfile would be written to .*outside/Caddyfile, outside .*project "
                                            r"\(a directory on its way is a symlink\).*; nothing was changed"):
            run(project, check_mode=check_mode, state="restore")
    assert (outside / "Caddyfile").read_text() == "elsewhere\n" and len(listing(project)) == 2
