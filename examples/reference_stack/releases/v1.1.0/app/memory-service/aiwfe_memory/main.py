"""memory-service: GET /health checks postgres (SELECT 1); GET /memories lists the latest memories."""

from aiwfe_common import db
from aiwfe_common.service import Service, error_text, setup

SERVICE = "memory-service"


PROBE = db.Probe("memory-health")


def health():
    try:
        return {"postgres": PROBE.run(lambda cur: db.check(cur, "SELECT 1"))}, {}
    except Exception as exc:
        return {"postgres": error_text(exc)}, {}


def memories(_body, query):
    try:
        limit = max(1, min(100, int(query.get("limit", "10"))))
    except ValueError:
        return 400, {"error": "limit must be an integer"}
    with db.connection("memory-service", autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, document_id, summary, created_at FROM memories ORDER BY id DESC LIMIT %s", (limit,))
        rows = [dict(zip(("id", "document_id", "summary", "created_at"), row)) for row in cur.fetchall()]
    return 200, {"memories": rows}


def main():
    setup(SERVICE)
    service = Service(SERVICE, health)
    service.route("GET", "/memories", memories)
    service.serve()
