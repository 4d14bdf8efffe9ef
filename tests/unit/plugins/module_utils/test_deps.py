# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _deps as deps
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed

T = deps.Target
HEALTHY = '{"service": "memory-service", "status": "ok"}'

# The reference stack's compose config as `docker compose config --format json` gives it (trimmed to what matters).
CONFIG = {
    "name": "p",
    "networks": {"default": {"name": "p_default"}},
    "services": {
        "postgres": {"image": "aiwfe/postgres:15", "environment": {"POSTGRES_DB": "ai"}},
        "api": {"image": "aiwfe/api:v1", "build": {"context": "/srv/p", "dockerfile": "docker/api/Dockerfile"},
                "environment": {"POSTGRES_HOST": "postgres", "POSTGRES_PORT": "5432"},
                "depends_on": {"postgres": {"condition": "service_healthy"}},
                "ports": [{"target": 8000, "host_ip": "127.0.0.1"}]},
        "memory-service": {"image": "aiwfe/memory-service:v1",
                           "build": {"context": "/srv/p", "dockerfile": "docker/memory-service/Dockerfile"},
                           "environment": {"POSTGRES_HOST": "postgres", "POSTGRES_PORT": "5432"},
                           "depends_on": {"postgres": {"condition": "service_healthy"}},
                           "ports": [{"target": 8000}]},
        "perception-service": {"image": "aiwfe/perception-service:v1",
                               "build": {"context": "/srv/p", "dockerfile": "docker/perception-service/Dockerfile"},
                               "environment": {"MEMORY_SERVICE_URL": "http://memory-service:8000"},
                               "depends_on": {"memory-service": {"condition": "service_healthy"}},
                               "ports": [{"target": 8000}]},
        "reasoning-service": {"image": "aiwfe/reasoning-service:v1",
                              "build": {"context": "/srv/p", "dockerfile": "docker/reasoning-service/Dockerfile"},
                              "environment": {"PERCEPTION_SERVICE_URL": "http://perception-service:8000",
                                              "MEMORY_SERVICE_URL": "http://memory-service:8000"},
                              "depends_on": {"perception-service": {}, "memory-service": {}},
                              "ports": [{"target": 8000}]},
        "caddy": {"image": "aiwfe/caddy:2.6", "depends_on": {"api": {}}, "ports": [{"target": 443, "published": "18443"}]},
    },
}
DOCKERFILE = """# perception-service
FROM aiwfe/python-base:bookworm
COPY app/common /opt/app/common
COPY app/perception-service /opt/app/perception-service
ARG AIWFE_RELEASE
RUN test -n "$AIWFE_RELEASE" || { echo "build arg AIWFE_RELEASE is required" >&2; exit 1; }; \\
    echo "$AIWFE_RELEASE" > /opt/app/RELEASE
CMD ["python3", "-c", "from aiwfe_perception.main import main; main()"]
"""


def params(**over):
    base = {"service": "perception-service", "probe": True, "probe_from": "container", "probe_image": None, "timeout": 2,
            "health_path": "/health", "port": None, "endpoints": {}, "logs_tail": 10, "paths": None, "release_dir": None,
            "require_build": False, "fail_on_unreachable": False, "project_dir": "/srv/p", "ledger_dir": "/nonexistent",
            "docker_cli": "docker", "project_name": "p"}
    base.update(over)
    return base


# --- options, graph, targets ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("over, words", [
    ({"probe_from": "ssh"}, "probe_from must be one of"),
    ({"timeout": 0}, "timeout must be at least 1"),
    ({"logs_tail": -1}, "logs_tail must be 0"),
    ({"health_path": "health"}, "must start with /"),
    ({"port": 70000}, "port 70000 is not a TCP port"),
    ({"endpoints": {"postgres": {"port": "x"}}}, "endpoints.postgres.port 'x' is not a TCP port"),
    ({"endpoints": {"postgres": {"host": "db"}}}, "endpoints.postgres must be a dict with port and/or path"),
    ({"endpoints": {"api": {"path": "health"}}}, "endpoints.api.path 'health' must start with /"),
])
def test_option_errors(over, words):
    assert any(words in e for e in deps.option_errors(params(**over))), deps.option_errors(params(**over))


