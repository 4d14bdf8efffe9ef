# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import (
    PlanError, bind_changes, bind_sources, changed_since_start, file_changes, merge_paths, started_epoch, parse_pin, plan_quick, render_pin, services_to_start,
)

TARGET = {
    "id": "M1", "release": "v1.1.0",
    "services": {
        "api": {"image": "aiwfe/api:v1.1.0", "image_id": "sha256:api1", "rollback_tag": "aiwfe-rollback/p-api:M1"},
        "worker": {"image": "aiwfe/worker:v1.1.0", "image_id": "sha256:w1", "rollback_tag": "aiwfe-rollback/p-worker:M1"},
        "postgres": {"image": "aiwfe/postgres:15", "image_id": "sha256:pg", "rollback_tag": "aiwfe-rollback/p-postgres:M1"},
    },
}
CONFIGURED = {"api": "sha256:api2", "worker": "sha256:w2", "postgres": "sha256:pg"}


def test_only_changed_services_are_pinned_and_recreated():
    plan = plan_quick(TARGET, CONFIGURED, dict(CONFIGURED), [], {})
    assert plan["pin"] == {"api": "aiwfe-rollback/p-api:M1", "worker": "aiwfe-rollback/p-worker:M1"}
    assert sorted(plan["changes"]) == ["api", "worker"]
    assert plan["unchanged"] == ["postgres"]


def test_second_run_changes_nothing():
    running = {"api": "sha256:api1", "worker": "sha256:w1", "postgres": "sha256:pg"}
    plan = plan_quick(TARGET, CONFIGURED, running, [], {})
    assert plan["changes"] == {}
    assert set(plan["pin"]) == {"api", "worker"}   # the pin stays, so compose keeps the old images


def test_named_services_keep_other_pins():
    plan = plan_quick(TARGET, CONFIGURED, dict(CONFIGURED), ["api"], {"worker": "aiwfe-rollback/p-worker:M0"})
    assert plan["selected"] == ["api"]
    assert plan["pin"] == {"api": "aiwfe-rollback/p-api:M1", "worker": "aiwfe-rollback/p-worker:M0"}


def test_unknown_service_is_refused():
    with pytest.raises(PlanError, match="unknown service.*nope.*api, postgres, worker"):
        plan_quick(TARGET, CONFIGURED, CONFIGURED, ["nope"], {})


def test_release_without_image_is_refused():
    target = {"id": "M", "release": "r", "services": {"api": {"image": "x", "image_id": None}}}
    with pytest.raises(PlanError, match="recorded no image"):
        plan_quick(target, {"api": "sha256:x"}, {}, [], {})


def test_pruned_image_is_refused_without_rebuild():
    with pytest.raises(PlanError, match="lost its image sha256:api1.*nothing was changed.*rollback_full.yml"):
        plan_quick(TARGET, CONFIGURED, CONFIGURED, [], {}, gone={"api"})


def test_pruned_image_is_rebuilt_from_the_release():
    plan = plan_quick(TARGET, CONFIGURED, dict(CONFIGURED), [], {"api": "aiwfe-rollback/p-api:M0"}, gone={"api"},
                      rebuild_missing=True)
    assert plan["rebuild"] == ["api"]
    assert "api" not in plan["pin"]                      # built from the checked-out sources, not pinned
    assert plan["changes"]["api"]["via"] == "build"
    # once checked out and rebuilt, the same plan is a no-op (idempotent)
    rebuilt = dict(CONFIGURED, api="sha256:api-rebuilt")
    plan = plan_quick(TARGET, rebuilt, dict(rebuilt), ["api"], {}, gone={"api"}, rebuild_missing=True, at_target_commit=True)
    assert plan["changes"] == {} and plan["unchanged"] == ["api"] and plan["rebuild"] == ["api"]


def test_pin_file_roundtrip():
    pin = {"api": "aiwfe-rollback/p-api:M1", "perception-service": "aiwfe-rollback/p-perception-service:M1"}
    text = render_pin(pin, "v1.1.0", "M1")
    assert text.startswith("# Written by aiwfe.rollback")
    assert parse_pin(text) == pin
    assert render_pin({}, "v", "M") == ""


def test_file_changes_lists_changed_added_and_removed_files():
    now = {"compose.yaml": "a", ".env": "e2", "docker/new/Dockerfile": "n"}
    release = {"compose.yaml": "a", ".env": "e1", "Caddyfile": "c"}
    assert file_changes(now, release) == {
        ".env": {"from": "e2", "to": "e1"},
        "Caddyfile": {"from": None, "to": "c"},
        "docker/new/Dockerfile": {"from": "n", "to": None},
    }
    assert file_changes(release, dict(release)) == {}


RUNNING_OK = {name: {"state": "running", "config_hash": f"h-{name}"} for name in ("api", "worker", "postgres", "caddy")}
HASHES = {name: f"h-{name}" for name in RUNNING_OK}
CONFIG = {"services": {"api": {}, "worker": {"depends_on": {"api": {}}}, "postgres": {}, "caddy": {"depends_on": {"api": {}}}}}


def _plan(changes, selected=("api", "worker", "postgres", "caddy")):
    return {"selected": list(selected), "changes": {name: {} for name in changes}, "rebuild": []}


def test_start_names_only_what_changes_not_its_dependents():
    # compose alone would also recreate caddy and worker, which depend on the recreated api
    assert services_to_start(_plan(["api"]), RUNNING_OK, HASHES, CONFIG) == ["api"]


