"""media: stored files, each message's attachment, and uploads to Meta

Revision ID: 0014_media
Revises: 0013_users
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_media"
down_revision = "0013_users"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "media_files",
        sa.Column("id", BigId, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "attachments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("media_id", sa.String(length=255), nullable=True),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column("declared_sha256", sa.String(length=128), nullable=True),
        sa.Column("filename", sa.String(length=512), nullable=True),
        sa.Column("voice", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("animated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("file_id", BigId, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["file_id"], ["media_files.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_attachments_file_id", "attachments", ["file_id"])
    op.create_index(
        "ix_attachments_pending",
        "attachments",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "media_uploads",
        sa.Column("id", BigId, nullable=False),
        sa.Column("file_id", BigId, nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("media_id", sa.String(length=255), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["media_files.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_media_uploads_file_number",
        "media_uploads",
        ["file_id", "phone_number_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("media_uploads")
    op.drop_index("ix_attachments_pending", table_name="attachments")
    op.drop_index("ix_attachments_file_id", table_name="attachments")
    op.drop_table("attachments")
    op.drop_table("media_files")
