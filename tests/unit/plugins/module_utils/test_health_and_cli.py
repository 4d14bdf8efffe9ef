# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _docker_cli as cli
from ansible_collections.aiwfe.rollback.plugins.module_utils import _health as health
from ansible_collections.aiwfe.rollback.plugins.module_utils._git import DeployRepo

RUNNING = {"state": "running", "health": "healthy", "image": "aiwfe/api:v1", "image_id": "sha256:a", "restart_count": 0}


@pytest.mark.parametrize("text, expected", [
    ('[{"Service": "api"}, {"Service": "db"}]', ["api", "db"]),          # compose < 2.21: one array
    ('{"Service": "api"}\n{"Service": "db"}\n', ["api", "db"]),          # compose >= 2.21: one object per line
    ("", []),
])
def test_parse_json_stream(text, expected):
    assert [x["Service"] for x in cli.parse_json_stream(text)] == expected


def test_parse_config_hashes():
    assert cli.parse_config_hashes("api 1234\nworker abcd\n") == {"api": "1234", "worker": "abcd"}


def test_compose_argv_names_default_files(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "compose.override.yaml").write_text("services: {}\n")
    project = cli.ComposeProject("p", str(tmp_path))
    argv = project.base_argv("docker")
    assert argv[:4] == ["docker", "compose", "--ansi", "never"]
    assert argv[-4:] == ["--file", str(tmp_path / "compose.yaml"), "--file", str(tmp_path / "compose.override.yaml")]


def test_cli_error_carries_command():
    runner = cli.DockerCli(lambda argv, **kw: (1, "", "boom"))
    with pytest.raises(cli.DockerCliError) as err:
        runner.run(["docker", "x"], "doing x")
    assert err.value.as_fail_kwargs() == {"msg": "doing x failed (rc=1): boom", "cmd": ["docker", "x"], "rc": 1, "stderr": "boom"}


@pytest.mark.parametrize("stderr", [
    "Cannot connect to the Docker daemon at unix:///run/x.sock. Is the docker daemon running?",
    "error during connect: Get \"http://%2Frun%2Fx.sock/v1.41/containers/json\": EOF",
])
def test_a_daemon_that_stopped_answering_is_named_with_what_to_do(stderr):
    runner = cli.DockerCli(lambda argv, **kw: (1, "", stderr))
    with pytest.raises(cli.DockerCliError) as err:
        runner.run(["docker", "ps"], "docker ps")
    assert err.value.msg.startswith("docker ps failed: the Docker daemon stopped answering (")
    assert "once `docker info` answers again, run the same command again" in err.value.msg and err.value.rc == 1


def _engine(objects):
    """A fake docker CLI that knows ``objects`` (ref -> inspect data) and records every argv."""
    calls = []

    def run(argv, **_kw):
        calls.append(argv)
        refs = argv[argv.index("--") + 1:]
        found = [objects[r] for r in refs if r in objects]
        return (0 if len(found) == len(refs) else 1), json.dumps(found), ""
    return cli.DockerCli(run), calls


def test_inspect_uses_one_call_when_all_exist():
    runner, calls = _engine({"a": {"Id": "1"}, "b": {"Id": "2"}})
    assert runner.inspect("image", ["b", "a"]) == {"b": {"Id": "2"}, "a": {"Id": "1"}}
    assert calls == [["docker", "image", "inspect", "--", "b", "a"]]


def test_inspect_tells_which_is_missing():
    runner, calls = _engine({"a": {"Id": "1"}})
    assert runner.inspect("image", ["a", "gone"]) == {"a": {"Id": "1"}, "gone": None}
    assert calls[1:] == [["docker", "image", "inspect", "--", "a"], ["docker", "image", "inspect", "--", "gone"]]


def test_published_port():
    pubs = [{"URL": "127.0.0.1", "TargetPort": 8000, "PublishedPort": 49153, "Protocol": "tcp"}]
    assert health.published_port(pubs, 8000) == 49153
    assert health.published_port(pubs, 443) is None


def test_healthy_service():
    res = health.evaluate_service("api", RUNNING, (200, json.dumps({"status": "ok", "version": "v1"})),
                                  {"image_id": "sha256:a", "version": "v1"})
    assert res["ok"] and res["version"] == "v1"


