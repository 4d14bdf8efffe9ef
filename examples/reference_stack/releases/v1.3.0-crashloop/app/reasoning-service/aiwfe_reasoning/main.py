"""reasoning-service: GET /health checks perception-service and memory-service.

This release loads a reasoning model named by REASONING_MODEL at start
(compose.yaml was not updated to set it).
"""

import os

from aiwfe_common.service import LOG, Service, env_float, http_check, setup

SERVICE = "reasoning-service"
DEPENDENCIES = {
    "perception-service": os.environ.get("PERCEPTION_SERVICE_URL", "http://perception-service:8000"),
    "memory-service": os.environ.get("MEMORY_SERVICE_URL", "http://memory-service:8000"),
}
TIMEOUT = env_float("DEPENDENCY_TIMEOUT", "2")


def load_model():
    name = os.environ["REASONING_MODEL"]
    LOG.info("using reasoning model %s", name)
    return name


def health(model):
    return {name: http_check(url, TIMEOUT) for name, url in DEPENDENCIES.items()}, {"dependencies": DEPENDENCIES, "model": model}


def main():
    setup(SERVICE)
    model = load_model()
    Service(SERVICE, lambda: health(model)).serve()
