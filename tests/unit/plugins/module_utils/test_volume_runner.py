# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""volume_backup's states against a fake docker CLI (volumes are directories; every argv recorded) with the real
tar and zstd: what is run, in which order, and that check mode runs nothing that changes state."""

from __future__ import annotations

import datetime
import json
import os
import shutil

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _files as files
from ansible_collections.aiwfe.rollback.plugins.module_utils import _volume_ops as ops
from ansible_collections.aiwfe.rollback.plugins.module_utils import _volume_runner as runner
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import TAR_CREATE, VolumeError

pytestmark = pytest.mark.skipif(not (shutil.which("tar") and shutil.which("zstd")), reason="needs GNU tar and zstd")

VOLUME = "app_data"
# Calls that change something on the engine: none of them may run in check mode.
CHANGING = ("stop", "start", "create", "rm", "run")


class FakeDocker:
    """A docker CLI stand-in: volumes are directories ROOT/NAME/_data (as on the Docker host), ``users`` the running
    containers of every volume, ``fail`` maps a subcommand to its stderr (rc 1). Records every argv."""

    def __init__(self, root, users=(), fail=None):
        self.root = root
        self.users = list(users)
        self.fail = fail or {}
        self.calls = []

    def mountpoint(self, name):
        return os.path.join(self.root, name, "_data")

    def exists(self, name):
        return os.path.isdir(os.path.join(self.root, name))

    def __call__(self, argv, **_kwargs):
        self.calls.append(argv)
        verb = argv[2] if argv[1] == "volume" else argv[1]
        if verb in self.fail:
            return 1, "", self.fail[verb]
        if verb == "inspect":
            refs = argv[argv.index("--") + 1:]
            found = [{"Name": r, "Driver": "local", "Options": None, "Mountpoint": self.mountpoint(r)} for r in refs if self.exists(r)]
            return (0 if len(found) == len(refs) else 1), json.dumps(found), ""
        if verb == "create":
            os.makedirs(self.mountpoint(argv[-1]), exist_ok=True)
            return 0, argv[-1] + "\n", ""
        if verb == "rm" and argv[1] == "volume":
            shutil.rmtree(os.path.join(self.root, argv[-1]))
            return 0, argv[-1] + "\n", ""
        if verb == "rm":
            return 0, "", ""
        if verb == "ps":
            return 0, "".join(u + "\n" for u in self.users), ""
        if verb in ("stop", "start"):
            return 0, "\n".join(argv[3:]) + "\n", ""
        raise AssertionError(f"unexpected docker call {argv}")

    def changing(self):
        return [argv[1:] for argv in self.calls if (argv[2] if argv[1] == "volume" else argv[1]) in CHANGING]


def params(backup_dir, **overrides):
    base = {"state": "backup", "volume": VOLUME, "backup_dir": str(backup_dir), "archive": "latest", "compression": "zstd",
            "level": 3, "access": "auto", "helper_image": "local/debian:bookworm", "stop_containers": False, "keep": None,
            "max_age_days": None, "docker_cli": "docker", "timeout": 3600, "keep_pre_restore": 3,
            "journal_dir": os.path.join(os.path.dirname(str(backup_dir)), "journal")}
    base.update(overrides)
    return base


@pytest.fixture(name="engine")
def fixture_engine(tmp_path):
    engine = FakeDocker(str(tmp_path / "volumes"), users=["app-1"])
    data = engine.mountpoint(VOLUME)
    os.makedirs(os.path.join(data, "dir", "empty"))
    with open(os.path.join(data, "dir", "file.txt"), "w", encoding="utf-8") as handle:
        handle.write("hello\n" * 100)
    os.symlink("file.txt", os.path.join(data, "dir", "link"))
    return engine


def run(engine, check_mode=False, diff=False, **overrides):
    backup_dir = os.path.join(os.path.dirname(engine.root), "backups")
    return runner.VolumeBackup(DockerCli(engine), params(backup_dir, **overrides), check_mode).run(diff)


def backups(engine):
    directory = os.path.join(os.path.dirname(engine.root), "backups")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def aged_copy(path, when):
    """A copy of a backup as if it had been made at ``when`` (a stamp), with its manifest."""
    name = os.path.basename(path).replace(path.split("-")[-1].split(".")[0], when)
    copy = os.path.join(os.path.dirname(path), name)
    shutil.copy(path, copy)
    manifest = dict(files.load_manifest(path), archive=name)
    files.write_json_atomic(files.manifest_path(copy), manifest)
    return copy


def test_backup_stops_the_users_and_publishes_archive_and_manifest(engine):
    result = run(engine, stop_containers=True)
    name = os.path.basename(result["archive"])
    assert backups(engine) == [name, name + ".manifest.json"]
    assert engine.calls == [
        ["docker", "volume", "inspect", "--", VOLUME],
        ["docker", "ps", "--filter", f"volume={VOLUME}", "--format", "{{.Names}}"],
        ["docker", "stop", "--", "app-1"],
        ["docker", "start", "--", "app-1"],
    ]
    manifest = files.load_manifest(result["archive"])
    assert result["manifest"] == manifest
    assert manifest["members"] == {"files": 1, "dirs": 3, "links": 1, "other": 0, "bytes": 600}
    assert manifest["archive"] == name and manifest["volume"] == VOLUME and manifest["stopped_containers"] == ["app-1"]
    assert result["changed"] and result["access"] == "direct" and result["stopped"] == ["app-1"] and result["pruned"] == []


def test_backup_in_check_mode_runs_nothing_that_changes_state(engine):
    result = run(engine, check_mode=True, diff=True, stop_containers=True)
    assert engine.changing() == []
    assert backups(engine) == []
    assert result["changed"] and "manifest" not in result
    assert result["diff"]["before"] == "" and result["diff"]["after"] == os.path.basename(result["archive"]) + "\n"


def test_a_second_backup_is_a_new_archive_and_the_first_is_intact(engine):
    first = run(engine)
    second = run(engine)
    assert second["archive"] != first["archive"]
    assert files.load_manifest(first["archive"]) == first["manifest"]
    assert len(backups(engine)) == 4


def test_helper_access_runs_tar_in_a_container_without_network():
    cli = DockerCli(lambda argv, **kw: (0, "", ""), "/usr/bin/docker")
    assert ops.tar_argv(cli, VOLUME, None, "img") == [
        "/usr/bin/docker", "run", "--rm", "--name", f"aiwfe-rollback-helper-{os.getpid()}-{VOLUME}", "--network", "none",
        "--log-driver", "none", "-v", f"{VOLUME}:/volume:ro", "img", "tar", "-C", "/volume"] + TAR_CREATE
    assert ops.tar_argv(cli, VOLUME, "/var/lib/docker/volumes/x/_data", "img") == ["tar", "-C", "/var/lib/docker/volumes/x/_data"] + TAR_CREATE


@pytest.mark.parametrize("overrides, fail, message", [
    ({"volume": "missing"}, None, "volume missing does not exist"),
    ({"keep": 0}, None, "keep must be at least 1"),
    ({"max_age_days": -1}, None, "max_age_days must be >= 0"),
    ({"stop_containers": True}, {"stop": "Error response from daemon: cannot stop"}, "backup of app_data failed, nothing was kept: docker stop failed"),
])
def test_backup_refusals_keep_nothing(engine, overrides, fail, message):
    engine.fail = fail or {}
    with pytest.raises(JobFailed, match=message):
        run(engine, **overrides)
    assert backups(engine) == []


def test_a_failed_docker_call_reports_command_rc_and_stderr(engine):
    engine.fail = {"ps": "Cannot connect to the Docker daemon"}
    with pytest.raises(JobFailed) as err:
        run(engine, stop_containers=True)
    fail = err.value.as_fail_kwargs()
    assert fail["cmd"] == ["docker", "ps", "--filter", f"volume={VOLUME}", "--format", "{{.Names}}"]
    assert fail["rc"] == 1 and fail["stderr"] == "Cannot connect to the Docker daemon" and not fail["changed"]


def test_keep_prunes_only_after_the_new_backup_reads_back(engine):
    first = run(engine)["archive"]
    older = aged_copy(first, "20200101T000000Z")
    result = run(engine, keep=2)
    assert sorted(result["pruned"]) == sorted([older])
    assert "verify" in result["seconds"]
    assert not os.path.exists(older) and not os.path.exists(files.manifest_path(older))
    assert os.path.exists(first) and os.path.exists(result["archive"])


def test_a_new_backup_that_fails_its_read_back_is_removed_and_nothing_pruned(engine, monkeypatch):
    older = aged_copy(run(engine)["archive"], "20200101T000000Z")
    before = backups(engine)

    def broken(*_args, **_kwargs):
        raise VolumeError("archive is corrupt or truncated")

    monkeypatch.setattr(runner, "verify_archive", broken)
    with pytest.raises(JobFailed, match="failed its read-back and was removed; nothing was pruned"):
        run(engine, keep=1)
    assert backups(engine) == before and os.path.exists(older)


def test_check_mode_counts_the_planned_archive_for_keep(engine):
    run(engine)
    result = run(engine, check_mode=True, diff=True, keep=1)
    assert len(result["pruned"]) == 1 and result["changed"]
    assert result["diff"]["after"] == os.path.basename(result["archive"]) + "\n"
    assert len(backups(engine)) == 2


def test_prune_four_ways(engine):
    newest = run(engine)["archive"]
    older = aged_copy(newest, "20200101T000000Z")
    check = run(engine, check_mode=True, state="prune", keep=1)
    assert check["changed"] and check["pruned"] == [older] and os.path.exists(older)
    apply = run(engine, state="prune", keep=1)
    assert apply["changed"] and apply["pruned"] == [older] and not os.path.exists(older)
    for check_mode in (True, False):
        again = run(engine, check_mode=check_mode, state="prune", keep=1)
        assert not again["changed"] and again["pruned"] == [] and again["archive"] == newest


def test_verify_changes_nothing_and_names_a_missing_manifest(engine):
    made = run(engine)
    for check_mode in (True, False):
        result = run(engine, check_mode=check_mode, state="verify")
        assert not result["changed"] and result["archive"] == made["archive"] and result["manifest"] == made["manifest"]
    os.unlink(files.manifest_path(made["archive"]))
    with pytest.raises(JobFailed, match=f"no backup of volume {VOLUME} in"):
        run(engine, state="verify")
    with pytest.raises(JobFailed, match="has no readable manifest .* not a complete backup of volume app_data"):
        run(engine, state="verify", archive=made["archive"])


def journal(engine):
    path = os.path.join(os.path.dirname(engine.root), "journal", ops.JOURNAL)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    return files.read_json(path)


def write_data(engine, text):
    with open(os.path.join(engine.mountpoint(VOLUME), "dir", "file.txt"), "w", encoding="utf-8") as handle:
        handle.write(text)


def read_data(engine, volume=VOLUME):
    with open(os.path.join(engine.mountpoint(volume), "dir", "file.txt"), encoding="utf-8") as handle:
        return handle.read()


def test_restore_swaps_in_the_archive_and_keeps_the_old_data(engine):
    archive = run(engine)["archive"]
    write_data(engine, "changed\n")
    engine.calls.clear()
    result = run(engine, state="restore", stop_containers=True, diff=True)
    kept = result["kept_volume"]
    staging = kept.replace("-pre-restore-", "-restore-")
    assert read_data(engine) == "hello\n" * 100 and read_data(engine, kept) == "changed\n"
    assert os.path.islink(os.path.join(engine.mountpoint(VOLUME), "dir", "link"))
    assert not engine.exists(staging)
    assert engine.changing() == [
        ["volume", "create", "--label", ops.RESTORE_LABEL, "--", staging],
        ["volume", "create", "--label", ops.RESTORE_LABEL, "--", kept],
        ["stop", "--", "app-1"],
        ["volume", "rm", "--", staging],
        ["start", "--", "app-1"],
    ]
    assert [e["state"] for e in journal(engine)["entries"]] == ["done"]
    assert [s["step"] for s in journal(engine)["entries"][0]["steps"]] == ["restoring", "swapping", "swapped", "done"]
    assert result["changed"] and result["archive"] == archive and result["stopped"] == ["app-1"] and result["volume"] == VOLUME
    assert result["diff"]["before"] == f"volume {VOLUME}: 1 files, 8 bytes\n"
    assert result["diff"]["after"].endswith(f"(1 files, 600 bytes); the data before is kept in volume {kept}\n")


def test_restore_in_check_mode_verifies_and_changes_nothing(engine):
    run(engine)
    write_data(engine, "changed\n")
    engine.calls.clear()
    result = run(engine, check_mode=True, state="restore", stop_containers=True)
    assert result["changed"] and "verify" in result["seconds"] and "kept_volume" not in result
    assert engine.changing() == [] and read_data(engine) == "changed\n"


def test_restore_into_a_used_volume_needs_stop_containers(engine):
    run(engine)
    engine.calls.clear()
    with pytest.raises(JobFailed, match="used by running containers app-1: stop them or set stop_containers: true"):
        run(engine, state="restore")
    assert engine.changing() == []


def test_a_refused_archive_leaves_the_volume_and_no_staging_volume(engine):
    archive = run(engine)["archive"]
    with open(archive, "r+b") as handle:
        handle.seek(os.path.getsize(archive) // 2)
        handle.write(b"\xff\xff")
    write_data(engine, "changed\n")
    with pytest.raises(JobFailed, match="was refused, nothing was changed: .* is corrupt or truncated"):
        run(engine, state="restore", stop_containers=True)
    assert read_data(engine) == "changed\n"
    assert sorted(os.listdir(engine.root)) == [VOLUME]


def test_restore_names_never_reuse_an_existing_volume(engine, monkeypatch):
    """Two restores in the same second: the second waits for the next second's names."""
    run(engine)
    when = files.parse_stamp("20991231T235958Z")
    # the clock stands still until the second restore, finding its names taken, waits (sleep moves it a second on)
    clock = [when]
    slept = []
    monkeypatch.setattr(files, "utc_now", lambda: clock[0])
    monkeypatch.setattr(files.time, "sleep", lambda s: (slept.append(s), clock.__setitem__(0, clock[0] + datetime.timedelta(seconds=1))))
    first = run(engine, state="restore", stop_containers=True)["kept_volume"]
    second = run(engine, state="restore", stop_containers=True)["kept_volume"]
    assert (first, second) == (f"{VOLUME}-pre-restore-20991231T235958Z", f"{VOLUME}-pre-restore-20991231T235959Z")
    assert len(slept) == 1
    assert engine.exists(first) and engine.exists(second)