def test_good_options():
    assert not deps.option_errors(params(endpoints={"postgres": {"port": 5432, "path": ""}}, port=8000))


def test_urls_in_text_name_only_the_projects_services():
    text = 'x http://memory-service:8080/health y postgres://u:pw@postgres/db https://example.com:443 redis://cache'
    found = deps.url_addresses(text, {"memory-service", "postgres"}, "env")
    assert [(a["service"], a["scheme"], a["port"], a["path"]) for a in found] == [
        ("memory-service", "http", 8080, "/health"), ("postgres", "postgres", 5432, "/db")]


def test_env_addresses_urls_and_host_port_pairs():
    env = {"MEMORY_SERVICE_URL": "http://memory-service:8000", "DB_HOST": "postgres", "DB_PORT": "5433",
           "CACHE_HOST": "not-a-service", "SELF_URL": "http://perception-service:8000"}
    found = deps.env_addresses("perception-service", env, CONFIG["services"])
    assert [(a["service"], a["port"], a["via"]) for a in found] == [
        ("postgres", 5433, "perception-service's DB_HOST"), ("memory-service", 8000, "perception-service's MEMORY_SERVICE_URL")]


def test_environment_as_a_list_and_unset_values():
    assert deps.environment({"environment": ["A=1", "B="]}) == {"A": "1", "B": ""}
    assert deps.environment({"environment": {"A": None}}) == {"A": ""}


def test_graph_follows_depends_on_and_environment_transitively():
    graph, order = deps.dependency_graph(CONFIG, "reasoning-service")
    assert order == ["memory-service", "perception-service", "postgres"]
    assert graph["reasoning-service"]["depends_on"] == ["memory-service", "perception-service"]
    assert graph["memory-service"]["addresses"][0]["service"] == "postgres"


def test_graph_through_an_environment_url_alone():
    config = copy.deepcopy(CONFIG)
    config["services"]["perception-service"]["depends_on"] = {}
    _graph, order = deps.dependency_graph(config, "perception-service")
    assert order == ["memory-service", "postgres"]


def test_graph_survives_a_cycle_of_urls():
    config = {"services": {"a": {"environment": {"B": "http://b:1"}}, "b": {"environment": {"A": "http://a:1"}}}}
    assert deps.dependency_graph(config, "a")[1] == ["b"]


def test_dependents():
    assert deps.dependents(CONFIG, "perception-service") == ["reasoning-service"]
    assert deps.dependents(CONFIG, "postgres") == ["api", "caddy", "memory-service", "perception-service",
                                                   "reasoning-service"]


def test_targets_of_the_reference_stack():
    graph, order = deps.dependency_graph(CONFIG, "perception-service")
    targets = deps.plan_targets("perception-service", CONFIG, graph, order, {}, "/health")
    assert targets == [
        T("memory-service", "memory-service", 8000, "/health", "perception-service's MEMORY_SERVICE_URL"),
        T("postgres", "postgres", 5432, "", "memory-service's POSTGRES_HOST")]


def test_a_wrong_port_in_the_environment_is_probed_as_it_is():
    config = copy.deepcopy(CONFIG)
    config["services"]["perception-service"]["environment"]["MEMORY_SERVICE_URL"] = "http://memory-service:8080"
    graph, order = deps.dependency_graph(config, "perception-service")
    assert deps.plan_targets("perception-service", config, graph, order, {}, "/health")[0].port == 8080


def test_targets_without_an_address_use_declared_then_image_ports_then_the_name():
    config = {"services": {"a": {"depends_on": {"b": {}, "c": {}, "d": {}}}, "b": {"expose": ["6379/tcp"]}, "c": {},
                           "d": {}}}
    graph, order = deps.dependency_graph(config, "a")
    targets = deps.plan_targets("a", config, graph, order, {}, "/health", {"c": [5672]})
    assert [(x.dependency, x.port, x.path) for x in targets] == [("b", 6379, ""), ("c", 5672, ""), ("d", 0, "")]


