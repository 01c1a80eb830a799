"""contacts remember when a person last answered them by hand, for the pause of away and greeting

Revision ID: 0007_human_pause
Revises: 0006_outbound
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_human_pause"
down_revision = "0006_outbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_human_reply_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("last_human_reply_at")
