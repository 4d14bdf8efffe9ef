# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Telling people: the runbook's contacts (on-call, database administrator, infrastructure lead) hear of a rollback's
start, failure and recovery through a generic JSON webhook (chat and pager gateways take these) and mail through an
SMTP relay. Standard library only (urllib.request, smtplib).

A notification that fails never raises: every target ends in ``sent`` or ``not_sent`` (with the reason; not ``failed``, which
Ansible reads as the task's own failure), all targets
are sent to at the same time, each with a short timeout. A webhook URL may carry a token: only its host (and port) is
ever returned or named in a message. An SMTP password is read on the managed host from a file or an environment
variable, never passed as a value.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import email.message
import email.utils
import json
import os
import smtplib
import ssl
import typing as t
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.aiwfe.rollback.plugins.module_utils._rollback_log import human

EVENTS = {"start": "ROLLBACK STARTED", "failure": "ROLLBACK FAILED", "recovery": "RECOVERED"}
TYPES = ("webhook", "smtp")
DEFAULT_TIMEOUT = 5.0
USER_AGENT = "aiwfe.rollback-notify/1"
SOURCE = "aiwfe.rollback"
MAX_SUBJECT = 150

Target = t.Dict[str, t.Any]
Message = t.Dict[str, t.Any]


class NotifyError(Exception):
    """One target cannot be sent to; the message is its reason (never the URL)."""


# --- the message ---------------------------------------------------------------------------------------------------

def _pick(params: dict[str, t.Any], key: str, from_entry: t.Any) -> t.Any:
    value = params.get(key)
    return from_entry if value in (None, "") else value


def build_message(params: dict[str, t.Any], this_host: str, now: datetime.datetime | None = None) -> Message:
    """The one message every target gets: the webhook's JSON body, the text line, the mail's subject and body."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    entry = params.get("entry") or {}
    event = params["event"]
    method = _pick(params, "method", entry.get("method")) or "rollback"
    release_from = _pick(params, "from_release", (entry.get("from") or {}).get("release"))
    release_to = _pick(params, "to_release", (entry.get("to") or {}).get("release"))
    ttr = _pick(params, "time_to_recovery_s", entry.get("time_to_recover_s"))
    failed_step = entry.get("failed_step")
    hosts = list(params.get("hosts") or []) or [entry.get("host") or this_host]
    project = params["project"]
    moves = f"{release_from or 'unknown'} -> {release_to or 'unknown'}" if release_from or release_to else ""
    summary = params.get("summary")
    if not summary:
        if event == "start":
            summary = f"{method} rollback started" + (f": {moves}" if moves else "")
        elif event == "failure":
            summary = (f"{method} rollback failed" + (f" at step {failed_step}" if failed_step else "")
                       + (f" ({moves})" if moves else "") + "; the stack is not recovered")
        else:
            summary = f"recovered by a {method} rollback" + (f": {moves}" if moves else "")
    text = f"[{SOURCE}] {EVENTS[event]} {project} on {', '.join(hosts)}: {summary}"
    if event == "recovery" and ttr is not None:
        text += f" - time to recovery {human(ttr)}"
    body = {
        "source": SOURCE,
        "event": event,
        "project": project,
        "hosts": hosts,
        "summary": summary,
        "text": text,
        "method": method,
        "result": entry.get("result"),
        "from_release": release_from,
        "to_release": release_to,
        "time_to_recovery_s": ttr,
        "backup_set": entry.get("backup_set"),
        "failed_step": failed_step,
        "log_entry": entry.get("id"),
        "sent_at": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    subject = f"[{SOURCE}] {EVENTS[event]} {project} on {', '.join(hosts)}: {summary}"
    if len(subject) > MAX_SUBJECT:
        subject = subject[:MAX_SUBJECT - 3] + "..."
    lines = [text, ""] + [f"{key}: {value}" for key, value in body.items()
                          if key not in ("text", "source") and value not in (None, "", [])]
    lines += ["", f"Sent by {SOURCE} from {this_host}."]
    return {"event": event, "subject": subject, "text": text, "body": body, "mail": "\n".join(lines) + "\n"}


# --- targets -------------------------------------------------------------------------------------------------------

def where(target: Target) -> str:
    """What is shown of a target: the host (and port) only - a webhook URL may carry a token."""
    if target.get("type") == "webhook":
        try:
            parts = urllib.parse.urlsplit(target.get("url") or "")
            host, port = parts.hostname or "", parts.port
        except ValueError:
            return "invalid URL"
        if not host:
            return "invalid URL"
        return f"[{host}]:{port}" if ":" in host and port else f"{host}:{port}" if port else host
    return f"{target.get('host') or '?'}:{smtp_port(target)}"


def smtp_port(target: Target) -> int:
    port = target.get("port")
    return 25 if port is None else int(port)


def label(target: Target, number: int) -> dict[str, t.Any]:
    kind = target.get("type") or "?"
    return {"name": target.get("name") or f"{kind} {number}", "type": kind, "target": where(target)}


def problem(target: Target) -> str | None:
    """Why a target cannot be used (None when it can)."""
    kind = target.get("type")
    if kind not in TYPES:
        return f"type must be webhook or smtp, not {kind!r}"
    timeout = target.get("timeout")
    if timeout is not None and timeout <= 0:
        return f"timeout must be more than 0, not {timeout}"
    if kind == "webhook":
        url = target.get("url") or ""
        if not url:
            return "a webhook target needs url"
        try:
            parts = urllib.parse.urlsplit(url)
            _port = parts.port
        except ValueError:
            return "url is not a valid URL (its port?)"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "url must be an http:// or https:// URL with a host"
        return None
    missing = [key for key in ("host", "sender", "to") if not target.get(key)]
    if missing:
        return f"an smtp target needs {', '.join(missing)}"
    port = smtp_port(target)
    if not 0 < port < 65536:
        return f"port {port} is not a TCP port"
    if (target.get("password_file") or target.get("password_env")) and not target.get("username"):
        return "password_file/password_env need username"
    if target.get("password_file") and target.get("password_env"):
        return "give password_file or password_env, not both"
    return None


def smtp_password(target: Target) -> str | None:
    """The SMTP password, read on the managed host (file: its first line; or an environment variable)."""
    path, env = target.get("password_file"), target.get("password_env")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                password = handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise NotifyError(f"cannot read password_file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not password:
            raise NotifyError(f"password_file {path} is empty")
        return password
    if env:
        password = os.environ.get(env)
        if not password:
            raise NotifyError(f"the environment variable {env} (password_env) is not set on the managed host")
        return password
    return None


# --- sending -------------------------------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect is reported, not followed (a POST would turn into a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments
        return None


def _clean(text: str, target: Target) -> str:
    """An error text without the URL or any part of it that may carry a token."""
    url = target.get("url") or ""
    out = text.replace(url, where(target)) if url else text
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return out
    for part in (parts.path, parts.query, parts.fragment, parts.username, parts.password):
        if part and len(part) > 1:
            out = out.replace(part, "...")
    return out


def send_webhook(target: Target, message: Message, timeout: float) -> str:
    """POST the JSON body; the answer's status line (2xx), else NotifyError."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    headers.update({str(k): str(v) for k, v in (target.get("headers") or {}).items()})
    request = urllib.request.Request(target["url"], data=json.dumps(message["body"]).encode("utf-8"),
                                     headers=headers, method="POST")
    context = ssl.create_default_context()
    if target.get("validate_certs") is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    handlers: list[t.Any] = [_NoRedirect(), urllib.request.HTTPSHandler(context=context)]
    if target.get("use_proxy") is False:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        hint = " (redirects are not followed: give the final URL)" if 300 <= exc.code < 400 else ""
        raise NotifyError(f"answered HTTP {exc.code} {_clean(str(exc.reason), target)}{hint}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise NotifyError(f"no answer within {timeout:g} s") from None
        raise NotifyError(f"cannot reach it: {_clean(str(exc.reason), target)}") from None
    except TimeoutError:
        raise NotifyError(f"no answer within {timeout:g} s") from None
    except (OSError, ValueError) as exc:
        raise NotifyError(f"failed: {_clean(str(exc), target)}") from None


def mail(target: Target, message: Message, this_host: str) -> email.message.EmailMessage:
    out = email.message.EmailMessage()
    out["Subject"] = message["subject"]
    out["From"] = target["sender"]
    out["To"] = ", ".join(target["to"])
    out["Date"] = email.utils.formatdate(usegmt=True)
    domain = target["sender"].rpartition("@")[2] or this_host
    out["Message-ID"] = email.utils.make_msgid(domain=domain)
    out.set_content(message["mail"])
    return out


def send_mail(target: Target, message: Message, timeout: float, this_host: str) -> str:
    """Hand the mail to the relay; what it accepted, else NotifyError."""
    password = smtp_password(target)
    try:
        # local_hostname: without it smtplib asks DNS for this host's full name, which may hang past the timeout.
        with smtplib.SMTP(target["host"], smtp_port(target), local_hostname=this_host, timeout=timeout) as smtp:
            if target.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            if target.get("username"):
                smtp.login(target["username"], password or "")
            refused = smtp.send_message(mail(target, message, this_host), from_addr=target["sender"],
                                        to_addrs=list(target["to"]))
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotifyError(f"the relay refused every recipient: {', '.join(sorted(exc.recipients))}") from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise NotifyError(f"the relay answered {exc.smtp_code} {text}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise NotifyError(f"the relay does not support it: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError(f"cannot hand the mail to the relay: {exc or type(exc).__name__}") from None
    accepted = [rcpt for rcpt in target["to"] if rcpt not in refused]
    detail = f"accepted for {', '.join(accepted)}"
    if refused:
        detail += f"; refused for {', '.join(sorted(refused))}"
    return detail


def send(target: Target, message: Message, timeout: float, this_host: str) -> str:
    if target["type"] == "webhook":
        return send_webhook(target, message, timeout)
    return send_mail(target, message, timeout, this_host)


def notify(targets: list[Target], message: Message, check_mode: bool, timeout: float = DEFAULT_TIMEOUT,
           this_host: str = "localhost",
           sender: t.Callable[[Target, Message, float, str], str] = send) -> dict[str, t.Any]:
    """Send ``message`` to every target at once. Returns changed (something was sent - would be, in check mode),
    sent, not_sent, would_send (check mode), warnings and msg; never raises for a target."""
    sent: list[dict[str, t.Any]] = []
    failed: list[dict[str, t.Any]] = []
    ready: list[tuple[dict[str, t.Any], Target]] = []
    for number, target in enumerate(targets, 1):
        shown = label(target, number)
        reason = problem(target)
        if reason is None and check_mode and target.get("type") == "smtp":
            try:
                smtp_password(target)
            except NotifyError as exc:
                reason = str(exc)
        if reason:
            failed.append(dict(shown, reason=reason))
        else:
            ready.append((shown, target))
    if check_mode:
        would = [dict(shown, **({"to": list(target["to"])} if target["type"] == "smtp" else {}))
                 for shown, target in ready]
        result: dict[str, t.Any] = {"changed": bool(would), "sent": [], "not_sent": failed, "would_send": would}
    else:
        if ready:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(ready))) as pool:
                futures = [pool.submit(_one, sender, target, message, target.get("timeout") or timeout, this_host)
                           for _shown, target in ready]
                for (shown, _target), future in zip(ready, futures):
                    ok, detail = future.result()
                    (sent if ok else failed).append(dict(shown, **({"detail": detail} if ok else {"reason": detail})))
        result = {"changed": bool(sent), "sent": sent, "not_sent": failed}
    result["warnings"] = [f"notification to {f['name']} ({f['target']}) failed: {f['reason']}. The rollback goes on."
                          for f in failed]
    verb = "would send" if check_mode else "sent"
    done = result.get("would_send") if check_mode else sent
    result["msg"] = (f"{message['event']}: {verb} to {len(done or [])} of {len(targets)} targets"
                     + (f"; not sent: {', '.join(f['name'] for f in failed)}" if failed else "")
                     if targets else "no notification targets: nothing sent")
    return result


def _one(sender: t.Callable[[Target, Message, float, str], str], target: Target, message: Message, timeout: float,
         this_host: str) -> tuple[bool, str]:
    try:
        return True, sender(target, message, timeout, this_host)
    except NotifyError as exc:
        return False, str(exc)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # A notification never fails the rollback, whatever went wrong in it.
        return False, _clean(f"{type(exc).__name__}: {exc}", target)
