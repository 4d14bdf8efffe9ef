# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Notifications (module_utils/_notify, module rollback_notify) against real receivers on the loopback
(tests/tools/notify_receiver.py: a webhook receiver on http.server and a minimal SMTP receiver on socketserver): the
bodies received, the webhook URL never returned, a refusing, failing or silent receiver reported as failed - never an
exception, never a failed task - check mode sending nothing, and the standalone receiver script."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiwfe.rollback.plugins.module_utils import _notify as notify
from ansible_collections.aiwfe.rollback.plugins.modules import rollback_notify as module
from ansible_collections.aiwfe.rollback.tests.tools import notify_receiver as rx

NOW = datetime.datetime(2026, 11, 29, 3, 5, 0, tzinfo=datetime.timezone.utc)
# A rollback_log entry as the role passes it (recorded from test_rollback_log).
ENTRY = {"id": "20261129T030400Z-quick", "run_id": "r1", "host": "ops-1", "method": "quick", "result": "recovered",
         "from": {"release": "v1.3.0", "manifest": "20261129T030000Z-v1.3.0"},
         "to": {"release": "v1.2.0", "manifest": "20261128T120000Z-v1.2.0"}, "backup_set": None, "failed_step": None,
         "time_to_recover_s": 42.5}
SHORT = 0.5


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def message(event="recovery", **overrides):
    args = {"event": event, "project": "ai_workflow_engine", "hosts": [], "summary": None, "entry": ENTRY,
            "method": None, "from_release": None, "to_release": None, "time_to_recovery_s": None}
    args.update(overrides)
    return notify.build_message(args, "ctl-1", NOW)


def send(targets, event="recovery", check_mode=False, timeout=SHORT, **overrides):
    return notify.notify(targets, message(event, **overrides), check_mode, timeout, "ctl-1")


def webhook(url, **extra):
    return dict({"type": "webhook", "name": "on-call", "url": url, "use_proxy": False}, **extra)


def smtp(port, **extra):
    return dict({"type": "smtp", "name": "dba", "host": "127.0.0.1", "port": port, "sender": "rollback@ops.example",
                 "to": ["dba@example.com", "lead@example.com"]}, **extra)


# --- the message ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event, overrides, text", [
    ("recovery", {}, "[aiwfe.rollback] RECOVERED ai_workflow_engine on ops-1: recovered by a quick rollback: "
                     "v1.3.0 -> v1.2.0 - time to recovery 42.5 s"),
    ("start", {"entry": None, "method": "complete-system", "hosts": ["a", "b"]},
     "[aiwfe.rollback] ROLLBACK STARTED ai_workflow_engine on a, b: complete-system rollback started"),
    ("failure", {"entry": dict(ENTRY, result="failed", failed_step="prove", time_to_recover_s=None)},
     "[aiwfe.rollback] ROLLBACK FAILED ai_workflow_engine on ops-1: quick rollback failed at step prove "
     "(v1.3.0 -> v1.2.0); the stack is not recovered"),
    ("recovery", {"summary": "back on v1.2.0", "time_to_recovery_s": 75},
     "[aiwfe.rollback] RECOVERED ai_workflow_engine on ops-1: back on v1.2.0 - time to recovery 1 min 15 s"),
    ("start", {"entry": None}, "[aiwfe.rollback] ROLLBACK STARTED ai_workflow_engine on ctl-1: rollback rollback started"),
])
def test_message_text(event, overrides, text):
    built = message(event, **overrides)
    assert built["text"] == text and built["body"]["text"] == text and built["subject"] == text.split(" - time")[0]
    assert built["body"]["event"] == event and built["body"]["sent_at"] == "2026-11-29T03:05:00Z"


# --- sent ----------------------------------------------------------------------------------------------------------

