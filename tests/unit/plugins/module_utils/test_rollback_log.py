# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback log (module_utils/_rollback_log, module rollback_log): entries with computed intervals, the run id
that makes an append happen once, secrets never written, a torn last line skipped and never swallowing the next
entry, annotate rewriting atomically (0600, every other line as it was), appends of several writers never
interleaving, the Markdown in the runbook's format, and bad input changing nothing."""

from __future__ import annotations

import datetime
import json
import os
import stat
import threading

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiwfe.rollback.plugins.module_utils import _rollback_log as rlog
from ansible_collections.aiwfe.rollback.plugins.modules import rollback_log as module

NOW = datetime.datetime(2026, 11, 29, 3, 5, 0, tzinfo=datetime.timezone.utc)
RUNBOOK_LABELS = ("Date/Time:", "Issue Description:", "Rollback Method Used:", "Time to Recovery:", "Root Cause:",
                  "Prevention Measures:")


def params(**overrides):
    base = {"project_name": "p", "ledger_dir": "", "state": "present", "run_id": None, "method": "quick",
            "result": "recovered", "symptom": "api answered 502", "failed_checks": ["health api"],
            "from_release": "v1.3.0", "from_manifest": "20261129T030000Z-v1.3.0", "to_release": "v1.2.0",
            "to_manifest": "20261128T120000Z-v1.2.0", "backup_set": None, "failed_step": None,
            "detected_at": "2026-11-29T03:01:10Z", "started_at": "2026-11-29T03:04:00Z",
            "recovered_at": "2026-11-29T03:04:42.5Z", "host": None, "operator": None, "root_cause": None,
            "prevention": None, "extra": {}, "redact": [], "entry": "latest", "last": 0, "markdown_path": None}
    base.update(overrides)
    return base


@pytest.fixture(name="path")
def fixture_path(tmp_path):
    return rlog.log_path(str(tmp_path / "ledger"), "p")


def write(path, check_mode=False, now=NOW, **overrides):
    return rlog.present(path, params(**overrides), "ops-1", "alice", check_mode, now)


