# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Python import issues (runbook section A, PYTHONPATH): what a service's Python sees, which modules import, what its
logs say was missing, and the ENV PYTHONPATH lines of its Dockerfiles (read, and rewritten when asked).

Pure parts (unit-tested on recorded text): option checks, the log parser, the Dockerfile reader and rewriter, the
path check. The run (module aiwfe.rollback.pythonpath_check) checks every option and reads every Dockerfile first,
then asks Docker (the probe of _pythonpath_probe, the logs), and writes Dockerfiles last, only when asked and only
when nothing failed.
"""

from __future__ import annotations

import keyword
import os
import re
import secrets
import stat
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils import _pythonpath_probe as probe
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import (
    ComposeProject, DockerCli, DockerCliError, concurrently, parse_json_stream)
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import write_text_atomic
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed, run_watched
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service

FIXES = ("none", "remove", "set")
KEY = "PYTHONPATH"
# The docker client of the probe is stopped this many seconds after the probe's own timeout (its container's start).
GRACE = 15


# --- option checks --------------------------------------------------------------------------------------------------

def module_name_error(name: t.Any) -> str | None:
    """Why ``name`` is not a dotted Python module name (identifiers, no keywords), or None."""
    if not isinstance(name, str) or not name:
        return f"modules: {name!r} is not a module name"
    for part in name.split("."):
        if not part.isidentifier() or keyword.iskeyword(part):
            return (f"modules: {name!r} is not a dotted Python module name ({part!r} is not an identifier, or is a "
                    "keyword): give names as in an import statement, e.g. aiwfe_api.main")
    return None


_SINCE = (
    re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?([Zz]|[+-]\d{2}:?\d{2})?\Z"),  # RFC 3339
    re.compile(r"\d{1,12}(\.\d{1,9})?\Z"),                                                            # Unix time
    re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+\Z"),                                              # Go duration
)


def logs_since_error(since: str) -> str | None:
    """Why ``since`` is not a time `docker logs --since` takes (RFC 3339, Unix seconds, or a duration), or None."""
    if any(pattern.match(since) for pattern in _SINCE):
        return None
    return (f"logs_since {since!r} is not a time docker logs --since takes: an RFC 3339 timestamp "
            "(2026-11-30T03:25:00Z), Unix seconds (1764473100) or a duration back from now (15m, 2h)")


def option_errors(params: dict[str, t.Any]) -> list[str]:
    """Every problem of the options, before anything runs."""
    errors = [e for e in (module_name_error(name) for name in params["modules"]) if e]
    probing = bool(params.get("service") or params.get("image"))
    if not probing and not params["dockerfiles"]:
        errors.append("nothing to check: give service, image or dockerfiles")
    if params["modules"] and not probing:
        errors.append("modules are imported inside a container: give service or image")
    if params.get("logs_since") is not None:
        if not params.get("service"):
            errors.append("logs_since reads a service container's logs: give service")
        error = logs_since_error(params["logs_since"])
        if error:
            errors.append(error)
    if probing and (not params["python"] or params["python"].startswith("-") or any(c.isspace() for c in params["python"])):
        errors.append(f"python {params['python']!r} is not an interpreter name or path")
    if params["timeout"] < 1:
        errors.append("timeout must be at least 1 (seconds)")
    if params["fix"] != "none" and not params["dockerfiles"]:
        errors.append(f"fix={params['fix']} rewrites Dockerfiles: name them in dockerfiles")
    value = params.get("pythonpath")
    if params["fix"] == "set" and value is not None and any(c in value for c in "\n\r\0"):
        errors.append("pythonpath cannot hold a line break or NUL character")
    return errors


# --- the logs -------------------------------------------------------------------------------------------------------

_LOG_LINE = re.compile(r"\b(ModuleNotFoundError|ImportError)\b:?\s*(.*)")
_NO_MODULE = re.compile(r"No module named ['\"]?([A-Za-z_][\w.]*)['\"]?")
_CANNOT_IMPORT = re.compile(r"cannot import name ['\"]?([A-Za-z_]\w*)['\"]?(?: from ['\"]?([A-Za-z_][\w.]*)['\"]?)?")


def parse_log_import_errors(text: str) -> list[dict[str, t.Any]]:
    """The ImportError / ModuleNotFoundError lines of a container's logs, each distinct line once (in the order first
    seen, with how often it came): ``missing`` is the module (kind V(module)) or the name in a module (kind V(name),
    C(module.name)) it could not import, None when the line does not say."""
    found: dict[str, dict[str, t.Any]] = {}
    for raw in text.splitlines():
        match = _LOG_LINE.search(raw)
        if not match:
            continue
        line = raw.strip()[:500]
        if line in found:
            found[line]["count"] += 1
            continue
        missing = kind = None
        name = _NO_MODULE.search(match.group(2))
        cannot = _CANNOT_IMPORT.search(match.group(2))
        if name:
            missing, kind = name.group(1).rstrip("."), "module"
        elif cannot:
            missing = f"{cannot.group(2)}.{cannot.group(1)}" if cannot.group(2) else cannot.group(1)
            kind = "name"
        found[line] = {"line": line, "missing": missing, "kind": kind, "count": 1}
    return list(found.values())


# --- Dockerfiles ----------------------------------------------------------------------------------------------------

class DockerfileError(Exception):
    """A Dockerfile cannot be read or rewritten; the message names it and says why."""


class Instruction(t.NamedTuple):
    start: int      # offset of its first character in the file's text
    end: int        # offset after its last line (line end included)
    line: int       # its first line, from 1
    keyword: str    # upper case


class Assignment(t.NamedTuple):
    key: str
    value: str      # unquoted (variable references kept as written)
    start: int      # the span of the text the value lives in: the key=value word, or the legacy form's value
    end: int
    legacy: bool    # ENV KEY value


def _lines(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in re.finditer(r"[^\n]*\n|[^\n]+\Z", text)]


def _content(line: str) -> str:
    line = line[:-1] if line.endswith("\n") else line
    return line[:-1] if line.endswith("\r") else line


def _skipped(content: str) -> bool:
    """An empty or comment line (inside a continued instruction these are dropped, as Docker does)."""
    stripped = content.strip()
    return not stripped or stripped.startswith("#")


def escape_of(text: str) -> str:
    """The escape character: the parser directive `# escape=`` ` at the top, else the backslash."""
    escape = "\\"
    for _offset, line in _lines(text):
        match = re.match(r"\s*#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.+?)\s*\Z", _content(line))
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("`", "\\"):
            escape = match.group(2)
    return escape


def instructions(text: str, escape: str) -> list[Instruction]:
    """The instructions of a Dockerfile, each with the span of all its lines (continuations, the comment lines inside
    them and the bodies of its heredocs included)."""
    continued = re.compile(re.escape(escape) + r"[ \t]*\Z")
    lines = _lines(text)
    found = []
    i = 0
    while i < len(lines):
        content = _content(lines[i][1])
        if _skipped(content):
            i += 1
            continue
        first = i
        joined = [content]
        more = bool(continued.search(content))
        while more and i + 1 < len(lines):
            i += 1
            content = _content(lines[i][1])
            if not _skipped(content):
                joined.append(content)
                more = bool(continued.search(content))
        word = joined[0].split(None, 1)[0].upper()
        if word in ("RUN", "COPY", "ADD"):
            for _dash, _quote, marker in re.findall(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2", " ".join(joined)):
                while i + 1 < len(lines):
                    i += 1
                    if _content(lines[i][1]).strip() == marker:
                        break
        offset, line = lines[i]
        found.append(Instruction(lines[first][0], offset + len(line), first + 1, word))
        i += 1
    return found


def _joined(text: str, ins: Instruction, escape: str) -> tuple[str, list[int]]:
    """The instruction as Docker reads it (continuations joined, the comment and empty lines inside dropped), and the
    offset in ``text`` of each of its characters."""
    continued = re.compile(re.escape(escape) + r"[ \t]*\Z")
    chars: list[str] = []
    where: list[int] = []
    for index, (offset, line) in enumerate(_lines(text[ins.start:ins.end])):
        content = _content(line)
        if index and _skipped(content):
            continue
        match = continued.search(content)
        keep = content[:match.start()] if match else content
        chars.append(keep)
        where.extend(range(ins.start + offset, ins.start + offset + len(keep)))
    return "".join(chars), where


def _words(text: str, escape: str, start: int) -> list[tuple[int, int]]:
    """The spans of the whitespace-separated words of ``text`` from ``start`` (quotes and escapes keep a word whole)."""
    spans = []
    i, n = start, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        begin, quote = i, None
        while i < n:
            char = text[i]
            if quote is None and char.isspace():
                break
            if char == escape and quote != "'" and i + 1 < n:
                i += 2
                continue
            if quote is None and char in "\"'":
                quote = char
            elif char == quote:
                quote = None
            i += 1
        spans.append((begin, i))
    return spans


def unquote(word: str, escape: str = "\\") -> str:
    """A Dockerfile word's value: quotes removed, escapes resolved (variable references are left as written)."""
    out = []
    i, n, quote = 0, len(word), None
    while i < n:
        char = word[i]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
        elif char == escape and i + 1 < n:
            following = word[i + 1]
            if quote == '"' and following not in ('"', escape, "$", "`"):
                out.append(char)
            out.append(following)
            i += 1
        elif quote is None and char in "\"'":
            quote = char
        elif quote == '"' and char == '"':
            quote = None
        else:
            out.append(char)
        i += 1
    return "".join(out)