def test_endpoints_add_a_port_and_set_the_path():
    graph, order = deps.dependency_graph(CONFIG, "perception-service")
    targets = deps.plan_targets("perception-service", CONFIG, graph, order,
                                {"memory-service": {"path": "/ready"}, "postgres": {"port": 5433}}, "/health")
    assert [(x.host, x.port, x.path) for x in targets] == [
        ("memory-service", 8000, "/ready"), ("postgres", 5432, ""), ("postgres", 5433, "")]


def test_self_port():
    others = deps.all_addresses(CONFIG, "perception-service")
    assert deps.self_port("perception-service", CONFIG, others, None) == (8000, "reasoning-service's PERCEPTION_SERVICE_URL")
    assert deps.self_port("api", CONFIG, deps.all_addresses(CONFIG, "api"), None) == (8000, "its compose ports/expose")
    assert deps.self_port("postgres", CONFIG, [], None)[0] is None
    assert deps.self_port("postgres", CONFIG, [], 5432) == (5432, "option port")


def test_image_ports():
    assert deps.image_ports({"Config": {"ExposedPorts": {"5432/tcp": {}, "53/udp": {}}}}) == [5432]
    assert deps.image_ports(None) == []


# --- the probe's output ---------------------------------------------------------------------------------------------

PROBE_OUT = """AIWFE-PROBE-TOOL python3
AIWFE-PROBE 0 ok 503 {"status": "fail", "dependencies": {"memory-service": "http://memory-service:8080"}}
AIWFE-PROBE 1 refused - 172.18.0.4 port 8080: [Errno 111] Connection refused
AIWFE-PROBE 2 ok 0 connected, but GET /health got no HTTP answer (timeout): timed out
AIWFE-PROBE 3 dns - [Errno -2] Name or service not known
"""


def test_parse_probe():
    tool, results = deps.parse_probe(PROBE_OUT, 5)
    assert tool == "python3"
    assert [(r["tcp"], r["http"]) for r in results] == [("ok", 503), ("refused", None), ("ok", 0), ("dns", None),
                                                        ("error", None)]
    assert "did not report" in results[4]["detail"]
    assert deps.body_of(results[0])["dependencies"] == {"memory-service": "http://memory-service:8080"}
    assert deps.body_of(results[1]) is None


@pytest.mark.parametrize("target, answer, ok, words", [
    (T("m", "m", 8000, "/health", "env X"), {"tcp": "ok", "http": 200, "detail": HEALTHY}, True,
     "OK   m:8000 (env X): TCP ok, GET /health -> 200"),
    (T("m", "m", 8000, "/health", "env X"), {"tcp": "ok", "http": 503, "detail": "down"}, False, "GET /health -> 503 - down"),
    (T("m", "m", 8000, "/health", "env X"), {"tcp": "ok", "http": 0, "detail": "x"}, False, "no HTTP answer"),
    (T("m", "m", 8080, "/health", "env X"), {"tcp": "refused", "http": None, "detail": "[Errno 111]"}, False,
     "FAIL m:8080 (env X): connection refused - [Errno 111]"),
    (T("p", "p", 5432, "", "env Y"), {"tcp": "ok", "http": None, "detail": "connected"}, True, "OK   p:5432 (env Y): TCP ok"),
    (T("p", "p", 5432, "", "env Y"), {"tcp": "timeout", "http": None, "detail": "t"}, False, "timed out"),
    (T("d", "d", 0, "", "name only"), {"tcp": "ok", "http": None, "detail": "resolves to 10.0.0.2"}, True,
     "OK   d (name only): resolves to 10.0.0.2"),
    (T("d", "d", 0, "", "name only"), {"tcp": "dns", "http": None, "detail": "no"}, False, "name does not resolve"),
])
def test_verdict_and_line(target, answer, ok, words):
    answer = dict(answer, ok=deps.verdict(target, answer))
    assert answer["ok"] is ok
    assert words in deps.probe_line(target, answer)