def lines_of(path):
    with open(path, "rb") as handle:
        return handle.read().splitlines(keepends=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- the entry -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("detected, started, recovered, ttd, ttr", [
    ("2026-11-29T03:01:10Z", "2026-11-29T03:04:00Z", "2026-11-29T03:04:42.5Z", 170, 42.5),
    ("2026-11-29 03:01:10", "2026-11-29T04:04:00+01:00", "2026-11-29T03:04:05.04Z", 170, 5),   # no offset: UTC
    ("1795921270", "1795921440", "1795921483.25", 170, 43.2),                                  # date +%s
    ("", "2026-11-29T03:04:00Z", "2026-11-29T03:05:00Z", None, 60),                            # failure time unknown
    ("2026-11-29T03:01:10Z", "", "2026-11-29T03:05:00Z", None, None),                          # start unknown
])
def test_intervals_are_computed_from_the_time_stamps(path, detected, started, recovered, ttd, ttr):
    entry = write(path, detected_at=detected, started_at=started, recovered_at=recovered)["entry"]
    assert (entry["time_to_detect_s"], entry["time_to_recover_s"]) == (ttd, ttr)
    assert all(entry[key] is None or entry[key].endswith("Z") for key in ("detected_at", "started_at", "recovered_at"))


def test_present_writes_one_private_line_with_every_field(path):
    result = write(path, run_id="run-1", backup_set="20261129T030300Z", extra={"services": ["api", "worker"]})
    entry = result["entry"]
    assert result["changed"] and entry["id"] == "20261129T030400Z-quick"
    on_disk = [json.loads(line) for line in lines_of(path)]
    assert on_disk == [entry]
    assert mode(path) == 0o600 and mode(os.path.dirname(path)) == 0o700
    assert sorted(os.listdir(os.path.dirname(path))) == ["rollback-log.jsonl"]
    assert entry["host"] == "ops-1" and entry["operator"] == "alice" and entry["run_id"] == "run-1"
    assert entry["failure"] == {"symptom": "api answered 502", "failed_checks": ["health api"]}
    assert entry["from"] == {"release": "v1.3.0", "manifest": "20261129T030000Z-v1.3.0"}
    assert entry["to"] == {"release": "v1.2.0", "manifest": "20261128T120000Z-v1.2.0"}
    assert entry["date"] == "2026-11-29T03:04:00Z" and entry["recorded"] == "2026-11-29T03:05:00Z"
    assert entry["backup_set"] == "20261129T030300Z" and entry["failed_step"] is None


def test_recovered_at_defaults_to_now(path):
    entry = write(path, recovered_at=None)["entry"]
    assert entry["recovered_at"] == "2026-11-29T03:05:00Z" and entry["time_to_recover_s"] == 60


@pytest.mark.parametrize("result, extra, failed_step", [
    ("failed", {"failed_step": "apply: compose up"}, "apply: compose up"),
    ("failed", {}, "unknown"),
    ("planned", {}, None),
])
def test_failed_and_planned(path, result, extra, failed_step):
    out = write(path, result=result, recovered_at=None, **extra)
    assert out["entry"]["failed_step"] == failed_step
    assert out["entry"]["recovered_at"] is None and out["entry"]["time_to_recover_s"] is None
    assert bool(out["warnings"]) == (failed_step == "unknown")


def test_same_run_id_appends_once_and_ids_stay_unique(path):
    first = write(path, run_id="r1")
    again = write(path, run_id="r1", now=NOW + datetime.timedelta(minutes=1))
    assert not again["changed"] and again["entry"] == first["entry"] and "nothing appended" in again["msg"]
    other = write(path, run_id="r2")
    assert other["changed"] and other["entry"]["id"] == "20261129T030400Z-quick.2"
    assert len(lines_of(path)) == 2
    changed = write(path, run_id="r1", result="failed", recovered_at=None)
    assert not changed["changed"] and "differs in result" in changed["warnings"][-1] and len(lines_of(path)) == 2
    rlog.annotate(path, "r1", "cause", None, "bob", False, now=NOW)
    rerun = write(path, run_id="r1", recovered_at=None, now=NOW + datetime.timedelta(hours=1))   # a re-run of the play
    assert not rerun["changed"] and rerun["warnings"] == [] and rerun["entry"]["root_cause"] == "cause"


def test_check_mode_writes_nothing(tmp_path, path):
    result = write(path, check_mode=True, run_id="r1")
    assert result["changed"] and result["msg"].startswith("would append") and result["entry"]["id"]
    assert not os.path.exists(tmp_path / "ledger")
    write(path, run_id="r1")
    before = lines_of(path)
    assert not write(path, check_mode=True, run_id="r1")["changed"]
    assert lines_of(path) == before


@pytest.mark.parametrize("overrides, message", [
    ({"result": "failed"}, "recovered_at is given but result is failed"),
    ({"failed_step": "x"}, "failed_step is given but result is recovered"),
    ({"started_at": "yesterday"}, "started_at 'yesterday' is not a time stamp"),
    ({"recovered_at": "2026-11-29T02:00:00Z"}, "recovered_at 2026-11-29T02:00:00Z is before started_at"),
    ({"detected_at": "2026-11-29T05:00:00Z"}, "started_at 2026-11-29T03:04:00Z is before detected_at"),
    ({"method": "reboot"}, "method 'reboot' is not a rollback kind"),
    ({"redact": ["abc"]}, "redact value 1 is shorter than 4 characters"),
])
def test_bad_input_changes_nothing(path, overrides, message):
    write(path, run_id="r0")
    before = lines_of(path)
    with pytest.raises(rlog.LogError, match=message) as err:
        write(path, run_id="r1", **overrides)
    assert "Nothing was written" in str(err.value)
    assert lines_of(path) == before


def test_a_little_clock_skew_is_zero_with_a_warning(path):
    out = write(path, detected_at="2026-11-29T03:04:30Z")
    assert out["entry"]["time_to_detect_s"] == 0 and "the clocks" in out["warnings"][0]


@pytest.mark.parametrize("method, stored", [("config", "configuration"), ("full", "complete-system"), ("tls", "tls")])
def test_method_aliases(path, method, stored):
    assert write(path, method=method)["entry"]["method"] == stored


# --- secrets -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("symptom, shown", [
    ("db url postgres://app:hunter22@db:5432/x refused", "db url postgres://app:********@db:5432/x refused"),
    ("connect failed password=hunter22 host=db", "connect failed password=******** host=db"),
    ("token: abcdef123 expired", "token: ******** expired"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "Authorization: Bearer ********"),
    ("api down, the vault said s3cr3t-value-9", "api down, the vault said ********"),
    ("nothing secret here", "nothing secret here"),
])
def test_secrets_in_text_are_never_written(path, symptom, shown):
    out = write(path, symptom=symptom, redact=["s3cr3t-value-9"])
    assert out["entry"]["failure"]["symptom"] == shown
    text = open(path, encoding="utf-8").read()
    for secret in ("hunter22", "abcdef123", "eyJhbGciOiJIUzI1NiJ9", "s3cr3t-value-9"):
        assert secret not in text
    assert any("failure.symptom" in w for w in out["warnings"]) == (symptom != shown)


