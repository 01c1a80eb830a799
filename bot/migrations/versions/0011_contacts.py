"""contacts keep the shop's name apart from the WhatsApp profile name; labels have a colour

Revision ID: 0011_contacts
Revises: 0010_broadcast_jobs
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op


revision = "0011_contacts"
down_revision = "0010_broadcast_jobs"
branch_labels = None
depends_on = None

contacts = sa.table(
    "contacts",
    sa.column("name"),
    sa.column("profile_name"),
    sa.column("name_by_shop", sa.Boolean),
    sa.column("last_inbound_at"),
)


def upgrade() -> None:
    # Added in place, never by copying the table (see 0008_labels: on SQLite a copy would drop
    # the contacts' messages and labels with the old table).
    op.add_column("contacts", sa.Column("profile_name", sa.String(length=256), nullable=True))
    op.add_column(
        "contacts",
        sa.Column("name_by_shop", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("labels", sa.Column("color", sa.String(length=16), nullable=True))
    # Until now every message wrote its profile name over the name: a contact who wrote has
    # that as its name. One who never wrote got its name from an import: the shop's.
    conn = op.get_bind()
    conn.execute(
        contacts.update()
        .where(contacts.c.last_inbound_at.is_not(None))
        .values(profile_name=contacts.c.name)
    )
    conn.execute(
        contacts.update()
        .where(contacts.c.last_inbound_at.is_(None), contacts.c.name.is_not(None))
        .values(name_by_shop=True)
    )


def downgrade() -> None:
    # In place for the reason above (SQLite 3.35 and later drops a column without a copy).
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE labels DROP COLUMN color")
        op.execute("ALTER TABLE contacts DROP COLUMN name_by_shop")
        op.execute("ALTER TABLE contacts DROP COLUMN profile_name")
    else:
        op.drop_column("labels", "color")
        op.drop_column("contacts", "name_by_shop")
        op.drop_column("contacts", "profile_name")
