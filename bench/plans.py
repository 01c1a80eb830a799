"""Query plans on PostgreSQL with realistic data: the outbox claim, the inbox list, a
conversation, and a broadcast's funnel, each as EXPLAIN (ANALYZE, BUFFERS).

Run: ``python -m bench.plans [--contacts 10000] [--messages 100000]``. It builds the data in a
scratch schema (dropped afterwards), runs the app's own queries (captured as they are sent,
so the plans follow the code) and prints each plan with its timing.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, func, not_, select, text
from sqlalchemy.orm import Session

from bench.common import fresh_database, postgres_version, print_environment, workdir
from bot import broadcasts
from bot.conversations import search, team
from bot.conversations.state import View
from bot.db import Database
from bot.models import Broadcast, Contact, Conversation, Message
from bot.outbound import outbox

INBOX_LIMIT = 50


def populate(database: Database, contacts: int, messages: int) -> int:
    """`contacts` contacts and about `messages` messages over 30 days; returns a run id.

    Half the messages are inbound, the rest their replies (almost all sent, delivered or read,
    1% failed) and one broadcast run to half the contacts (mostly settled, some queued); a
    hundred replies are queued now, as in a busy minute.
    """
    replies = messages // 2 - contacts // 2
    with database.engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO contacts (wa_id, name, opted_in, created_at, last_inbound_at,
                                      last_message_at, unread)
                SELECT '49151' || lpad(g::text, 8, '0'), 'Kunde ' || g, g % 3 <> 0,
                       now() - interval '60 days',
                       now() - (g % 43200) * interval '1 minute',
                       now() - (g % 43200) * interval '1 minute', g % 3
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": contacts},
        )
        conn.execute(
            text(
                """
                INSERT INTO messages (contact_id, direction, wamid, type, text, created_at,
                                      timestamp, status, priority, attempts)
                SELECT 1 + g % :contacts, 'in', 'wamid.in.' || g, 'text', 'Nachricht ' || g,
                       now() - (g % 43200) * interval '1 minute',
                       now() - (g % 43200) * interval '1 minute', 'received', 0, 0
                FROM generate_series(1, :n) AS g
                """
            ),
            {"contacts": contacts, "n": messages // 2},
        )
        conn.execute(
            text(
                """
                INSERT INTO messages (contact_id, direction, wamid, type, text, payload, rule,
                                      created_at, timestamp, status, sent_at, priority,
                                      attempts, error_code, error_reason)
                SELECT 1 + g % :contacts, 'out', 'wamid.out.' || g, 'text', 'Antwort ' || g,
                       '{"type": "text"}'::json, 'keyword',
                       now() - (g % 43200) * interval '1 minute',
                       now() - (g % 43200) * interval '1 minute',
                       (ARRAY['sent', 'delivered', 'read', 'read'])[1 + g % 4],
                       now() - (g % 43200) * interval '1 minute', 0, 1, NULL, NULL
                FROM generate_series(1, :n) AS g
                """
            ),
            {"contacts": contacts, "n": replies},
        )
        conn.execute(
            text(
                "UPDATE messages SET status = 'failed', error_code = 131026, "
                "error_reason = '131026: Message Undeliverable' "
                "WHERE direction = 'out' AND id % 100 = 0"
            )
        )
        # A team of three: a tenth of the conversations handled (assigned round the team,
        # a third of them waiting, some done or archived); the first user has read half the
        # conversations, a fifth of those not up to their last message.
        conn.execute(
            text(
                "INSERT INTO users (name, password_hash, created_at, role, active, "
                "password_generated, may_broadcast) "
                "SELECT 'user' || g, 'x', now(), 'staff', true, false, true "
                "FROM generate_series(1, 3) AS g"
            )
        )
        conn.execute(
            text(
                """
                INSERT INTO conversations (contact_id, state, assigned_user_id, pinned, archived,
                                           updated_at)
                SELECT g, (ARRAY['open', 'waiting', 'done'])[1 + g % 3], 1 + g % 3, g % 500 = 0,
                       g % 7 = 0, now()
                FROM generate_series(10, :n, 10) AS g
                """
            ),
            {"n": contacts},
        )
        conn.execute(
            text(
                "INSERT INTO conversation_reads (user_id, contact_id, read_up_to, marked_unread) "
                "SELECT 1, contact_id, max(id) - CASE WHEN contact_id % 10 = 1 THEN 1 ELSE 0 END, "
                "false FROM messages WHERE direction = 'in' AND contact_id % 2 = 1 "
                "GROUP BY contact_id"
            )
        )
        broadcast_id = conn.execute(
            text(
                "INSERT INTO broadcasts (kind, text, audience, at, timezone, created_at) "
                "VALUES ('text', 'Neu im Laden', 'all', now(), 'Europe/Berlin', now()) "
                "RETURNING id"
            )
        ).scalar_one()
        run_id = conn.execute(
            text(
                "INSERT INTO broadcast_runs (broadcast_id, due_at, status, cursor, started_at) "
                "VALUES (:b, now(), 'written', :n, now()) RETURNING id"
            ),
            {"b": broadcast_id, "n": contacts // 2},
        ).scalar_one()
        conn.execute(
            text(
                """
                INSERT INTO messages (contact_id, direction, type, text, payload, created_at,
                                      timestamp, status, priority, attempts, next_attempt_at,
                                      broadcast_run_id)
                SELECT g, 'out', 'text', 'Neu im Laden', '{"type": "text"}'::json,
                       now() - interval '10 minutes', now() - interval '10 minutes',
                       CASE WHEN g % 10 = 0 THEN 'queued'
                            ELSE (ARRAY['sent', 'delivered', 'read', 'skipped'])[1 + g % 4]
                       END,
                       1, 0, now(), :run
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": contacts // 2, "run": run_id},
        )
        conn.execute(
            text(
                """
                INSERT INTO messages (contact_id, direction, type, text, payload, created_at,
                                      timestamp, status, priority, attempts, next_attempt_at)
                SELECT :contacts - g, 'out', 'text', 'Hallo', '{"type": "text"}'::json, now(),
                       now(), 'queued', 0, 0, now()
                FROM generate_series(1, 100) AS g
                """
            ),
            {"contacts": contacts},
        )
        conn.execute(
            text(
                "UPDATE contacts SET last_message_at = now() "
                "WHERE id IN (SELECT contact_id FROM messages WHERE status = 'queued')"
            )
        )
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    return int(run_id)


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent meanwhile, with their parameters, as the driver got them."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(
    database: Database, run: Callable[[Session], Any], pick: Callable[[str], bool]
) -> tuple[str, list[str]]:
    """Run `run` in a transaction that is rolled back; EXPLAIN ANALYZE the statement it sent
    that `pick` chooses, in that same transaction."""
    with database.sessions() as session, session.begin():
        with captured(database.engine) as seen:
            run(session)
        statement, parameters = next((s, p) for s, p in seen if pick(s))
        conn = session.connection()
        rows = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", parameters
        ).all()
        session.rollback()
    return statement, [r[0] for r in rows]


