"""perception-service: GET /health checks memory-service (GET its /health)."""

import os

from aiwfe_common.service import Service, env_float, http_check, setup

SERVICE = "perception-service"
MEMORY_SERVICE_URL = os.environ.get("MEMORY_SERVICE_URL", "http://memory-service:8000")
TIMEOUT = env_float("DEPENDENCY_TIMEOUT", "2")


def health():
    return {"memory-service": http_check(MEMORY_SERVICE_URL, TIMEOUT)}, {"dependencies": {"memory-service": MEMORY_SERVICE_URL}}


def main():
    setup(SERVICE)
    Service(SERVICE, health).serve()
