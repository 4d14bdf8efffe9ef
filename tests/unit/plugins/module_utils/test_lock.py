# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _lock as lock

NOW = datetime.datetime(2026, 11, 25, 18, 0, 0, tzinfo=datetime.timezone.utc)
HOST = "ops-1"


def alive_set(*pids):
    return lambda pid: pid in pids


def no_start(_pid):
    return None


def take(path, token="", **kwargs):
    args = {"project": "p", "owner": "alice", "operation": "rollback_quick", "pid": 100, "host": HOST,
            "this_host": HOST, "token": token, "now": NOW, "alive": alive_set(100), "start_of": no_start}
    args.update(kwargs)
    return lock.acquire(path, **args)


@pytest.fixture(name="path")
def fixture_path(tmp_path):
    return lock.lock_path(str(tmp_path / "ledger"), "p")


def listing(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else None


def test_acquire_writes_a_complete_private_lock(path):
    result = take(path)
    assert result["changed"] and len(result["token"]) == 16
    on_disk = json.loads(open(path, encoding="utf-8").read())
    assert on_disk == result["lock"]
    assert on_disk["owner"] == "alice" and on_disk["operation"] == "rollback_quick" and on_disk["pid"] == 100
    assert on_disk["host"] == HOST and on_disk["acquired"] == "2026-11-25T18:00:00Z"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert listing(os.path.dirname(path)) == ["lock.json"]  # no temporary file left


def test_reacquire_with_same_token_is_idempotent(path):
    first = take(path)
    before = open(path, encoding="utf-8").read()
    again = take(path, token=first["token"], pid=200, now=NOW + datetime.timedelta(hours=5))
    assert not again["changed"] and again["token"] == first["token"]
    assert open(path, encoding="utf-8").read() == before


@pytest.mark.parametrize("check_mode", [False, True])
def test_held_by_someone_else_fails_and_names_the_holder(path, check_mode):
    held = take(path)
    before = open(path, encoding="utf-8").read()
    with pytest.raises(lock.LockHeld) as err:
        take(path, owner="bob", check_mode=check_mode, now=NOW + datetime.timedelta(minutes=5))
    msg = str(err.value)
    for part in ("alice", "rollback_quick", "2026-11-25T18:00:00Z", "5 min ago", "pid 100 on ops-1",
                 f"aiwfe_lock_break={held['token']}", "playbooks/unlock.yml", "Nothing was changed"):
        assert part in msg
    assert "stale" not in msg
    assert open(path, encoding="utf-8").read() == before


@pytest.mark.parametrize("kwargs, reason", [
    ({"alive": alive_set()}, "its process 100 no longer exists on ops-1"),                                 # dead pid
    ({"now": NOW + datetime.timedelta(hours=3)}, "3.0 h old, older than max_age 2.0 h"),                  # too old
    ({"start_of": lambda pid: "999"}, "pid now belongs to another process"),                               # pid reused
])
def test_stale_lock_is_reported_with_the_how_to(path, kwargs, reason):
    held = take(path, start_of=lambda pid: "123")
    with pytest.raises(lock.LockHeld) as err:
        take(path, owner="bob", **kwargs)
    msg = str(err.value)
    assert "a stale lock" in msg and reason in msg
    assert f"aiwfe_lock_break={held['token']}" in msg and "aiwfe_lock_steal_stale=true" in msg
    assert json.loads(open(path, encoding="utf-8").read())["token"] == held["token"]


@pytest.mark.parametrize("kwargs", [
    {"this_host": "other"},   # the pid is on another machine: cannot be checked here
    {"max_age": 0, "now": NOW + datetime.timedelta(days=30)},  # age limit off
])
def test_not_stale(path, kwargs):
    held = take(path, this_host=kwargs.get("this_host", HOST))
    assert lock.staleness(held["lock"], kwargs.get("now", NOW), kwargs.get("max_age", 7200),
                          kwargs.get("this_host", HOST), alive_set(100 if "max_age" in kwargs else 0), no_start) == ""


def test_steal_stale_takes_over(path):
    held = take(path)
    result = take(path, owner="bob", alive=alive_set(), steal_stale=True)
    assert result["changed"] and result["previous"]["token"] == held["token"]
    assert "no longer exists" in result["stale"]
    assert json.loads(open(path, encoding="utf-8").read())["owner"] == "bob"
    assert listing(os.path.dirname(path)) == ["lock.json"]


def test_steal_stale_never_takes_a_live_lock(path):
    take(path)
    with pytest.raises(lock.LockHeld, match="Wait for it to finish"):
        take(path, owner="bob", steal_stale=True)


def test_break_token_takes_over_and_wrong_one_refuses(path):
    held = take(path)
    with pytest.raises(lock.LockHeld, match="break_token 0000 does not match"):
        take(path, owner="bob", break_token="0000")
    result = take(path, owner="bob", break_token=held["token"])
    assert result["changed"] and result["lock"]["owner"] == "bob"


def test_check_mode_writes_nothing(tmp_path):
    path = lock.lock_path(str(tmp_path / "ledger"), "p")
    result = take(path, check_mode=True)
    assert result["changed"] and "would take" in result["msg"]
    assert listing(str(tmp_path / "ledger")) is None
    held = take(path)
    assert lock.release(path, held["token"], check_mode=True)["changed"]
    assert os.path.exists(path)


def test_release(path):
    held = take(path)
    assert lock.release(path, token=held["token"])["changed"]
    assert not os.path.exists(path)
    assert listing(os.path.dirname(path)) == []
    again = lock.release(path, token=held["token"])
    assert not again["changed"] and "nothing to release" in again["msg"]


@pytest.mark.parametrize("token, break_token, ok", [
    ("0000", "", False), ("", "", False), ("", "0000", False), ("", "HELD", True), ("HELD", "", True),
])
def test_release_needs_the_matching_token(path, token, break_token, ok):
    held = take(path)
    token, break_token = (held["token"] if v == "HELD" else v for v in (token, break_token))
    if ok:
        assert lock.release(path, token, break_token)["changed"]
        assert not os.path.exists(path)
    else:
        with pytest.raises(lock.LockHeld, match="does not match it, so it was not released"):
            lock.release(path, token, break_token)
        assert json.loads(open(path, encoding="utf-8").read())["token"] == held["token"]


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not JSON"),
    ("", "not JSON"),
    ('["a"]', "missing owner"),
    ('{"owner": "a", "operation": "o", "acquired": "x", "acquired_epoch": 1}', "missing token"),
    ('{"owner": "a", "operation": "o", "acquired": "x", "acquired_epoch": 1, "token": "../x"}', "token is not valid"),
    ('{"owner": "a", "operation": "o", "acquired": "x", "acquired_epoch": "1", "token": "ab"}', "acquired_epoch"),
])
def test_damaged_lock_file_is_a_clear_error(path, content, reason):
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
    for call in (lambda: take(path), lambda: lock.release(path, "ab")):
        with pytest.raises(lock.LockError) as err:
            call()
        assert reason in str(err.value) and f"mv {path} {path}.damaged" in str(err.value)
        assert "Nothing was changed" in str(err.value)
    assert open(path, encoding="utf-8").read() == content