# --- logs -----------------------------------------------------------------------------------------------------------

def test_logs_merge_both_streams_in_time_order_and_keep_the_tail():
    out = ("2026-11-29T10:00:01.5Z INFO started\n"
           "2026-11-29T10:00:03.000000001Z INFO serving\n")
    err = ("2026-11-29T10:00:01.12Z WARNING check memory-service failed: [Errno 111] Connection refused\n"
           "2026-11-29T10:00:02Z Traceback\n")
    lines = deps.merge_logs(out, err, 3)
    assert lines == ["2026-11-29T10:00:01.5Z INFO started", "2026-11-29T10:00:02Z Traceback",
                     "2026-11-29T10:00:03.000000001Z INFO serving"]
    assert deps.merge_logs(out, err, 10)[0].startswith("2026-11-29T10:00:01.12Z WARNING")
    assert deps.merge_logs(out, err, 0) == []


@pytest.mark.parametrize("line, hint", [
    ("WARNING check memory-service failed: [Errno 111] Connection refused", True),
    ("requests.exceptions.ConnectTimeout: timed out", True),
    ("socket.gaierror: [Errno -3] Temporary failure in name resolution", True),
    ("Error: getaddrinfo ENOTFOUND memory-service", True),
    ("INFO serving on port 8000", False),
])
def test_log_hints(line, hint):
    assert bool(deps.log_hints([line])) is hint


# --- the service's own files ----------------------------------------------------------------------------------------

def test_copy_sources():
    text = DOCKERFILE + """COPY --from=builder /out /opt/x
COPY --chown=app:app ["app/perception-service/conf", "/etc/p/"]
ADD https://example.com/x.tgz /tmp/
COPY \\
  app/perception-service/static \\
  /srv/static
"""
    assert deps.copy_sources(text) == ["app/common", "app/perception-service", "app/perception-service/conf",
                                       "app/perception-service/static"]


def _reader(files):
    return files.get


def test_own_files_of_a_service_in_a_shared_context(tmp_path):
    svc = dict(CONFIG["services"]["perception-service"], build={"context": str(tmp_path),
                                                                "dockerfile": "docker/perception-service/Dockerfile"})
    found = deps.build_files("perception-service", svc, str(tmp_path),
                             _reader({"docker/perception-service/Dockerfile": DOCKERFILE}))
    assert found["paths"] == ["docker/perception-service/Dockerfile", "app/perception-service"]
    assert found["build"]["context"] == "." and found["build"]["dockerfile"] == "docker/perception-service/Dockerfile"


def test_own_files_of_a_service_with_a_context_of_its_own(tmp_path):
    svc = {"build": {"context": str(tmp_path / "services" / "perception_service")}}
    found = deps.build_files("perception-service", svc, str(tmp_path), _reader({}))
    assert found["paths"] == ["services/perception_service/Dockerfile", "services/perception_service"]


def test_own_files_glob_sources_and_a_context_outside(tmp_path):
    svc = {"build": {"context": str(tmp_path), "dockerfile": "Dockerfile.api"}}
    found = deps.build_files("api", svc, str(tmp_path), _reader({"Dockerfile.api": "COPY src/api/*.py /app/\nCOPY ../api /x\n"}))
    assert found["paths"] == ["Dockerfile.api", "src/api"]
    outside = deps.build_files("api", {"build": {"context": "/elsewhere"}}, str(tmp_path), _reader({}))
    assert outside["paths"] == [] and "not inside the deploy directory" in outside["notes"][0]
    assert deps.build_files("postgres", CONFIG["services"]["postgres"], str(tmp_path), _reader({}))["build"] is None


