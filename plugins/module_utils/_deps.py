# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Service dependency failures (runbook section B): what a compose service depends on, whether it reaches each
dependency from inside its own container, its recent logs, and which files are its own (to bring back from a release).

Pure parts (unit-tested on recorded compose config, Dockerfiles and probe output): the dependency graph (compose
depends_on, followed transitively, and the addresses other services' names appear under in the environment - URLs such
as MEMORY_SERVICE_URL=http://memory-service:8000 and NAME_HOST/NAME_PORT pairs), the probe targets, the probe's output,
the log lines, the service's own files (its Dockerfile and the COPY/ADD sources that name it) and the comparison of
its compose entry with a release's. The run (module aiwfe.rollback.service_dependencies) reads the compose config and
the containers, checks every option, then probes and reads the logs. It never changes anything.

The probe is one short script run by `docker exec` in the service's container (or, when asked, in a throwaway
container of its image on the project's network): python3 when the image has it (name resolution, TCP connect and an
HTTP GET, each told apart); else bash's /dev/tcp (under `timeout`), else curl, else nc - whichever the image has.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._common import pin_path
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import (
    ComposeProject, DockerCli, DockerCliError, concurrently)
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed, run_watched
from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback import parse_pin
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service, hash_files

PROBE_FROM = ("container", "image", "auto")
MARK = "AIWFE-PROBE"
TOOL_MARK = "AIWFE-PROBE-TOOL"
# the docker client of a probe is stopped this many seconds after the probe's own time is up
GRACE = 15
SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432,
                "redis": 6379, "amqp": 5672, "mysql": 3306, "mongodb": 27017, "nats": 4222}
# connection trouble in a log line
_LOG_HINT = re.compile(r"refused|timed? ?out|timeout|name or service not known|temporary failure in name resolution|"
                       r"could not resolve|no route to host|unreachable|connection reset|getaddrinfo|econnrefused|"
                       r"etimedout|enotfound|eai_again|max retries exceeded|failed to connect", re.IGNORECASE)


# --- the probe scripts ------------------------------------------------------------------------------------------------
# Both print one line per target: "AIWFE-PROBE <index> <tcp> <http> <detail>", tcp one of ok, refused, timeout, dns,
# unreachable, error (ok: connected, or, for port 0, the name resolves), http the status of the GET, - when none was
# asked, 0 when it got no HTTP answer. Targets come as arguments: timeout, then host port path per target (path ''
# for TCP only, port 0 for the name only). Python 3.5 and POSIX sh: whatever the image has.

PYTHON_PROBE = r"""
import errno, socket, sys
def out(i, tcp, http, msg):
    sys.stdout.write("AIWFE-PROBE %d %s %s %s\n" % (i, tcp, http, " ".join(str(msg).split())[:2000]))
    sys.stdout.flush()
def kind(exc):
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if getattr(exc, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "error"
def one(i, host, port, path, limit):
    try:
        infos = socket.getaddrinfo(host, port or None, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return out(i, "dns", "-", exc)
    except Exception as exc:
        return out(i, "error", "-", exc)
    if not port:
        return out(i, "ok", "-", "resolves to %s" % infos[0][4][0])
    failure, where = None, infos[0][4][0]
    for family, kind_, proto, _name, address in infos:
        sock = socket.socket(family, kind_, proto)
        sock.settimeout(limit)
        try:
            sock.connect(address)
            failure, where = None, address[0]
            break
        except Exception as exc:
            failure = exc
        finally:
            sock.close()
    if failure is not None:
        return out(i, kind(failure), "-", "%s port %d: %s" % (where, port, failure))
    if not path:
        return out(i, "ok", "-", "connected to %s port %d" % (where, port))
    try:
        import http.client
        conn = http.client.HTTPConnection(host, port, timeout=limit)
        conn.request("GET", path, headers={"User-Agent": "aiwfe-rollback-probe", "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(2000).decode("utf-8", "replace")
        conn.close()
        return out(i, "ok", resp.status, body)
    except Exception as exc:
        return out(i, "ok", 0, "connected, but GET %s got no HTTP answer (%s): %s" % (path, kind(exc), exc))
sys.stdout.write("AIWFE-PROBE-TOOL python3\n")
limit, rest = float(sys.argv[1]), sys.argv[2:]
for n in range(len(rest) // 3):
    one(n, rest[3 * n], int(rest[3 * n + 1]), rest[3 * n + 2], limit)
"""