@pytest.mark.parametrize("container, http, expect, problem", [
    (None, None, {}, "no container"),
    (dict(RUNNING, state="restarting"), None, {}, "container is restarting"),
    (RUNNING, (503, '{"status": "fail", "checks": {"memory-service": "timed out"}}'), {}, "answered 503"),
    (RUNNING, (0, "connection refused"), {}, "answered nothing: connection refused"),
    (RUNNING, (200, '{"version": "v2"}'), {"image_id": "sha256:b"}, "expected sha256:b"),
    (RUNNING, (200, '{"version": "v2"}'), {"version": "v1"}, "reports version v2, expected v1"),
])
def test_unhealthy_service(container, http, expect, problem):
    res = health.evaluate_service("api", container, http, expect)
    assert not res["ok"]
    assert any(problem in p for p in res["problems"]), res["problems"]


def test_version_is_only_checked_where_there_is_an_endpoint():
    assert health.evaluate_service("postgres", RUNNING, None, {"version": "v1"})["ok"]


def test_report_line():
    line = health.report_line(health.evaluate_service("api", RUNNING, (200, '{"version": "v1"}'), {}))
    assert line.startswith("OK   api") and "version=v1" in line


def test_git_state_of_a_real_repository(tmp_path):
    def run(argv, **kwargs):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
        return proc.returncode, proc.stdout, proc.stderr

    assert DeployRepo(run, str(tmp_path)).state() is None
    env = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    for argv in (["init", "-q"], ["add", "."], env + ["commit", "-qm", "r1"], ["tag", "v1"]):
        assert run(["git", "-C", str(tmp_path)] + argv)[0] == 0
    state = DeployRepo(run, str(tmp_path)).state()
    assert state["tag"] == "v1" and not state["dirty"] and len(state["commit"]) == 40
    (tmp_path / "compose.yaml").write_text("services: {x: {}}\n")
    assert DeployRepo(run, str(tmp_path)).state()["dirty"]
    with pytest.raises(Exception, match="unknown release 'v9'"):
        DeployRepo(run, str(tmp_path)).resolve("v9")


def test_progress_names_each_check_once_when_it_first_passes(tmp_path):
    path = tmp_path / "progress.log"
    progress = health.Progress(str(path), start=100.0)
    progress.begin("full rollback", 3)
    progress.update({"api": {"ok": False}, "worker": {"ok": True}, "https": {"ok": False}}, 101.0)
    progress.update({"api": {"ok": True}, "worker": {"ok": False}, "https": {"ok": False}}, 103.5)   # worker flaps: once
    progress.update({"api": {"ok": True}, "worker": {"ok": True}, "https": {"ok": True}}, 104.25)
    progress.end([], 4.25)
    assert progress.green_after == {"worker": 1.0, "api": 3.5, "https": 4.25}
    assert progress.lines == ["full rollback: waiting for 3 check(s)", "1.0s worker green (1/3)", "3.5s api green (2/3)",
                              "4.2s https green (3/3)", "4.2s all green"]
    written = path.read_text(encoding="utf-8").splitlines()
    assert [line.split(" ", 1)[1] for line in written] == progress.lines


def test_progress_reports_what_still_fails():
    progress = health.Progress(None, start=0.0)
    progress.update({"api": {"ok": False}}, 30.0)
    progress.end(["api"], 30.0)
    assert progress.green_after == {} and progress.lines[-1] == "30.0s gave up, failing: api"


def test_probe_queries_the_endpoints_at_the_same_time(monkeypatch):
    containers = {name: dict(RUNNING, publishers=[{"TargetPort": 8000, "PublishedPort": port}])
                  for name, port in (("api", 18001), ("worker", 18002), ("memory", 18003))}
    monkeypatch.setattr(health, "containers_by_service", lambda cli, project: containers)

    def slow(url, timeout, validate_certs=True, ca_path=None):
        time.sleep(0.4)
        return 200, '{"status": "healthy"}'

    monkeypatch.setattr(health, "fetch", slow)
    params = {"services": [], "port": 8000, "path": "/health", "request_timeout": 3.0, "expect": {},
              "urls": [{"name": "https", "url": "https://localhost/health", "validate_certs": False, "ca_path": None,
                        "status": 200}]}
    began = time.monotonic()
    services, urls = health.probe(None, None, params)
    assert time.monotonic() - began < 1.2        # four requests of 0.4 s each, not 1.6 s one after the other
    assert sorted(services) == ["api", "memory", "worker"] and all(r["ok"] for r in services.values())
    assert urls["https"]["ok"]
