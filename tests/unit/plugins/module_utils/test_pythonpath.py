# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pythonpath_check: the option checks, the log parser (recorded logs), the Dockerfile reader and rewriter (multi-var
ENV lines, continuations, legacy form, idempotence), the path check, the in-container probe (run here on this Python),
and main() against a fake docker CLI: the exact calls, what check mode and a failure leave alone."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiwfe.rollback.plugins.module_utils import _pythonpath as pp
from ansible_collections.aiwfe.rollback.plugins.module_utils import _pythonpath_probe as probe
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.modules import pythonpath_check


# --- option checks --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["aiwfe_api", "aiwfe_api.main", "_x.y2.z", "match", "café"])
def test_module_names_accepted(name):
    assert pp.module_name_error(name) is None


@pytest.mark.parametrize("name", ["", "bad-name", "a..b", ".a", "a.", "class", "aiwfe.import", "1abc", "a b",
                                  "os; rm -rf /", "a/b", "-c"])
def test_module_names_refused(name):
    assert "module name" in pp.module_name_error(name)


@pytest.mark.parametrize("since", ["2026-11-30T03:25:00Z", "2026-11-30T03:25:00.123456789+01:00", "2026-11-30",
                                   "2026-11-30T03:25", "1764473100", "1764473100.5", "15m", "2h", "1h30m", "500ms"])
def test_logs_since_accepted(since):
    assert pp.logs_since_error(since) is None


@pytest.mark.parametrize("since", ["yesterday", "-1h", "15 m", "2026-13", "", "--tail=5", "1d"])
def test_logs_since_refused(since):
    assert "docker logs --since" in pp.logs_since_error(since)


def params(**extra):
    base = {"project_dir": "/nonexistent", "project_name": "p", "files": [], "ledger_dir": "/nonexistent/ledger",
            "docker_cli": "docker", "service": None, "image": None, "modules": [], "python": "python3", "timeout": 60,
            "logs_since": None, "dockerfiles": [], "fix": "none", "pythonpath": None, "fail_on_error": True}
    base.update(extra)
    return base


@pytest.mark.parametrize("extra, words", [
    ({"modules": ["a"]}, "give service or image"),
    ({"image": "i", "logs_since": "15m"}, "logs_since reads a service container's logs"),
    ({"service": "api", "logs_since": "soon"}, "is not a time"),
    ({"image": "i", "python": "-c"}, "not an interpreter"),
    ({"image": "i", "python": "python3 -S"}, "not an interpreter"),
    ({"image": "i", "timeout": 0}, "timeout must be at least 1"),
    ({"fix": "remove"}, "name them in dockerfiles"),
    ({"fix": "set", "pythonpath": "/a\nRUN rm -rf /", "dockerfiles": ["D"]}, "line break"),
    ({"image": "i", "modules": ["ok", "not-ok"]}, "'not-ok' is not a dotted"),
])
def test_option_errors(extra, words):
    errors = pp.option_errors(params(**extra))
    assert any(words in e for e in errors), errors


def test_good_options_have_no_errors():
    assert pp.option_errors(params(service="api", modules=["aiwfe_api.main"], logs_since="15m",
                                   dockerfiles=["docker/api/Dockerfile"], fix="set", pythonpath="/opt/app/api")) == []


# --- the logs -------------------------------------------------------------------------------------------------------

# docker logs of the reference stack's api at v1.3.0-pythonpath (restart loop), and lines other applications print.
LOGS = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
ModuleNotFoundError: No module named 'aiwfe_api'
Traceback (most recent call last):
  File "<string>", line 1, in <module>
ModuleNotFoundError: No module named 'aiwfe_api'
2026-11-30 03:25:00,123 ERROR worker: ImportError: cannot import name 'Celery' from 'celery' (/usr/lib/python3/dist-packages/celery/__init__.py)
ImportError: cannot import name 'main'
ImportError: No module named yaml
ModuleNotFoundError: No module named 'aiwfe_common.db'; 'aiwfe_common' is not a package
ImportError: attempted relative import with no known parent package
    raise ImportError("optional speedups missing")
