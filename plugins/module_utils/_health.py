# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health of a compose stack: container states, HTTP health endpoints, and identity checks."""

from __future__ import annotations

import json
import typing as t

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