def claim(session: Session) -> None:
    outbox.claim(session, "bench", 64, now=datetime.now(UTC), lease=timedelta(seconds=30))


def inbox(session: Session) -> None:
    # The admin inbox's query (bot/admin/inbox.py conversations), without a search: the "All"
    # view's conversations that are not pinned (the pinned ones are a query of their own).
    stmt = (
        select(Contact, Conversation)
        .outerjoin(Conversation, Conversation.contact_id == Contact.id)
        .where(
            Contact.last_message_at.is_not(None),
            team.in_view(View.ALL, 1),
            not_(team.pinned()),
        )
        .order_by(Contact.last_message_at.desc(), Contact.id.desc())
        .limit(INBOX_LIMIT)
    )
    ids = [row[0].id for row in session.execute(stmt)]
    newest = (
        select(func.max(Message.id)).where(Message.contact_id.in_(ids)).group_by(Message.contact_id)
    )
    list(session.scalars(select(Message).where(Message.id.in_(newest))))


def mine(session: Session) -> None:
    # The "Mine" view: the same walk, filtered to one person's open conversations.
    stmt = (
        select(Contact, Conversation)
        .outerjoin(Conversation, Conversation.contact_id == Contact.id)
        .where(
            Contact.last_message_at.is_not(None),
            team.in_view(View.MINE, 1),
            not_(team.pinned()),
        )
        .order_by(Contact.last_message_at.desc(), Contact.id.desc())
        .limit(INBOX_LIMIT)
    )
    list(session.execute(stmt))


