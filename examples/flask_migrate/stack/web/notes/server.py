"""The WSGI server of the notes application (werkzeug's threaded server), after start.sh has run
`flask db upgrade`. As PID 1 of its container it handles SIGTERM and SIGINT itself, so `docker stop` and
`docker compose down` stop it at once."""

import logging
import os
import signal
import sys

from werkzeug.serving import make_server

from notes import create_app


def _stop(signum, _frame):
    logging.getLogger("notes").info("signal %d: stopping", signum)
    sys.exit(0)


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per request would be one every healthcheck (0.5 to 2 s): only warnings from werkzeug.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app = create_app()
    port = int(os.environ.get("NOTES_PORT", "5000"))
    server = make_server("0.0.0.0", port, app, threaded=True)
    logging.getLogger("notes").info("notes %s serving on port %d", app.config["NOTES_RELEASE"], port)
    server.serve_forever()  # werkzeug's closes the socket when it ends (here: SystemExit from _stop)


if __name__ == "__main__":
    main()
