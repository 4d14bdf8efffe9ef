# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Loopback receivers for the notification tests: a webhook (HTTP) receiver and a minimal SMTP receiver (EHLO/HELO,
AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT; STARTTLS refused), plus a listener that never answers.

Standard library only, one file: the unit tests import it (test_notify.py), and a Molecule scenario copies it anywhere
and runs it on its own:

  python3 notify_receiver.py --http-port 18080 --smtp-port 18025 --out /tmp/received.jsonl

It appends what it receives, one JSON object a line, to --out ({"kind": "http", "path", "headers", "body"} and
{"kind": "smtp", "helo", "mail_from", "rcpt_to", "auth", "subject", "from", "to", "body", "data"}), prints one line
"listening http 127.0.0.1:18080 smtp 127.0.0.1:18025" when both listen, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email.parser
import email.policy
import http.server
import json
import signal
import socket
import socketserver
import sys
import threading
import typing as t

LOCALHOST = "127.0.0.1"


class Recorder:
    """What the receivers got, in order; appended as JSON lines to ``out`` when given."""

    def __init__(self, out: str | None = None) -> None:
        self.items: list[dict[str, t.Any]] = []
        self.out = out
        self.changed = threading.Condition()

    def add(self, item: dict[str, t.Any]) -> None:
        with self.changed:
            self.items.append(item)
            if self.out:
                with open(self.out, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(item, sort_keys=True) + "\n")
            self.changed.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, t.Any]]:
        """The items once there are ``count`` of them (or what there is after ``timeout`` seconds)."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.items) >= count, timeout)
            return list(self.items)


class _Server:
    """A socketserver in a thread of its own."""

    server: socketserver.TCPServer

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "_Server":
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "_Server":
        return self.start()

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()


class _ThreadingHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    receiver: "HttpReceiver"


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    server: _ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        receiver = self.server.receiver
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: t.Any = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = raw.decode("utf-8", "replace")
        receiver.recorder.add({"kind": "http", "method": "POST", "path": self.path,
                               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        if receiver.delay:
            receiver.stopping.wait(receiver.delay)
            if receiver.stopping.is_set():
                return
        answer = b'{"ok": true}' if 200 <= receiver.status < 300 else b'{"ok": false}'
        self.send_response(receiver.status)
        if 300 <= receiver.status < 400:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
        return


class HttpReceiver(_Server):
    """Answers every POST with ``status`` (after ``delay`` seconds) and records it."""

    def __init__(self, recorder: Recorder | None = None, host: str = LOCALHOST, port: int = 0, status: int = 200,
                 delay: float = 0.0) -> None:
        super().__init__()
        self.recorder = recorder or Recorder()
        self.status = status
        self.delay = delay
        self.server = _ThreadingHTTPServer((host, port), _HttpHandler)
        self.server.receiver = self

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/hooks/T0KEN-secret"


class _ThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    receiver: "SmtpReceiver"


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _ThreadingTCPServer
    timeout = 10

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("utf-8") + b"\r\n")
        self.wfile.flush()

    def readline(self) -> str | None:
        raw = self.rfile.readline(65536)
        return raw.decode("utf-8", "replace").rstrip("\r\n") if raw else None

    def handle(self) -> None:
        receiver = self.server.receiver
        state: dict[str, t.Any] = {"helo": None, "auth": None, "mail_from": None, "rcpt_to": []}
        self.reply("220 notify-receiver ESMTP ready")
        while not receiver.stopping.is_set():
            try:
                line = self.readline()
            except OSError:
                return
            if line is None:
                return
            verb, _sep, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                state["helo"] = arg
                extensions = ["8BITMIME", "SIZE 10485760"] + (["AUTH PLAIN"] if receiver.auth else [])
                self.reply("250-notify-receiver")
                for extension in extensions[:-1]:
                    self.reply(f"250-{extension}")
                self.reply(f"250 {extensions[-1]}")
            elif verb == "HELO":
                state["helo"] = arg
                self.reply("250 notify-receiver")
            elif verb == "AUTH":
                self.auth(arg, state)
            elif verb == "MAIL":
                state["mail_from"] = _address(arg)
                state["rcpt_to"] = []
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                rcpt = _address(arg)
                if rcpt in receiver.reject:
                    self.reply("550 5.1.1 no such user here")
                else:
                    state["rcpt_to"].append(rcpt)
                    self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                if not state["rcpt_to"]:
                    self.reply("503 5.5.1 RCPT first")
                    continue
                self.reply("354 end data with <CR><LF>.<CR><LF>")
                self.data(state)
            elif verb == "RSET":
                state.update(mail_from=None, rcpt_to=[])
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb == "STARTTLS":
                self.reply("454 4.7.0 TLS not available")
            else:
                self.reply("502 5.5.2 command not implemented")

    def auth(self, arg: str, state: dict[str, t.Any]) -> None:
        receiver = self.server.receiver
        mechanism, _sep, initial = arg.partition(" ")
        if not receiver.auth or mechanism.upper() != "PLAIN":
            self.reply("504 5.5.4 mechanism not supported")
            return
        if not initial:
            self.reply("334 ")
            initial = self.readline() or ""
        try:
            _authzid, user, password = base64.b64decode(initial).decode("utf-8").split("\0")
        except (ValueError, binascii.Error):
            self.reply("501 5.5.2 cannot decode")
            return
        if (user, password) == receiver.auth:
            state["auth"] = user
            self.reply("235 2.7.0 authenticated")
        else:
            self.reply("535 5.7.8 authentication failed")

    def data(self, state: dict[str, t.Any]) -> None:
        lines = []
        while True:
            line = self.readline()
            if line is None or line == ".":
                break
            lines.append(line[1:] if line.startswith("..") else line)
        text = "\r\n".join(lines) + "\r\n"
        parsed = email.parser.Parser(policy=email.policy.default).parsestr(text)
        body = parsed.get_body(("plain",))
        self.server.receiver.recorder.add({
            "kind": "smtp", "helo": state["helo"], "auth": state["auth"], "mail_from": state["mail_from"],
            "rcpt_to": list(state["rcpt_to"]), "subject": str(parsed["subject"] or ""), "from": str(parsed["from"] or ""),
            "to": str(parsed["to"] or ""), "body": body.get_content() if body is not None else "", "data": text})
        self.reply("250 2.0.0 OK queued")


def _address(arg: str) -> str:
    """The address of MAIL FROM:<a> / RCPT TO:<b> (parameters after it dropped)."""
    _head, _sep, rest = arg.partition(":")
    return rest.strip().split(" ")[0].strip("<>")


class SmtpReceiver(_Server):
    """A minimal SMTP receiver: records every mail; refuses the recipients in ``reject``; with ``auth`` = (user,
    password) it offers AUTH PLAIN and checks them."""

    def __init__(self, recorder: Recorder | None = None, host: str = LOCALHOST, port: int = 0,
                 reject: t.Iterable[str] = (), auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.recorder = recorder or Recorder()
        self.reject = set(reject)
        self.auth = auth
        self.server = _ThreadingTCPServer((host, port), _SmtpHandler)
        self.server.receiver = self


class Silent:
    """Listens but never accepts nor answers: connecting works, every answer times out."""

    def __init__(self, host: str = LOCALHOST) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> "Silent":
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.sock.close()


def refused_port(host: str = LOCALHOST) -> int:
    """A port nothing listens on (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback webhook and SMTP receivers for the notification tests")
    parser.add_argument("--host", default=LOCALHOST)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--smtp-port", type=int, default=0)
    parser.add_argument("--out", required=True, help="append what is received here, one JSON object a line")
    parser.add_argument("--status", type=int, default=200, help="HTTP status of the webhook's answers")
    parser.add_argument("--reject", action="append", default=[], help="a recipient the SMTP receiver refuses")
    args = parser.parse_args(argv)
    recorder = Recorder(args.out)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with HttpReceiver(recorder, args.host, args.http_port, args.status) as web, \
            SmtpReceiver(recorder, args.host, args.smtp_port, args.reject) as smtp:
        sys.stdout.write(f"listening http {args.host}:{web.port} smtp {args.host}:{smtp.port}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