@pytest.mark.parametrize("manifest_volume", ["--help", "-v", "a", "x/../../etc", "vol:/host", "vol data"])
def test_a_manifest_naming_no_docker_volume_is_refused_before_any_docker_call(engine, manifest_volume):
    archive = run(engine)["archive"]
    manifest = dict(files.load_manifest(archive), volume=manifest_volume)
    files.write_json_atomic(files.manifest_path(archive), manifest)
    engine.calls.clear()
    with pytest.raises(JobFailed, match="is not a Docker volume name .* nothing was changed"):
        run(engine, state="restore", volume=None, archive=archive, stop_containers=True)
    assert engine.calls == []


class Crash(BaseException):
    """Stands for the SIGKILL of the real failpoint (the molecule scenario kills the real process)."""


def crash_at(monkeypatch, step):
    def failpoint(name):
        if name == step:
            raise Crash(name)
    monkeypatch.setattr(ops, "failpoint", failpoint)
    monkeypatch.setattr(runner, "failpoint", failpoint)


@pytest.mark.parametrize("step", ["renamed", "swapped"])
def test_a_restore_killed_during_its_swap_is_finished_by_the_rerun(engine, monkeypatch, step):
    run(engine)
    write_data(engine, "changed\n")
    crash_at(monkeypatch, step)
    with pytest.raises(Crash):
        run(engine, state="restore", stop_containers=True)
    entry = journal(engine)["entries"][-1]
    assert entry["state"] == ("swapping" if step == "renamed" else "swapped")
    if step == "renamed":
        assert not os.path.exists(engine.mountpoint(VOLUME))       # the live volume has no data directory
    crash_at(monkeypatch, None)
    engine.calls.clear()
    result = run(engine, state="restore", stop_containers=True)
    # finished, not restored again (the same archive): the data is the archive's, the data before is kept
    assert result["changed"] and result["recovered"] == [
        {"id": entry["id"], "action": "finished", "kept_volume": entry["kept_volume"], "archive": entry["archive"],
         "sha256": entry["sha256"]}]
    assert result["kept_volume"] == entry["kept_volume"]
    assert read_data(engine) == "hello\n" * 100 and read_data(engine, entry["kept_volume"]) == "changed\n"
    assert sorted(os.listdir(engine.root)) == sorted([VOLUME, entry["kept_volume"]])
    assert ["start", "--", "app-1"] in engine.changing()             # the containers the killed run stopped
    assert [e["state"] for e in journal(engine)["entries"]] == ["done"]


