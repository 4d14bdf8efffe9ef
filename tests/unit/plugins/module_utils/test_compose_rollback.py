# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine's rollback step (module_utils/_compose_rollback): when services may start together, what must hold
afterwards, and run() against a fake docker CLI - the exact argv that starts the services, and that check mode and
state=planned write and start nothing."""

from __future__ import annotations

import copy
import json
import os
import stat

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _compose_rollback as cr
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import load_manifests
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import parse_pin, render_pin

PROJECT = "p"
# The stack: postgres <- api <- worker, and caddy in front of api (caddy and postgres keep their images).
CONFIG = {"services": {
    "postgres": {"image": "aiwfe/postgres:15", "restart": "unless-stopped"},
    "api": {"image": "aiwfe/api:v2", "restart": "unless-stopped", "depends_on": {"postgres": {"condition": "service_healthy"}}},
    "worker": {"image": "aiwfe/worker:v2", "restart": "unless-stopped",
               "depends_on": {"postgres": {"condition": "service_healthy"}, "api": {"condition": "service_healthy"}}},
    "caddy": {"image": "aiwfe/caddy:2.6", "restart": "unless-stopped", "depends_on": {"api": {"condition": "service_healthy"}}},
}}
GOOD_IDS = {"postgres": "sha256:pg", "api": "sha256:api1", "worker": "sha256:worker1", "caddy": "sha256:caddy"}
BAD_IDS = dict(GOOD_IDS, api="sha256:api2", worker="sha256:worker2")


def rollback_tag(service: str) -> str:
    return f"aiwfe-rollback/{PROJECT}-{service}:m1"


def manifest(manifest_id: str, release: str, status: str, ids: dict[str, str], day: int) -> dict:
    return {
        "ledger_version": 1, "project": PROJECT, "id": manifest_id, "release": release, "kind": "deploy",
        "status": status, "created": f"2026-01-0{day}T00:00:00Z", "git": None, "files": {},
        "services": {name: {"image": CONFIG["services"][name]["image"].replace("v2", release), "image_id": image_id,
                            "repo_digests": [], "config_hash": f"h-{name}", "running": True,
                            "rollback_tag": rollback_tag(name)}
                     for name, image_id in ids.items()},
    }


class FakeEngine:
    """The docker CLI for one compose project: its config, images and containers; every argv is recorded.

    `docker compose config --hash` gives each service the hash h-<service>, plus -pin when the pin file compose
    reads names it; `compose create` replaces the named services' containers (state created, the pinned image);
    `docker start` runs a container. Git answers that the directory is no work tree."""

    def __init__(self, running_ids: dict[str, str], states: dict[str, str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.images = {ref: {"Id": image_id} for ref, image_id in (
            [(svc["image"], BAD_IDS[name]) for name, svc in CONFIG["services"].items()]
            + [(image_id, image_id) for image_id in set(GOOD_IDS.values()) | set(BAD_IDS.values())]
            + [(rollback_tag(name), image_id) for name, image_id in GOOD_IDS.items()])}
        self.containers = {name: self.container(f"{name}-1", name, image_id, (states or {}).get(name, "running"), f"h-{name}")
                           for name, image_id in running_ids.items()}

    @staticmethod
    def container(cid: str, service: str, image_id: str, status: str, config_hash: str) -> dict:
        return {"Id": cid, "Name": f"/{PROJECT}-{service}-1", "Image": image_id, "RestartCount": 0,
                "State": {"Status": status, "Health": {"Status": "healthy" if status == "running" else "starting"}},
                "Config": {"Image": CONFIG["services"][service]["image"],
                           "Labels": {"com.docker.compose.project": PROJECT, "com.docker.compose.service": service,
                                      "com.docker.compose.config-hash": config_hash, "com.docker.compose.oneoff": "False"}},
                "NetworkSettings": {"Ports": {}}}

    @staticmethod
    def pin_of(argv: list[str]) -> dict[str, str]:
        files = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--file"]
        pins = [f for f in files if os.path.basename(f) != "compose.yaml"]
        pin: dict[str, str] = {}
        for path in pins:
            with open(path, encoding="utf-8") as handle:
                pin.update(parse_pin(handle.read()))
        return pin

    def hashes(self, argv: list[str]) -> dict[str, str]:
        pin = self.pin_of(argv)
        return {name: f"h-{name}" + ("-pin" if name in pin else "") for name in CONFIG["services"]}

    def __call__(self, argv: list[str], **_kwargs) -> tuple[int, str, str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "git":
            return 128, "", "fatal: not a git repository"
        if argv[1] == "compose":
            return self.compose(argv)
        if argv[1] == "ps":
            return 0, "".join(c["Id"] + "\n" for c in self.containers.values()), ""
        if argv[2:4] == ["inspect", "--"]:
            pool = self.images if argv[1] == "image" else {c["Id"]: c for c in self.containers.values()}
            found = [pool[ref] for ref in argv[4:] if ref in pool]
            return (0 if len(found) == len(argv) - 4 else 1), json.dumps(found), ""
        if argv[1:3] == ["image", "tag"]:
            self.images[argv[4]] = self.images[argv[3]]
            return 0, "", ""
        if argv[1:3] == ["start", "--"]:
            for container in self.containers.values():
                if container["Id"] == argv[3]:
                    container["State"] = {"Status": "running", "Health": {"Status": "starting"}}
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def compose(self, argv: list[str]) -> tuple[int, str, str]:
        files_end = max(i for i, arg in enumerate(argv) if arg == "--file") + 2
        sub = argv[files_end:]
        if sub == ["config", "--format", "json"]:
            return 0, json.dumps(CONFIG), ""
        if sub == ["config", "--hash", "*"]:
            return 0, "".join(f"{n} {h}\n" for n, h in self.hashes(argv).items()), ""
        if sub[0] == "ps":
            return 0, "".join(json.dumps({"ID": c["Id"], "Service": n, "Name": c["Name"][1:], "State": c["State"]["Status"],
                                          "Health": c["State"]["Health"]["Status"], "Image": c["Config"]["Image"],
                                          "Publishers": []}) + "\n"
                              for n, c in self.containers.items()), ""
        if sub[0] == "create":
            pin, hashes = self.pin_of(argv), self.hashes(argv)
            for name in sub[sub.index("--") + 1:]:
                image_id = self.images[pin[name]]["Id"] if name in pin else BAD_IDS[name]
                self.containers[name] = self.container(f"{name}-2", name, image_id, "created", hashes[name])
            return 0, "", ""
        if sub[0] == "up":
            return 0, "", ""
        raise AssertionError(f"unexpected compose command {sub}")

    def changing(self) -> list[list[str]]:
        """The calls that change something: compose up/create, docker start, docker image tag."""
        found = []
        for argv in self.calls:
            words = set(argv)
            if argv[:2] == ["docker", "compose"] and words & {"up", "create", "start", "stop", "rm", "down"}:
                found.append(argv)
            elif argv[:2] == ["docker", "start"] or argv[1:3] == ["image", "tag"]:
                found.append(argv)
        return found


@pytest.fixture
def stack(tmp_path):
    """A deploy directory with a compose file, a ledger holding the good release (m1) and the failed one (m2)."""
    directory = tmp_path / "deploy"
    directory.mkdir()
    (directory / "compose.yaml").write_text("services: {}\n")
    ledger = tmp_path / "ledger"
    releases = ledger / PROJECT / "releases"
    releases.mkdir(parents=True)
    for m in (manifest("m1", "v1", "good", GOOD_IDS, 1), manifest("m2", "v2", "failed", BAD_IDS, 2)):
        (releases / f"{m['id']}.json").write_text(json.dumps(m))
    return {"project": ComposeProject(PROJECT, str(directory)), "ledger": str(ledger),
            "pin": str(ledger / PROJECT / "pin.compose.yaml")}


def run(stack, engine, **request):
    return cr.run(DockerCli(engine), stack["project"], stack["ledger"], stack["pin"], cr.Request(**request))


# --- run(): how the services start ---------------------------------------------------------------------------------

def test_started_together_is_compose_create_then_one_docker_start_each(stack):
    engine = FakeEngine(BAD_IDS, {"worker": "restarting"})
    result = run(stack, engine, record_failed="quick rollback")
    pinned = stack["project"].with_pin(stack["pin"]).base_argv("docker")
    assert result["start_mode"] == "together"
    assert result["started"] == ["api", "worker"]
    assert engine.changing()[0] == pinned + ["create", "--pull", "never", "--no-build", "--", "api", "worker"]
    assert sorted(engine.changing()[1:]) == [["docker", "start", "--", "api-2"], ["docker", "start", "--", "worker-2"]]
    assert parse_pin(open(stack["pin"], encoding="utf-8").read()) == {"api": rollback_tag("api"), "worker": rollback_tag("worker")}
    assert stat.S_IMODE(os.stat(stack["pin"]).st_mode) == 0o600  # like every file the collection writes (issue 12, 11)
    assert result["changed"]


def test_without_start_together_compose_up_starts_them(stack):
    engine = FakeEngine(BAD_IDS)
    result = run(stack, engine, start_together=False)
    pinned = stack["project"].with_pin(stack["pin"]).base_argv("docker")
    assert result["start_mode"] == "compose"
    assert result["start_mode_reason"] == "not asked"
    assert engine.changing() == [pinned + ["up", "--detach", "--pull", "never", "--no-build", "--", "api", "worker"]]


def test_one_service_is_started_by_compose_up_never_with_no_deps(stack):
    engine = FakeEngine(BAD_IDS)
    result = run(stack, engine, services=["worker"])
    assert result["start_mode"] == "compose"
    assert result["start_mode_reason"] == "one service to start"
    pinned = stack["project"].with_pin(stack["pin"]).base_argv("docker")
    assert engine.changing() == [pinned + ["up", "--detach", "--pull", "never", "--no-build", "--", "worker"]]


def test_a_lost_rollback_tag_is_tagged_again_before_the_start(stack):
    engine = FakeEngine(BAD_IDS)
    del engine.images[rollback_tag("api")]
    result = run(stack, engine)
    assert result["retagged"] == [rollback_tag("api")]
    assert engine.changing()[0] == ["docker", "image", "tag", "sha256:api1", rollback_tag("api")]


def test_a_second_run_changes_nothing(stack):
    engine = FakeEngine(BAD_IDS)
    run(stack, engine, record_failed="quick rollback")
    pin_text = open(stack["pin"], encoding="utf-8").read()
    engine.calls.clear()
    again = run(stack, engine, record_failed="quick rollback")
    assert not again["changed"]
    assert again["plan"]["changes"] == {} and again["plan"]["start"] == []
    assert again["started"] == [] and again["start_mode"] == "none"
    assert again["failed_state"] is None
    assert engine.changing() == []
    assert open(stack["pin"], encoding="utf-8").read() == pin_text


def test_the_failed_state_records_the_pinned_images_a_service_runs(stack):
    # worker was rolled back alone before: the pin names it and its container runs the good image under the pin
    with open(stack["pin"], "w", encoding="utf-8") as handle:
        handle.write(render_pin({"worker": rollback_tag("worker")}, "v1", "m1"))
    engine = FakeEngine(dict(BAD_IDS, worker=GOOD_IDS["worker"]))
    engine.containers["worker"] = engine.container("worker-2", "worker", GOOD_IDS["worker"], "running", "h-worker-pin")
    result = run(stack, engine, record_failed="quick rollback")
    assert list(result["plan"]["changes"]) == ["api"]
    failed = [m for m in load_manifests(stack["ledger"], PROJECT) if m["id"] == result["failed_state"]["id"]][0]
    assert failed["services"]["worker"]["image"] == rollback_tag("worker")
    assert failed["services"]["worker"]["image_id"] == GOOD_IDS["worker"]
    assert failed["services"]["worker"]["running"]
    assert failed["services"]["api"]["image"] == "aiwfe/api:v2" and failed["services"]["api"]["image_id"] == BAD_IDS["api"]


# --- run(): check mode and state=planned write and start nothing -----------------------------------------------------

@pytest.mark.parametrize("request_args", [
    {"check_mode": True, "record_failed": "quick rollback"},
    {"check_mode": True, "state": "pinned"},
    {"state": "planned"},
], ids=["check mode", "check mode, pinned", "planned"])
def test_plan_only_writes_and_starts_nothing(stack, request_args):
    engine = FakeEngine(BAD_IDS)
    del engine.images[rollback_tag("api")]
    result = run(stack, engine, **request_args)
    assert engine.changing() == []
    assert not os.path.exists(stack["pin"])
    assert [m["id"] for m in load_manifests(stack["ledger"], PROJECT)] == ["m1", "m2"]
    assert result["started"] == []
    assert result["plan"]["start"] == ["api", "worker"]
    assert result["retagged"] == [rollback_tag("api")]
    assert "services:" in result["diff"]["after"] and result["diff"]["before"] == ""
    # check mode reports what would change; planning alone changes nothing
    assert result["changed"] == request_args.get("check_mode", False)


def test_check_mode_reports_the_failed_state_without_writing_it(stack):
    engine = FakeEngine(BAD_IDS)
    result = run(stack, engine, check_mode=True, record_failed="quick rollback")
    assert result["failed_state"]["status"] == "failed" and result["failed_state"]["kind"] == "snapshot"
    assert [m["id"] for m in load_manifests(stack["ledger"], PROJECT)] == ["m1", "m2"]


def test_planned_records_the_failed_state_when_asked_and_nothing_else(stack):
    engine = FakeEngine(BAD_IDS)
    result = run(stack, engine, state="planned", record_failed="configuration rollback")
    assert engine.changing() == []
    assert not os.path.exists(stack["pin"])
    ids = [m["id"] for m in load_manifests(stack["ledger"], PROJECT)]
    assert ids[:2] == ["m1", "m2"] and ids[2:] == [result["failed_state"]["id"]]
    assert result["changed"]


# --- together_refusal ------------------------------------------------------------------------------------------------

def _together_case(start=("api", "worker"), rebuild=(), status="good", recorded_running=True, restart="unless-stopped",
                   postgres=("running", "healthy"), depends=True):
    config = copy.deepcopy(CONFIG)
    for name in start:
        config["services"][name]["restart"] = restart
    if not depends:
        config["services"]["worker"]["depends_on"] = {"postgres": {"condition": "service_healthy"}}
    target = manifest("m1", "v1", status, GOOD_IDS, 1)
    for name in start:
        target["services"][name]["running"] = recorded_running
    running = {"postgres": {"state": postgres[0], "health": postgres[1]}}
    return {"start": list(start), "rebuild": list(rebuild)}, target, config, running


@pytest.mark.parametrize("case, reason", [
    ({}, None),
    ({"start": ("api",)}, "one service to start"),
    ({"start": ()}, "nothing to start"),  # said "one service to start" when nothing started
    ({"rebuild": ("api",)}, "images to build"),
    ({"status": "failed"}, "the target is not a good release"),
    ({"recorded_running": False}, "api did not run in the recorded release"),
    ({"restart": "no"}, "api has no restart policy"),
    ({"restart": None}, "api has no restart policy"),
    ({"restart": "on-failure:3"}, None),
    ({"postgres": ("running", "starting")}, "api depends on postgres, which is not running healthy"),
    ({"postgres": ("exited", "")}, "api depends on postgres, which is not running healthy"),
    ({"postgres": ("running", "")}, None),   # no healthcheck: running is enough
    ({"depends": False}, "no dependency among them"),
])
def test_together_refusal(case, reason):
    assert cr.together_refusal(*_together_case(**case)) == reason


# --- expectations ----------------------------------------------------------------------------------------------------

def _plan(**overrides):
    base = {"selected": ["api", "worker", "postgres"], "rebuild": [], "pin": {}, "files": {}, "at_target_commit": True}
    base.update(overrides)
    return base


@pytest.mark.parametrize("plan, kind, expected", [
    # the deploy directory holds the release's own files: image IDs and the release's config hashes
    (_plan(), "deploy", {n: {"image_id": GOOD_IDS[n], "config_hash": f"h-{n}"} for n in ("api", "worker", "postgres")}),
    # pinned services run under the pin, so their config hash is not the release's
    (_plan(pin={"api": "tag"}), "deploy",
     {"api": {"image_id": GOOD_IDS["api"]}, "worker": {"image_id": GOOD_IDS["worker"], "config_hash": "h-worker"},
      "postgres": {"image_id": GOOD_IDS["postgres"], "config_hash": "h-postgres"}}),
    # a rebuilt service cannot be held to the recorded image ID
    (_plan(rebuild=["api"]), "deploy",
     {"api": {"config_hash": "h-api"}, "worker": {"image_id": GOOD_IDS["worker"], "config_hash": "h-worker"},
      "postgres": {"image_id": GOOD_IDS["postgres"], "config_hash": "h-postgres"}}),
    # another commit, files that differ, or a target that is not a deploy: image IDs only
    (_plan(at_target_commit=False), "deploy", {n: {"image_id": GOOD_IDS[n]} for n in ("api", "worker", "postgres")}),
    (_plan(files={".env": {"from": "a", "to": "b"}}), "deploy", {n: {"image_id": GOOD_IDS[n]} for n in ("api", "worker", "postgres")}),
    (_plan(), "rollback", {n: {"image_id": GOOD_IDS[n]} for n in ("api", "worker", "postgres")}),
    # only the selected services
    (_plan(selected=["worker"]), "deploy", {"worker": {"image_id": GOOD_IDS["worker"], "config_hash": "h-worker"}}),
])
def test_expectations(plan, kind, expected):
    target = dict(manifest("m1", "v1", "good", GOOD_IDS, 1), kind=kind)
    assert cr.expectations(target, plan) == expected


# --- settle(): the quiet wait after the start ------------------------------------------------------------------------

class Booting(FakeEngine):
    """The started containers turn healthy after ``polls`` looks at the engine (or crash-loop with ``loop``)."""

    def __init__(self, polls: int, loop: bool = False) -> None:
        super().__init__(GOOD_IDS)
        self.polls, self.loop, self.looks = polls, loop, 0

    def __call__(self, argv: list[str], **kwargs) -> tuple[int, str, str]:
        if argv[1] == "ps":
            self.looks += 1
            for container in self.containers.values():
                if self.loop:
                    container["RestartCount"] += 1
                    container["State"] = {"Status": "restarting", "Health": {"Status": "starting"}}
                elif self.looks > self.polls:
                    container["State"] = {"Status": "running", "Health": {"Status": "healthy"}}
                else:
                    container["State"] = {"Status": "running", "Health": {"Status": "starting"}}
        return super().__call__(argv, **kwargs)


def test_settle_waits_until_the_started_services_are_healthy(stack):
    engine = Booting(polls=3)
    assert cr.settle(DockerCli(engine), stack["project"], ["api", "worker"], 5, poll=0.01) == "settled"
    assert engine.looks == 4
    assert engine.changing() == []  # it only looks


def test_settle_gives_up_on_a_crash_loop_instead_of_waiting_it_out(stack):
    engine = Booting(polls=0, loop=True)
    said = cr.settle(DockerCli(engine), stack["project"], ["api"], 30, poll=0.01)
    assert said.startswith("gave up: api") and engine.looks == 4


def test_settle_stops_at_its_timeout_and_says_what_it_waited_for(stack):
    engine = Booting(polls=10 ** 6)
    assert cr.settle(DockerCli(engine), stack["project"], ["api", "worker"], 0.05, poll=0.01) == \
        "timed out waiting for api, worker"


def test_run_settles_only_what_it_started(stack):
    engine = FakeEngine(BAD_IDS, {"worker": "restarting"})
    result = run(stack, engine, record_failed="quick rollback", settle=1)
    # compose create left the containers 'created'; the fake docker start makes them run, still 'starting'
    assert result["started"] and result["settled"].startswith("timed out waiting for")
    assert "settle" in result["seconds"]
    quiet = run(stack, FakeEngine(BAD_IDS), state="planned", settle=30)
    assert quiet["settled"] == "nothing started" and "settle" not in quiet["seconds"]


# --- bind mounts: a checkout that changes a mounted file restarts the service (the engine role acts on the plan) ----

class InGit(FakeEngine):
    """The deploy directory is a git work tree at commit c2; `git diff` against the target's commit c1 names
    ``changed``; caddy bind-mounts its Caddyfile from the deploy directory."""

    def __init__(self, directory: str, changed: list[str], states: dict[str, str] | None = None) -> None:
        super().__init__(GOOD_IDS, states)
        self.directory, self.changed, self.tracked = directory, changed, []

    def __call__(self, argv: list[str], **kwargs) -> tuple[int, str, str]:
        if argv[0] == "git":
            self.calls.append(list(argv))
            args = argv[argv.index("-C") + 2:]
            if args[:2] == ["rev-parse", "--is-inside-work-tree"]:
                return 0, "true\n", ""
            if args[:2] == ["rev-parse", "HEAD"]:
                return 0, "c2\n", ""
            if args[0] == "diff":
                return 0, "".join(f"{name}\0" for name in self.changed), ""
            if args[0] == "ls-files":
                return 0, "".join(f"{name}\0" for name in self.tracked), ""
            return (0, "", "") if args[0] == "status" else (128, "", "no tag")
        return super().__call__(argv, **kwargs)

    def compose(self, argv: list[str]) -> tuple[int, str, str]:
        if argv[-3:] == ["config", "--format", "json"]:
            config = copy.deepcopy(CONFIG)
            config["services"]["caddy"]["volumes"] = [
                {"type": "bind", "source": os.path.join(self.directory, "docker/caddy/Caddyfile"), "target": "/etc/caddy/Caddyfile"},
                {"type": "volume", "source": "caddy_data", "target": "/data"}]
            return 0, json.dumps(config), ""
        return super().compose(argv)


@pytest.fixture
def git_stack(stack):
    """The stack's good release m1 recorded commit c1."""
    path = os.path.join(stack["ledger"], PROJECT, "releases", "m1.json")
    with open(path, encoding="utf-8") as handle:
        good = json.load(handle)
    good["git"] = {"commit": "c1", "tag": "v1", "dirty": False}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(good, handle)
    return stack


