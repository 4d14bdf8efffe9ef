"""A tiny JSON HTTP service (stdlib http.server) with a /health endpoint.

Every service of the stack serves ``GET /health`` on port 8000::

    {"service": NAME, "status": "ok" | "fail", "version": RELEASE,
     "checks": {DEPENDENCY: "ok" | ERROR_TEXT, ...}, ...extra fields}

with HTTP 200 when every check is "ok" and 503 otherwise.
"""

import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = logging.getLogger("aiwfe")
RELEASE_FILE = "/opt/app/RELEASE"
PORT = 8000
# A failing check is logged when it starts failing, then at most this often.
FAILURE_LOG_INTERVAL = 30.0


def baked_release():
    """The release this image was built for (written at build time), never the runtime env."""
    try:
        with open(RELEASE_FILE, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return "unknown"


def setup(service):
    """Logging to stdout plus SIGTERM/SIGINT handlers: exit at once on `docker stop`."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s " + service + " %(levelname)s %(message)s")

    def _exit(signum, _frame):
        LOG.info("received %s, exiting", signal.Signals(signum).name)
        sys.exit(0)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)


def error_text(exc):
    """One short line describing an exception (never contains a password)."""
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else ""
    name = type(exc).__name__
    return (name + ": " + line if line else name)[:300]


def _json_default(value):
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def http_check(url, timeout):
    """GET URL/health; return "ok" or an error text."""
    target = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            resp.read()
        return "ok"
    except urllib.error.HTTPError as exc:
        return "%s answered HTTP %d" % (target, exc.code)
    except urllib.error.URLError as exc:
        return "%s unreachable: %s" % (target, exc.reason)
    except (OSError, ValueError) as exc:
        return "%s unreachable: %s" % (target, error_text(exc))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            LOG.warning("client %s went away before the answer (%s)", client_address[0], type(exc).__name__)
        else:
            super().handle_error(request, client_address)


class Service:
    """Routes plus a health function returning (checks, extra fields)."""

    def __init__(self, name, health):
        self.name = name
        self.version = baked_release()
        self._health = health
        self._routes = {}
        self._failing = {}
        self._lock = threading.Lock()
        self.route("GET", "/health", lambda _body, _query: self.health())
        self.route("GET", "/", lambda _body, _query: (200, {"service": self.name, "version": self.version}))

    def route(self, method, path, func):
        """func(body, query) -> (http status, JSON-able object)."""
        self._routes[(method, path)] = func

    def health(self):
        try:
            checks, extra = self._health()
        except Exception as exc:
            checks, extra = {"health": error_text(exc)}, {}
        ok = all(value == "ok" for value in checks.values())
        self._log_failures(checks)
        doc = {"service": self.name, "status": "ok" if ok else "fail", "version": self.version, "checks": checks}
        doc.update(extra)
        return (200 if ok else 503), doc

    def _log_failures(self, checks):
        now = time.monotonic()
        with self._lock:
            for name, value in checks.items():
                if value == "ok":
                    if self._failing.pop(name, None) is not None:
                        LOG.info("check %s is ok again", name)
                    continue
                last = self._failing.get(name)
                if last is None or now - last >= FAILURE_LOG_INTERVAL:
                    LOG.warning("check %s failed: %s", name, value)
                    self._failing[name] = now

    def dispatch(self, method, raw_path, body):
        parsed = urllib.parse.urlsplit(raw_path)
        func = self._routes.get((method, parsed.path))
        if func is None:
            known = any(path == parsed.path for _method, path in self._routes)
            return (405, {"error": "method not allowed"}) if known else (404, {"error": "not found"})
        query = dict(urllib.parse.parse_qsl(parsed.query))
        try:
            return func(body, query)
        except Exception as exc:
            LOG.exception("%s %s failed", method, parsed.path)
            return 500, {"error": error_text(exc)}

    def serve(self, port=PORT):
        service = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "aiwfe"
            sys_version = ""

            def _answer(self, method):
                body = None
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    try:
                        body = json.loads(self.rfile.read(length))
                    except ValueError:
                        self._send(400, {"error": "the request body is not JSON"})
                        return
                status, doc = service.dispatch(method, self.path, body)
                self._send(status, doc)

            def _send(self, status, doc):
                data = (json.dumps(doc, default=_json_default) + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                # Health probes run every 2 s: keep them out of the logs.
                if not self.path.startswith("/health"):
                    LOG.info("%s %s", self.address_string(), format % args)

        server = _Server(("", port), Handler)
        LOG.info("%s %s listening on :%d (python %s)", self.name, self.version, port, sys.version.split()[0])
        try:
            server.serve_forever()
        finally:
            server.server_close()


def start_background(target, name):
    """Run target() in a daemon thread (the main thread keeps the signal handlers)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return float(default)