@pytest.mark.parametrize("rel, words", [
    ("/etc/passwd", "is absolute"),
    ("../ledger", "leads out of the deploy directory"),
    ("app/../../x", "leads out of the deploy directory"),
    (".", "is the whole deploy directory"),
    (".git/config", "inside .git or secrets"),
    ("secrets/postgres_password", "inside .git or secrets"),
    ("app/*", "is a pattern"),
    ("", "is not a path"),
    ("link/file", "a symlink on its way"),
])
def test_path_errors(tmp_path, rel, words):
    (tmp_path / "link").symlink_to("/tmp")
    assert words in deps.path_error(str(tmp_path), rel)


def test_good_paths(tmp_path):
    assert deps.path_error(str(tmp_path), "app/perception-service/") is None
    assert deps.path_error(str(tmp_path), "docker/perception-service/Dockerfile") is None


def test_patterns_for_directories_and_files():
    assert deps.patterns_for(["app/p", "docker/p/Dockerfile", "odd[1]/"], lambda rel: rel == "app/p") == [
        "app/p/*", "docker/p/Dockerfile", "odd[[]1]/*"]


def test_file_plan():
    assert deps.file_plan({"a": "1", "b": "2", "x": "9"}, {"a": "1", "b": "3", "c": "4"}) == {
        "changed": ["b", "c"], "extra": ["x"]}


def _with(service, **block):
    config = copy.deepcopy(CONFIG)
    config["services"][service].update(block)
    return config


@pytest.mark.parametrize("release, status, others", [
    (CONFIG, "same", []),
    (_with("perception-service", environment={"MEMORY_SERVICE_URL": "http://memory-service:8080"}), "take", []),
    (dict(CONFIG, **{"x-app": {"a": 1}}), "same", []),
    (_with("api", image="aiwfe/api:v0"), "others_differ", ["api"]),
    (dict(_with("perception-service", environment={}), volumes={"v": {}}), "others_differ", []),
    ({"services": {}}, "missing", []),
])
def test_compose_entry(release, status, others):
    found = deps.compose_entry("perception-service", CONFIG, release)
    assert found["status"] == status and found["others"] == others


# --- the run, on a fake docker ----------------------------------------------------------------------------------------

class FakeDocker:
    """Answers the docker commands the run makes; records every argv. ``probe``: (argv -> (rc, out, err))."""

    def __init__(self, config, containers, probe=None, logs=("", "")):
        self.config = config
        self.containers = containers  # service -> state
        self.probe = probe or (lambda argv: (0, "AIWFE-PROBE-TOOL python3\n", ""))
        self.logs = logs
        self.calls = []

    def __call__(self, argv, **_kw):
        self.calls.append(argv)
        if "config" in argv:
            return 0, json.dumps(self.config), ""
        if argv[1] == "ps":
            return 0, "\n".join(f"c-{s}" for s in self.containers), ""
        if argv[1:3] == ["container", "inspect"]:
            ids = argv[argv.index("--") + 1:]
            return 0, json.dumps([self.inspect(i[2:]) for i in ids]), ""
        if argv[1:3] == ["image", "inspect"]:
            return 1, "[]", "No such image"
        if argv[1] == "logs":
            return 0, self.logs[0], self.logs[1]
        if argv[1] in ("exec", "run"):
            return self.probe(argv)
        raise AssertionError(f"unexpected docker call {argv}")

    def inspect(self, service):
        return {"Id": f"c-{service}", "Name": f"/p-{service}-1", "Image": f"sha256:{service}",
                "State": {"Status": self.containers[service], "Running": self.containers[service] == "running"},
                "Config": {"Labels": {"com.docker.compose.service": service}, "Image": f"aiwfe/{service}:v1"},
                "NetworkSettings": {"Ports": {}}}


def targets_of(argv):
    """The (host, port, path) triples a probe's argv carries."""
    rest = argv[argv.index("sh", argv.index("-c")) + 3:]
    return [tuple(rest[i:i + 3]) for i in range(0, len(rest), 3)]