SHELL_PROBE = r"""
py=$1; t=$2; shift 2
if command -v python3 >/dev/null 2>&1; then exec python3 -c "$py" "$t" "$@"; fi
if command -v bash >/dev/null 2>&1; then tool=bash
elif command -v curl >/dev/null 2>&1; then tool=curl
elif command -v nc >/dev/null 2>&1; then tool=nc
else tool=none; fi
echo "AIWFE-PROBE-TOOL $tool"
limit=
if command -v timeout >/dev/null 2>&1; then limit="timeout $((t * 2 + 1))"; fi
kind() {
  case $1 in
    *[Rr]efused*) echo refused ;;
    *"not known"*|*resolution*|*resolve*|*"bad address"*|*"nknown host"*) echo dns ;;
    *"o route"*|*nreachable*) echo unreachable ;;
    *"timed out"*|*imeout*) echo timeout ;;
    *) echo "$2" ;;
  esac
}
i=0
while [ $# -ge 3 ]; do
  h=$1; p=$2; u=$3; shift 3; http=-
  if [ "$p" = 0 ]; then
    if ! command -v getent >/dev/null 2>&1; then tcp=error; msg="no getent in the container to resolve the name"
    elif msg=$(getent hosts "$h" 2>&1); then tcp=ok; msg="resolves to $msg"
    else tcp=dns; msg="the name does not resolve"; fi
  elif [ $tool = bash ]; then
    msg=$($limit bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 3
      [ -z "$2" ] && exit 0
      printf "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: aiwfe-rollback-probe\r\nConnection: close\r\n\r\n" "$2" "$0" >&3
      IFS= read -r -t "$3" line <&3; printf "%s" "$line"' "$h" "$p" "$u" "$t" 2>&1)
    rc=$?
    if [ $rc = 0 ]; then
      tcp=ok
      if [ -n "$u" ]; then
        case $msg in HTTP/*) http=$(echo "$msg" | cut -d' ' -f2) ;; *) http=0; msg="connected, but GET $u got no HTTP answer: $msg" ;; esac
      else msg="connected to $h port $p"; fi
    elif [ $rc = 124 ]; then tcp=timeout; msg="no answer within $((t * 2 + 1)) s: $msg"
    else tcp=$(kind "$msg" error); fi
  elif [ $tool = curl ]; then
    msg=$(curl -sS -o /dev/null -w ' %{http_code}' --connect-timeout "$t" -m "$((t * 2))" "http://$h:$p${u:-/}" 2>&1)
    rc=$?; code=${msg##* }; msg=${msg% *}
    case $rc in
      0) tcp=ok; if [ -n "$u" ]; then http=$code; else msg="connected to $h port $p"; fi ;;
      6) tcp=dns ;;
      7) tcp=$(kind "$msg" refused) ;;
      28) tcp=timeout ;;
      1|8|52|56|35) tcp=ok; if [ -n "$u" ]; then http=0; msg="connected, but GET $u got no HTTP answer: $msg"; fi ;;
      *) tcp=error ;;
    esac
  elif [ $tool = nc ]; then
    if msg=$(nc -z -w "$t" "$h" "$p" 2>&1); then tcp=ok; msg="connected to $h port $p"
      [ -n "$u" ] && msg="$msg; HTTP not checked (no python3, bash or curl in the container)"
    else tcp=$(kind "$msg" error); fi
  else
    tcp=error; msg="no python3, bash, curl or nc in the container to probe with: use probe_from=image with a probe_image that has one"
  fi
  printf 'AIWFE-PROBE %s %s %s %s\n' "$i" "$tcp" "$http" "$(printf %s "$msg" | tr '\r\n' '  ' | cut -c1-2000)"
  i=$((i + 1))
done
"""


class Target(t.NamedTuple):
    """One thing to probe: ``dependency`` (a service name, or the service itself), where (host, port; port 0 - only
    resolve the name), ``path`` for an HTTP GET ('' - TCP only), and ``via`` - where the address was found."""
    dependency: str
    host: str
    port: int
    path: str
    via: str


# --- option checks --------------------------------------------------------------------------------------------------

def option_errors(params: dict[str, t.Any]) -> list[str]:
    """Every problem of the options, before anything runs."""
    errors = []
    if not params.get("service"):
        errors.append("service is required: name the failing compose service")
    if params["probe_from"] not in PROBE_FROM:
        errors.append(f"probe_from must be one of {', '.join(PROBE_FROM)}")
    if params["timeout"] < 1:
        errors.append("timeout must be at least 1 (seconds)")
    if params["logs_tail"] < 0:
        errors.append("logs_tail must be 0 (no logs) or more")
    if not params["health_path"].startswith("/"):
        errors.append(f"health_path {params['health_path']!r} must start with /")
    if params.get("port") is not None and not 0 < params["port"] < 65536:
        errors.append(f"port {params['port']} is not a TCP port")
    for name, spec in (params.get("endpoints") or {}).items():
        if not isinstance(spec, dict) or set(spec) - {"port", "path"}:
            errors.append(f"endpoints.{name} must be a dict with port and/or path")
            continue
        port = spec.get("port")
        if port is not None and (not str(port).isdigit() or not 0 < int(port) < 65536):
            errors.append(f"endpoints.{name}.port {port!r} is not a TCP port")
        path = spec.get("path")
        if path not in (None, "") and not str(path).startswith("/"):
            errors.append(f"endpoints.{name}.path {path!r} must start with / ('' - TCP only)")
    return errors


# --- the compose config: graph and addresses --------------------------------------------------------------------------

_URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://(?:[^@/\s\"']*@)?([A-Za-z0-9_.-]+)(?::(\d{1,5}))?(/[^\s\"',}]*)?")