def test_secret_keys_in_extra_are_stripped(path):
    out = write(path, extra={"db_password": "x1", "services": ["api"], "nested": {"API_KEY": "k", "passed_checks": 3},
                             "hooks": [{"token": "t0"}], "password_file": ""})
    extra = out["entry"]["extra"]
    assert extra == {"db_password": "********", "services": ["api"], "nested": {"API_KEY": "********", "passed_checks": 3},
                     "hooks": [{"token": "********"}], "password_file": ""}
    assert "extra.db_password, extra.hooks[0].token, extra.nested.API_KEY" in out["warnings"][0]


# --- a torn last line ----------------------------------------------------------------------------------------------

def test_a_torn_last_line_is_skipped_and_never_swallows_the_next_entry(path):
    write(path, run_id="r1")
    write(path, run_id="r2")
    with open(path, "ab") as handle:
        handle.write(b'{"id": "20261129T031000Z-quick", "method": "qu')   # a writer killed half way
    entries, warnings = rlog.read_log(path)
    assert [e["run_id"] for e in entries] == ["r1", "r2"]
    assert warnings == [f"line 3 of {path} is cut short (a writer killed while writing it): skipped"]
    assert write(path, run_id="r3")["changed"]
    entries, warnings = rlog.read_log(path)
    assert [e["run_id"] for e in entries] == ["r1", "r2", "r3"]
    assert warnings == [f"line 3 of {path} is not a log entry: skipped"]
    annotated = rlog.annotate(path, "r2", "bad image", None, "bob", False, now=NOW)
    assert annotated["changed"] and annotated["warnings"] == warnings
    assert lines_of(path)[2] == b'{"id": "20261129T031000Z-quick", "method": "qu\n'    # kept as it was
    query = rlog.query(path)
    assert query["count"] == 3 and query["warnings"] == warnings


@pytest.mark.parametrize("junk", [b"\n\n", b"[1, 2]\n", b"\xff\xfe{\n", b'{"no id": 1}\n'])
def test_lines_that_are_not_entries(path, junk):
    write(path, run_id="r1")
    with open(path, "ab") as handle:
        handle.write(junk)
    write(path, run_id="r2")
    entries, warnings = rlog.read_log(path)
    assert [e["run_id"] for e in entries] == ["r1", "r2"]
    assert len(warnings) == (0 if junk == b"\n\n" else 1)


# --- annotate ------------------------------------------------------------------------------------------------------