@pytest.mark.parametrize("changed, states, expected", [
    (["docker/caddy/Caddyfile"], None, {"caddy": ["docker/caddy/Caddyfile"]}),
    (["docker/caddy/Caddyfile"], {"caddy": "restarting"}, {"caddy": ["docker/caddy/Caddyfile"]}),  # the restart loop
    (["docker/caddy/Caddyfile"], {"caddy": "exited"}, {}),   # starts with the new file
    ([".env"], None, {}),                                    # not mounted
], ids=["running", "restart loop", "stopped", "other file"])
def test_the_plan_names_services_whose_bind_mounted_files_the_checkout_changes(git_stack, changed, states, expected):
    engine = InGit(git_stack["project"].directory, changed, states)
    result = run(git_stack, engine, release="v1", state="planned")
    assert result["plan"]["bind_changes"] == expected
    diff = [argv for argv in engine.calls if argv[0] == "git" and "diff" in argv]
    assert diff == [["git", "--no-optional-locks", "-C", git_stack["project"].directory, "diff", "--relative",
                     "--name-only", "-z", "c1", "--", ":(literal)docker/caddy/Caddyfile"]]
    assert engine.changing() == []  # the plan restarts nothing itself: the engine role does, after its checkout


@pytest.mark.parametrize("started, expected", [
    ("2026-11-30T08:00:00.123456789Z", {"caddy": ["docker/caddy/Caddyfile"]}),   # edited after the start: stale
    ("2999-01-01T00:00:00Z", {}),                                                 # started after the edit
    ("0001-01-01T00:00:00Z", {}),                                                 # never started
], ids=["stale", "fresh", "never started"])
def test_the_plan_names_services_serving_a_mounted_file_older_than_the_checkout(git_stack, started, expected):
    """A checkout interrupted before the restart: the work tree is at the release's commit already (no diff), but the
    proxy still serves the file it read when it started."""
    directory = git_stack["project"].directory
    os.makedirs(os.path.join(directory, "docker/caddy"), exist_ok=True)
    with open(os.path.join(directory, "docker/caddy/Caddyfile"), "w", encoding="utf-8") as handle:
        handle.write(":443\n")
    os.utime(os.path.join(directory, "docker/caddy/Caddyfile"), (1796026800, 1796026800))   # 2026-11-30T08:20:00Z
    engine = InGit(directory, [])
    engine.tracked = ["docker/caddy/Caddyfile"]
    engine.containers["caddy"]["State"]["StartedAt"] = started
    result = run(git_stack, engine, release="v1", state="planned")
    assert result["plan"]["bind_changes"] == expected
    assert engine.changing() == []


def test_no_git_work_tree_means_no_bind_changes_and_no_git_diff(stack):
    engine = FakeEngine(GOOD_IDS)
    result = run(stack, engine, release="v1", state="planned")
    assert result["plan"]["bind_changes"] == {}
    assert not [argv for argv in engine.calls if argv[0] == "git" and "diff" in argv]


@pytest.mark.parametrize("answer, commit, paths, expected", [
    ((0, "a/Caddyfile\0conf/x.conf\0", ""), "c1", ["a/Caddyfile", "conf"], ["a/Caddyfile", "conf/x.conf"]),
    ((128, "", "fatal: bad revision 'c1'"), "c1", ["a"], []),   # a commit the repository does not have
    ((0, "x\0", ""), None, ["a"], []),                           # no commit recorded: git is not asked
    ((0, "x\0", ""), "c1", [], []),                              # nothing bind-mounted: git is not asked
])
def test_changed_under(answer, commit, paths, expected):
    calls = []

    def fake(argv, **_kwargs):
        calls.append(argv)
        return answer

    assert cr.changed_under(DockerCli(fake), "/d", commit, paths) == expected
    assert len(calls) == (1 if commit and paths else 0)
