"""PostgreSQL helpers: connection settings from the environment, password from a file."""

import contextlib
import os
import threading

import psycopg2


def read_password():
    """The password from the file named by POSTGRES_PASSWORD_FILE (a compose secret)."""
    path = os.environ.get("POSTGRES_PASSWORD_FILE")
    if not path:
        raise RuntimeError("POSTGRES_PASSWORD_FILE is not set")
    with open(path, encoding="utf-8") as handle:
        return handle.read().rstrip("\r\n")


def connect_kwargs(application_name):
    return {
        "host": os.environ.get("POSTGRES_HOST", "postgres"),
        "port": int(os.environ.get("POSTGRES_PORT", "5432")),
        "dbname": os.environ.get("POSTGRES_DB", "ai_workflow_engine"),
        "user": os.environ.get("POSTGRES_USER", "postgres"),
        "password": read_password(),
        "connect_timeout": int(os.environ.get("POSTGRES_CONNECT_TIMEOUT", "2")),
        "application_name": application_name,
    }


def connect(application_name, **extra):
    kwargs = connect_kwargs(application_name)
    kwargs.update(extra)
    return psycopg2.connect(**kwargs)


@contextlib.contextmanager
def connection(application_name, autocommit=False):
    """A connection that commits when the block succeeds and is always closed."""
    conn = connect(application_name)
    try:
        conn.autocommit = autocommit
        yield conn
        if not autocommit:
            conn.commit()
    finally:
        conn.close()


def check(cursor, sql, params=None):
    """Run one statement; return "ok" or a one-line error (autocommit cursors only)."""
    try:
        cursor.execute(sql, params)
        return "ok"
    except psycopg2.Error as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class Probe:
    """One connection kept open for /health (no new backend, DNS look-up and SCRAM exchange per probe).

    run(func) calls func(cursor) on an autocommit cursor; an error that escapes func (the
    connection broke, or the server is gone) closes the connection: the next call reconnects.
    """

    def __init__(self, application_name):
        self.application_name = application_name
        self._conn = None
        self._lock = threading.Lock()

    def run(self, func):
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self.application_name, options="-c statement_timeout=3000")
                    self._conn.autocommit = True
                with self._conn.cursor() as cur:
                    return func(cur)
            except Exception:
                self._close()
                raise

    def _close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
            self._conn = None