def test_annotate_rewrites_atomically_and_keeps_0600(path):
    write(path, run_id="r1")
    write(path, run_id="r2")
    os.chmod(path, 0o644)       # someone loosened it: the rewrite makes it 0600 again
    before = lines_of(path)
    inode = os.stat(path).st_ino
    result = rlog.annotate(path, "latest", "image built without the client", "import smoke test in CI", "bob", False,
                           now=NOW)
    assert result["changed"] and result["msg"].startswith("annotated entry 20261129T030400Z-quick.2")
    after = lines_of(path)
    assert after[0] == before[0] and after[1] != before[1]
    entry = json.loads(after[1])
    assert entry["root_cause"] == "image built without the client" and entry["prevention"] == "import smoke test in CI"
    assert entry["annotated"] == {"at": "2026-11-29T03:05:00Z", "by": "bob"}
    assert os.stat(path).st_ino != inode and mode(path) == 0o600         # a new file, renamed into place
    assert sorted(os.listdir(os.path.dirname(path))) == ["rollback-log.jsonl"]
    assert "- Root Cause: not recorded yet" in result["diff"]["before"]
    assert "- Root Cause: image built without the client" in result["diff"]["after"]
    again = rlog.annotate(path, "latest", "image built without the client", None, "bob", False, now=NOW)
    assert not again["changed"] and lines_of(path) == after


def test_annotate_check_mode_and_by_id_or_run_id(path):
    first = write(path, run_id="r1")["entry"]
    write(path, run_id="r2")
    before = lines_of(path)
    planned = rlog.annotate(path, first["id"], "why", "how", "bob", True, now=NOW)
    assert planned["changed"] and planned["msg"].startswith("would annotate entry 20261129T030400Z-quick ")
    assert planned["diff"]["after"].count("why") == 1 and lines_of(path) == before
    assert rlog.annotate(path, "r1", None, "how", "bob", False, now=NOW)["entry"]["id"] == first["id"]
    cleared = rlog.annotate(path, "r1", None, "", "bob", False, now=NOW)
    assert cleared["changed"] and cleared["entry"]["prevention"] is None


def test_annotate_unknown_entry_names_the_known_ones(path):
    with pytest.raises(rlog.LogError, match="has no entries, so there is nothing to annotate"):
        rlog.annotate(path, "latest", "x", None, "bob", False)
    write(path, run_id="r1")
    write(path, run_id="r2")
    before = lines_of(path)
    with pytest.raises(rlog.LogError) as err:
        rlog.annotate(path, "20260101T000000Z-quick", "x", None, "bob", False)
    assert ("no entry '20260101T000000Z-quick'" in str(err.value)
            and "known: 20261129T030400Z-quick, 20261129T030400Z-quick.2" in str(err.value))
    assert lines_of(path) == before