@pytest.mark.parametrize("project", ["", "../etc", "Upper", "a/b"])
def test_bad_project_name(tmp_path, project):
    with pytest.raises(lock.LockError, match="not a valid compose project name"):
        lock.lock_path(str(tmp_path), project)


@pytest.mark.parametrize("option", ["token", "break_token"])
def test_bad_token(path, option):
    with pytest.raises(lock.LockError, match=f"{option} 'a b' is not a lock token"):
        take(path, **{option: "a b"})
    assert not os.path.exists(path)


def test_exclusive_create_loses_a_race(path):
    take(path)
    with pytest.raises(lock.LockHeld, match="at the same moment"):
        lock.create_exclusive(path, {"token": "x"})
    assert listing(os.path.dirname(path)) == ["lock.json"]


def test_a_full_disk_is_a_clear_error(path, monkeypatch):
    """The ledger's disk full (molecule/chaos fills a real one): the lock cannot be written - say which file, why and
    what to do; nothing is left behind."""
    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lock, "write_json_temp", full)
    with pytest.raises(lock.LockError, match=r"cannot write the lock .*/lock\.json: No space left on device\. Free space "
                                             r"on \(or fix the permissions of\) .* and run again\. Nothing was changed\."):
        take(path)
    assert not os.path.exists(path)


