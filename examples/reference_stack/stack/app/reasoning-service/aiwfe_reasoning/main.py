"""reasoning-service: GET /health checks perception-service and memory-service."""

import os

from aiwfe_common.service import Service, env_float, http_check, setup

SERVICE = "reasoning-service"
DEPENDENCIES = {
    "perception-service": os.environ.get("PERCEPTION_SERVICE_URL", "http://perception-service:8000"),
    "memory-service": os.environ.get("MEMORY_SERVICE_URL", "http://memory-service:8000"),
}
TIMEOUT = env_float("DEPENDENCY_TIMEOUT", "2")


def health():
    return {name: http_check(url, TIMEOUT) for name, url in DEPENDENCIES.items()}, {"dependencies": DEPENDENCIES}


def main():
    setup(SERVICE)
    Service(SERVICE, health).serve()
