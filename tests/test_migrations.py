"""The migrations build exactly the schema the models describe, and run down and up again."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from bot.broadcasts.scheduler import fire, job_options
from bot.db import alembic_config, get_db
from bot.models import Base, Broadcast, Label, apscheduler_jobs


def test_migrations_match_the_models(app: Flask) -> None:
    engine = get_db(app).engine
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_downgrade_to_nothing_and_up_again(app: Flask) -> None:
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "base")
    get_db(app).upgrade()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_labels_differing_only_in_case_are_merged_into_the_first(app: Flask) -> None:
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "0007_human_pause")
    contacts, contact_labels = (
        Base.metadata.tables["contacts"],
        Base.metadata.tables["contact_labels"],
    )
    with engine.begin() as conn:
        ids = {}
        for name in ["VIP", "Straße", "vip", "Vip", "STRASSE", "neu"]:  # created in this order
            conn.execute(text("INSERT INTO labels (name) VALUES (:name)"), {"name": name})
            ids[name] = conn.scalar(
                text("SELECT id FROM labels WHERE name = :name"), {"name": name}
            )
        # Anna was labelled VIP, Ben vip, Cem every way: each keeps one VIP and one Straße.
        for wa_id, labels in (
            ("491511", ["VIP", "Straße"]),
            ("491512", ["vip", "neu"]),
            ("491513", ["VIP", "vip", "Vip", "STRASSE"]),
        ):
            contact = conn.execute(contacts.insert().values(wa_id=wa_id)).inserted_primary_key[0]
            conn.execute(
                contact_labels.insert(),
                [{"contact_id": contact, "label_id": ids[n]} for n in labels],
            )
    get_db(app).upgrade()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        rows = conn.execute(
            select(contacts.c.wa_id, Label.name)
            .join(contact_labels, contact_labels.c.contact_id == contacts.c.id)
            .join(Label.__table__, Label.id == contact_labels.c.label_id)
            .order_by(contacts.c.wa_id, Label.name)
        ).all()
        assert conn.execute(select(Label.name, Label.name_key).order_by(Label.id)).all() == [
            ("VIP", "vip"),
            ("Straße", "strasse"),
            ("neu", "neu"),
        ]
    assert [tuple(r) for r in rows] == [
        ("491511", "Straße"),
        ("491511", "VIP"),
        ("491512", "VIP"),
        ("491512", "neu"),
        ("491513", "Straße"),
        ("491513", "VIP"),
    ]
    # And no second spelling can be created, whatever the code that tries.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Label).values(name="vIp"))


def test_stored_broadcast_jobs_find_their_function_where_it_moved(app: Flask) -> None:
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "0009_inbound_journal")
    scheduler = BackgroundScheduler(timezone=UTC)
    weekly = Broadcast(id=7, cron="0 9 * * 1", timezone="Europe/Berlin")
    due = datetime(2026, 12, 7, 8, tzinfo=UTC)
    state = Job(scheduler, **job_options(weekly), next_run_time=due).__getstate__()
    state["func"] = "bot.scheduler:fire"  # as a worker stored it before the move
    with engine.begin() as conn:
        conn.execute(
            apscheduler_jobs.insert().values(
                id=state["id"],
                next_run_time=due.timestamp(),
                job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL),
            )
        )
    get_db(app).upgrade()
    store = SQLAlchemyJobStore(engine=engine)
    store.start(scheduler, "default")
    [job] = store.get_all_jobs()
    assert (job.id, job.func, job.next_run_time) == ("broadcast:7", fire, due)


@pytest.mark.db
def test_unread_becomes_per_person_keeping_what_the_team_had_not_read(app: Flask) -> None:
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "0015_media_uses")
    at = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for name in ("owner", "berta"):
            conn.execute(
                text(
                    "INSERT INTO users (name, password_hash, created_at, role) "
                    "VALUES (:name, 'x', :at, 'owner')"
                ),
                {"name": name, "at": at},
            )
        for wa_id, unread in (("491511", 0), ("491512", 2)):
            conn.execute(
                text(
                    "INSERT INTO contacts (wa_id, opted_in, created_at, unread) "
                    "VALUES (:wa_id, false, :at, :unread)"
                ),
                {"wa_id": wa_id, "at": at, "unread": unread},
            )
            for n in range(2):
                conn.execute(
                    text(
                        "INSERT INTO messages (contact_id, direction, type, text, status, "
                        "created_at, timestamp, priority, attempts) SELECT id, 'in', 'text', "
                        ":text, 'received', :at, :at, 0, 0 FROM contacts WHERE wa_id = :wa_id"
                    ),
                    {"wa_id": wa_id, "at": at, "text": str(n)},
                )
    get_db(app).upgrade()
    from bot.conversations.unread import unread_counts
    from bot.models import Contact, User

    with get_db(app).session() as session:
        contacts = {c.wa_id: c.id for c in session.scalars(select(Contact))}
        for user in session.scalars(select(User)):
            assert user.unread_from == 4  # the newest message: everything before it is read…
            counts = unread_counts(session, user.id, list(contacts.values()))
            # …except what the team had not read, which stays unread for each of them
            assert counts == {contacts["491511"]: 0, contacts["491512"]: 1}