def unread_totals(session: Session) -> None:
    # The unread count of each view's tab, for one person, on every inbox poll.
    team.unread_totals(session, 1, datetime.now(UTC))


def text_search(session: Session) -> None:
    # The inbox search in message texts (bot/conversations/search.py).
    search.in_messages(session, "strauss")


def conversation(session: Session) -> None:
    # One contact's messages, newest first (bot/admin/inbox.py, the conversation page).
    stmt = (
        select(Message)
        .where(Message.contact_id == 4242, Message.id > 0)
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(INBOX_LIMIT)
    )
    list(session.scalars(stmt))


def funnel_of(run_id: int) -> Callable[[Session], None]:
    def run(session: Session) -> None:
        broadcast_id = session.scalar(
            text("SELECT broadcast_id FROM broadcast_runs WHERE id = :id"), {"id": run_id}
        )
        broadcast = session.get_one(Broadcast, broadcast_id)
        broadcasts.funnels(session, [broadcast])

    return run


def key_lines(plan: Sequence[str]) -> list[str]:
    """The lines that say how rows are found, and the total time."""
    wanted = re.compile(r"Scan|Sort|Limit|Aggregate|Join|LockRows|Execution Time|Sort Method")
    return [line.strip() for line in plan if wanted.search(line)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="print whole plans, not key lines")
    args = parser.parse_args(argv)
    if postgres_version() is None:
        raise SystemExit("PostgreSQL does not answer: set BENCH_DATABASE_URL")
    print_environment()
    with workdir("plans") as where, fresh_database("postgresql", where) as url:
        database = Database(url)
        try:
            database.upgrade()
            run_id = populate(database, args.contacts, args.messages)
            with database.engine.connect() as conn:
                total = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
            print(f"\n{args.contacts:,} contacts, {total:,} messages, broadcast run {run_id}")
            queries: list[tuple[str, Callable[[Session], Any], Callable[[str], bool]]] = [
                ("outbox claim (taken over)", claim, lambda s: "claimed_until <" in s),
                ("outbox claim (queued)", claim, lambda s: "next_attempt_at <=" in s),
                ("inbox list", inbox, lambda s: "FROM contacts" in s and "LIMIT" in s),
                ("inbox previews", inbox, lambda s: "max(messages.id)" in s),
                ("inbox, Mine view", mine, lambda s: "FROM contacts" in s and "LIMIT" in s),
                ("inbox unread totals", unread_totals, lambda s: "conversation_reads" in s),
                ("search in message texts", text_search, lambda s: "ILIKE" in s.upper()),
                ("conversation", conversation, lambda s: "FROM messages" in s),
                ("broadcast funnel", funnel_of(run_id), lambda s: "GROUP BY" in s),
            ]
            for title, run, pick in queries:
                statement, plan = explain(database, run, pick)
                print(f"\n== {title}")
                print("   " + " ".join(statement.split())[:300])
                for line in plan if args.full else key_lines(plan):
                    print(f"   {line}")
        finally:
            database.dispose()


if __name__ == "__main__":
    main()
