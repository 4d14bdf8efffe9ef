"""create note_tags

Revision ID: c47a0e93d1f6
Revises: 8d2e4b7a1c95
Create Date: 2024-01-03 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c47a0e93d1f6'
down_revision = '8d2e4b7a1c95'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'note_tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('note_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(['note_id'], ['notes.id'], name='note_tags_note_id_fkey', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('note_id', 'tag', name='note_tags_note_id_tag_key'),
    )


def downgrade():
    op.drop_table('note_tags')