def test_webhook_gets_the_json_body_and_the_url_is_never_returned():
    with rx.HttpReceiver() as receiver:
        result = send([webhook(receiver.url, headers={"Authorization": "Bearer abc"})])
        got = receiver.recorder.wait(1)
    assert result["changed"] and result["not_sent"] == [] and not result["warnings"]
    assert result["sent"] == [{"name": "on-call", "type": "webhook", "target": f"127.0.0.1:{receiver.port}",
                               "detail": "HTTP 200"}]
    request = got[0]
    assert request["path"] == "/hooks/T0KEN-secret" and request["headers"]["authorization"] == "Bearer abc"
    assert request["headers"]["content-type"] == "application/json"
    body = request["body"]
    assert body["event"] == "recovery" and body["project"] == "ai_workflow_engine" and body["hosts"] == ["ops-1"]
    assert (body["from_release"], body["to_release"], body["time_to_recovery_s"]) == ("v1.3.0", "v1.2.0", 42.5)
    assert body["log_entry"] == ENTRY["id"] and body["text"].startswith("[aiwfe.rollback] RECOVERED")
    assert "T0KEN" not in json.dumps(result)


def test_mail_through_the_relay():
    with rx.SmtpReceiver() as relay:
        result = send([smtp(relay.port)], event="failure", entry=dict(ENTRY, failed_step="apply"))
        got = relay.recorder.wait(1)
    assert result["sent"] == [{"name": "dba", "type": "smtp", "target": f"127.0.0.1:{relay.port}",
                               "detail": "accepted for dba@example.com, lead@example.com"}]
    mail = got[0]
    assert mail["mail_from"] == "rollback@ops.example" and mail["rcpt_to"] == ["dba@example.com", "lead@example.com"]
    assert mail["helo"] == "ctl-1" and mail["auth"] is None
    assert mail["subject"].startswith("[aiwfe.rollback] ROLLBACK FAILED ai_workflow_engine on ops-1: quick rollback "
                                      "failed at step apply")
    assert mail["to"] == "dba@example.com, lead@example.com"
    assert "failed_step: apply" in mail["body"] and "from_release: v1.3.0" in mail["body"]


@pytest.mark.parametrize("source", ["file", "env"])
def test_mail_with_login(tmp_path, monkeypatch, source):
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text("pa ss\n", encoding="utf-8")
    monkeypatch.setenv("AIWFE_SMTP_PASSWORD", "pa ss")
    extra = {"password_file": str(secret_file)} if source == "file" else {"password_env": "AIWFE_SMTP_PASSWORD"}
    with rx.SmtpReceiver(auth=("rollback", "pa ss")) as relay:
        result = send([smtp(relay.port, username="rollback", **extra)])
        got = relay.recorder.wait(1)
    assert result["sent"] and got[0]["auth"] == "rollback"


def test_one_good_one_bad_target_both_reported():
    with rx.HttpReceiver() as receiver:
        result = send([webhook(receiver.url), webhook(f"http://127.0.0.1:{rx.refused_port()}/x", name="pager")])
    assert result["changed"] and [s["name"] for s in result["sent"]] == ["on-call"]
    assert [f["name"] for f in result["not_sent"]] == ["pager"] and "pager" in result["msg"]
    assert result["warnings"][0].startswith("notification to pager (127.0.0.1:")
    assert result["warnings"][0].endswith("The rollback goes on.")


# --- failed, never raised ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, reason", [
    (500, "answered HTTP 500 Internal Server Error"),
    (404, "answered HTTP 404 Not Found"),
    (302, "answered HTTP 302 Found (redirects are not followed: give the final URL)"),
])
def test_webhook_error_answers(status, reason):
    with rx.HttpReceiver(status=status) as receiver:
        result = send([webhook(receiver.url)])
        assert len(receiver.recorder.wait(1)) == 1
    assert not result["changed"] and result["not_sent"][0]["reason"] == reason and not result["sent"]


