"""business-scoped user ids up to 256 characters; the business number of inbound messages

Revision ID: 0005_storage
Revises: 0004_auth
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_storage"
down_revision = "0004_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite never enforced the length, and changing a column type there rebuilds the table,
    # whose drop would cascade to every message: the model keeps 128 for SQLite (see there).
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "contacts",
            "user_id",
            existing_type=sa.String(length=128),
            type_=sa.String(length=256),
            existing_nullable=True,
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_number_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("phone_number_id")
    if op.get_bind().dialect.name != "sqlite":
        # A longer id does not fit back, and cut it would be no id: it is forgotten.
        op.execute("UPDATE contacts SET user_id = NULL WHERE length(user_id) > 128")
        op.alter_column(
            "contacts",
            "user_id",
            existing_type=sa.String(length=256),
            type_=sa.String(length=128),
            existing_nullable=True,
        )