INFO all good, no import problem here
"""


def test_parse_log_import_errors():
    found = pp.parse_log_import_errors(LOGS)
    assert [(e["missing"], e["kind"], e["count"]) for e in found] == [
        ("aiwfe_api", "module", 2),
        ("celery.Celery", "name", 1),
        ("main", "name", 1),
        ("yaml", "module", 1),
        ("aiwfe_common.db", "module", 1),
        (None, None, 1),
        (None, None, 1),
    ]
    assert found[0]["line"] == "ModuleNotFoundError: No module named 'aiwfe_api'"


def test_parse_log_import_errors_without_any():
    assert pp.parse_log_import_errors("starting\nlistening on :8000\n") == []


# --- Dockerfiles: reading -------------------------------------------------------------------------------------------

API = """\
# api of the AI Workflow Engine.
FROM aiwfe/python-base:bookworm
COPY app/api /opt/app/api
LABEL org.aiwfe.service="api" \\
      org.aiwfe.release="$AIWFE_RELEASE"
ENV AIWFE_RELEASE=$AIWFE_RELEASE
# Code now lives under src/ (PEP 517 layout).
ENV PYTHONPATH=/opt/app/src
WORKDIR /opt/app
CMD ["python3", "-c", "from aiwfe_api.main import main; main()"]
"""

MULTI = """\
FROM base AS build
env A=1 PYTHONPATH=/build \\
    # a comment line inside the instruction

    B="two words"