def environment(svc: dict[str, t.Any]) -> dict[str, str]:
    """A service's environment from the compose config (a mapping; compose config also allows a list)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def url_addresses(text: str, services: t.Collection[str], via: str) -> list[dict[str, t.Any]]:
    """The URLs in ``text`` whose host is one of ``services``: service, scheme, port (the URL's, else its scheme's
    default, else 0), path, via."""
    found = []
    for match in _URL.finditer(text):
        scheme, host, port, path = match.group(1).lower(), match.group(2), match.group(3), match.group(4) or ""
        if host not in services:
            continue
        found.append({"service": host, "scheme": scheme, "port": int(port) if port else SCHEME_PORTS.get(scheme, 0),
                      "path": path, "via": via})
    return found


def env_addresses(owner: str, env: dict[str, str], services: t.Collection[str]) -> list[dict[str, t.Any]]:
    """Where ``owner``'s environment names other services: URLs (MEMORY_SERVICE_URL=http://memory-service:8000) and
    NAME_HOST=service with NAME_PORT beside it (POSTGRES_HOST=postgres, POSTGRES_PORT=5432)."""
    found = []
    for key in sorted(env):
        value = env[key]
        found.extend(url_addresses(value, services, f"{owner}'s {key}"))
        if key.endswith("_HOST") and value in services and value != owner:
            port = env.get(key[:-5] + "_PORT", "")
            found.append({"service": value, "scheme": "", "port": int(port) if port.isdigit() else 0, "path": "",
                          "via": f"{owner}'s {key}"})
    return [a for a in found if a["service"] != owner]


def depends_on(svc: dict[str, t.Any]) -> list[str]:
    deps = svc.get("depends_on") or {}
    return sorted(deps) if isinstance(deps, (dict, list)) else []


def dependency_graph(config: dict[str, t.Any], service: str) -> tuple[dict[str, dict[str, t.Any]], list[str]]:
    """The services ``service`` depends on, transitively: through compose depends_on and through the addresses their
    environment names. Returns ({name: {depends_on, addresses}} for the service and each dependency, the dependencies
    in the order found - nearest first)."""
    services = config.get("services") or {}
    graph: dict[str, dict[str, t.Any]] = {}
    order: list[str] = []
    queue = [service]
    while queue:
        name = queue.pop(0)
        if name in graph:
            continue
        svc = services.get(name) or {}
        addresses = env_addresses(name, environment(svc), services)
        graph[name] = {"depends_on": depends_on(svc), "addresses": addresses}
        for dep in graph[name]["depends_on"] + [a["service"] for a in addresses]:
            if dep not in graph and dep not in queue and dep in services:
                queue.append(dep)
                order.append(dep)
    return graph, [d for d in order if d != service]


def dependents(config: dict[str, t.Any], service: str) -> list[str]:
    """The services that depend on ``service`` through compose depends_on, directly or not (what compose does not
    start while it is unhealthy)."""
    services = config.get("services") or {}
    found: list[str] = []
    grew = True
    while grew:
        grew = False
        for name, svc in sorted(services.items()):
            if name != service and name not in found and any(d == service or d in found for d in depends_on(svc)):
                found.append(name)
                grew = True
    return sorted(found)


def declared_ports(svc: dict[str, t.Any]) -> list[int]:
    """The container ports a service declares (compose expose, then the targets of ports)."""
    ports: list[int] = []
    for item in svc.get("expose") or []:
        text = str(item).split("/", 1)[0].split("-", 1)[0]
        if text.isdigit():
            ports.append(int(text))
    for item in svc.get("ports") or []:
        target = item.get("target") if isinstance(item, dict) else None
        if target:
            ports.append(int(target))
    return list(dict.fromkeys(ports))


def image_ports(image: dict[str, t.Any] | None) -> list[int]:
    """TCP ports an image exposes (docker image inspect's Config.ExposedPorts)."""
    exposed = ((image or {}).get("Config") or {}).get("ExposedPorts") or {}
    return sorted(int(k.split("/")[0]) for k in exposed if k.endswith("/tcp") and k.split("/")[0].isdigit())


def plan_targets(service: str, config: dict[str, t.Any], graph: dict[str, dict[str, t.Any]], order: list[str],
                 endpoints: dict[str, dict[str, t.Any]], health_path: str,
                 fallback: dict[str, list[int]] | None = None) -> list[Target]:
    """What to probe for each dependency, in ``order``.

    The addresses the service's own environment gives a dependency first (what the service really uses, a wrong port
    included), else those the other services of the graph give it; an http:// address gets a GET of ``health_path``
    (or the dependency's endpoints path; '' - TCP only), any other (https:// too) a TCP connect. A dependency no environment names is
    probed on endpoints.<dep>.port, else the first port its compose config declares, else the first its image exposes
    (``fallback``), else only its name is resolved. endpoints.<dep>.port is probed as well when given."""
    services = config.get("services") or {}
    targets: list[Target] = []
    for dep in order:
        spec = endpoints.get(dep) or {}
        path_for_http = health_path if spec.get("path") is None else str(spec.get("path"))
        own = [a for a in graph.get(service, {}).get("addresses", []) if a["service"] == dep]
        others = [a for name in order if name != dep for a in graph.get(name, {}).get("addresses", []) if a["service"] == dep]
        found = own or others
        picked: list[Target] = []
        for addr in found:
            http = addr["scheme"] == "http" and addr["port"]
            picked.append(Target(dep, dep, addr["port"], path_for_http if http else "", addr["via"]))
        if spec.get("port") is not None:
            picked.append(Target(dep, dep, int(spec["port"]), str(spec.get("path") or ""), "endpoints option"))
        if not picked:
            ports = declared_ports(services.get(dep) or {})
            how = "its compose ports/expose"
            if not ports:
                ports, how = (fallback or {}).get(dep) or [], "its image's EXPOSE"
            if ports:
                picked.append(Target(dep, dep, ports[0], "", how))
            else:
                picked.append(Target(dep, dep, 0, "", "no port known (set endpoints): name only"))
        for target in picked:
            if all((x.host, x.port, x.path) != (target.host, target.port, target.path) for x in targets):
                targets.append(target)
    return targets


def self_port(service: str, config: dict[str, t.Any], graph_of_all: t.Iterable[dict[str, t.Any]],
              option: int | None) -> tuple[int | None, str]:
    """The port of the service's own HTTP endpoint: the option, else the port other services' http URLs name for it,
    else the one port its compose config declares; (None, why) when none is known."""
    if option:
        return option, "option port"
    for addr in graph_of_all:
        if addr["service"] == service and addr["scheme"] == "http" and addr["port"]:
            return addr["port"], addr["via"]
    ports = declared_ports((config.get("services") or {}).get(service) or {})
    if len(ports) == 1:
        return ports[0], "its compose ports/expose"
    return None, "no port known for its own health endpoint (set port)"


# --- the probe's output ---------------------------------------------------------------------------------------------

class ProbeError(Exception):
    """The probe could not run; the message says where and what to do."""


def parse_probe(out: str, count: int) -> tuple[str | None, list[dict[str, t.Any]]]:
    """(the tool the probe used, one result per target: tcp, http (int or None), detail). A target the output does not
    report (the probe was stopped) gets tcp V(error)."""
    tool = None
    found: dict[int, dict[str, t.Any]] = {}
    for line in out.splitlines():
        if line.startswith(TOOL_MARK + " "):
            tool = line.split(" ", 1)[1].strip() or None
            continue
        if not line.startswith(MARK + " "):
            continue
        parts = line.split(" ", 4) + [""] * 5
        index, tcp, http, detail = parts[1], parts[2], parts[3], parts[4].strip()
        if not index.isdigit():
            continue
        found[int(index)] = {"tcp": tcp, "http": int(http) if http.isdigit() else None, "detail": detail}
    results = []
    for index in range(count):
        results.append(found.get(index) or {"tcp": "error", "http": None,
                                            "detail": "the probe did not report this target (stopped or cut short?)"})
    return tool, results


def verdict(target: Target, result: dict[str, t.Any]) -> bool:
    if result["tcp"] != "ok":
        return False
    if target.path and target.port:
        return result["http"] is not None and 200 <= result["http"] < 400
    return True


def body_of(result: dict[str, t.Any]) -> dict[str, t.Any] | None:
    try:
        data = json.loads(result.get("detail") or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def probe_line(target: Target, result: dict[str, t.Any]) -> str:
    """One line per probe: where, found how, and what it got."""
    where = f"{target.host}:{target.port}" if target.port else target.host
    head = f"{'OK  ' if result['ok'] else 'FAIL'} {where} ({target.via})"
    if result["tcp"] != "ok":
        words = {"refused": "connection refused", "timeout": "timed out", "dns": "name does not resolve",
                 "unreachable": "unreachable", "error": "error"}
        return f"{head}: {words.get(result['tcp'], result['tcp'])} - {result['detail']}"
    if target.port and target.path:
        status = result["http"]
        text = f"GET {target.path} -> {status if status else 'no HTTP answer'}"
        checks = (body_of(result) or {}).get("checks")
        why = json.dumps(checks) if isinstance(checks, dict) else result["detail"]
        return f"{head}: TCP ok, {text}" + ("" if result["ok"] else f" - {why[:300]}")
    return f"{head}: {'TCP ok' if target.port else result['detail']}"


# --- logs -----------------------------------------------------------------------------------------------------------

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\s?")


def _sort_key(line: str) -> tuple[str, str]:
    match = _STAMP.match(line)
    if not match:
        return ("", "")
    return (match.group(1) + match.group(3), (match.group(2) or "").ljust(9, "0"))


def merge_logs(out: str, err: str, tail: int) -> list[str]:
    """`docker logs --timestamps` prints the container's standard output and error on two streams: one list, in time
    order (the fraction of a second padded: docker trims its trailing zeros), the last ``tail`` lines."""
    lines = [line for line in out.splitlines() + err.splitlines() if line.strip()]
    ordered = sorted(enumerate(lines), key=lambda item: (_sort_key(item[1]), item[0]))
    return [line for _index, line in ordered][-tail:] if tail else []


def log_hints(lines: t.Iterable[str]) -> list[str]:
    """The lines that speak of connection trouble (refused, timeout, name resolution, unreachable)."""
    return [line for line in lines if _LOG_HINT.search(line)]


# --- the service's own files ------------------------------------------------------------------------------------------

GLOB = re.compile(r"[*?\[]")


def instructions(text: str) -> list[str]:
    """A Dockerfile's instructions, continuation lines joined, comments and blank lines left out."""
    found: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        found.append((current + stripped).strip())
        current = ""
    if current.strip():
        found.append(current.strip())
    return found


def copy_sources(text: str) -> list[str]:
    """The sources of the Dockerfile's COPY and ADD instructions that come from the build context (not --from a stage
    or image, not URLs, not heredocs)."""
    sources: list[str] = []
    for line in instructions(text):
        keyword, _sep, rest = line.partition(" ")
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        words = rest.split()
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        args = [w for w in words if not w.startswith("--")]
        if args and args[0].startswith("["):
            try:
                args = [str(a) for a in json.loads(" ".join(args))]
            except ValueError:
                continue
        for source in args[:-1]:
            if "://" in source or source.startswith("<<"):
                continue
            sources.append(source)
    return sources


def _names_service(path: str, service: str) -> bool:
    def norm(text: str) -> str:
        return text.lower().replace("_", "-")
    return any(norm(part) == norm(service) for part in path.replace("\\", "/").split("/"))


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def path_error(project_dir: str, rel: t.Any) -> str | None:
    """Why ``rel`` cannot be one of a service's own paths in ``project_dir`` (nothing outside it, no patterns, nothing
    of .git or secrets), or None."""
    if not isinstance(rel, str) or not rel.strip():
        return f"{rel!r} is not a path"
    if os.path.isabs(rel):
        return f"{rel} is absolute: give paths relative to the deploy directory {project_dir}"
    if GLOB.search(rel):
        return f"{rel} is a pattern: name files and directories"
    norm = os.path.normpath(rel)
    if norm == ".":
        return f"{rel} is the whole deploy directory: name the service's own files (a configuration rollback restores all)"
    if norm == ".." or norm.startswith(".." + os.sep):
        return f"{rel} leads out of the deploy directory {project_dir}"
    parts = norm.split(os.sep)
    if ".git" in parts or "secrets" in parts:
        return f"{rel} is inside .git or secrets: those never come back from a release"
    root = os.path.realpath(project_dir)
    if not _inside(root, os.path.realpath(os.path.join(project_dir, norm))):
        return f"{rel} leads out of the deploy directory {project_dir} (a symlink on its way)"
    return None


def build_files(service: str, svc: dict[str, t.Any], project_dir: str,
                read: t.Callable[[str], str | None]) -> dict[str, t.Any]:
    """The service's build (None without one) and its own files, derived from the compose config: the Dockerfile its
    build names, and the directories of the build context its COPY/ADD sources name it in (app/<service> when the
    context is the deploy directory), or the whole context when that is a directory of its own. ``read(rel)`` gives a
    file's text (None when absent). Paths outside the deploy directory are left out, with a note."""
    build = svc.get("build")
    if not build:
        return {"build": None, "paths": [], "notes": []}
    if isinstance(build, str):
        build = {"context": build}
    root = os.path.normpath(project_dir)
    context = os.path.normpath(os.path.join(root, str(build.get("context") or ".")))
    info: dict[str, t.Any] = {"context": os.path.relpath(context, root) if _inside(root, context) else context,
                              "dockerfile": None, "image": svc.get("image")}
    paths: list[str] = []
    notes: list[str] = []
    if "://" in str(build.get("context")) or not _inside(root, context):
        notes.append(f"its build context {build.get('context')} is not inside the deploy directory: its files do not "
                     "come from the release's git commit")
        return {"build": info, "paths": paths, "notes": notes}
    if build.get("dockerfile_inline"):
        notes.append("its Dockerfile is inline in the compose file (its compose entry carries it)")
    else:
        dockerfile = os.path.normpath(os.path.join(context, str(build.get("dockerfile") or "Dockerfile")))
        if _inside(root, dockerfile):
            info["dockerfile"] = os.path.relpath(dockerfile, root)
            paths.append(info["dockerfile"])
        else:
            notes.append(f"its Dockerfile {dockerfile} is outside the deploy directory")
    if context != root and _names_service(os.path.relpath(context, root), service):
        paths.append(os.path.relpath(context, root))
    elif info["dockerfile"]:
        for source in copy_sources(read(info["dockerfile"]) or ""):
            parts = os.path.normpath(source.lstrip("/")).split(os.sep)
            fixed = os.sep.join(parts[:next((i for i, p in enumerate(parts) if GLOB.search(p)), len(parts))])
            full = os.path.normpath(os.path.join(context, fixed))
            if fixed and _names_service(fixed, service) and _inside(root, full) and full != root:
                paths.append(os.path.relpath(full, root))
    return {"build": info, "paths": list(dict.fromkeys(paths)), "notes": notes}


def glob_escape(path: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", path)


def patterns_for(paths: t.Iterable[str], is_dir: t.Callable[[str], bool]) -> list[str]:
    """config_archive patterns for the paths: a directory's files at any depth, a file itself."""
    return [glob_escape(p.rstrip("/")) + "/*" if p.endswith("/") or is_dir(p) else glob_escape(p) for p in paths]


def file_plan(now: dict[str, str], release: dict[str, str]) -> dict[str, list[str]]:
    """Files of the service that differ from the release's (changed: to put back) and those the release does not have
    (extra: to remove), from their hashes (relative path -> sha256)."""
    return {"changed": sorted(p for p, sha in release.items() if now.get(p) != sha),
            "extra": sorted(p for p in now if p not in release)}


def compose_entry(service: str, now: dict[str, t.Any], release: dict[str, t.Any]) -> dict[str, t.Any]:
    """How the service's compose entry compares with the release's, both resolved by compose in the deploy directory:
    V(same); V(take) - only this service's block differs, so the release's compose files may come back whole;
    V(others_differ) - other services' blocks or top-level networks, volumes, secrets differ too (taking the files
    would change them: refuse); V(missing) - the release has no such service."""
    def top(config: dict[str, t.Any]) -> dict[str, t.Any]:
        return {k: v for k, v in config.items() if k not in ("services", "name") and not k.startswith("x-")}
    now_services, release_services = now.get("services") or {}, release.get("services") or {}
    if service not in release_services:
        return {"status": "missing", "others": [], "top": []}
    others = sorted(n for n in set(now_services) | set(release_services)
                    if n != service and now_services.get(n) != release_services.get(n))
    keys = sorted(k for k in set(top(now)) | set(top(release)) if top(now).get(k) != top(release).get(k))
    if others or keys:
        return {"status": "others_differ", "others": others, "top": keys}
    return {"status": "same" if now_services.get(service) == release_services.get(service) else "take",
            "others": [], "top": []}


# --- Docker ---------------------------------------------------------------------------------------------------------

def watched(cli: DockerCli, argv: list[str], what: str, seconds: float,
            on_expiry: t.Callable[[], t.Any] | None = None) -> tuple[int, str, str]:
    """_job.run_watched with this module's advice when the command had to be stopped."""
    return run_watched(cli, argv, what, seconds, "is the Docker engine answering (docker info)? Raise timeout if the "
                       "dependencies answer that slowly", on_expiry=on_expiry)


def probe_argv(docker: str, targets: t.Sequence[Target], timeout: int, container: str | None = None,
               image: str | None = None, network: str | None = None, name: str | None = None) -> list[str]:
    """The probe by `docker exec` in ``container``, or in a throwaway container ``name`` of ``image`` on ``network``."""
    args = ["-c", SHELL_PROBE, "sh", PYTHON_PROBE, str(timeout)]
    for target in targets:
        args += [target.host, str(target.port), target.path]
    if container:
        return [docker, "exec", container, "sh"] + args
    return ([docker, "run", "--rm", "--name", name or "aiwfe-rollback-probe", "--pull", "never", "--label",
             "org.aiwfe.rollback.probe=1"] + (["--network", network] if network else [])
            + ["--entrypoint", "sh", "--", str(image)] + args)


def exec_error(where: str, rc: int, err: str) -> ProbeError:
    text = err.strip()[-400:]
    if "executable file not found" in text or rc in (126, 127):
        return ProbeError(f"cannot run sh in {where} ({text}): the image has no shell; probe from another image on "
                          "the project's network with probe_from=image and probe_image (one with python3, bash, curl "
                          "or nc)")
    return ProbeError(f"the probe could not run in {where} (rc={rc}): {text}")


def run_probe(cli: DockerCli, targets: list[Target], timeout: int, where: dict[str, t.Any]) -> tuple[str | None, list[dict]]:
    """Probe ``targets`` from ``where`` ({container} or {image, network}); (tool, results)."""
    if not targets:
        return None, []
    seconds = len(targets) * (2 * timeout + 1) + GRACE
    if where.get("container"):
        argv = probe_argv(cli.docker, targets, timeout, container=where["container"])
        rc, out, err = watched(cli, argv, f"the dependency probe in {where['label']}", seconds)
    else:
        name = f"aiwfe-rollback-probe-{os.getpid()}-{secrets.token_hex(4)}"
        argv = probe_argv(cli.docker, targets, timeout, image=where["image"], network=where.get("network"), name=name)
        rc, out, err = watched(cli, argv, f"the dependency probe in {where['label']}", seconds,
                               on_expiry=lambda: cli.run([cli.docker, "rm", "-f", "--", name], "docker rm", check=False))
    if TOOL_MARK not in out:
        raise exec_error(where["label"], rc, err)
    return parse_probe(out, len(targets))


def probe_place(cli: DockerCli, project: ComposeProject, service: str, svc: dict[str, t.Any], config: dict[str, t.Any],
                container: dict[str, t.Any] | None, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Where to probe from: the service's running container (probe_from container or auto), else (image or auto) a
    throwaway container of probe_image or the service's image on the project network the service uses first."""
    running = bool(container) and container.get("state") == "running"
    if params["probe_from"] == "container" or (params["probe_from"] == "auto" and running):
        if not container:
            raise JobFailed(f"service {service} of compose project {project.name} has no container (not deployed, or "
                            "removed): nothing to probe from inside it. Probe from a throwaway container of its image "
                            "on the project's network with probe_from=image (or auto)")
        if not running:
            raise JobFailed(f"the container {container.get('name')} of service {service} is {container.get('state')} "
                            f"(restarts so far: {container.get('restart_count', 0)}), not running: nothing to probe from "
                            "inside it. Its logs are in the result; probe from a throwaway container of its image on "
                            "the project's network with probe_from=image (or auto)")
        return {"container": container["id"], "label": f"container {container.get('name')} (docker exec)", "from": "container"}
    image = params.get("probe_image") or (container or {}).get("image_id") or svc.get("image") or f"{project.name}-{service}"
    mode = str(svc.get("network_mode") or "")
    networks = list((svc.get("networks") or {"default": None}))
    if mode and not mode.startswith(("service:", "container:")):
        network = mode
    else:
        network = ((config.get("networks") or {}).get(networks[0]) or {}).get("name") or f"{project.name}_{networks[0]}"
    why = "as asked" if params["probe_from"] == "image" else (
        f"its container is {(container or {}).get('state') or 'missing'}")
    return {"image": image, "network": network, "from": "image",
            "label": f"a throwaway container of image {str(image)[:40]} on network {network} ({why})"}


def read_logs(cli: DockerCli, container: dict[str, t.Any] | None, tail: int, seconds: int) -> list[str]:
    if not container or not tail:
        return []
    argv = [cli.docker, "logs", "--timestamps", "--tail", str(tail), container["id"]]
    rc, out, err = watched(cli, argv, f"docker logs of {container.get('name')}", seconds)
    if rc != 0:
        raise DockerCliError(f"docker logs failed (rc={rc}): {err.strip()[-400:]}", cmd=argv, rc=rc, stderr=err)
    return merge_logs(out, err, tail)


def _read_text(directory: str) -> t.Callable[[str], str | None]:
    def read(rel: str) -> str | None:
        try:
            with open(os.path.join(directory, rel), encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None
    return read


def _is_dir(*roots: str) -> t.Callable[[str], bool]:
    return lambda rel: any(os.path.isdir(os.path.join(root, rel)) for root in roots)


def compose_plan(cli: DockerCli, project: ComposeProject, service: str, config: dict[str, t.Any],
                 release_dir: str) -> tuple[dict[str, t.Any], dict[str, t.Any] | None]:
    """The service's compose entry against the release's: (compose_entry's answer with the compose files whose text
    differs, the service's block as the release's files give it - resolved by compose in the deploy directory, with its
    .env - or None). Compose files outside the deploy directory are not in its git history: they stay as they are."""
    ours, theirs = _read_text(project.directory), _read_text(release_dir)
    differ, outside = [], []
    for path in project.stack_paths():
        rel = os.path.relpath(path, project.directory)
        if rel == ".." or rel.startswith(".." + os.sep):
            outside.append(path)
        elif ours(rel) != theirs(rel):
            differ.append(rel)
    entry: dict[str, t.Any] = {"status": "same", "files": differ, "outside": outside, "others": [], "top": []}
    if not differ:
        return entry, (config.get("services") or {}).get(service)
    missing = [rel for rel in differ if theirs(rel) is None]
    if missing:
        entry.update(status="missing_file", missing=missing)
        return entry, None
    files = [p if p in outside else os.path.join(release_dir, os.path.relpath(p, project.directory))
             for p in project.stack_paths()]
    release_config = cli.compose_config(ComposeProject(project.name, project.directory, files))
    entry.update(compose_entry(service, config, release_config))
    return entry, (release_config.get("services") or {}).get(service)


def restore_plan(cli: DockerCli, project: ComposeProject, service: str, config: dict[str, t.Any], release_dir: str,
                 paths: list[str], derived: bool) -> tuple[list[str], dict[str, t.Any]]:
    """(the service's own paths - with ``derived`` also those the release's build names -, what bringing them back from
    ``release_dir`` changes: changed, extra, current (files now), patterns (for config_archive, the compose files
    included when they come back), compose)."""
    entry, theirs = compose_plan(cli, project, service, config, release_dir)
    if derived and theirs:
        more = build_files(service, theirs, project.directory, _read_text(release_dir))["paths"]
        paths = paths + [p for p in more if p not in paths and not path_error(project.directory, p)]
    patterns = patterns_for(paths, _is_dir(project.directory, release_dir))
    now = hash_files(project.directory, patterns)
    plan: dict[str, t.Any] = dict(file_plan(now, hash_files(release_dir, patterns)), current=len(now), compose=entry)
    plan["patterns"] = patterns + ([glob_escape(f) for f in entry["files"]] if entry["status"] == "take" else [])
    if entry["status"] == "take":
        plan["changed"] = sorted(set(plan["changed"]) | set(entry["files"]))
        plan["current"] += len(entry["files"])
    return paths, plan


def pinned_image(project: ComposeProject, ledger_dir: str, service: str) -> str | None:
    """The image a quick rollback's pin file pins the service to, or None."""
    pin = project.pin or pin_path(ledger_dir, project.name)
    if not os.path.isfile(pin):
        return None
    with open(pin, encoding="utf-8") as handle:
        return parse_pin(handle.read()).get(service)


def refusal(project: ComposeProject, service: str, svc: dict[str, t.Any], result: dict[str, t.Any]) -> str | None:
    """Why the service's files cannot be brought back and rebuilt (require_build), or None."""
    if not result["build"]:
        return (f"service {service} has no build section in compose (it runs the image {svc.get('image')} as it is): "
                "there are no files of its own to rebuild it from. Roll its image back with playbooks/rollback_quick.yml "
                f"-e aiwfe_rollback_services={service}, or the whole configuration with playbooks/rollback_config.yml")
    if not result["paths"]:
        return (f"no files of service {service} are known ({'; '.join(result['notes']) or 'its Dockerfile names none'}): "
                "name them with paths (relative to the deploy directory)")
    if result["pinned"]:
        return (f"service {service} is pinned to the image {result['pinned']} by a quick rollback (pin file "
                f"{project.pin}): the pin, not its files, decides what it runs. Remove its entry from the pin file (or "
                "deploy a release, which drops the pin), or leave it on that image")
    return None


def run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The module's whole run (read-only, the same in check mode): the result, or JobFailed saying what to do."""
    result: dict[str, t.Any] = {"changed": False, "service": params.get("service"), "ok": None, "failing": [],
                                "probes": [], "self_check": None, "probe": None, "logs": [], "log_hints": [],
                                "notes": [], "report": []}
    errors = option_errors(params)
    errors += [e for e in (path_error(params["project_dir"], p) for p in params.get("paths") or []) if e]
    if errors:
        raise JobFailed("; ".join(errors) + ". Nothing was changed.", result)
    service = params["service"]
    try:
        seen = concurrently({"config": lambda: cli.compose_config(project.with_pin(None)),
                             "containers": lambda: containers_by_service(cli, project, direct=True)})
        config = seen["config"]
        services = config.get("services") or {}
        result["services"] = sorted(services)
        if service not in services:
            raise JobFailed(f"unknown service {service}: compose project {project.name} has {', '.join(sorted(services))}. "
                            "Nothing was changed.", result)
        svc = services[service]
        containers = {n: c for n, c in seen["containers"].items() if n in services}
        result.update(describe(cli, project, service, config, containers, params))
        result["notes"] = result.pop("build_notes")
        if params["require_build"]:
            why = refusal(project, service, svc, result)
            if why:
                raise JobFailed(why + ". Nothing was changed.", result)
        if params.get("release_dir"):
            result["paths"], result["restore"] = restore_plan(cli, project, service, config, params["release_dir"],
                                                              result["paths"], not params.get("paths"))
            result["patterns"] = patterns_for(result["paths"], _is_dir(project.directory, params["release_dir"]))
        if params["probe"] or params["logs_tail"]:
            probe_and_logs(cli, project, service, config, containers.get(service), params, result)
    except DockerCliError as exc:
        raise JobFailed.from_cli(exc, result) from exc
    except ProbeError as exc:
        raise JobFailed(str(exc), result) from exc
    result["report"] = report(result)
    if params["fail_on_unreachable"] and result["failing"]:
        raise JobFailed(f"{service} does not reach everything it needs: " + "; ".join(result["failing"]), result)
    return result


def describe(cli: DockerCli, project: ComposeProject, service: str, config: dict[str, t.Any],
             containers: dict[str, dict[str, t.Any]], params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The container, the graph, the dependents, the build and the service's own paths, from the compose config."""
    svc = (config.get("services") or {})[service]
    graph, order = dependency_graph(config, service)
    container = containers.get(service)
    files = build_files(service, svc, project.directory, _read_text(project.directory))
    paths = ([os.path.normpath(p) + ("/" if p.endswith("/") else "") for p in params["paths"]] if params.get("paths")
             else files["paths"])
    image = (files["build"] or {}).get("image") or svc.get("image")
    if files["build"] is not None:
        ref = image or f"{project.name}-{service}"
        files["build"]["image"] = ref
        files["build"]["image_id"] = (cli.inspect("image", [ref]).get(ref) or {}).get("Id")
    return {
        "project_dir": project.directory,
        "project_name": project.name,
        "container": {k: container.get(k) for k in ("id", "name", "state", "health", "image_id", "restart_count")}
        if container else None,
        "graph": graph,
        "dependencies": order,
        "dependents": [{"service": d, "state": (containers.get(d) or {}).get("state") or "absent"}
                       for d in dependents(config, service)],
        "build": files["build"],
        "build_notes": files["notes"],
        "paths": paths,
        "patterns": patterns_for(paths, _is_dir(project.directory)),
        "pinned": pinned_image(project, params["ledger_dir"], service),
        "compose_files": project.file_paths(),
        "compose_argv": project.base_argv(cli.docker),
    }


def all_addresses(config: dict[str, t.Any], but: str) -> list[dict[str, t.Any]]:
    """The addresses of services in every other service's environment (the port others reach a service on)."""
    services = config.get("services") or {}
    return [a for name, svc in sorted(services.items()) if name != but for a in env_addresses(name, environment(svc), services)]


def probe_and_logs(cli: DockerCli, project: ComposeProject, service: str, config: dict[str, t.Any],
                   container: dict[str, t.Any] | None, params: dict[str, t.Any], result: dict[str, t.Any]) -> None:
    """The logs and the probe (the service's own health endpoint and every dependency) at the same time, then a second
    round for the dependency addresses the service's own health answer names that were not probed yet."""
    services = config.get("services") or {}
    svc = services[service]
    order = result["dependencies"]
    calls: dict[str, t.Callable[[], t.Any]] = {"logs": lambda: read_logs(cli, container, params["logs_tail"], 30)}
    first: list[Target] = []
    own = None
    if params["probe"]:
        unknown = {d: services[d].get("image") or f"{project.name}-{d}" for d in order if not declared_ports(services[d])}
        images = cli.inspect("image", sorted(set(unknown.values()))) if unknown else {}
        targets = plan_targets(service, config, result["graph"], order, params.get("endpoints") or {},
                               params["health_path"], {d: image_ports(images.get(ref)) for d, ref in unknown.items()})
        where = probe_place(cli, project, service, svc, config, container, params)
        port, how = self_port(service, config, all_addresses(config, service), params.get("port"))
        if port and where["from"] == "container":
            own = Target(service, "127.0.0.1", port, params["health_path"], f"itself, port from {how}")
        else:
            result["notes"].append("its own health endpoint was not probed: " + (
                how if not port else "the probe runs in a throwaway container, not in the service's"))
        first = ([own] if own else []) + targets
        calls["probe"] = lambda: run_probe(cli, first, params["timeout"], where)
    done = concurrently(calls)
    result["logs"] = done["logs"]
    result["log_hints"] = log_hints(result["logs"])
    if not params["probe"]:
        return
    tool, answers = done["probe"]
    probed = list(zip(first, answers))
    if own:
        own_answer = dict(probed.pop(0)[1])
        own_answer["ok"] = verdict(own, own_answer)
        result["self_check"] = dict(own._asdict(), **own_answer, body=body_of(own_answer), line=probe_line(own, own_answer))
        more: dict[tuple[str, int], Target] = {}
        for addr in url_addresses(own_answer["detail"], services, f"named in {service}'s own health answer"):
            if addr["port"] and addr["service"] != service \
                    and all((x.host, x.port) != (addr["service"], addr["port"]) for x in first):
                path = params["health_path"] if addr["scheme"] == "http" else ""
                more.setdefault((addr["service"], addr["port"]),
                                Target(addr["service"], addr["service"], addr["port"], path, addr["via"]))
        if more:
            _tool, extra = run_probe(cli, list(more.values()), params["timeout"], where)
            probed += list(zip(more.values(), extra))
    result["probe"] = {"from": where["from"], "where": where["label"], "tool": tool}
    for target, answer in probed:
        answer = dict(answer, ok=verdict(target, answer))
        result["probes"].append(dict(target._asdict(), **answer, line=probe_line(target, answer)))
    result["failing"] = ([result["self_check"]["line"]] if result["self_check"] and not result["self_check"]["ok"] else []) \
        + [p["line"] for p in result["probes"] if not p["ok"]]
    result["ok"] = not result["failing"]


def report(result: dict[str, t.Any]) -> list[str]:
    """One line per fact an operator reads: the container, the graph, where the probe ran, each probe, the logs."""
    service = result["service"]
    container = result.get("container")
    lines = [f"{service}: " + (f"container {container['name']} {container['state']}"
                               + (f" ({container['health']})" if container.get("health") else "") if container
                               else "no container")]
    for name, entry in (result.get("graph") or {}).items():
        edges: dict[str, list[str]] = {}
        for dep in entry["depends_on"]:
            edges.setdefault(dep, []).append("depends_on")
        for addr in entry["addresses"]:
            edges.setdefault(addr["service"], []).append(addr["via"].split("'s ", 1)[-1])
        if edges:
            lines.append(f"graph: {name} -> " + ", ".join(f"{dep} [{', '.join(dict.fromkeys(how))}]"
                                                          for dep, how in edges.items()))
    if result.get("probe"):
        lines.append(f"probe from {result['probe']['where']} with {result['probe']['tool'] or 'nothing'}:")
    if result.get("self_check"):
        lines.append("  " + result["self_check"]["line"])
    lines.extend("  " + p["line"] for p in result["probes"])
    if result.get("logs"):
        lines.append(f"logs: the last {len(result['logs'])} lines, {len(result['log_hints'])} about connection trouble")
    lines.extend(f"note: {n}" for n in result.get("notes") or [])
    return lines
