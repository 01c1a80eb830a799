"""The scheduler leader's follow-up job: after a closure, queue the chosen template
(`replies.follow_up`) for each customer the rule picks, once.

Once holds without any memory of this process: a customer who has a follow-up message after
their away message is not picked again (bot.followups.rule), and each customer is checked
again, under a lock of their contact row, in the transaction that queues theirs. So a second
pass, a restarted worker or a second leader for a moment queue nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from bot.broadcasts.content import Content, Renderer
from bot.contacts.consent import opted_out
from bot.db import Database
from bot.followups.rule import Closure, Customer, Verdict, closure_before, verdict
from bot.message_templates.model import TemplateCategory, TemplateMismatch, keyed
from bot.message_templates.sending import prepare, stored_template
from bot.models import Contact, Direction, Message
from bot.outbound import outbox
from bot.rules import Rule
from bot.settings import BusinessSettings, FollowUpRule
from bot.settings.stored import load_settings
from bot.whatsapp.payloads import template_payload

log = logging.getLogger("tresen.followups")

# How often the leader looks, while open: the customers to follow up change only with the
# closure, so a look a minute is plenty (the scheduler ticks four times a second).
EVERY = timedelta(minutes=1)
# Outbound messages that are not an answer to the customer: after the away message they leave
# the follow-up due. Anything else (a person, a keyword answer, a stop confirmation) answered.
NOT_ANSWERS = (Rule.AWAY, Rule.BROADCAST, Rule.FOLLOW_UP)


def _last_out(*, follow_up: bool) -> Any:
    """The latest outbound message of the contact at or after its away message: follow-ups,
    or answers (see NOT_ANSWERS)."""
    rule = (
        Message.rule == Rule.FOLLOW_UP
        if follow_up
        else or_(Message.rule.is_(None), Message.rule.not_in(NOT_ANSWERS))
    )
    return (
        select(func.max(Message.timestamp))
        .where(
            Message.contact_id == Contact.id,
            Message.direction == Direction.OUT,
            Message.timestamp >= Contact.last_away_at,
            rule,
        )
        .scalar_subquery()
    )


def _candidates(closure: Closure) -> Select[Any]:
    """Contacts who got the away message during the closure, with what the rule needs."""
    return (
        select(
            Contact.id,
            Contact.last_away_at,
            Contact.last_inbound_at,
            _last_out(follow_up=False),
            _last_out(follow_up=True),
            and_(Contact.opted_in.is_(False), Contact.opted_in_changed_at.is_not(None)),
        )
        .where(
            Contact.last_away_at >= closure.closed_at,
            Contact.last_away_at < closure.reopened_at,
            or_(Contact.wa_id.is_not(None), Contact.user_id.is_not(None)),
        )
        .order_by(Contact.id)
    )


def _customer(row: Any) -> Customer:
    _id, away_at, last_inbound_at, last_answer_at, last_follow_up_at, opted_out = row
    return Customer(
        away_at=away_at,
        last_inbound_at=last_inbound_at,
        last_answer_at=last_answer_at,
        last_follow_up_at=last_follow_up_at,
        opted_out=bool(opted_out),
    )


def template_problem(session: Session, rule: FollowUpRule) -> str | None:
    """Why the chosen template cannot go out as a follow-up, or None: it must be stored,
    approved and a utility template (Meta may have moved it to marketing, which costs and is
    capped per customer)."""
    try:
        template = stored_template(session, rule.template, rule.language)
    except TemplateMismatch as exc:
        return str(exc)
    if not template.sendable:
        return f"the template {template.name} ({template.language}) is {template.status}"
    if template.category != TemplateCategory.UTILITY:
        return (
            f"the template {template.name} ({template.language}) is a {template.category} "
            "template; a follow-up takes a utility template"
        )
    return None


@dataclass
class FollowUps:
    """The job, held by the scheduler service: `run` on every tick, it looks once per EVERY."""

    database: Database
    _next_at: datetime | None = None
    # Problems logged already, so a missing template is said once, not every minute.
    _said: set[str] = field(default_factory=set)

    def run(self, now: datetime) -> int:
        """Queue the follow-ups due at `now` (at most one look per EVERY); how many."""
        if self._next_at is not None and now < self._next_at:
            return 0
        self._next_at = now + EVERY
        return self.queue_due(now)

    def queue_due(self, now: datetime) -> int:
        """Queue every follow-up due at `now`, each contact in its own transaction."""
        with self.database.session() as session:
            settings = load_settings(session)
            if settings is None or settings.follow_up is None:
                return 0
            closure = closure_before(settings.hours, now)
            if closure is None:
                return 0
            due = [
                row.id
                for row in session.execute(_candidates(closure))
                if verdict(closure, _customer(row), now) == Verdict.SEND
            ]
            if not due:
                return 0
            problem = template_problem(session, settings.follow_up)
        if problem is not None:
            self._say(f"follow-up not sent to {len(due)} customer(s): {problem}")
            return 0
        renderer = _renderer(settings, settings.follow_up, now)
        queued = 0
        for contact_id in due:
            with self.database.session() as session:
                problem = _queue_one(
                    session, contact_id, settings.follow_up, renderer, closure, now
                )
            if problem is None:
                queued += 1
            elif problem:
                self._say(f"follow-up not sent to contact {contact_id}: {problem}")
        if queued:
            log.info("follow-up %s queued for %d customer(s)", settings.follow_up.template, queued)
        return queued

    def _say(self, problem: str) -> None:
        if problem not in self._said:
            self._said.add(problem)
            log.warning("%s", problem)


def _renderer(settings: BusinessSettings, rule: FollowUpRule, now: datetime) -> Renderer:
    content = Content(template=rule.template, language=rule.language, params=rule.params)
    return Renderer(content, settings, now)


def _queue_one(
    session: Session,
    contact_id: int,
    rule: FollowUpRule,
    renderer: Renderer,
    closure: Closure,
    now: datetime,
) -> str | None:
    """Queue one contact's follow-up: None when queued, else why not ("" when it is no longer
    due, which is no problem to report)."""
    # Locked, then asked again: another leader for a moment, or this one's earlier pass,
    # may have queued it since the list was read (SQLite has one writer at a time anyway).
    contact = session.get(Contact, contact_id, with_for_update=True, populate_existing=True)
    if contact is None:
        return ""
    row = session.execute(_candidates(closure).where(Contact.id == contact_id)).first()
    if row is None or verdict(closure, _customer(row), now) != Verdict.SEND:
        return ""
    recipient = contact.wa_id or contact.user_id or ""
    try:
        values = [renderer.render(p, contact.name, contact.wa_id) for p in rule.params]
        components = prepare(
            session, rule.template, rule.language, values, opted_out=opted_out(contact)
        )
    except TemplateMismatch as exc:
        # The one check before queueing (an empty name for {{ contact.name }}, say).
        return str(exc)
    except Exception as exc:  # a sandbox violation or a runtime error in a parameter
        return f"a parameter failed: {exc}"
    template = stored_template(session, rule.template, rule.language)
    _header, text = template.filled(keyed(template, values))
    payload = template_payload(recipient, rule.template, rule.language, components)
    outbox.enqueue(session, contact, payload, now=now, text=text, rule=Rule.FOLLOW_UP)
    return None
