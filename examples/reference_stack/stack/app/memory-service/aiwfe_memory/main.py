"""memory-service: GET /health checks postgres (SELECT 1)."""

from aiwfe_common import db
from aiwfe_common.service import Service, error_text, setup

SERVICE = "memory-service"


PROBE = db.Probe("memory-health")


def health():
    try:
        return {"postgres": PROBE.run(lambda cur: db.check(cur, "SELECT 1"))}, {}
    except Exception as exc:
        return {"postgres": error_text(exc)}, {}


def main():
    setup(SERVICE)
    Service(SERVICE, health).serve()
