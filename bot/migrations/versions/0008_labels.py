"""labels are one label whatever the case: merge names differing only in case, keep them unique

Revision ID: 0008_labels
Revises: 0007_human_pause
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op


revision = "0008_labels"
down_revision = "0007_human_pause"
branch_labels = None
depends_on = None

labels = sa.table("labels", sa.column("id", sa.Integer), sa.column("name"), sa.column("name_key"))
contact_labels = sa.table("contact_labels", sa.column("contact_id"), sa.column("label_id"))


def upgrade() -> None:
    # Added in place, never by copying the table: on SQLite a copy drops the old table, and
    # with foreign keys on that deletes every contact's labels. The empty default is only
    # for the rows already there (SQLite cannot add a NOT NULL column without one, nor drop
    # it later without a copy); every insert names its key.
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_key", sa.String(length=192), nullable=False, server_default="")
        )
    conn = op.get_bind()
    first: dict[str, int] = {}
    for label_id, name in conn.execute(sa.select(labels.c.id, labels.c.name).order_by(labels.c.id)):
        # bot.contacts.label_key as it is now; a migration keeps its own copy, so that moving
        # or changing that function later cannot change what this step did.
        key = name.casefold()
        keep = first.setdefault(key, label_id)
        if keep == label_id:
            conn.execute(labels.update().where(labels.c.id == label_id).values(name_key=key))
            continue
        # A later spelling of the same label: its contacts move to the first one.
        has_first = sa.select(contact_labels.c.contact_id).where(contact_labels.c.label_id == keep)
        moving = sa.select(contact_labels.c.contact_id, sa.literal(keep)).where(
            contact_labels.c.label_id == label_id, contact_labels.c.contact_id.not_in(has_first)
        )
        conn.execute(contact_labels.insert().from_select(["contact_id", "label_id"], moving))
        conn.execute(contact_labels.delete().where(contact_labels.c.label_id == label_id))
        conn.execute(labels.delete().where(labels.c.id == label_id))
    if conn.dialect.name == "postgresql":
        op.alter_column("labels", "name_key", server_default=None)
    op.create_index("uq_labels_name_key", "labels", ["name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_labels_name_key", table_name="labels")
    if op.get_bind().dialect.name == "sqlite":
        # In place for the reason above (SQLite 3.35 and later).
        op.execute("ALTER TABLE labels DROP COLUMN name_key")
    else:
        op.drop_column("labels", "name_key")