def reference_probe(argv):
    """perception-service of v1.3.0-dependency: its own /health is 503 and names memory-service:8080, which refuses."""
    lines = ["AIWFE-PROBE-TOOL python3"]
    for index, (host, port, _path) in enumerate(targets_of(argv)):
        if host == "127.0.0.1":
            lines.append(f'AIWFE-PROBE {index} ok 503 {{"status": "fail", "dependencies": '
                         '{"memory-service": "http://memory-service:8080"}}')
        elif port == "8080":
            lines.append(f"AIWFE-PROBE {index} refused - 10.0.0.3 port 8080: [Errno 111] Connection refused")
        elif port == "8000":
            lines.append(f"AIWFE-PROBE {index} ok 200 {HEALTHY}")
        else:
            lines.append(f"AIWFE-PROBE {index} ok - connected to 10.0.0.2 port {port}")
    return 0, "\n".join(lines) + "\n", ""


@pytest.fixture
def stack(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "docker" / "perception-service").mkdir(parents=True)
    (tmp_path / "docker" / "perception-service" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "app" / "perception-service").mkdir(parents=True)
    (tmp_path / "app" / "perception-service" / "main.py").write_text("PORT = 8080\n")
    config = json.loads(json.dumps(CONFIG).replace("/srv/p", str(tmp_path)))
    return tmp_path, config


def _run(docker, tmp_path, **over):
    project = ComposeProject("p", str(tmp_path))
    return deps.run(DockerCli(docker), project, params(project_dir=str(tmp_path), **over))


ALL_RUNNING = {s: "running" for s in CONFIG["services"]}


def test_run_probes_from_inside_and_follows_the_address_its_own_answer_names(stack):
    tmp_path, config = stack
    docker = FakeDocker(config, ALL_RUNNING, reference_probe,
                        logs=("2026-11-29T10:00:02Z INFO up\n",
                              "2026-11-29T10:00:01Z WARNING check memory-service failed: Connection refused\n"))
    result = _run(docker, tmp_path)
    probes = [c for c in docker.calls if c[1] == "exec"]
    assert probes[0][:6] == ["docker", "exec", "c-perception-service", "sh", "-c", deps.SHELL_PROBE]
    assert targets_of(probes[0]) == [("127.0.0.1", "8000", "/health"), ("memory-service", "8000", "/health"),
                                     ("postgres", "5432", "")]
    assert targets_of(probes[1]) == [("memory-service", "8080", "/health")]
    assert result["ok"] is False and result["self_check"]["http"] == 503
    assert result["failing"][1].startswith("FAIL memory-service:8080 (named in perception-service's own health answer): "
                                           "connection refused")
    assert result["logs"][0].startswith("2026-11-29T10:00:01Z WARNING") and len(result["log_hints"]) == 1
    assert result["paths"] == ["docker/perception-service/Dockerfile", "app/perception-service"]
    assert result["dependents"] == [{"service": "reasoning-service", "state": "running"}]
    assert result["compose_argv"][:2] == ["docker", "compose"] and result["changed"] is False
    assert any(line.startswith("probe from container p-perception-service-1 (docker exec) with python3")
               for line in result["report"])
    with pytest.raises(JobFailed, match="perception-service does not reach everything it needs: FAIL 127.0.0.1:8000"):
        _run(docker, tmp_path, fail_on_unreachable=True)


def test_run_reports_ok(stack):
    tmp_path, config = stack

    def healthy(argv):
        lines = ["AIWFE-PROBE-TOOL bash"] + [f"AIWFE-PROBE {i} ok {'200' if path else '-'} fine"
                                             for i, (_h, _p, path) in enumerate(targets_of(argv))]
        return 0, "\n".join(lines), ""
    result = _run(FakeDocker(config, ALL_RUNNING, healthy), tmp_path, fail_on_unreachable=True)
    assert result["ok"] is True and result["failing"] == [] and result["probe"]["tool"] == "bash"


def test_unknown_service_names_the_known_ones(stack):
    tmp_path, config = stack
    with pytest.raises(JobFailed, match="unknown service nope: compose project p has api, caddy, memory-service, "
                                        "perception-service, postgres, reasoning-service. Nothing was changed."):
        _run(FakeDocker(config, ALL_RUNNING), tmp_path, service="nope")