def test_annotate_that_cannot_rename_leaves_the_log_as_it_was(path, monkeypatch):
    write(path, run_id="r1")
    before = lines_of(path)

    def no_space(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(rlog.LogError, match="No space left on device.*the log is as it was"):
        rlog.annotate(path, "latest", "x", None, "bob", False)
    monkeypatch.undo()
    assert lines_of(path) == before and sorted(os.listdir(os.path.dirname(path))) == ["rollback-log.jsonl"]


def test_writers_never_interleave_and_annotate_loses_no_append(path):
    write(path, run_id="seed")
    errors = []

    def appender(number):
        try:
            for index in range(15):
                write(path, run_id=f"w{number}-{index}", symptom="x" * 5000)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(exc)

    def annotator():
        try:
            for index in range(15):
                rlog.annotate(path, "seed", f"cause {index}", None, "bob", False)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(exc)
    threads = [threading.Thread(target=appender, args=(n,)) for n in range(4)] + [threading.Thread(target=annotator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    entries, warnings = rlog.read_log(path)
    assert not warnings and len(entries) == 61
    assert len({e["id"] for e in entries}) == 61 and entries[0]["root_cause"] == "cause 14"


# --- query and Markdown --------------------------------------------------------------------------------------------

def test_markdown_is_the_runbooks_format(path):
    entry = write(path, run_id="r1", backup_set="set-1", extra={"services": ["api"]})["entry"]
    text = rlog.markdown_entry(entry)
    positions = [text.index("- " + label) for label in RUNBOOK_LABELS]
    assert positions == sorted(positions)
    for line in ("- Date/Time: 2026-11-29T03:04:00Z (UTC)",
                 "- Issue Description: api answered 502; failed checks: health api",
                 "- Rollback Method Used: quick - Docker container rollback (runbook section 1)",
                 "- Time to Recovery: 42.5 s (from the start of the rollback to the proven recovery)",
                 "- Root Cause: not recorded yet (add it: ansible-playbook playbooks/rollback_log.yml "
                 "-e rollback_log_entry=20261129T030400Z-quick)",
                 "- Time to Detect: 2 min 50 s", "- From Release: v1.3.0 (manifest 20261129T030000Z-v1.3.0)",
                 "- Backup Set: set-1", "- Operator: alice", "- Entry: 20261129T030400Z-quick (run r1)",
                 '- services: ["api"]'):
        assert line in text
    failed = write(path, run_id="r2", result="failed", recovered_at=None, failed_step="prove",
                   root_cause="two\nlines")["entry"]
    text = rlog.markdown_entry(failed)
    assert "- Time to Recovery: not recovered: the rollback failed at step prove" in text
    assert "- Failed Step: prove" in text and "- Root Cause: two\n  lines" in text


def test_query_last_and_markdown_path(tmp_path, path):
    for number in range(3):
        write(path, run_id=f"r{number}")
    result = rlog.query(path, last=2)
    assert result["count"] == 3 and [e["run_id"] for e in result["entries"]] == ["r1", "r2"]
    document = str(tmp_path / "log.md")
    out = rlog.run(params(state="query", ledger_dir=str(tmp_path / "ledger"), last=2, markdown_path=document),
                   False, False, NOW)
    text = open(document, encoding="utf-8").read()
    assert out["changed"] and out["markdown_written"] and text == out["markdown"] and mode(document) == 0o600
    assert text.startswith("# Lessons Learned Log - p\n\nEvery rollback event") and text.count("\n\n### ") == 2
    again = rlog.run(params(state="query", ledger_dir=str(tmp_path / "ledger"), last=2, markdown_path=document),
                     False, False, NOW)
    assert not again["changed"]
    with pytest.raises(rlog.LogError, match="its directory .* does not exist"):
        rlog.run(params(ledger_dir=str(tmp_path / "ledger"), markdown_path=str(tmp_path / "no" / "x.md"), run_id="r9"),
                 False, False, NOW)
    assert rlog.query(path)["count"] == 3
    assert rlog.query(str(tmp_path / "none.jsonl"))["entries"] == []


# --- the module ----------------------------------------------------------------------------------------------------

def run_module(capsys, args, check_mode=False, diff=False):
    with patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_module_present_check_diff_idempotent_and_annotate(capsys, tmp_path):
    args = {"project_name": "p", "ledger_dir": str(tmp_path), "method": "config", "result": "recovered",
            "run_id": "job-7", "started_at": "2026-11-29T03:04:00Z", "operator": "alice", "redact": ["hunter22"],
            "symptom": "login hunter22 refused"}
    planned = run_module(capsys, args, check_mode=True, diff=True)
    assert planned["changed"] and "diff" in planned and not os.path.exists(tmp_path / "p")
    assert planned["entry"]["method"] == "configuration" and "hunter22" not in json.dumps(planned["entry"])
    done = run_module(capsys, args)
    assert done["changed"] and "diff" not in done and done["log_file"] == str(tmp_path / "p" / "rollback-log.jsonl")
    again = run_module(capsys, args)
    assert not again["changed"] and again["entry"]["id"] == done["entry"]["id"]
    annotated = run_module(capsys, {"project_name": "p", "ledger_dir": str(tmp_path), "state": "annotate",
                                    "root_cause": "a typo in .env"}, diff=True)
    assert annotated["changed"] and "a typo in .env" in annotated["diff"]["after"]
    missing = run_module(capsys, {"project_name": "p", "ledger_dir": str(tmp_path), "state": "annotate",
                                  "entry": "nope", "prevention": "x"})
    assert missing["failed"] and "known: " + done["entry"]["id"] in missing["msg"]
    needs = run_module(capsys, {"project_name": "p", "ledger_dir": str(tmp_path), "state": "annotate"})
    assert needs["failed"] and "root_cause, prevention" in needs["msg"]
    bad = run_module(capsys, {"project_name": "Bad Name", "ledger_dir": str(tmp_path), "state": "query"})
    assert bad["failed"] and "not a valid compose project name" in bad["msg"]