def test_a_restore_killed_before_its_swap_is_reverted_by_the_rerun(engine, monkeypatch):
    run(engine)
    write_data(engine, "changed\n")

    def killed(*_args, **_kwargs):
        raise Crash("extracting")

    real_verify = runner.verify_archive
    monkeypatch.setattr(runner, "verify_archive", killed)
    with pytest.raises(Crash):
        run(engine, state="restore", stop_containers=True)
    staging = journal(engine)["entries"][-1]["staging_volume"]
    assert engine.exists(staging)
    monkeypatch.setattr(runner, "verify_archive", real_verify)
    result = run(engine, state="restore", stop_containers=True)
    assert result["recovered"][0]["action"] == "reverted" and not engine.exists(staging)
    assert read_data(engine) == "hello\n" * 100 and read_data(engine, result["kept_volume"]) == "changed\n"
    assert [e["state"] for e in journal(engine)["entries"]] == ["reverted", "done"]


def test_a_failed_start_after_the_swap_names_the_kept_volume_and_leaves_no_staging_volume(engine):
    run(engine)
    write_data(engine, "changed\n")
    engine.fail = {"start": "Error response from daemon: port is already allocated"}
    with pytest.raises(JobFailed) as err:
        run(engine, state="restore", stop_containers=True)
    fail = err.value.as_fail_kwargs()
    kept = fail["kept_volume"]
    assert fail["changed"] and read_data(engine, kept) == "changed\n" and read_data(engine) == "hello\n" * 100
    assert f"the data it held is kept in volume {kept}" in fail["msg"] and "docker start app-1" in fail["msg"]
    assert fail["stderr"] == "Error response from daemon: port is already allocated"
    assert sorted(os.listdir(engine.root)) == sorted([VOLUME, kept])
    assert journal(engine)["entries"][-1]["state"] == "done"


