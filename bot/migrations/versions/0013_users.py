"""users get a role (owner or staff), a chosen admin language, and a mark for a generated password

Revision ID: 0013_users
Revises: 0010_broadcast_jobs
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_users"
down_revision = "0012_quick_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every user so far could do everything: they all become owners.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="owner")
        )
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column(
                "password_generated", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_generated")
        batch_op.drop_column("locale")
        batch_op.drop_column("role")
