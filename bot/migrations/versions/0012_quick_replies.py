"""quick replies: saved answers with a shortcut, for the reply box

Revision ID: 0012_quick_replies
Revises: 0010_broadcast_jobs
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_quick_replies"
down_revision = "0011_contacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quick_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortcut", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shortcut"),
    )


def downgrade() -> None:
    op.drop_table("quick_replies")