def test_keep_pre_restore_removes_only_older_kept_volumes_the_journal_knows(engine, monkeypatch):
    run(engine)
    os.makedirs(engine.mountpoint(f"{VOLUME}-pre-restore-20000101T000000Z"))      # made by hand: never removed
    clock = [files.parse_stamp("20991231T235950Z")]
    monkeypatch.setattr(files, "utc_now", lambda: clock[0])
    kept = []
    for _restore in range(4):
        result = run(engine, state="restore", stop_containers=True, keep_pre_restore=2)
        kept.append(result["kept_volume"])
        clock[0] += datetime.timedelta(seconds=5)
    assert result["removed_volumes"] == [kept[1]]
    assert sorted(os.listdir(engine.root)) == sorted([VOLUME, f"{VOLUME}-pre-restore-20000101T000000Z", kept[2], kept[3]])
    with pytest.raises(JobFailed, match="keep_pre_restore must be at least 1"):
        run(engine, state="restore", stop_containers=True, keep_pre_restore=0)


def test_an_unreadable_journal_stops_the_restore_before_anything_changes(engine):
    run(engine)
    os.makedirs(os.path.join(os.path.dirname(engine.root), "journal"))
    with open(os.path.join(os.path.dirname(engine.root), "journal", ops.JOURNAL), "w", encoding="utf-8") as handle:
        handle.write("{not json")
    engine.calls.clear()
    with pytest.raises(JobFailed, match="is unreadable: nothing was changed"):
        run(engine, state="restore", stop_containers=True)
    assert engine.changing() == []


