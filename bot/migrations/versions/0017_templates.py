"""message templates and Meta's limits: the account's templates, notices for the shop, the
messaging limit, and per message when Meta refused it for the recipient's marketing cap

Revision ID: 0017_templates
Revises: 0016_team
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_templates"
down_revision = "0016_team"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meta_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("previous_category", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=True),
        sa.Column("parameter_format", sa.String(length=16), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("synced_at", Moment, nullable=True),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_message_templates_name_language",
        "message_templates",
        ["name", "language"],
        unique=True,
    )
    op.create_index("ix_message_templates_meta_id", "message_templates", ["meta_id"])
    op.create_table(
        "notices",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("dismissed_at", Moment, nullable=True),
        sa.Column("dismissed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["template_id"], ["message_templates.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dismissed_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notices_open", "notices", ["dismissed_at", "created_at"])
    op.create_table(
        "messaging_limit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # A plain ADD COLUMN: SQLite keeps the table (the messages table is the largest).
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capped_at", Moment, nullable=True))
    op.create_index("ix_messages_sent_at", "messages", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_sent_at", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("capped_at")
    op.drop_table("messaging_limit")
    op.drop_index("ix_notices_open", table_name="notices")
    op.drop_table("notices")
    op.drop_index("ix_message_templates_meta_id", table_name="message_templates")
    op.drop_index("ux_message_templates_name_language", table_name="message_templates")
    op.drop_table("message_templates")
