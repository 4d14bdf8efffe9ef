"""api: runs `python3 -m alembic upgrade head`, then serves the HTTP API on port 8000.

GET /health     postgres (SELECT 1), schema (the columns this code uses), alembic revision
GET /           service, version, features
POST /jobs      {"kind": "...", "payload": {...}} -> 201 {"id": ...}
GET /stats      row counts per table, jobs per status
GET /documents  the latest documents written by the worker
"""

import os
import subprocess
import sys

from psycopg2 import sql
from psycopg2.extras import Json

from aiwfe_api import schema
from aiwfe_common import db
from aiwfe_common.service import LOG, Service, error_text, setup

SERVICE = "api"
ALEMBIC_INI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "alembic.ini")


def migrate():
    """Apply the migrations; a failure stops the service (exit 1, so it restarts in a loop)."""
    LOG.info("running: python3 -m alembic upgrade head")
    result = subprocess.run([sys.executable, "-m", "alembic", "-c", ALEMBIC_INI, "upgrade", "head"], check=False)
    if result.returncode != 0:
        LOG.error("alembic upgrade head failed (exit %d): not starting", result.returncode)
        sys.exit(1)


def alembic_head():
    """The newest revision this image's code knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(Config(ALEMBIC_INI)).get_current_head()


def schema_check(cur):
    for table, columns in schema.REQUIRED_COLUMNS.items():
        stmt = sql.SQL("SELECT {} FROM {} LIMIT 0").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table))
        result = db.check(cur, stmt)
        if result != "ok":
            return "%s: %s" % (table, result)
    return "ok"


def health(probe, head):
    checks = {}
    extra = {"alembic_revision": None, "alembic_head": head}

    def run(cur):
        checks["postgres"] = db.check(cur, "SELECT 1")
        if db.check(cur, "SELECT version_num FROM alembic_version") == "ok":
            row = cur.fetchone()
            extra["alembic_revision"] = row[0] if row else None
        checks["schema"] = schema_check(cur)

    try:
        probe.run(run)
    except Exception as exc:
        checks = {"postgres": error_text(exc)}
    extra["db"] = checks["postgres"]
    return checks, extra


def create_job(body, _query):
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str) or not body["kind"]:
        return 400, {"error": 'expected a JSON object with a non-empty string "kind"'}
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        return 400, {"error": '"payload" must be a JSON object'}
    fields = {"kind": body["kind"][:64], "payload": Json(payload)}
    for name, convert in schema.EXTRA_JOB_FIELDS.items():
        if name in body:
            try:
                fields[name] = convert(body[name])
            except (TypeError, ValueError):
                return 400, {"error": "invalid %s" % name}
    stmt = sql.SQL("INSERT INTO jobs ({}) VALUES ({}) RETURNING id, status, created_at").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in fields),
        sql.SQL(", ").join(sql.Placeholder() * len(fields)))
    with db.connection("api") as conn, conn.cursor() as cur:
        cur.execute(stmt, list(fields.values()))
        job_id, status, created_at = cur.fetchone()
    return 201, {"id": job_id, "status": status, "created_at": created_at.isoformat()}


def stats(_body, _query):
    tables = {}
    with db.connection("api", autocommit=True) as conn, conn.cursor() as cur:
        for table in schema.STATS_TABLES:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            tables[table] = cur.fetchone()[0]
        cur.execute("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
        by_status = dict(cur.fetchall())
    return 200, {"tables": tables, "jobs_by_status": by_status}


def documents(_body, query):
    try:
        limit = max(1, min(100, int(query.get("limit", "10"))))
    except ValueError:
        return 400, {"error": "limit must be an integer"}
    columns = schema.DOCUMENT_COLUMNS
    stmt = sql.SQL("SELECT {} FROM documents ORDER BY id DESC LIMIT %s").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    with db.connection("api", autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(stmt, (limit,))
        rows = [dict(zip(columns, row)) for row in cur.fetchall()]
    return 200, {"documents": rows}


def main():
    setup(SERVICE)
    migrate()
    head = alembic_head()
    probe = db.Probe("api-health")
    service = Service(SERVICE, lambda: health(probe, head))
    service.route("GET", "/", lambda _body, _query: (200, {"service": SERVICE, "version": service.version, "features": schema.FEATURES}))
    service.route("POST", "/jobs", create_job)
    service.route("GET", "/stats", stats)
    service.route("GET", "/documents", documents)
    service.serve()