def test_a_service_without_a_build_is_refused_when_it_must_be_rebuilt(stack):
    tmp_path, config = stack
    docker = FakeDocker(config, ALL_RUNNING)
    with pytest.raises(JobFailed, match="service postgres has no build section in compose"):
        _run(docker, tmp_path, service="postgres", require_build=True)
    assert not [c for c in docker.calls if c[1] in ("exec", "run", "logs")]


def test_a_pinned_service_is_refused_when_it_must_be_rebuilt(stack):
    tmp_path, config = stack
    pin = tmp_path / "pin.yaml"
    pin.write_text('services:\n  "perception-service":\n    image: "aiwfe-rollback/p-perception-service:x"\n')
    project = ComposeProject("p", str(tmp_path), pin=str(pin))
    with pytest.raises(JobFailed, match="pinned to the image aiwfe-rollback/p-perception-service:x by a quick rollback"):
        deps.run(DockerCli(FakeDocker(config, ALL_RUNNING)), project,
                 params(project_dir=str(tmp_path), require_build=True))


def test_paths_out_of_the_deploy_directory_are_refused_before_docker_is_asked(stack):
    tmp_path, config = stack
    docker = FakeDocker(config, ALL_RUNNING)
    with pytest.raises(JobFailed, match=r"\.\./ledger leads out of the deploy directory .*Nothing was changed"):
        _run(docker, tmp_path, paths=["app/perception-service/", "../ledger"])
    assert docker.calls == []


def test_a_container_that_does_not_run_is_named_and_the_image_offered(stack):
    tmp_path, config = stack
    docker = FakeDocker(config, dict(ALL_RUNNING, **{"perception-service": "restarting"}), reference_probe)
    with pytest.raises(JobFailed, match="is restarting .*not running.*probe_from=image"):
        _run(docker, tmp_path)
    result = _run(docker, tmp_path, probe_from="auto")
    run = [c for c in docker.calls if c[1] == "run"][0]
    assert run[:4] == ["docker", "run", "--rm", "--name"] and "--network" in run
    assert run[run.index("--network") + 1] == "p_default"
    assert run[run.index("--entrypoint") + 1:run.index("--entrypoint") + 4] == ["sh", "--", "sha256:perception-service"]
    assert result["self_check"] is None and result["probe"]["from"] == "image"
    assert "its own health endpoint was not probed" in result["notes"][0]


def test_no_shell_in_the_image(stack):
    tmp_path, config = stack
    failure = (126, "", 'OCI runtime exec failed: exec: "sh": executable file not found in $PATH')
    docker = FakeDocker(config, ALL_RUNNING, lambda _argv: failure)
    with pytest.raises(JobFailed, match="the image has no shell; probe from another image"):
        _run(docker, tmp_path)


def test_release_dir_plans_the_files_and_the_compose_entry(stack):
    tmp_path, config = stack
    release = tmp_path.parent / (tmp_path.name + "-release")
    shutil.copytree(tmp_path, release)
    (release / "app" / "perception-service" / "main.py").write_text("PORT = 8000\n")
    (tmp_path / "app" / "perception-service" / "new.py").write_text("x = 1\n")
    result = _run(FakeDocker(config, ALL_RUNNING), tmp_path, release_dir=str(release), probe=False, logs_tail=0)
    assert result["restore"]["changed"] == ["app/perception-service/main.py"]
    assert result["restore"]["extra"] == ["app/perception-service/new.py"]
    assert result["restore"]["compose"]["status"] == "same" and result["restore"]["current"] == 3
    assert result["restore"]["patterns"] == ["docker/perception-service/Dockerfile", "app/perception-service/*"]
    # only the service's block differs: the compose file comes back whole
    (release / "compose.yaml").write_text("services: {changed: true}\n")
    theirs = _with("perception-service", environment={"MEMORY_SERVICE_URL": "http://memory-service:8001"})
    theirs = json.loads(json.dumps(theirs).replace("/srv/p", str(tmp_path)))
    docker = FakeDocker(config, ALL_RUNNING)
    docker.config = config

    def answer(argv, **kw):
        if "config" in argv and str(release / "compose.yaml") in argv:
            docker.calls.append(argv)
            return 0, json.dumps(theirs), ""
        return docker(argv, **kw)
    result = deps.run(DockerCli(answer), ComposeProject("p", str(tmp_path)),
                      params(project_dir=str(tmp_path), release_dir=str(release), probe=False, logs_tail=0))
    assert result["restore"]["compose"]["status"] == "take"
    assert "compose.yaml" in result["restore"]["changed"] and "compose.yaml" in result["restore"]["patterns"]
    config_call = [c for c in docker.calls if str(release / "compose.yaml") in c][0]
    assert config_call[config_call.index("--project-directory") + 1] == str(tmp_path)


