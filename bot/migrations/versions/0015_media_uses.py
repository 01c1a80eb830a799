"""media uses: a file with a quick reply, and with a broadcast (its header or its image)

Revision ID: 0015_media_uses
Revises: 0014_media
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_media_uses"
down_revision = "0014_media"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Batch mode: SQLite adds a column with a foreign key only by copying the table.
    with op.batch_alter_table("quick_replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_id", BigId, nullable=True))
        batch_op.add_column(sa.Column("file_name", sa.String(length=255), nullable=True))
        batch_op.create_foreign_key(
            "fk_quick_replies_file_id_media_files", "media_files", ["file_id"], ["id"]
        )
        batch_op.create_index("ix_quick_replies_file_id", ["file_id"], unique=False)
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_id", BigId, nullable=True))
        batch_op.add_column(sa.Column("media_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("media_name", sa.String(length=255), nullable=True))
        batch_op.create_foreign_key(
            "fk_broadcasts_file_id_media_files", "media_files", ["file_id"], ["id"]
        )
        batch_op.create_index("ix_broadcasts_file_id", ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcasts_file_id")
        batch_op.drop_constraint("fk_broadcasts_file_id_media_files", type_="foreignkey")
        batch_op.drop_column("media_name")
        batch_op.drop_column("media_kind")
        batch_op.drop_column("file_id")
    with op.batch_alter_table("quick_replies", schema=None) as batch_op:
        batch_op.drop_index("ix_quick_replies_file_id")
        batch_op.drop_constraint("fk_quick_replies_file_id_media_files", type_="foreignkey")
        batch_op.drop_column("file_name")
        batch_op.drop_column("file_id")
