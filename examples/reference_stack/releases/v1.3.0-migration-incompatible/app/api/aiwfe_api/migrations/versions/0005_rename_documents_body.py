"""rename documents.body to documents.content

Incompatible with the code of v1.2.0 and older (they read and write documents.body):
rolling back only the images needs `alembic downgrade 0004` first, run with this
release's image (older images do not know revision 0005).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("documents", "body", new_column_name="content")


def downgrade():
    # A rename keeps every row: the column and its data come back as they were.
    op.alter_column("documents", "content", new_column_name="body")