ENV PYTHONPATH /legacy/path
RUN <<EOF
ENV PYTHONPATH=/not/an/instruction
EOF
ENV PYTHONPATHX=/other C='x y'
"""


def lines_of(text):
    return [(item["line"], item["value"]) for item in pp.pythonpath_lines(text)]


def test_reads_the_reference_release():
    assert pp.pythonpath_lines(API) == [{"line": 8, "value": "/opt/app/src", "instruction": "ENV PYTHONPATH=/opt/app/src"}]


def test_reads_every_form():
    assert lines_of(MULTI) == [(2, "/build"), (6, "/legacy/path")]
    assert pp.pythonpath_lines(MULTI)[0]["instruction"] == 'env A=1 PYTHONPATH=/build B="two words"'


def test_reads_quoted_and_continued_values():
    text = 'FROM x\nENV PYTHONPATH="/a b:/c" D=1\nENV PYTHONPATH=/x\\\n/y\nENV PYTHONPATH=\'$HOME/z\'\n'
    assert lines_of(text) == [(2, "/a b:/c"), (3, "/x/y"), (5, "$HOME/z")]


def test_reads_with_the_escape_directive():
    text = "# escape=`\nFROM x\nENV A=1 `\n    PYTHONPATH=C:\\app\\src\n"
    assert lines_of(text) == [(4, "C:\\app\\src")]


# --- Dockerfiles: rewriting -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, after", [
    (API, API.replace("ENV PYTHONPATH=/opt/app/src\n", "")),
    ("FROM x\nENV A=1 PYTHONPATH=/p B=2\n", "FROM x\nENV A=1 B=2\n"),
    ("FROM x\nENV PYTHONPATH=/p B=2\n", "FROM x\nENV B=2\n"),
    ("FROM x\nENV A=1 PYTHONPATH=/p\n", "FROM x\nENV A=1\n"),
    ("FROM x\nENV PYTHONPATH=/p PYTHONPATH=/q B=2\n", "FROM x\nENV B=2\n"),
    ("FROM x\nENV PYTHONPATH=/p A=1 PYTHONPATH=/q B=2\n", "FROM x\nENV A=1 B=2\n"),
    ("FROM x\nENV PYTHONPATH=/p PYTHONPATH=/q\nRUN true\n", "FROM x\nRUN true\n"),
    ("FROM x\nENV PYTHONPATH /legacy path\nRUN true\n", "FROM x\nRUN true\n"),
    ("FROM x\nENV A=1 \\\n    PYTHONPATH=/p \\\n    B=2\n", "FROM x\nENV A=1 \\\n    B=2\n"),
    ("FROM x\nENV PYTHONPATH=/p \\\n    B=2\n", "FROM x\nENV B=2\n"),
    ("FROM x\nENV A=1 \\\n    PYTHONPATH=/p\nRUN true\n", "FROM x\nENV A=1\nRUN true\n"),
    ("FROM x\r\nENV A=1 PYTHONPATH=/p\r\nENV PYTHONPATH=/q\r\nRUN true\r\n", "FROM x\r\nENV A=1\r\nRUN true\r\n"),
    ("FROM x\nENV PYTHONPATH=/p", "FROM x\n"),
    ("FROM x\nENV PYTHONPATHX=1 C=2\n", "FROM x\nENV PYTHONPATHX=1 C=2\n"),
    (MULTI, MULTI.replace(" PYTHONPATH=/build", "").replace("ENV PYTHONPATH /legacy/path\n", "")),
])
def test_remove(before, after):
    assert pp.rewrite(before, "remove") == after
    assert pp.rewrite(after, "remove") == after          # idempotent
    assert not lines_of(after)


@pytest.mark.parametrize("before, value, after", [
    (API, "/opt/app/api:/opt/app/common", API.replace("=/opt/app/src", "=/opt/app/api:/opt/app/common")),
    ("FROM x\nENV A=1 PYTHONPATH=/p B=2\n", "/q", "FROM x\nENV A=1 PYTHONPATH=/q B=2\n"),
    ("FROM x\nENV PYTHONPATH /p\n", "/q", "FROM x\nENV PYTHONPATH /q\n"),
    ("FROM x\nENV A=1 \\\n  PYTHONPATH=/p \\\n  B=2\n", "/q", "FROM x\nENV A=1 \\\n  PYTHONPATH=/q \\\n  B=2\n"),
    ("FROM x\nENV PYTHONPATH=/p\n", "/a b", 'FROM x\nENV PYTHONPATH="/a b"\n'),
    ("FROM x\nENV PYTHONPATH=/p\n", 'say "hi"\\', 'FROM x\nENV PYTHONPATH="say \\"hi\\"\\\\"\n'),
    ("FROM x\nENV PYTHONPATH=/p\n", "$APP_HOME/src:${EXTRA}", "FROM x\nENV PYTHONPATH=$APP_HOME/src:${EXTRA}\n"),
    ("FROM x\nENV PYTHONPATH=/p\n", "", 'FROM x\nENV PYTHONPATH=""\n'),
    ('FROM x\nENV PYTHONPATH="/q"\n', "/q", 'FROM x\nENV PYTHONPATH="/q"\n'),        # holds it already: as written
    ("FROM a AS b\nRUN x\nFROM c\nCMD y\n", "/q", "FROM a AS b\nRUN x\nFROM c\nENV PYTHONPATH=/q\nCMD y\n"),
    ("FROM c", "/q", "FROM c\nENV PYTHONPATH=/q"),
    ("FROM c\r\nCMD y\r\n", "/q", "FROM c\r\nENV PYTHONPATH=/q\r\nCMD y\r\n"),
])
def test_set(before, value, after):
    assert pp.rewrite(before, "set", value) == after
    assert pp.rewrite(after, "set", value) == after      # idempotent
    assert {item["value"] for item in pp.pythonpath_lines(after)} == {value}


def test_set_needs_a_from():
    with pytest.raises(pp.DockerfileError, match="no FROM"):
        pp.rewrite("# empty\n", "set", "/q")


def test_none_changes_nothing():
    assert pp.rewrite(MULTI, "none") == MULTI


@pytest.mark.parametrize("value", ["/a", "/a b", 'q"uo\'te', "back\\slash", "tab\there", "$X", "x\\", ""])
def test_word_round_trip(value):
    assert pp.unquote(pp.dockerfile_word(value)) == value
    assert pp.unquote(pp.dockerfile_word(value, "`"), "`") == value


# --- Dockerfiles: paths and files -----------------------------------------------------------------------------------

@pytest.fixture(name="project")
def fixture_project(tmp_path):
    root = tmp_path / "stack"
    (root / "docker" / "api").mkdir(parents=True)
    (root / "compose.yaml").write_text("services: {}\n")
    (root / "docker" / "api" / "Dockerfile").write_text(API)
    os.chmod(root / "docker" / "api" / "Dockerfile", 0o640)
    (tmp_path / "outside").write_text("FROM x\nENV PYTHONPATH=/p\n")
    return root


def test_paths_inside_the_project(project):
    real = str(project / "docker" / "api" / "Dockerfile")
    assert pp.resolve_dockerfile(str(project), "docker/api/Dockerfile") == real
    assert pp.resolve_dockerfile(str(project), real) == real
    os.symlink("docker/api/Dockerfile", project / "Dockerfile.api")
    assert pp.resolve_dockerfile(str(project), "Dockerfile.api") == real


@pytest.mark.parametrize("path, words", [
    ("../outside", "outside project_dir"),
    ("docker/../../outside", "outside project_dir"),
    ("link", "outside project_dir"),
    ("docker/none/Dockerfile", "does not exist"),
    ("docker", "does not exist"),
])
def test_paths_refused(project, path, words):
    os.symlink(project.parent / "outside", project / "link")
    with pytest.raises(pp.DockerfileError, match=words):
        pp.resolve_dockerfile(str(project), path)


def test_absolute_path_outside_refused(project):
    with pytest.raises(pp.DockerfileError, match="outside project_dir"):
        pp.resolve_dockerfile(str(project), str(project.parent / "outside"))


# --- the probe ------------------------------------------------------------------------------------------------------

def test_probe_script_runs_on_python_3_6():
    ast.parse(probe.SCRIPT, feature_version=(3, 6))
    ast.parse(probe.stdin_text({"A": "1"}), feature_version=(3, 6))


@pytest.fixture(name="script")
def fixture_script():
    namespace = {"__name__": "aiwfe_pythonpath_probe_under_test"}
    exec(compile(probe.SCRIPT, "<stdin>", "exec"), namespace)  # pylint: disable=exec-used
    return namespace


@pytest.fixture(name="code")
def fixture_code(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "ppt_fine.py").write_text("VALUE = 1\nprint('noise on stdout')\n")
    (code / "ppt_boom.py").write_text("x = 1\nraise ValueError('boom at import')\n")
    (code / "ppt_needs.py").write_text("import ppt_definitely_missing\n")
    (code / "ppt_name.py").write_text("from json import nothing_like_this\n")
    (code / "ppt_exits.py").write_text("import sys\nsys.exit(3)\n")
    (code / "ppt_slow.py").write_text("import time\ntime.sleep(30)\n")
    monkeypatch.syspath_prepend(str(code))
    yield code
    for name in list(sys.modules):
        if name.startswith("ppt_"):
            del sys.modules[name]


def test_the_three_outcomes_are_told_apart(script, code):
    found = {name: script["probe_import"](name) for name in
             ("ppt_fine", "ppt_missing_here", "ppt_needs", "ppt_boom", "ppt_name", "ppt_exits", "json.nope")}
    assert found["ppt_fine"]["status"] == "ok" and found["ppt_fine"]["file"] == str(code / "ppt_fine.py")
    assert (found["ppt_missing_here"]["status"], found["ppt_missing_here"]["missing"]) == ("not_found", "ppt_missing_here")
    assert (found["ppt_needs"]["status"], found["ppt_needs"]["missing"]) == ("not_found", "ppt_definitely_missing")
    assert found["ppt_needs"]["traceback"] == f'File "{code / "ppt_needs.py"}", line 1, in <module>'
    assert (found["json.nope"]["status"], found["json.nope"]["missing"]) == ("not_found", "json.nope")
    boom = found["ppt_boom"]
    assert (boom["status"], boom["error_type"], boom["error"]) == ("error", "ValueError", "ValueError: boom at import")
    assert boom["traceback"] == f'File "{code / "ppt_boom.py"}", line 2, in <module>'
    assert (found["ppt_name"]["status"], found["ppt_name"]["error_type"]) == ("error", "ImportError")
    assert (found["ppt_exits"]["status"], found["ppt_exits"]["error"]) == ("error", "SystemExit: 3")


def test_the_probe_stops_at_its_timeout(script, code):
    started = time.monotonic()
    found = script["probe"](1, ["ppt_fine", "ppt_slow", "json"])
    assert time.monotonic() - started < 10
    assert found["imports"]["ppt_fine"]["status"] == "ok"
    assert found["imports"]["ppt_slow"]["error"] == "did not finish importing within timeout=1 s"
    assert found["imports"]["json"]["error"].startswith("not tried")


def run_script(stdin, *args, env=None):
    proc = subprocess.run([sys.executable, "-", *args], input=stdin, capture_output=True, text=True, check=False,
                          env=env, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_script_answers_one_json_line(code):
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}/nonexistent/dir")
    rc, out, _err = run_script(probe.SCRIPT, "20", "ppt_fine", "ppt_boom", env=env)
    assert rc == 0
    answer = probe.parse(out, "here")
    assert answer["pythonpath"] == env["PYTHONPATH"]
    assert answer["pythonpath_entries"] == [{"path": str(code), "exists": True, "is_dir": True},
                                            {"path": "/nonexistent/dir", "exists": False, "is_dir": False}]
    assert str(code) in answer["sys_path"] and answer["cwd"] == os.getcwd()
    assert {n: e["status"] for n, e in answer["imports"].items()} == {"ppt_fine": "ok", "ppt_boom": "error"}


def test_the_script_starts_again_under_the_given_environment(code):
    """A throwaway container of a service's image: the service's environment comes on stdin, never on a command
    line, and sys.path is built from its PYTHONPATH."""
    stdin = probe.stdin_text({"PYTHONPATH": str(code), "SECRET_TOKEN": "s3cr3t value"})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    rc, out, _err = run_script(stdin, "20", "ppt_fine", env=env)
    assert rc == 0
    answer = probe.parse(out, "here")
    assert answer["pythonpath"] == str(code) and str(code) in answer["sys_path"]
    assert answer["imports"]["ppt_fine"]["status"] == "ok"


@pytest.mark.parametrize("out, words", [
    ("", "printed no result"),
    ("noise\n" + probe.MARKER + "{broken\n", "printed no result"),
    (probe.MARKER + json.dumps({"ok": False, "error": "OSError: no"}) + "\n", "failed in here: OSError: no"),
    (probe.MARKER + json.dumps({"ok": True}) + "\n", "has no imports"),
])
def test_parse_refuses(out, words):
    with pytest.raises(probe.ProbeError, match=words):
        probe.parse(out, "here")


def test_parse_takes_the_last_marker_line():
    good = {"ok": True, "imports": {}, "sys_path": [""]}
    out = f"{probe.MARKER}{{}}\nmodule noise\n\n{probe.MARKER}{json.dumps(good)}\n"
    assert probe.parse(out, "here") == good


@pytest.mark.parametrize("rc, stderr, words", [
    (125, "Unable to find image 'x:1' locally", "not on this host"),
    (127, 'exec: "python3": executable file not found in $PATH', "has no python3"),
    (1, "something else", "failed (rc=1): something else"),
])
def test_run_error(rc, stderr, words):
    assert words in str(probe.run_error("here", rc, stderr, "python3"))


def test_argv():
    assert probe.exec_argv("docker", "cid", "python3", 60, ["a", "b.c"]) == [
        "docker", "exec", "-i", "cid", "python3", "-", "60", "a", "b.c"]
    assert probe.run_argv("docker", "n", "sha256:1", "python3.11", 5, ["a"], "/opt/app", "app", "cid") == [
        "docker", "run", "--rm", "-i", "--name", "n", "--network", "none", "--pull", "never", "--log-driver", "none",
        "--entrypoint", "python3.11", "--workdir", "/opt/app", "--user", "app", "--volumes-from", "cid:ro",
        "sha256:1", "-", "5", "a"]


# --- main() against a fake docker CLI -------------------------------------------------------------------------------

CID = "c" * 64
IMAGE_ID = "sha256:" + "7" * 64
SECRET = "s3cr3t-value-9d2"


def answer(imports, pythonpath="/opt/app/src"):
    return {"ok": True, "pythonpath": pythonpath, "pythonpath_entries": [{"path": pythonpath, "exists": False,
                                                                          "is_dir": False}],
            "sys_path": ["", pythonpath, "/usr/lib/python3.11"], "cwd": "/opt/app", "python_version": "3.11.2",
            "imports": imports}


NOT_FOUND = {"status": "not_found", "missing": "aiwfe_api", "error": "ModuleNotFoundError: No module named 'aiwfe_api'",
             "error_type": "ModuleNotFoundError", "traceback": None, "file": None}
OK = {"status": "ok", "missing": None, "error": None, "error_type": None, "traceback": None, "file": "/x.py"}


class Engine:
    """A fake docker CLI: one compose project with the services api (its container in ``state``) and worker (no
    container), the image aiwfe/api:v1; records every call with its standard input."""

    def __init__(self, state="running", imports=None):
        self.state = state
        self.imports = imports if imports is not None else {"aiwfe_api": NOT_FOUND}
        self.calls = []
        self.stdin = []
        self.logs = LOGS

    def details(self):
        return {"Id": CID, "Name": "/p-api-1", "Image": IMAGE_ID, "RestartCount": 4,
                "State": {"Status": self.state, "Running": self.state == "running"},
                "Config": {"Image": "aiwfe/api:v1", "WorkingDir": "/opt/app", "User": "",
                           "Env": ["PATH=/usr/bin", "PYTHONPATH=/opt/app/src", f"SECRET_TOKEN={SECRET}"],
                           "Labels": {"com.docker.compose.service": "api", "com.docker.compose.project": "p"}},
                "NetworkSettings": {"Ports": {}}}

    def __call__(self, argv, **kwargs):
        self.calls.append(argv)
        self.stdin.append(kwargs.get("data"))
        if argv[1] == "compose":
            return 0, json.dumps({"services": {"api": {"image": "aiwfe/api:v1"}, "worker": {}}}), ""
        if argv[1] == "ps":
            return 0, CID + "\n", ""
        if argv[1:3] == ["container", "inspect"]:
            return 0, json.dumps([self.details()]), ""
        if argv[1:3] == ["image", "inspect"]:
            if argv[-1] == "aiwfe/api:v1":
                return 0, json.dumps([{"Id": IMAGE_ID}]), ""
            return 1, "[]", f"Error response from daemon: No such image: {argv[-1]}"
        if argv[1] in ("exec", "run"):
            return 0, "noise\n" + probe.MARKER + json.dumps(answer(self.imports)) + "\n", ""
        if argv[1] == "logs":
            return 0, "", self.logs
        raise AssertionError(f"unexpected call {argv}")


@pytest.fixture(name="engine")
def fixture_engine(monkeypatch):
    engine = Engine()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: engine(argv, **kw))
    return engine


def run_main(capsys, module_args, check_mode=False, diff=False):
    module_args = dict(module_args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(module_args), pytest.raises(SystemExit):
        pythonpath_check.main()
    return json.loads(capsys.readouterr().out)


def args(project, **extra):
    base = {"project_dir": str(project), "project_name": "p", "ledger_dir": str(project.parent / "ledger")}
    base.update(extra)
    return base


def test_a_running_service_is_probed_by_docker_exec(capsys, project, engine):
    result = run_main(capsys, args(project, service="api", modules=["aiwfe_api"], logs_since="15m",
                                   fail_on_error=False))
    assert not result.get("failed") and not result["changed"]
    assert result["probe"] == "exec" and result["container"] == "p-api-1"
    assert result["pythonpath"] == "/opt/app/src" and result["failed_imports"] == ["aiwfe_api"]
    assert result["imports"]["aiwfe_api"]["missing"] == "aiwfe_api"
    assert ["docker", "exec", "-i", CID, "python3", "-", "60", "aiwfe_api"] in engine.calls
    assert ["docker", "logs", "--since", "15m", CID] in engine.calls
    assert result["log_import_errors"][0] == {"line": "ModuleNotFoundError: No module named 'aiwfe_api'",
                                              "missing": "aiwfe_api", "kind": "module", "count": 2}
    assert "import aiwfe_api: not_found - ModuleNotFoundError: No module named 'aiwfe_api' (the module itself)" \
        in result["report"]
    assert engine.stdin[engine.calls.index(["docker", "exec", "-i", CID, "python3", "-", "60", "aiwfe_api"])] == probe.SCRIPT


def test_a_restarting_service_is_probed_in_its_image_with_its_environment(capsys, project, engine):
    engine.state = "restarting"
    result = run_main(capsys, args(project, service="api", modules=["aiwfe_api"], fail_on_error=False))
    assert result["probe"] == "image"
    runs = [(argv, data) for argv, data in zip(engine.calls, engine.stdin) if argv[1] == "run"]
    assert len(runs) == 1
    argv, data = runs[0]
    assert argv[:4] == ["docker", "run", "--rm", "-i"]
    for flag, value in (("--network", "none"), ("--pull", "never"), ("--entrypoint", "python3"),
                        ("--workdir", "/opt/app"), ("--volumes-from", f"{CID}:ro")):
        assert argv[argv.index(flag) + 1] == value
    assert argv[-4:] == [IMAGE_ID, "-", "60", "aiwfe_api"] and "--user" not in argv
    assert not any(SECRET in part for call in engine.calls for part in call)      # never on a command line
    assert f'"SECRET_TOKEN": "{SECRET}"' in data and data.endswith(probe.SCRIPT)
    assert "container p-api-1 is restarting" in result["report"][0]


def test_an_exec_into_a_container_that_stopped_falls_back_to_its_image(capsys, project, engine, monkeypatch):
    def exec_fails(argv, **kwargs):
        if argv[1] == "exec":
            engine.calls.append(argv)
            engine.stdin.append(None)
            engine.state = "restarting"
            return 137, "", ""
        return engine(argv, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: exec_fails(argv, **kw))
    result = run_main(capsys, args(project, service="api", modules=["aiwfe_api"], fail_on_error=False))
    assert result["probe"] == "image" and "stopped while the probe ran" in result["report"][0]


def failing_exec(engine, monkeypatch, rc, stderr):
    """docker exec of the probe fails with ``rc`` and ``stderr``; every other call goes to ``engine``."""
    def run(argv, **kwargs):
        if argv[1] != "exec":
            return engine(argv, **kwargs)
        engine.calls.append(argv)
        engine.stdin.append(None)
        return rc, "", stderr
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: run(argv, **kw))


def test_an_exec_into_a_container_that_restarted_under_it_falls_back_to_its_image(capsys, project, engine, monkeypatch):
    # A restart loop: the container ran when it was listed, died under docker exec (rc 126, its process gone) and
    # runs again when it is inspected after - with a higher restart count. Not a container without Python.
    counts = iter([4, 5])
    monkeypatch.setattr(engine, "details", lambda: dict(Engine.details(engine), RestartCount=next(counts, 5)))
    failing_exec(engine, monkeypatch, 126, "OCI runtime exec failed: exec failed: cannot exec in a stopped container")
    result = run_main(capsys, args(project, service="api", modules=["aiwfe_api"], fail_on_error=False))
    assert not result.get("failed"), result.get("msg")
    assert result["probe"] == "image" and "restarted while the probe ran" in result["report"][0]
    assert result["failed_imports"] == ["aiwfe_api"]


def test_an_exec_that_fails_in_a_container_still_running_is_an_error(capsys, project, engine, monkeypatch):
    failing_exec(engine, monkeypatch, 127, "exec: python3: not found")
    result = run_main(capsys, args(project, service="api", modules=["aiwfe_api"], fail_on_error=False))
    assert result["failed"] and "has no python3" in result["msg"]
    assert not any(argv[1] == "run" for argv in engine.calls)


def test_an_image_is_probed_in_a_throwaway_container(capsys, project, engine):
    engine.imports = {"aiwfe_api.main": OK}
    result = run_main(capsys, args(project, image="aiwfe/api:v1", modules=["aiwfe_api.main"], python="python3.11",
                                   timeout=5))
    assert not result.get("failed") and result["probe"] == "image" and result["image_id"] == IMAGE_ID
    assert engine.calls[0] == ["docker", "image", "inspect", "--", "aiwfe/api:v1"]
    argv = engine.calls[1]
    assert argv[:4] == ["docker", "run", "--rm", "-i"] and argv[-4:] == [IMAGE_ID, "-", "5", "aiwfe_api.main"]
    assert "--volumes-from" not in argv and "--workdir" not in argv and argv[argv.index("--entrypoint") + 1] == "python3.11"
    assert engine.stdin[1] == probe.SCRIPT
    assert len(engine.calls) == 2


def test_failed_imports_fail_with_one_line_each_and_write_nothing(capsys, project, engine):
    engine.imports = {"aiwfe_api": NOT_FOUND, "boom": {
        "status": "error", "missing": None, "error": "ValueError: boom", "error_type": "ValueError",
        "traceback": 'File "/x/boom.py", line 2, in <module>', "file": None}, "json": OK}
    dockerfile = project / "docker" / "api" / "Dockerfile"
    result = run_main(capsys, args(project, image="aiwfe/api:v1", modules=["aiwfe_api", "boom", "json"],
                                   dockerfiles=["docker/api/Dockerfile"], fix="remove"))
    assert result["failed"] and not result["changed"] and result["failed_imports"] == ["aiwfe_api", "boom"]
    assert result["msg"].startswith("2 of 3 imports failed in a throwaway container of image aiwfe/api:v1")
    assert "import boom: error - ValueError: boom at File \"/x/boom.py\", line 2, in <module>" in result["msg"]
    assert "No Dockerfile was changed" in result["msg"]
    assert result["dockerfiles"]["docker/api/Dockerfile"]["changed"] is False and result["diff"] == []
    assert dockerfile.read_text() == API


@pytest.mark.parametrize("extra, words", [
    ({"service": "nope"}, "service nope is not in compose project p (its services: api, worker)"),
    ({"service": "worker"}, "service worker of compose project p has no container (services with one: api): "
                            "deploy it, or give image to probe its image instead"),
    ({"image": "aiwfe/api:gone"}, "image aiwfe/api:gone is not on this host (docker image inspect failed: "
                                  "Error response from daemon: No such image: aiwfe/api:gone): build or pull it first"),
])
def test_unknown_targets_are_refused(capsys, project, engine, extra, words):
    result = run_main(capsys, args(project, dockerfiles=["docker/api/Dockerfile"], fix="remove", **extra))
    assert result["failed"] and result["msg"] == words and not result["changed"]
    assert not any(argv[1] in ("exec", "run") for argv in engine.calls)
    assert (project / "docker" / "api" / "Dockerfile").read_text() == API


@pytest.mark.parametrize("extra, words", [
    ({"image": "aiwfe/api:v1", "modules": ["aiwfe-api"]}, "'aiwfe-api' is not a dotted Python module name"),
    ({"image": "aiwfe/api:v1", "dockerfiles": ["../outside"]}, "outside project_dir"),
    ({"image": "aiwfe/api:v1", "dockerfiles": ["docker/worker/Dockerfile"]}, "does not exist"),
    ({"service": "api", "image": "aiwfe/api:v1"}, "mutually exclusive"),
    ({"dockerfiles": ["docker/api/Dockerfile"], "fix": "set"}, "pythonpath"),
    ({}, "nothing to check: give service, image or dockerfiles"),
])
def test_bad_options_are_refused_before_anything_runs(capsys, project, engine, extra, words):
    result = run_main(capsys, args(project, **extra))
    assert result["failed"] and words in result["msg"]
    assert engine.calls == []


def test_fix_set_check_mode_diff_apply_and_idempotence(capsys, project, engine):
    dockerfile = project / "docker" / "api" / "Dockerfile"
    fix = {"dockerfiles": ["docker/api/Dockerfile"], "fix": "set", "pythonpath": "/opt/app/api:/opt/app/common"}
    fixed = API.replace("=/opt/app/src", "=/opt/app/api:/opt/app/common")

    planned = run_main(capsys, args(project, **fix), check_mode=True, diff=True)
    assert planned["changed"] and dockerfile.read_text() == API
    assert planned["diff"] == [{"before": API, "after": fixed, "before_header": str(dockerfile),
                                "after_header": str(dockerfile)}]
    assert planned["dockerfiles"]["docker/api/Dockerfile"]["pythonpath_lines"][0]["value"] == "/opt/app/src"
    assert "would be PYTHONPATH set to /opt/app/api:/opt/app/common" in planned["report"][-1]

    done = run_main(capsys, args(project, **fix))
    assert done["changed"] and dockerfile.read_text() == fixed
    assert stat.S_IMODE(os.stat(dockerfile).st_mode) == 0o640
    assert not [name for name in os.listdir(dockerfile.parent) if name != "Dockerfile"]     # no temporary left

    again = run_main(capsys, args(project, **fix))
    assert not again["changed"] and again["diff"] == [] and "already" in again["report"][-1]
    assert engine.calls == []


def test_fix_remove_keeps_the_other_variables(capsys, project, engine):
    dockerfile = project / "docker" / "api" / "Dockerfile"
    dockerfile.write_text("FROM x\nENV A=1 \\\n    PYTHONPATH=/opt/app/src \\\n    B=2\n")
    result = run_main(capsys, args(project, dockerfiles=["docker/api/Dockerfile"], fix="remove"))
    assert result["changed"] and dockerfile.read_text() == "FROM x\nENV A=1 \\\n    B=2\n"
    assert not run_main(capsys, args(project, dockerfiles=["docker/api/Dockerfile"], fix="remove"))["changed"]


def test_a_fix_with_failed_imports_applies_when_told_not_to_fail(capsys, project, engine):
    result = run_main(capsys, args(project, image="aiwfe/api:v1", modules=["aiwfe_api"], fail_on_error=False,
                                   dockerfiles=["docker/api/Dockerfile"], fix="remove"))
    assert not result.get("failed") and result["changed"] and result["failed_imports"] == ["aiwfe_api"]


def test_a_probe_that_hangs_is_stopped_and_its_container_removed(monkeypatch):
    calls = []

    class Proc:
        killed = False

        def kill(self):
            self.killed = True

    proc = Proc()

    def slow(argv, before_communicate_callback=None, **_kw):
        calls.append(argv)
        if argv[1] == "run":
            before_communicate_callback(proc)
            time.sleep(1.5)
        return 0, "", ""

    monkeypatch.setattr(pp, "GRACE", 0)
    with pytest.raises(JobFailed, match="did not finish within 1 s and was stopped"):
        pp.probe_in_image(DockerCli(slow), IMAGE_ID, params(timeout=1, modules=["a"]), "here")
    assert proc.killed
    name = calls[0][calls[0].index("--name") + 1]
    assert name.startswith("aiwfe-rollback-pythonpath-") and calls[-1] == ["docker", "rm", "-f", "--", name]
