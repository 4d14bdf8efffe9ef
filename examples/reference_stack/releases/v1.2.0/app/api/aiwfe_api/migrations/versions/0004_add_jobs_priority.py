"""add jobs.priority (NOT NULL, server default 0: older code keeps working)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("jobs", sa.Column("priority", sa.Integer, nullable=False, server_default="0"))


def downgrade():
    op.drop_column("jobs", "priority")
