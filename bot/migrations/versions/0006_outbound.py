"""outbound messages count the requests that may have reached Meta without an answer

Revision ID: 0006_outbound
Revises: 0005_storage
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_outbound"
down_revision = "0005_storage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("uncertain_attempts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("uncertain_attempts")
