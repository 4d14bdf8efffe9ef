"""add notes.body

Revision ID: 8d2e4b7a1c95
Revises: 3f6c1a9e2b70
Create Date: 2024-01-02 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8d2e4b7a1c95'
down_revision = '3f6c1a9e2b70'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('notes', sa.Column('body', sa.Text(), nullable=True))


def downgrade():
    # Drops the column and every body written since the upgrade (lossy when any note has one).
    op.drop_column('notes', 'body')