@pytest.mark.parametrize("kind", ["refused", "silent", "slow"])
def test_webhook_that_refuses_or_never_answers(kind):
    if kind == "slow":
        with rx.HttpReceiver(delay=5) as receiver:
            started = time.monotonic()
            result = send([webhook(receiver.url)])
    elif kind == "silent":
        with rx.Silent() as silent:
            started = time.monotonic()
            result = send([webhook(f"http://127.0.0.1:{silent.port}/hooks/T0KEN")])
    else:
        started = time.monotonic()
        result = send([webhook(f"http://127.0.0.1:{rx.refused_port()}/hooks/T0KEN")])
    assert time.monotonic() - started < 3
    reason = result["not_sent"][0]["reason"]
    assert reason == ("cannot reach it: [Errno 111] Connection refused" if kind == "refused" else "no answer within 0.5 s")
    assert "T0KEN" not in json.dumps(result)


@pytest.mark.parametrize("case, reason", [
    ("refused", "cannot hand the mail to the relay: [Errno 111] Connection refused"),
    ("silent", "cannot hand the mail to the relay: Connection unexpectedly closed: timed out"),
    ("rejected", "the relay refused every recipient: dba@example.com, lead@example.com"),
    ("partly", None),
    ("starttls", "the relay does not support it: STARTTLS extension not supported by server."),
    ("wrong password", "the relay answered 535 5.7.8 authentication failed"),
    ("no password file", "cannot read password_file /nonexistent/pw: No such file or directory"),
    ("no env", "the environment variable AIWFE_NO_SUCH_VAR (password_env) is not set on the managed host"),
])
def test_mail_failures(tmp_path, case, reason):
    secret_file = tmp_path / "pw"
    secret_file.write_text("wrong\n", encoding="utf-8")
    extra = {"starttls": {"starttls": True}, "wrong password": {"username": "u", "password_file": str(secret_file)},
             "no password file": {"username": "u", "password_file": "/nonexistent/pw"},
             "no env": {"username": "u", "password_env": "AIWFE_NO_SUCH_VAR"}}.get(case, {})
    reject = {"rejected": ["dba@example.com", "lead@example.com"], "partly": ["lead@example.com"]}.get(case, [])
    with rx.SmtpReceiver(reject=reject, auth=("u", "right") if "password" in case else None) as relay, \
            rx.Silent() as silent:
        port = {"refused": rx.refused_port(), "silent": silent.port}.get(case, relay.port)
        result = send([smtp(port, **extra)])
    if reason is None:
        assert result["sent"][0]["detail"] == "accepted for dba@example.com; refused for lead@example.com"
        return
    assert not result["changed"] and result["not_sent"][0]["reason"] == reason and len(result["warnings"]) == 1


