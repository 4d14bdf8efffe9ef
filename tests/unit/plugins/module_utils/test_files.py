# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_files: an artifact is published with its manifest or not at all; names never replace an artifact."""

from __future__ import annotations

import datetime
import json
import os
import signal
import stat
import time

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _files as files

WHEN = datetime.datetime(2026, 11, 29, 3, 15, 0, tzinfo=datetime.timezone.utc)


def listing(directory):
    return sorted(os.listdir(directory))


def writer(content=b"data", manifest=None):
    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(content)
        return manifest if manifest is not None else {"archive": os.path.basename(tmp), "bytes": len(content)}
    return write


def test_publish_writes_artifact_and_manifest(tmp_path):
    directory = str(tmp_path / "new" / "dir")
    path, manifest = files.publish(directory, "a.tar.zst", writer(manifest={"archive": "a.tar.zst"}))
    assert path == os.path.join(directory, "a.tar.zst")
    assert listing(directory) == ["a.tar.zst", "a.tar.zst.manifest.json"]
    assert files.load_manifest(path) == manifest == {"archive": "a.tar.zst"}
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(files.manifest_path(path)).st_mode) == 0o600


class Boom(Exception):
    pass


@pytest.mark.parametrize("failure, raised", [
    (Boom("the writer failed half way"), Boom),
    (OSError(28, "No space left on device"), files.ArtifactError),
])
def test_a_failing_writer_leaves_nothing_behind(tmp_path, failure, raised):
    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise failure

    (tmp_path / "older.dump").write_bytes(b"kept")
    with pytest.raises(raised) as err:
        files.publish(str(tmp_path), "a.dump", write)
    assert listing(tmp_path) == ["older.dump"]
    if raised is files.ArtifactError:
        assert "No space left on device" in str(err.value)


@pytest.mark.parametrize("fail_on", [1, 2])
def test_a_manifest_exists_only_with_its_artifact(tmp_path, monkeypatch, fail_on):
    """A failing rename (of the artifact, or of its manifest after the artifact) leaves neither."""
    calls = []
    real_replace = os.replace

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_on:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(files.ArtifactError, match="Input/output error"):
        files.publish(str(tmp_path), "a.tar.zst", writer())
    assert listing(tmp_path) == []


def test_an_existing_artifact_is_never_replaced(tmp_path):
    files.publish(str(tmp_path), "a.dump", writer(b"first"))
    called = []
    with pytest.raises(files.ArtifactError, match="already exists"):
        files.publish(str(tmp_path), "a.dump", called.append)
    assert not called
    assert (tmp_path / "a.dump").read_bytes() == b"first"


def test_a_lone_manifest_also_blocks_the_name(tmp_path):
    (tmp_path / "a.dump.manifest.json").write_text("{}")
    assert files.artifact_exists(str(tmp_path / "a.dump"))
    with pytest.raises(files.ArtifactError):
        files.publish(str(tmp_path), "a.dump", writer())


def test_remove_artifact_removes_both_and_tolerates_halves(tmp_path):
    path, _manifest = files.publish(str(tmp_path), "a.dump", writer())
    files.remove_artifact(path)
    assert listing(tmp_path) == []
    (tmp_path / "b.dump").write_bytes(b"no manifest")
    files.remove_artifact(str(tmp_path / "b.dump"))
    files.remove_artifact(str(tmp_path / "never-there.dump"))
    assert listing(tmp_path) == []


def test_fresh_name_waits_for_a_free_second(tmp_path, monkeypatch):
    clock = iter([WHEN, WHEN + datetime.timedelta(seconds=1)])
    slept = []
    monkeypatch.setattr(files, "utc_now", lambda: next(clock))
    monkeypatch.setattr(files.time, "sleep", slept.append)
    (tmp_path / "v-20261129T031500Z.tar.zst").write_bytes(b"taken")
    assert files.fresh_name(str(tmp_path), lambda when: f"v-{files.stamp(when)}.tar.zst") == "v-20261129T031501Z.tar.zst"
    assert len(slept) == 1 and 0 < slept[0] <= 1.01


