"""data sovereignty and the API: API keys for shop systems and the answers kept for their
Idempotency-Keys

Revision ID: 0018_data
Revises: 0017_templates
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_data"
down_revision = "0017_templates"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", Moment, nullable=True),
        sa.Column("last_used_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("id", BigId, nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_api_idempotency_key",
        "api_idempotency",
        ["api_key_id", "idempotency_key"],
        unique=True,
    )
    op.create_index("ix_api_idempotency_created_at", "api_idempotency", ["created_at"])
    # d-gdpr: when a contact was erased on request (kept only as an opt-out: bot.contacts.erase)
    op.add_column("contacts", sa.Column("erased_at", Moment, nullable=True))
    # d-retention: the daily totals kept of messages retention deleted.
    op.create_table(
        "message_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "kind"),
    )
    # d-retention: deleting a message looks up the replies to it (ON DELETE SET NULL).
    op.create_index(
        "ix_messages_in_reply_to",
        "messages",
        ["in_reply_to"],
        postgresql_where=sa.text("in_reply_to IS NOT NULL"),
        sqlite_where=sa.text("in_reply_to IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_in_reply_to", table_name="messages")  # d-retention
    op.drop_table("message_totals")  # d-retention
    # d-gdpr. Plain SQL: SQLite drops a column in place (3.35+); a batch rebuild of contacts
    # would drop the table, and the messages with it.
    op.execute("ALTER TABLE contacts DROP COLUMN erased_at")
    op.drop_index("ix_api_idempotency_created_at", table_name="api_idempotency")
    op.drop_index("ux_api_idempotency_key", table_name="api_idempotency")
    op.drop_table("api_idempotency")
    op.drop_table("api_keys")
