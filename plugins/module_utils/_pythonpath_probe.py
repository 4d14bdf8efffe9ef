# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Python sees inside a container: PYTHONPATH, sys.path, the working directory, and which modules import.

SCRIPT runs on the container's own Python, given on standard input: `docker exec -i CONTAINER PYTHON - TIMEOUT
MODULE...` in a running container, or `docker run --rm -i --network none --pull never --entrypoint PYTHON IMAGE -
TIMEOUT MODULE...` in a throwaway one. It imports each module with importlib and tells three outcomes apart: ok,
not_found (ModuleNotFoundError: ``exc.name`` is the module that is missing - the one asked for or one it imports) and
error (any other exception raised while the module ran: its type, message and the last traceback line). It prints one
line, MARKER followed by a JSON object; parse() reads it back.

A throwaway container of a service's image gets the service's environment without it ever being on a command line
(it may hold secrets): stdin_text() puts ENVIRONMENT (and the script's own SOURCE) before the script, and the script
starts itself again with os.execve under that environment, so the interpreter's sys.path is built from the service's
PYTHONPATH. The script must run on any Python 3.6+ alone (no f-strings, no walrus, standard library only); it stops
the imports after TIMEOUT seconds (SIGALRM) and leaves with os._exit, so threads a module started cannot hold it.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import marked_json

MARKER = "AIWFE-PYTHONPATH-PROBE "

SCRIPT = r'''
import importlib
import json
import os
import signal
import sys
import traceback

MARKER = "AIWFE-PYTHONPATH-PROBE "


class ProbeTimeout(BaseException):
    """The probe's time ran out (raised by SIGALRM in whatever import runs then)."""


def _expired(_signum, _frame):
    raise ProbeTimeout()


def _last_frame(tb):
    """The last frame of the traceback outside importlib's own machinery (and this script)."""
    frames = [f for f in traceback.extract_tb(tb)
              if not (str(f[0]).startswith("<frozen importlib") or str(f[0]).endswith(os.sep + "importlib" + os.sep
                                                                                     + "__init__.py")
                      or f[0] in ("<stdin>", "<string>"))]
    if not frames:
        return None
    frame = frames[-1]
    return 'File "%s", line %s, in %s' % (frame[0], frame[1], frame[2])


def _error(exc, tb):
    text = str(exc)
    return {"error_type": type(exc).__name__, "error": ("%s: %s" % (type(exc).__name__, text) if text
                                                        else type(exc).__name__)[:1000],
            "traceback": _last_frame(tb)}


def probe_import(name):
    """ok, not_found (which module is missing) or error (what the module raised)."""
    entry = {"status": "ok", "missing": None, "error": None, "error_type": None, "traceback": None, "file": None}
    try:
        module = importlib.import_module(name)
    except ProbeTimeout:
        raise
    except ModuleNotFoundError as exc:
        entry.update(_error(exc, sys.exc_info()[2]))
        entry["status"] = "not_found"
        entry["missing"] = exc.name
    except BaseException as exc:  # SystemExit and KeyboardInterrupt of a module too: it is the module's failure
        entry.update(_error(exc, sys.exc_info()[2]))
        entry["status"] = "error"
    else:
        entry["file"] = getattr(module, "__file__", None)
    return entry


def probe(timeout, names):
    pythonpath = os.environ.get("PYTHONPATH")
    entries = []
    for path in (pythonpath or "").split(os.pathsep):
        if path:
            entries.append({"path": path, "exists": os.path.exists(path), "is_dir": os.path.isdir(path)})
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    found = {"ok": True, "pythonpath": pythonpath, "pythonpath_entries": entries, "sys_path": list(sys.path),
             "cwd": cwd, "executable": sys.executable, "python_version": "%d.%d.%d" % tuple(sys.version_info[:3]),
             "uid": os.getuid() if hasattr(os, "getuid") else None, "imports": {}}
    signal.signal(signal.SIGALRM, _expired)
    signal.alarm(max(1, timeout))
    stdout = sys.stdout
    sys.stdout = sys.stderr  # what a module prints while it is imported cannot mix with the answer
    try:
        for index, name in enumerate(names):
            try:
                found["imports"][name] = probe_import(name)
            except ProbeTimeout:
                for late in names[index:]:
                    found["imports"][late] = {
                        "status": "error", "missing": None, "error_type": "Timeout", "traceback": None, "file": None,
                        "error": ("did not finish importing within timeout=%d s" % timeout if late == name
                                  else "not tried: the probe's timeout=%d s ran out before it" % timeout)}
                break
    finally:
        signal.alarm(0)
        sys.stdout = stdout
    return found


def _again(environment, source):
    """Start this script again under the service's environment (sys.path is made when the interpreter starts)."""
    merged = dict(os.environ)
    merged.update(environment)
    python = sys.executable or "python3"
    os.execve(python, [python, "-c", source] + sys.argv[1:], merged)


def main():
    environment = globals().get("ENVIRONMENT")
    try:
        if environment is not None:
            _again(environment, globals()["SOURCE"])
        args = sys.argv[1:]
        found = probe(int(args[0]), args[1:])
    except Exception as exc:  # the message goes back to the module, which fails with it
        found = {"ok": False, "error": "%s: %s" % (type(exc).__name__, str(exc)[:800])}
    sys.__stdout__.write("\n" + MARKER + json.dumps(found, sort_keys=True) + "\n")
    sys.__stdout__.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
'''


class ProbeError(Exception):
    """The probe could not run or gave no answer; the message says why and what to do."""


def stdin_text(environment: dict[str, str] | None = None) -> str:
    """What the container's Python reads on standard input: SCRIPT, preceded - for a throwaway container that must
    see a service's environment - by that environment and the script's own source (JSON literals are Python's)."""
    if environment is None:
        return SCRIPT
    return f"ENVIRONMENT = {json.dumps(environment, sort_keys=True)}\nSOURCE = {json.dumps(SCRIPT)}\n{SCRIPT}"


def probe_args(timeout: int, modules: t.Sequence[str]) -> list[str]:
    """The interpreter's arguments after the image or container: the script on stdin, the timeout, the modules."""
    return ["-", str(timeout)] + list(modules)


def exec_argv(docker: str, container: str, python: str, timeout: int, modules: t.Sequence[str]) -> list[str]:
    """The probe in a running container (its user, environment and working directory)."""
    return [docker, "exec", "-i", container, python] + probe_args(timeout, modules)


def run_argv(docker: str, name: str, image: str, python: str, timeout: int, modules: t.Sequence[str],
             workdir: str | None = None, user: str | None = None, volumes_from: str | None = None) -> list[str]:
    """The probe in a throwaway container of ``image`` named ``name`` (so a timeout can remove it): no network, never
    pulled, removed after; with a service's working directory, user and (read-only) mounts when given."""
    argv = [docker, "run", "--rm", "-i", "--name", name, "--network", "none", "--pull", "never", "--log-driver", "none",
            "--entrypoint", python]
    if workdir:
        argv += ["--workdir", workdir]
    if user:
        argv += ["--user", user]
    if volumes_from:
        argv += ["--volumes-from", f"{volumes_from}:ro"]
    return argv + [image] + probe_args(timeout, modules)


def parse(stdout: str, where: str) -> dict[str, t.Any]:
    """The probe's JSON object from its output (anything a module printed before it is ignored)."""
    found = marked_json(stdout, MARKER)
    if found is None:
        raise ProbeError(f"the PYTHONPATH probe printed no result in {where}: {stdout.strip()[-300:]!r}")
    if not found.get("ok"):
        raise ProbeError(f"the PYTHONPATH probe failed in {where}: {found.get('error')}")
    if not isinstance(found.get("imports"), dict) or not isinstance(found.get("sys_path"), list):
        raise ProbeError(f"the PYTHONPATH probe's answer in {where} has no imports or sys.path")
    return found


def run_error(where: str, rc: int, stderr: str, python: str) -> ProbeError:
    """Why `docker exec` / `docker run` of the probe failed, in words an operator acts on."""
    text = stderr.strip()
    lower = text.lower()
    if "no such image" in lower or "unable to find image" in lower or "pull access denied" in lower:
        return ProbeError(f"the image of {where} is not on this host: build or pull it first")
    if rc in (126, 127) or "executable file not found" in lower:
        return ProbeError(f"{where} has no {python}: set the option python to its Python interpreter")
    return ProbeError(f"running the PYTHONPATH probe in {where} failed (rc={rc}): {text[-500:]}")