@pytest.mark.parametrize("target, reason", [
    ({"type": "webhook"}, "a webhook target needs url"),
    ({"type": "webhook", "url": "ftp://host/x"}, "url must be an http:// or https:// URL with a host"),
    ({"type": "webhook", "url": "http://host:99999/x"}, "url is not a valid URL (its port?)"),
    ({"type": "pager", "url": "http://x"}, "type must be webhook or smtp, not 'pager'"),
    ({"url": "http://x"}, "type must be webhook or smtp, not None"),
    ({"type": "smtp", "host": "relay"}, "an smtp target needs sender, to"),
    ({"type": "smtp", "host": "relay", "sender": "a@b", "to": ["c@d"], "port": 0}, "port 0 is not a TCP port"),
    ({"type": "smtp", "host": "relay", "sender": "a@b", "to": ["c@d"], "password_env": "X"},
     "password_file/password_env need username"),
    ({"type": "webhook", "url": "http://x", "timeout": 0}, "timeout must be more than 0, not 0"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_unusable_targets_are_reported_not_raised(target, reason, check_mode):
    result = send([target], check_mode=check_mode)
    assert not result["changed"] and result["not_sent"] == [dict(notify.label(target, 1), reason=reason)]


def test_all_targets_wait_at_the_same_time():
    with rx.Silent() as one, rx.Silent() as two, rx.Silent() as three:
        started = time.monotonic()
        result = send([webhook(f"http://127.0.0.1:{s.port}/") for s in (one, two, three)])
    assert len(result["not_sent"]) == 3 and time.monotonic() - started < 1.5


def test_an_unexpected_error_in_a_sender_is_a_failed_target():
    def broken(_target, _message, _timeout, _host):
        raise RuntimeError("surprise at http://127.0.0.1/hooks/T0KEN")
    result = notify.notify([webhook("http://127.0.0.1/hooks/T0KEN")], message(), False, SHORT, "ctl-1", broken)
    assert result["not_sent"][0]["reason"] == "RuntimeError: surprise at 127.0.0.1"


# --- check mode and the module -------------------------------------------------------------------------------------

def test_check_mode_sends_nothing():
    with rx.HttpReceiver() as receiver, rx.SmtpReceiver() as relay:
        result = send([webhook(receiver.url), smtp(relay.port)], check_mode=True)
        time.sleep(0.2)
        assert receiver.recorder.items == [] and relay.recorder.items == []
    assert result["changed"] and result["sent"] == [] and result["msg"] == "recovery: would send to 2 of 2 targets"
    assert result["would_send"] == [
        {"name": "on-call", "type": "webhook", "target": f"127.0.0.1:{receiver.port}"},
        {"name": "dba", "type": "smtp", "target": f"127.0.0.1:{relay.port}", "to": ["dba@example.com", "lead@example.com"]}]


def test_no_targets_nothing_sent():
    result = send([])
    assert not result["changed"] and result["msg"] == "no notification targets: nothing sent"


def run_module(capsys, args, check_mode=False):
    with patch_module_args(dict(args, _ansible_check_mode=check_mode)), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("check_mode", [False, True])
def test_module(capsys, check_mode):
    with rx.HttpReceiver() as receiver:
        args = {"event": "recovery", "project": "ai_workflow_engine", "entry": ENTRY, "timeout": 2,
                "targets": [{"type": "webhook", "url": receiver.url, "use_proxy": False},
                            {"type": "smtp", "host": "127.0.0.1", "port": rx.refused_port(), "sender": "a@b.example",
                             "to": ["c@d.example"], "name": "dba"}]}
        result = run_module(capsys, args, check_mode)
        received = receiver.recorder.wait(0 if check_mode else 1, 1)
    assert result["changed"] and "failed" not in result
    assert result["message"]["body"]["log_entry"] == ENTRY["id"]
    assert "T0KEN" not in json.dumps(result)
    if check_mode:
        assert received == [] and len(result["would_send"]) == 2
    else:
        assert len(received) == 1 and [s["name"] for s in result["sent"]] == ["webhook 1"]
        assert result["not_sent"][0]["name"] == "dba" and "Connection refused" in result["not_sent"][0]["reason"]


def test_module_refuses_a_timeout_of_zero(capsys):
    result = run_module(capsys, {"event": "start", "project": "p", "timeout": 0})
    assert result["failed"] and "timeout must be more than 0 seconds" in result["msg"]


# --- the standalone receiver script (Molecule runs it) --------------------------------------------------------------

def test_the_receiver_script_records_what_it_gets(tmp_path):
    out = tmp_path / "received.jsonl"
    http_port, smtp_port = rx.refused_port(), rx.refused_port()
    script = rx.__file__
    process = subprocess.Popen([sys.executable, script, "--http-port", str(http_port), "--smtp-port", str(smtp_port),
                                "--out", str(out)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert process.stdout.readline() == f"listening http 127.0.0.1:{http_port} smtp 127.0.0.1:{smtp_port}\n"
        result = send([webhook(f"http://127.0.0.1:{http_port}/hook"), smtp(smtp_port)], timeout=3)
        assert len(result["sent"]) == 2
    finally:
        process.terminate()
        assert process.wait(10) == 0
        process.stdout.close()
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(item["kind"] for item in lines) == ["http", "smtp"]
    assert all(item.get("body") for item in lines)