_BARE = re.compile(r"[A-Za-z0-9_./:,+@%=${}~-]+\Z")


def dockerfile_word(value: str, escape: str = "\\") -> str:
    """``value`` written as one Dockerfile word: bare when it is plain, else in double quotes."""
    if _BARE.match(value):
        return value
    return '"' + value.replace(escape, escape + escape).replace('"', escape + '"') + '"'


def env_assignments(text: str, escape: str | None = None) -> list[tuple[Instruction, list[Assignment]]]:
    """Every ENV instruction with its assignments (`ENV A=1 B=2` or the legacy `ENV A value`)."""
    escape = escape or escape_of(text)
    found = []
    for ins in instructions(text, escape):
        if ins.keyword != "ENV":
            continue
        joined, where = _joined(text, ins, escape)
        spans = _words(joined, escape, re.match(r"\s*\S+", joined).end())
        if not spans:
            continue
        first = joined[spans[0][0]:spans[0][1]]
        assignments = []
        if "=" not in first:
            if len(spans) > 1:
                begin, end = spans[1][0], spans[-1][1]
                assignments.append(Assignment(first, unquote(joined[begin:end], escape), where[begin], where[end - 1] + 1, True))
        else:
            for begin, end in spans:
                key, _sep, value = joined[begin:end].partition("=")
                assignments.append(Assignment(key, unquote(value, escape), where[begin], where[end - 1] + 1, False))
        found.append((ins, assignments))
    return found