def test_remove_if_leaves_a_newer_lock(path):
    take(path)
    with pytest.raises(lock.LockHeld, match="changed while it was being removed"):
        lock.remove_if(path, "someone-elses")
    assert listing(os.path.dirname(path)) == ["lock.json"]


def write_stat(proc, pid, comm, ppid, start="1000"):
    os.makedirs(proc / str(pid), exist_ok=True)
    rest = " ".join(["S", str(ppid)] + ["0"] * 17 + [start, "0"])
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) {rest}\n", encoding="utf-8")


@pytest.mark.parametrize("tree, start, expected", [
    # module <- sh <- sh <- worker <- ansible-playbook main <- bash
    ([(50, "python", 40), (40, "sh", 30), (30, "sh", 20), (20, "ansible-playboo", 10), (10, "ansible-playboo", 5),
      (5, "bash", 1)], 50, 10),
    ([(50, "python", 40), (40, "sshd", 1)], 50, None),                      # remote connection: no controller here
    ([(50, "python", 20), (20, "ansible", 5), (5, "a (b) c", 1)], 50, 20),  # ad-hoc ansible; odd parent name
])
def test_find_controller(tmp_path, tree, start, expected):
    for pid, comm, ppid in tree:
        write_stat(tmp_path, pid, comm, ppid)
    assert lock.find_controller(start, proc=str(tmp_path)) == expected


def test_real_process_helpers():
    assert lock.pid_alive(os.getpid())
    assert lock.process_start(os.getpid())
    assert lock.read_stat(2 ** 22 + 1) is None


def _stale_take_overs(path, seconds):
    # what a take-over does when the lock it found stale was replaced under it: remove it only if it still carries
    # the token it read
    end = datetime.datetime.now() + datetime.timedelta(seconds=seconds)
    while datetime.datetime.now() < end:
        try:
            lock.remove_if(path, "the-stale-ones")
        except lock.LockError:
            pass


def _takers(path, seconds, won):
    end = datetime.datetime.now() + datetime.timedelta(seconds=seconds)
    while datetime.datetime.now() < end:
        try:
            take(path, token="newcomer")
        except lock.LockError:
            continue
        won.value = 1
        return


def test_a_refused_removal_never_lets_a_newcomer_in(path):
    """Issue 12, defect 11: removing a lock only if it carries a token (a take-over or release that finds the lock
    replaced under it) must leave the holder's lock in place at every instant. Two processes race for real: one
    tries that removal with another token over and over, the other tries to take the lock over and over; the
    newcomer must never win and the holder's lock must be the one on disk."""
    import multiprocessing  # pylint: disable=import-outside-toplevel

    held = take(path)
    ctx = multiprocessing.get_context("fork")
    won = ctx.Value("i", 0)
    procs = [ctx.Process(target=_stale_take_overs, args=(path, 2.0)), ctx.Process(target=_takers, args=(path, 2.0, won))]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    assert won.value == 0, "a newcomer took the lock while its holder still held it"
    assert json.loads(open(path, encoding="utf-8").read())["token"] == held["token"]
    assert [n for n in listing(os.path.dirname(path)) if not n.startswith(".lock.mutex")] == ["lock.json"]
