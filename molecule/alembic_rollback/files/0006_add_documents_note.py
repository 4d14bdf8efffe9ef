"""add documents.note (a test revision whose downgrade drops data written after the upgrade)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("documents", sa.Column("note", sa.Text, nullable=True))


def downgrade():
    op.drop_column("documents", "note")
