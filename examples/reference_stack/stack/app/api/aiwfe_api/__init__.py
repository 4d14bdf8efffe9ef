"""The api service: HTTP API in front of the jobs queue; owns the Alembic migrations."""
