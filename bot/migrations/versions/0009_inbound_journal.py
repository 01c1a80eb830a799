"""the inbound journal: every webhook notification committed as it came, before the 200

Revision ID: 0009_inbound_journal
Revises: 0008_labels
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op


revision = "0009_inbound_journal"
down_revision = "0008_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
        ),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("sort_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("digest"),
    )
    op.create_index(
        "ix_inbound_open",
        "inbound_notifications",
        ["priority", "sort_at", "id"],
        postgresql_where=sa.text("state <> 'processed'"),
        sqlite_where=sa.text("state <> 'processed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_open", table_name="inbound_notifications")
    op.drop_table("inbound_notifications")