def test_start_adds_stopped_and_drifted_services():
    running = dict(RUNNING_OK, worker={"state": "exited", "config_hash": "h-worker"},
                   caddy={"state": "running", "config_hash": "old"})
    assert services_to_start(_plan([]), running, HASHES, CONFIG) == ["caddy", "worker"]
    assert services_to_start(_plan([]), {k: v for k, v in RUNNING_OK.items() if k != "postgres"}, HASHES, CONFIG) == ["postgres"]


def test_start_is_empty_when_everything_is_in_place():
    assert services_to_start(_plan([]), RUNNING_OK, HASHES, CONFIG) == []


def test_start_only_looks_at_selected_services():
    running = dict(RUNNING_OK, caddy={"state": "exited", "config_hash": "h-caddy"})
    assert services_to_start(_plan(["api"], selected=["api"]), running, HASHES, CONFIG) == ["api"]


def test_start_follows_shared_namespaces_and_volumes():
    config = {"services": {"api": {}, "sidecar": {"network_mode": "service:api"}, "tail": {"volumes_from": ["sidecar:ro"]},
                           "other": {"network_mode": "bridge"}}}
    running = {name: {"state": "running", "config_hash": f"h-{name}"} for name in config["services"]}
    hashes = {name: f"h-{name}" for name in config["services"]}
    plan = _plan(["api"], selected=list(config["services"]))
    assert services_to_start(plan, running, hashes, config) == ["api", "sidecar", "tail"]


# --- bind mounts: what a checkout changes under a running service's feet ---------------------------------------------

BIND_CONFIG = {"services": {
    "caddy": {"volumes": [
        {"type": "bind", "source": "/srv/app/docker/caddy/Caddyfile", "target": "/etc/caddy/Caddyfile", "read_only": True},
        {"type": "volume", "source": "caddy_data", "target": "/data"},
    ]},
    "web": {"volumes": [{"type": "bind", "source": "/srv/app/conf", "target": "/conf"},
                        {"type": "bind", "source": "/etc/ssl/certs", "target": "/certs"}]},
    "dev": {"volumes": [{"type": "bind", "source": "/srv/app", "target": "/src"}]},
    "outside": {"volumes": [{"type": "bind", "source": "/srv/app-other/x", "target": "/x"},
                            {"type": "bind", "source": "/srv/app/../elsewhere", "target": "/y"}]},
    "plain": {"image": "x"},
}}
RUNNING = {name: {"state": "running"} for name in ("caddy", "web", "dev", "outside", "plain")}


def test_bind_sources_are_the_binds_inside_the_deploy_directory():
    assert bind_sources(BIND_CONFIG, "/srv/app/") == {
        "caddy": ["docker/caddy/Caddyfile"], "web": ["conf"], "dev": ["."]}


@pytest.mark.parametrize("changed, running, expected", [
    # the file itself, a file under a mounted directory, anything under a whole-directory mount
    (["docker/caddy/Caddyfile"], RUNNING, {"caddy": ["docker/caddy/Caddyfile"], "dev": ["docker/caddy/Caddyfile"]}),
    (["conf/site.conf", "compose.yaml"], RUNNING, {"web": ["conf/site.conf"], "dev": ["compose.yaml", "conf/site.conf"]}),
    # a sibling whose name starts the same is not under the mount
    (["conf2/x", "docker/caddy/Caddyfile.bak"], dict(RUNNING, dev={"state": "exited"}), {}),
    # a restart loop still serves (or fails on) the old file until its next start; a stopped or missing one starts fresh
    (["docker/caddy/Caddyfile"], {"caddy": {"state": "restarting"}, "dev": {"state": "created"}},
     {"caddy": ["docker/caddy/Caddyfile"]}),
    (["docker/caddy/Caddyfile"], {}, {}),
    ([], RUNNING, {}),
])
def test_bind_changes_name_the_running_services_whose_mounted_files_change(changed, running, expected):
    assert bind_changes(bind_sources(BIND_CONFIG, "/srv/app"), changed, running) == expected


@pytest.mark.parametrize("text, expected", [
    ("2026-11-30T08:00:00Z", 1796025600.0),
    ("2026-11-30T08:00:00.5Z", 1796025600.5),
    ("2026-11-30T09:00:00.250000000+01:00", 1796025600.25),
    ("0001-01-01T00:00:00Z", None), ("", None), ("yesterday", None),
])
def test_started_epoch(text, expected):
    assert started_epoch(text) == expected


def test_changed_since_start_names_tracked_mounted_files_newer_than_the_container():
    sources = bind_sources(BIND_CONFIG, "/srv/app")
    running = {"caddy": {"state": "running", "started_at": "2026-11-30T08:00:00Z"},
               "web": {"state": "restarting", "started_at": "2026-11-30T09:00:00Z"},
               "dev": {"state": "exited", "started_at": "2026-11-30T07:00:00Z"}}
    mtimes = {"docker/caddy/Caddyfile": 1796025600.0 + 600, "conf/site.conf": 1796025600.0 + 600, "other": 0.0}
    assert changed_since_start(sources, mtimes, running) == {"caddy": ["docker/caddy/Caddyfile"]}
    assert changed_since_start(sources, mtimes, {"caddy": {"state": "running", "started_at": ""}}) == {}


def test_merge_paths():
    assert merge_paths({"a": ["x"], "b": ["y"]}, {"a": ["x", "w"]}, {}) == {"a": ["w", "x"], "b": ["y"]}