def test_fresh_name_gives_up_when_every_second_is_taken(monkeypatch):
    monkeypatch.setattr(files, "utc_now", lambda: WHEN)
    monkeypatch.setattr(files.time, "sleep", lambda _s: None)
    with pytest.raises(files.ArtifactError, match="20261129T031500Z are taken"):
        files.fresh_stamp(lambda when: True)


def test_copy_atomic_keeps_mode_and_leaves_no_temporary_file(tmp_path):
    src = tmp_path / "src"
    src.write_text("new\n")
    os.chmod(src, 0o640)
    dest = tmp_path / "project" / "sub" / "Caddyfile"
    files.copy_atomic(str(src), str(dest))
    assert dest.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640
    assert listing(dest.parent) == ["Caddyfile"]


def test_write_json_atomic_then_read_json(tmp_path):
    path = str(tmp_path / "x.json")
    files.write_json_atomic(path, {"b": 1, "a": [1]})
    assert files.read_json(path) == {"a": [1], "b": 1}
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1], "b": 1}
    assert files.read_json(str(tmp_path / "missing.json")) is None


def _publish_in_child(directory, name):
    """A process that publishes ``name`` in ``directory`` and stops half way through the write (until killed);
    returns (pid, the temporary it is writing), once that temporary exists."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(ready_r)

        def write(tmp):
            with open(tmp, "wb") as handle:
                handle.write(b"half")
                handle.flush()
                os.write(ready_w, b"x")
                time.sleep(600)
            return {}

        try:
            files.publish(directory, name, write)
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x"
    os.close(ready_r)
    return pid, os.path.join(directory, files.TEMP_PREFIX + name)


def test_remove_stale_temporaries_takes_only_what_a_dead_run_left(tmp_path):
    directory = str(tmp_path)
    files.publish(directory, "done.dump", writer())
    (tmp_path / ".tmp-fresh").write_bytes(b"seconds old")
    pid, killed_tmp = _publish_in_child(directory, "killed.dump")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    now = time.time()
    # nobody writes here: temporaries not modified for STALE_AFTER go, a younger one stays (a rename may be coming)
    assert files.remove_stale_temporaries(directory, now) == []
    later = now + files.STALE_AFTER + 1
    assert files.remove_stale_temporaries(directory, later) == [str(tmp_path / ".tmp-fresh"), killed_tmp]
    assert listing(tmp_path) == ["done.dump", "done.dump.manifest.json"]
    assert files.remove_stale_temporaries(str(tmp_path / "missing")) == []


def test_remove_stale_temporaries_never_takes_a_live_writers_file(tmp_path):
    directory = str(tmp_path)
    (tmp_path / ".tmp-left-by-an-old-crash").write_bytes(b"old")
    pid, live_tmp = _publish_in_child(directory, "live.dump")
    try:
        # a run writes here: its temporary stays however old it looks; one untouched for a day is a dead run's
        assert files.remove_stale_temporaries(directory, time.time() + files.STALE_AFTER + 1) == []
        assert files.remove_stale_temporaries(directory, time.time() + files.STALE_AFTER_BUSY + 1) == [
            str(tmp_path / ".tmp-left-by-an-old-crash"), live_tmp]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@pytest.mark.parametrize("write", ["publish", "write_json_atomic"])
def test_every_writer_removes_what_a_killed_run_left_first(tmp_path, write):
    """Issue 12, defect 11: the dumps, configuration archives, journals and ledger records are written through
    publish or write_json_atomic, so those clean the directory they write in (not only volume_backup)."""
    stale = tmp_path / ".tmp-left-by-a-killed-run"
    stale.write_bytes(b"half")
    old = time.time() - files.STALE_AFTER - 5
    os.utime(stale, (old, old))
    fresh = tmp_path / ".tmp-another-run-is-writing"
    fresh.write_bytes(b"now")
    if write == "publish":
        files.publish(str(tmp_path), "new.dump", writer())
    else:
        files.write_json_atomic(str(tmp_path / "record.json"), {"id": 1})
    assert not stale.exists() and fresh.exists()
