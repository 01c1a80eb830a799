"""the team inbox: users can be deactivated and kept from broadcasts, invitations, the audit log,
conversation state (open, waiting, done; assigned, pinned, archived), unread per person,
internal notes, and read receipts and typing indicators waiting to be sent

Revision ID: 0016_team
Revises: 0015_media_uses
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_team"
down_revision = "0015_media_uses"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMNs (no foreign key): SQLite keeps the table, and with it the sessions
    # that a copied and dropped users table would take along by cascade.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("may_broadcast", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("unread_from", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("may_broadcast", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("expires_at", Moment, nullable=False),
        sa.Column("used_at", Moment, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"], unique=False)
    op.create_table(
        "conversations",
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False, server_default="open"),
        sa.Column("assigned_user_id", sa.Integer(), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", Moment, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["assigned_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    op.create_index(
        "ix_conversations_assigned_user_id", "conversations", ["assigned_user_id"], unique=False
    )
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("read_up_to", sa.BigInteger(), nullable=False),
        sa.Column("marked_unread", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "contact_id"),
    )
    op.create_index(
        "ix_conversation_reads_contact_id", "conversation_reads", ["contact_id"], unique=False
    )
    # Unread becomes per person. Whoever is on the team now has read up to here; what the team
    # had not read yet (the shared count) stays unread for each of them.
    op.execute("UPDATE users SET unread_from = (SELECT COALESCE(MAX(id), 0) FROM messages)")
    users = sa.table("users", sa.column("id"), sa.column("unread_from"))
    contacts = sa.table("contacts", sa.column("id"), sa.column("unread"))
    reads = sa.table(
        "conversation_reads",
        sa.column("user_id"),
        sa.column("contact_id"),
        sa.column("read_up_to"),
        sa.column("marked_unread", sa.Boolean()),
    )
    op.execute(
        reads.insert().from_select(
            ["user_id", "contact_id", "read_up_to", "marked_unread"],
            sa.select(users.c.id, contacts.c.id, users.c.unread_from, sa.true())
            .select_from(users.join(contacts, sa.true()))
            .where(contacts.c.unread > 0),
        )
    )
    op.create_table(
        "notes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_contact_id", "notes", ["contact_id"], unique=False)
    op.create_table(
        "signals",
        sa.Column("id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("wamid", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("sent_at", Moment, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", Moment, nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signals_contact_id", "signals", ["contact_id"], unique=False)
    op.create_index("ix_signals_state", "signals", ["state", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signals_state", table_name="signals")
    op.drop_index("ix_signals_contact_id", table_name="signals")
    op.drop_table("signals")
    op.drop_index("ix_notes_contact_id", table_name="notes")
    op.drop_table("notes")
    op.drop_index("ix_conversation_reads_contact_id", table_name="conversation_reads")
    op.drop_table("conversation_reads")
    op.drop_index("ix_conversations_assigned_user_id", table_name="conversations")
    op.drop_table("conversations")
    op.drop_index("ix_audit_entries_at", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("invitations")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("unread_from")
        batch_op.drop_column("may_broadcast")
        batch_op.drop_column("active")