def test_a_hanging_tar_is_stopped_by_the_timeout_and_the_containers_start_again(engine, tmp_path, monkeypatch):
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "tar").write_text("#!/bin/sh\nexec sleep 60\n")
    os.chmod(slow / "tar", 0o755)
    monkeypatch.setenv("PATH", f"{slow}:{os.environ['PATH']}")
    with pytest.raises(JobFailed, match="took longer than 1 s and was stopped \\(timeout\\)"):
        run(engine, stop_containers=True, timeout=1)
    assert engine.changing() == [["stop", "--", "app-1"], ["start", "--", "app-1"]]
    assert backups(engine) == []


def test_the_timeout_of_a_helper_backup_removes_the_helper_container(engine, monkeypatch):
    removed = []
    monkeypatch.setattr(runner, "readable", lambda _path: False)
    monkeypatch.setattr(runner, "tar_argv", lambda *_args: ["sleep", "60"] + ops.TAR_CREATE[:0])
    monkeypatch.setattr(runner, "remove_helper", lambda _cli, volume: removed.append(volume))
    with pytest.raises(JobFailed, match="took longer than 1 s"):
        run(engine, timeout=1)
    assert removed == [VOLUME] and backups(engine) == []


def test_check_mode_reports_an_interrupted_restore_and_changes_nothing(engine, monkeypatch):
    run(engine)
    crash_at(monkeypatch, "renamed")
    with pytest.raises(Crash):
        run(engine, state="restore", stop_containers=True)
    crash_at(monkeypatch, None)
    entry = journal(engine)["entries"][-1]
    engine.calls.clear()
    result = run(engine, check_mode=True, state="restore", stop_containers=True)
    assert result["pending_swaps"] == [{"id": entry["id"], "state": "swapping", "action": "finish"}]
    assert engine.changing() == [] and journal(engine)["entries"][-1]["state"] == "swapping"
    assert not os.path.exists(engine.mountpoint(VOLUME))