# --- the probe script itself, on this machine (no Docker): one run per tool, against a local HTTP server ----------------

class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        status = 200 if self.path == "/health" else 404
        body = HEALTHY.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]
    closed.close()
    yield httpd.server_address[1], free
    httpd.shutdown()


NC_STUB = """#!/bin/sh
# nc -z -w T HOST PORT, against the test's ports: $OPEN answers, anything else refuses
[ "$5" = "$OPEN" ] && exit 0
echo "nc: connect to $4 port $5 (tcp) failed: Connection refused" >&2
exit 1
"""


def tool_dir(tmp_path, tool, open_port):
    """A PATH with only the probe's helpers and one tool (python3 is this interpreter; nc a stub)."""
    bin_dir = tmp_path / f"bin-{tool}"
    bin_dir.mkdir()
    for helper in ("tr", "cut", "timeout", "getent"):
        found = shutil.which(helper)
        if found:
            os.symlink(found, bin_dir / helper)
    if tool == "python3":
        os.symlink(sys.executable, bin_dir / "python3")
    elif tool == "nc":
        (bin_dir / "nc").write_text(NC_STUB)
        (bin_dir / "nc").chmod(0o755)
    elif tool != "none":
        found = shutil.which(tool)
        if not found:
            pytest.skip(f"no {tool} on this machine")
        os.symlink(found, bin_dir / tool)
    return {"PATH": str(bin_dir), "OPEN": str(open_port)}


@pytest.mark.parametrize("tool, expected", [
    ("python3", [("ok", 200), ("ok", 404), ("refused", None), ("ok", None), ("ok", None)]),
    ("bash", [("ok", 200), ("ok", 404), ("refused", None), ("ok", None), ("ok", None)]),
    ("curl", [("ok", 200), ("ok", 404), ("refused", None), ("ok", None), ("ok", None)]),
    ("nc", [("ok", None), ("ok", None), ("refused", None), ("ok", None), ("ok", None)]),
    ("none", [("error", None), ("error", None), ("error", None), ("error", None), ("ok", None)]),
])
def test_the_probe_script_with_each_tool(tmp_path, server, tool, expected):
    port, free = server
    if not os.path.exists("/bin/sh") or not shutil.which("getent"):
        pytest.skip("needs /bin/sh and getent")
    targets = [T("s", "127.0.0.1", port, "/health", "x"), T("s", "127.0.0.1", port, "/nope", "x"),
               T("s", "127.0.0.1", free, "/health", "x"), T("s", "127.0.0.1", port, "", "x"), T("s", "localhost", 0, "", "x")]
    argv = deps.probe_argv("docker", targets, 2, container="c")[3:]   # what docker exec runs: sh -c SCRIPT ...
    proc = subprocess.run(["/bin/sh"] + argv[1:], capture_output=True, text=True, timeout=60,
                          env=tool_dir(tmp_path, tool, port), check=False)
    found_tool, results = deps.parse_probe(proc.stdout, len(targets))
    assert found_tool == tool, proc.stdout + proc.stderr
    assert [(r["tcp"], r["http"]) for r in results] == expected, proc.stdout
