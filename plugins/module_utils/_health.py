# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health of a compose stack: container states, HTTP health endpoints, and identity checks."""

from __future__ import annotations

import functools
import json
import time
import typing as t

from ansible.module_utils.urls import open_url

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, DockerCliError, concurrently
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service

Fetch = t.Callable[[str, t.Dict[str, t.Any]], t.Tuple[int, str]]


def published_port(publishers: list[dict[str, t.Any]], target_port: int) -> int | None:
    """The host port a container publishes for ``target_port`` (IPv4 loopback or any address)."""
    for pub in publishers:
        if int(pub.get("TargetPort") or 0) == target_port and int(pub.get("PublishedPort") or 0):
            return int(pub["PublishedPort"])
    return None


def parse_body(text: str) -> dict[str, t.Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def evaluate_service(name: str, container: dict[str, t.Any] | None, http: tuple[int, str] | None,
                     expect: dict[str, t.Any]) -> dict[str, t.Any]:
    """One service's verdict. ``http`` is (status, body) of its health endpoint, or None when it has none."""
    result: dict[str, t.Any] = {"service": name, "problems": []}
    if not container:
        result.update(state="absent", ok=False)
        result["problems"].append("no container")
        return result
    result.update(state=container.get("state"), docker_health=container.get("health") or "none",
                  image=container.get("image"), image_id=container.get("image_id"),
                  config_hash=container.get("config_hash"), restart_count=container.get("restart_count", 0))
    if container.get("state") != "running":
        result["problems"].append(f"container is {container.get('state')}")
    if container.get("health") == "unhealthy":
        result["problems"].append("docker healthcheck reports unhealthy")
    if http is not None:
        status, text = http
        body = parse_body(text)
        result.update(http_status=status, body=body)
        if body is not None:
            result["version"] = body.get("version")
        if status != 200:
            reason = (json.dumps(body.get("checks")) if body and body.get("checks") else text[:200]).strip()
            result["problems"].append(f"health endpoint answered {status or 'nothing'}: {reason}")
    want_id = expect.get("image_id")
    if want_id and container.get("image_id") != want_id:
        result["problems"].append(f"runs image {container.get('image_id')}, expected {want_id}")
    want_hash = expect.get("config_hash")
    if want_hash and container.get("config_hash") != want_hash:
        result["problems"].append(f"runs compose config {str(container.get('config_hash'))[:12]}, "
                                  f"expected the release's {want_hash[:12]}")
    want_version = expect.get("version")
    if want_version and http is not None and result.get("version") != want_version:
        result["problems"].append(f"reports version {result.get('version')}, expected {want_version}")
    result["ok"] = not result["problems"]
    return result


def evaluate_url(name: str, http: tuple[int, str], expect_status: int = 200) -> dict[str, t.Any]:
    status, text = http
    body = parse_body(text)
    problems = [] if status == expect_status else [f"answered {status or 'nothing'}: {text[:200].strip()}"]
    return {"service": name, "http_status": status, "body": body, "version": (body or {}).get("version"),
            "problems": problems, "ok": not problems}


def alembic_revision(results: dict[str, dict[str, t.Any]]) -> str | None:
    """The Alembic revision the health endpoints report (first service, by name, that reports one)."""
    for name in sorted(results):
        body = results[name].get("body") or {}
        if body.get("alembic_revision"):
            return str(body["alembic_revision"])
    return None


def failing(results: dict[str, dict[str, t.Any]]) -> list[str]:
    return sorted(name for name, res in results.items() if not res.get("ok"))


def describe_failures(results: dict[str, dict[str, t.Any]]) -> str:
    return "; ".join(f"{name}: {', '.join(results[name]['problems'])}" for name in failing(results))


def report_line(res: dict[str, t.Any]) -> str:
    """One human line per service or URL, as the runbook's monitoring loop would print it."""
    status = "OK  " if res.get("ok") else "FAIL"
    parts = [f"{status} {res.get('service', ''):<22}"]
    if "state" in res:
        parts.append(f"{res.get('state') or '-':<10} health={res.get('docker_health') or '-':<9}")
    if res.get("http_status") is not None:
        parts.append(f"http={res.get('http_status')}")
    if res.get("version"):
        parts.append(f"version={res['version']}")
    if res.get("image"):
        parts.append(f"image={res['image']}")
    if res.get("problems"):
        parts.append("problems: " + "; ".join(res["problems"]))
    return " ".join(parts)


# --- the module's run (aiwfe.rollback.stack_health) -------------------------------------------------------------------

def fetch(url: str, timeout: float, validate_certs: bool = True, ca_path: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET; status 0 and the error text when nothing answered."""
    try:
        resp = open_url(url, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path, follow_redirects="none")
        return resp.getcode(), resp.read().decode("utf-8", "replace")
    except Exception as exc:  # pylint: disable=broad-exception-caught
        code = getattr(exc, "code", 0) or 0
        body = ""
        if hasattr(exc, "read"):
            try:
                body = exc.read().decode("utf-8", "replace")
            except Exception:  # pylint: disable=broad-exception-caught
                body = ""
        return int(code), body or str(exc)


def probe(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any]) -> tuple[dict, dict]:
    """One look at every service (container, its /health on the published port) and every extra URL; the HTTP
    requests all at the same time, so one slow endpoint costs its own timeout once, not once per service."""
    containers = containers_by_service(cli, project)
    names = params["services"] or sorted(containers)
    calls: dict[str, t.Callable[[], t.Any]] = {}
    for name in names:
        container = containers.get(name)
        port = published_port(container["publishers"], params["port"]) if container else None
        if port:
            calls["service:" + name] = functools.partial(fetch, f"http://127.0.0.1:{port}{params['path']}", params["request_timeout"])
    for spec in params["urls"]:
        calls["url:" + spec["name"]] = functools.partial(fetch, spec["url"], params["request_timeout"], spec["validate_certs"],
                                                         spec["ca_path"])
    answers = concurrently(calls)
    services = {name: evaluate_service(name, containers.get(name), answers.get("service:" + name),
                                       params["expect"].get(name) or {}) for name in names}
    urls = {spec["name"]: evaluate_url(spec["name"], answers["url:" + spec["name"]], spec["status"]) for spec in params["urls"]}
    return services, urls


class Progress:
    """When each check first passed, as the wait goes on: lines for the result, appended to a file as they happen
    (``tail -f`` it from another terminal - Ansible shows a task's output only when it ends)."""

    def __init__(self, path: str | None, start: float) -> None:
        self.path, self.start = path, start
        self.green_after: dict[str, float] = {}
        self.lines: list[str] = []

    def _write(self, line: str) -> None:
        self.lines.append(line)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + line + "\n")

    def begin(self, label: str, checks: int) -> None:
        self._write(f"{label}: waiting for {checks} check(s)")

    def update(self, results: dict[str, dict[str, t.Any]], now: float) -> None:
        elapsed = round(now - self.start, 2)
        for name in sorted(results):
            if results[name].get("ok") and name not in self.green_after:
                self.green_after[name] = elapsed
                self._write(f"{elapsed:.1f}s {name} green ({len(self.green_after)}/{len(results)})")

    def end(self, bad: list[str], elapsed: float) -> None:
        self._write(f"{elapsed:.1f}s all green" if not bad else f"{elapsed:.1f}s gave up, failing: {', '.join(bad)}")


def run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Probe until healthy or ``timeout`` seconds passed; the module's result, or JobFailed (with it) when unhealthy
    and ``fail_on_unhealthy``."""
    if params["timeout"] < 0 or params["interval"] <= 0:
        raise JobFailed("timeout must be >= 0 and interval > 0")
    start = time.monotonic()
    progress = Progress(params.get("progress_file"), start)
    try:
        cli.engine_ok()
        while True:
            services, urls = probe(cli, project, params)
            bad = failing(services) + failing(urls)
            elapsed = round(time.monotonic() - start, 2)
            if not progress.lines:
                progress.begin(params.get("progress_label") or project.name, len(services) + len(urls))
            progress.update(dict(services, **urls), start + elapsed)
            if not bad or elapsed >= params["timeout"]:
                break
            time.sleep(params["interval"])
    except DockerCliError as exc:
        raise JobFailed.from_cli(exc) from exc
    except OSError as exc:
        raise JobFailed(f"cannot write the progress file {params.get('progress_file')}: {exc}") from exc
    progress.end(bad, elapsed)
    unknown = [s for s in params["services"] if services[s].get("state") == "absent"]
    result = {"changed": False, "healthy": not bad, "failing": bad, "services": services, "urls": urls,
              "elapsed": elapsed, "report": [report_line(r) for r in list(services.values()) + list(urls.values())],
              "alembic_revision": alembic_revision(services), "project_name": project.name,
              "green_after": progress.green_after, "progress": progress.lines,
              "compose_files": project.file_paths()}
    if unknown and params["fail_on_unhealthy"]:
        raise JobFailed(f"no container for service(s) {', '.join(unknown)} in project {project.name}", result)
    if bad and params["fail_on_unhealthy"]:
        raise JobFailed(f"unhealthy after {elapsed}s: {describe_failures(dict(services, **urls))}", result)
    return result