def test_containers_a_killed_backup_left_stopped_are_started_by_the_next_run(engine, monkeypatch):
    def killed(_cli, _names):
        raise SystemExit(-9)  # the run dies where the containers would have been started again
    monkeypatch.setattr(runner, "start_containers", killed)
    with pytest.raises(SystemExit):
        run(engine, stop_containers=True)
    monkeypatch.undo()
    journal_file = os.path.join(os.path.dirname(engine.root), "journal", ops.BACKUP_JOURNAL)
    assert [e["state"] for e in files.read_json(journal_file)["backups"]] == [ops.STOPPED]
    engine.users, engine.calls = [], []  # app-1 is not running now
    checked = run(engine, check_mode=True)
    assert checked["restarted"] == ["app-1"] and checked["changed"] and engine.changing() == []
    result = run(engine)
    assert result["restarted"] == ["app-1"] and result["changed"]
    assert engine.changing()[0] == ["start", "--", "app-1"]
    assert [e["state"] for e in files.read_json(journal_file)["backups"]] == [ops.DONE]
    engine.calls = []
    assert "restarted" not in run(engine) and ["start", "--", "app-1"] not in engine.changing()


def test_a_backup_that_stops_nothing_writes_no_journal(engine):
    run(engine)
    assert not os.path.exists(os.path.join(os.path.dirname(engine.root), "journal", ops.BACKUP_JOURNAL))


def test_a_staging_volume_the_engine_cannot_create_changes_nothing(engine):
    backup = run(engine, stop_containers=True)["archive"]
    engine.fail = {"create": "Error response from daemon: write metadata.db: no space left on device"}
    engine.calls = []
    with pytest.raises(JobFailed, match="cannot create the staging volume .*no space left on device.*nothing was changed"):
        run(engine, state="restore", archive=backup, stop_containers=True)
    assert [c for c in engine.changing() if c[0] != "volume" or c[1] != "create"] == []
    journal = files.read_json(os.path.join(os.path.dirname(engine.root), "journal", ops.JOURNAL))
    assert [e["state"] for e in journal["entries"]] == [ops.REVERTED]