def pythonpath_lines(text: str) -> list[dict[str, t.Any]]:
    """The PYTHONPATH assignments of a Dockerfile: line, the ENV instruction as written (lines joined), the value."""
    escape = escape_of(text)
    lines = []
    for ins, assignments in env_assignments(text, escape):
        for item in assignments:
            if item.key == KEY:
                lines.append({"line": text.count("\n", 0, item.start) + 1, "value": item.value,
                              "instruction": " ".join(_joined(text, ins, escape)[0].split())})
    return lines


def rewrite(text: str, fix: str, value: str | None = None) -> str:
    """The Dockerfile with its PYTHONPATH assignments removed (the other variables of an ENV line kept; an ENV of
    PYTHONPATH alone goes whole) or set to ``value`` (assignments already holding it are left as written; a file
    without any gets `ENV PYTHONPATH=value` after the FROM of its last stage). Same text when nothing changes."""
    if fix == "none":
        return text
    if fix == "set" and value is None:
        raise DockerfileError("fix=set needs the value to set (option pythonpath)")
    escape = escape_of(text)
    edits: list[tuple[int, int, str]] = []
    found = env_assignments(text, escape)
    for ins, assignments in found:
        drop = [item.key == KEY for item in assignments]
        if not any(drop):
            continue
        if fix == "remove":
            if all(drop):
                edits.append((ins.start, ins.end, ""))
                continue
            lead = drop.index(False)
            if lead:
                edits.append((assignments[0].start, assignments[lead].start, ""))
            edits.extend((assignments[k - 1].end, assignments[k].end, "")
                         for k in range(lead + 1, len(assignments)) if drop[k])
        else:
            edits.extend((item.start, item.end, ("" if item.legacy else f"{KEY}=") + dockerfile_word(value, escape))
                         for item in assignments if item.key == KEY and item.value != value)
    if fix == "set" and not any(item.key == KEY for _ins, assignments in found for item in assignments):
        froms = [ins for ins in instructions(text, escape) if ins.keyword == "FROM"]
        if not froms:
            raise DockerfileError("it has no FROM instruction to put ENV PYTHONPATH after")
        end = froms[-1].end
        newline = "\r\n" if text[:end].endswith("\r\n") else "\n"
        line = f"ENV {KEY}={dockerfile_word(value, escape)}"
        edits.append((end, end, line + newline if text[:end].endswith("\n") else newline + line))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def resolve_dockerfile(project_dir: str, path: str) -> str:
    """The real path of a Dockerfile named relative to ``project_dir`` or absolute; it must be a file inside
    ``project_dir`` once every symlink is followed."""
    base = os.path.realpath(project_dir)
    real = os.path.realpath(path if os.path.isabs(path) else os.path.join(project_dir, path))
    if os.path.commonpath([base, real]) != base:
        raise DockerfileError(f"dockerfiles: {path} resolves to {real}, outside project_dir {base}: only the stack's "
                              "own Dockerfiles are read and rewritten")
    if not os.path.isfile(real):
        raise DockerfileError(f"dockerfiles: {path} does not exist ({real}): name the service's Dockerfile relative "
                              "to project_dir, e.g. docker/api/Dockerfile")
    return real


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise DockerfileError(f"dockerfiles: {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise DockerfileError(f"dockerfiles: cannot read {path}: {exc.strerror or exc}") from exc


def plan_dockerfiles(project_dir: str, paths: t.Sequence[str], fix: str, value: str | None) -> dict[str, dict[str, t.Any]]:
    """Per Dockerfile as named: its real path, PYTHONPATH lines, and the text before and after the fix."""
    if paths and not os.path.isdir(project_dir):
        raise DockerfileError(f"project_dir {project_dir} does not exist: point it at the stack's deploy directory")
    planned = {}
    for path in paths:
        real = resolve_dockerfile(project_dir, path)
        before = read_text(real)
        try:
            after = rewrite(before, fix, value)
        except DockerfileError as exc:
            raise DockerfileError(f"dockerfiles: cannot set PYTHONPATH in {path}: {exc}") from exc
        planned[path] = {"path": real, "pythonpath_lines": pythonpath_lines(before), "before": before, "after": after}
    return planned


def write_dockerfile(path: str, text: str) -> None:
    """Replace the file atomically, keeping its mode (and its owner, when this runs as root)."""
    info = os.stat(path)
    write_text_atomic(path, text, stat.S_IMODE(info.st_mode))
    if os.geteuid() == 0 and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
        os.chown(path, info.st_uid, info.st_gid)


# --- Docker ---------------------------------------------------------------------------------------------------------

def watched(cli: DockerCli, argv: list[str], what: str, seconds: int, data: str | None = None,
            on_expiry: t.Callable[[], t.Any] | None = None) -> tuple[int, str, str]:
    """_job.run_watched with this module's advice when the command had to be stopped."""
    return run_watched(cli, argv, what, seconds, "raise the option timeout, or find out why it hangs (docker info; an "
                       "import that waits for a network or a lock)", data, on_expiry)


def service_container(cli: DockerCli, project: ComposeProject, service: str) -> dict[str, t.Any]:
    """The service's container (the most alive one), from the compose config and the engine; JobFailed naming the
    project's services when there is none."""
    found = concurrently({"config": lambda: cli.compose_config(project),
                          "containers": lambda: containers_by_service(cli, project, direct=True)})
    services = sorted((found["config"].get("services") or {}))
    if service not in services:
        raise JobFailed(f"service {service} is not in compose project {project.name} (its services: "
                        f"{', '.join(services) or 'none'})")
    container = found["containers"].get(service)
    if not container:
        have = sorted(s for s in found["containers"] if s in services)
        raise JobFailed(f"service {service} of compose project {project.name} has no container (services with one: "
                        f"{', '.join(have) or 'none'}): deploy it, or give image to probe its image instead")
    return container


def local_image(cli: DockerCli, image: str) -> dict[str, t.Any]:
    rc, out, err = cli.run([cli.docker, "image", "inspect", "--", image], "docker image inspect", check=False)
    items = parse_json_stream(out) if rc == 0 else []
    if not items:
        raise JobFailed(f"image {image} is not on this host (docker image inspect failed: {err.strip()[-300:]}): "
                        "build or pull it first", rc=rc, stderr=err)
    return items[0]


def throwaway_name() -> str:
    return f"aiwfe-rollback-pythonpath-{os.getpid()}-{secrets.token_hex(4)}"


def probe_in_image(cli: DockerCli, image: str, params: dict[str, t.Any], where: str,
                   details: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The probe in a throwaway container of ``image``; with a container's ``details`` (docker inspect), under its
    environment, working directory and user, with its mounts read-only."""
    name = throwaway_name()
    config = (details or {}).get("Config") or {}
    argv = probe.run_argv(cli.docker, name, image, params["python"], params["timeout"], params["modules"],
                          workdir=config.get("WorkingDir"), user=config.get("User"),
                          volumes_from=details.get("Id") if details else None)
    environment = dict(item.partition("=")[::2] for item in config.get("Env") or []) if details else None
    rc, out, err = watched(cli, argv, f"the PYTHONPATH probe in {where}", params["timeout"] + GRACE,
                           data=probe.stdin_text(environment),
                           on_expiry=lambda: cli.run([cli.docker, "rm", "-f", "--", name], "docker rm", check=False))
    if probe.MARKER not in out:
        raise probe.run_error(where, rc, err, params["python"])
    return probe.parse(out, where)


def probe_service(cli: DockerCli, container: dict[str, t.Any], params: dict[str, t.Any]) -> tuple[dict[str, t.Any], str, str]:
    """The probe by `docker exec` in the service's running container; when it does not run (a restart loop), in a
    throwaway container of its image with its environment. Returns the answer, V(exec) or V(image), and where."""
    cid, cname = container["id"], container.get("name") or container["id"][:12]
    if container.get("state") == "running":
        where = f"container {cname} (docker exec)"
        rc, out, err = watched(cli, probe.exec_argv(cli.docker, cid, params["python"], params["timeout"], params["modules"]),
                               f"the PYTHONPATH probe in {where}", params["timeout"] + GRACE, data=probe.stdin_text())
        if probe.MARKER in out:
            return probe.parse(out, where), "exec", where
        details = cli.inspect("container", [cid])[cid]
        # A container in a restart loop may run again by now: it restarted under the probe (its restart count moved).
        restarted = details and details.get("RestartCount", 0) != container.get("restart_count", 0)
        if details and (details.get("State") or {}).get("Running") and not restarted:
            raise probe.run_error(where, rc, err, params["python"])
        reason = "restarted while the probe ran" if restarted else "stopped while the probe ran"
    else:
        details = cli.inspect("container", [cid])[cid]
        reason = f"is {container.get('state')}"
    if not details:
        raise JobFailed(f"container {cname} is gone: run again")
    image = details.get("Image") or container.get("image_id")
    where = (f"a throwaway container of image {str(image)[:19]} (container {cname} {reason}; with its environment, "
             "working directory, user and read-only mounts)")
    return probe_in_image(cli, image, params, where, details), "image", where


def service_logs(cli: DockerCli, container: dict[str, t.Any], since: str, seconds: int) -> str:
    """The container's log (standard output and error) since ``since``."""
    argv = [cli.docker, "logs", "--since", since, container["id"]]
    rc, out, err = watched(cli, argv, f"docker logs of container {container.get('name')}", seconds)
    if rc != 0:
        raise DockerCliError(f"docker logs failed (rc={rc}): {err.strip()[-500:]}", cmd=argv, rc=rc, stderr=err)
    return out + "\n" + err


# --- report ---------------------------------------------------------------------------------------------------------

def import_line(name: str, entry: dict[str, t.Any]) -> str:
    """One line per import: ok (where from), not_found (which module is missing) or error (what the module raised)."""
    status = entry.get("status")
    if status == "ok":
        return f"import {name}: ok ({entry.get('file') or 'built in'})"
    if status == "not_found":
        missing = entry.get("missing")
        if missing == name:
            which = "the module itself"
        elif name.startswith(f"{missing}."):
            which = f"its package {missing}"
        else:
            which = f"{missing}, which it imports"
        return f"import {name}: not_found - {entry.get('error')} ({which})"
    where = f" at {entry['traceback']}" if entry.get("traceback") else ""
    return f"import {name}: error - {entry.get('error')}{where}"


def pythonpath_line(answer: dict[str, t.Any]) -> str:
    value = answer.get("pythonpath")
    if value is None:
        return "PYTHONPATH is not set"
    missing = [e["path"] for e in answer.get("pythonpath_entries") or [] if not e.get("is_dir")]
    return f"PYTHONPATH={value}" + (f" (not a directory in the container: {', '.join(missing)})" if missing else "")


def dockerfile_line(path: str, entry: dict[str, t.Any], fix: str, value: str | None, check_mode: bool,
                    blocked: bool = False) -> str:
    """One line per Dockerfile: its PYTHONPATH lines and what the fix did (would do, or did not do and why)."""
    lines = entry["pythonpath_lines"]
    found = "; ".join(f"line {item['line']}: {item['instruction']}" for item in lines) or "no ENV PYTHONPATH"
    if fix == "none":
        return f"Dockerfile {path}: {found}"
    verb = {"remove": "removed", "set": f"PYTHONPATH set to {value}"}[fix]
    if entry["after"] == entry["before"]:
        done = "nothing to remove" if fix == "remove" else f"PYTHONPATH already {value}"
    elif blocked:
        done = f"not {verb}: imports failed (fail_on_error)"
    else:
        done = f"would be {verb}" if check_mode else verb
    return f"Dockerfile {path}: {found} - {done}"


# --- the module's run (aiwfe.rollback.pythonpath_check) --------------------------------------------------------------

def observe(cli: DockerCli, project: ComposeProject | None, params: dict[str, t.Any],
            result: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """Probe the service's container or the image, and read the service's logs (into ``result``); the probe's
    answer and where it ran (None, None without service or image)."""
    answer = where = None
    try:
        container = service_container(cli, project, params["service"]) if params.get("service") and project else None
        if container is not None:
            answer, result["probe"], where = probe_service(cli, container, params)
            result["container"] = container.get("name")
        elif params.get("image"):
            info = local_image(cli, params["image"])
            where = f"a throwaway container of image {params['image']}"
            answer, result["probe"] = probe_in_image(cli, info["Id"], params, where), "image"
            result["image_id"] = info["Id"]
        if container is not None and params.get("logs_since") is not None:
            text = service_logs(cli, container, params["logs_since"], params["timeout"])
            result["log_import_errors"] = parse_log_import_errors(text)
    except JobFailed as exc:
        exc.result = dict(result, **exc.result)
        raise
    except DockerCliError as exc:
        raise JobFailed.from_cli(exc, result) from exc
    except probe.ProbeError as exc:
        raise JobFailed(str(exc), result) from exc
    return answer, where


def write_fixes(planned: dict[str, dict[str, t.Any]], result: dict[str, t.Any], check_mode: bool) -> None:
    """Write the Dockerfiles the fix changes (each real file once); a failure leaves the ones not written as they
    were, and says so in ``result``."""
    written: set[str] = set()
    for path, entry in planned.items():
        if not entry["changed"] or entry["path"] in written:
            continue
        if not check_mode:
            try:
                write_dockerfile(entry["path"], entry["after"])
            except OSError as exc:
                for other, item in planned.items():
                    if item["path"] not in written:
                        result["dockerfiles"][other]["changed"] = False
                result["diff"] = [d for d in result["diff"] if d["after_header"] in written]
                raise JobFailed(f"cannot write {entry['path']} (dockerfiles: {path}): {exc}; the Dockerfiles before "
                                "it in the list were written", result) from exc
        written.add(entry["path"])
        result["changed"] = True


def run(cli: DockerCli, project: ComposeProject | None, params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """Check every option, read the Dockerfiles, probe, read the logs; fail (nothing written) or write the fix."""
    result: dict[str, t.Any] = {"changed": False, "probe": "none", "pythonpath": None, "pythonpath_entries": [],
                                "sys_path": [], "cwd": None, "imports": {}, "failed_imports": [],
                                "log_import_errors": [], "dockerfiles": {}, "report": [], "diff": []}
    errors = option_errors(params)
    if errors:
        raise JobFailed("; ".join(errors), result)
    fix, value = params["fix"], params.get("pythonpath")
    try:
        planned = plan_dockerfiles(params["project_dir"], params["dockerfiles"], fix, value)
    except DockerfileError as exc:
        raise JobFailed(str(exc), result) from exc
    answer, where = observe(cli, project, params, result)

    report = result["report"]
    if answer is not None:
        result.update({k: answer.get(k) for k in ("pythonpath", "pythonpath_entries", "sys_path", "cwd", "python_version")})
        result["imports"] = answer["imports"]
        result["failed_imports"] = [name for name in params["modules"] if answer["imports"].get(name, {}).get("status") != "ok"]
        report.append(f"probe: {result['probe']} in {where}, python {answer.get('python_version')}")
        report.append(pythonpath_line(answer))
        report.append(f"cwd={answer.get('cwd')}; sys.path={answer.get('sys_path')}")
        report.extend(import_line(name, answer["imports"].get(name, {})) for name in params["modules"])
    if params.get("logs_since") is not None:
        seen = result["log_import_errors"]
        missing = sorted({e["missing"] for e in seen if e["missing"]})
        report.append(f"logs since {params['logs_since']}: " + (
            f"{sum(e['count'] for e in seen)} import error lines ({len(seen)} distinct), missing: "
            f"{', '.join(missing) or 'not named'}" if seen else "no ImportError or ModuleNotFoundError"))
    blocked = bool(result["failed_imports"] and params["fail_on_error"])
    for path, entry in planned.items():
        entry["changed"] = entry["after"] != entry["before"] and not blocked
        result["dockerfiles"][path] = {"path": entry["path"], "pythonpath_lines": entry["pythonpath_lines"],
                                       "changed": entry["changed"]}
        if entry["changed"] and all(d["after_header"] != entry["path"] for d in result["diff"]):
            result["diff"].append({"before": entry["before"], "after": entry["after"],
                                   "before_header": entry["path"], "after_header": entry["path"]})
        report.append(dockerfile_line(path, entry, fix, value, check_mode, blocked))

    if blocked:
        lines = [import_line(name, result["imports"].get(name, {})) for name in result["failed_imports"]]
        pending = " No Dockerfile was changed (fail_on_error: false applies the fix while imports fail)." if any(
            e["after"] != e["before"] for e in planned.values()) else ""
        raise JobFailed(f"{len(lines)} of {len(params['modules'])} imports failed in {where} "
                        f"({pythonpath_line(answer or {})}): {'; '.join(lines)}.{pending}", result)
    write_fixes(planned, result, check_mode)
    return result
