"""add jobs.attempts and an index for retries

Broken on purpose: the index names a column that does not exist. The first statement
(ADD COLUMN) succeeds, the second fails; PostgreSQL's transactional DDL rolls both back,
so the schema and alembic_version stay at 0004 and the api exits (restart loop).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("jobs", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_jobs_retry", "jobs", ["status", "attempt_count"])


def downgrade():
    op.drop_index("ix_jobs_retry", table_name="jobs")
    op.drop_column("jobs", "attempts")
