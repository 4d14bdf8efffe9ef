"""a second head beside 0006 (does nothing)

Revision ID: 0006b
Revises: 0005
"""

revision = "0006b"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
