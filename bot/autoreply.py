"""The auto-reply to a message: the rules' choice, rendered. One function, `reply_for`, used by
the inbound processor, the `simulate` command and every preview of the admin pages.

Pure: settings, the message, the contact's history and `now` in; the reply out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.hours import is_open, next_open
from bot.replies import build_context, render
from bot.rules import NO_HISTORY, Decision, History, Inbound, KeywordHits, choose, keyword_hits
from bot.settings import BusinessSettings


@dataclass(frozen=True)
class AutoReply:
    decision: Decision
    text: str | None  # None when its reply is no longer due (Decision.reply_due)


@dataclass(frozen=True)
class Ready:
    """The costly part of a message's reply, worked out before any lock: which keyword rules
    its text matches, and the reply a contact with no history would get, rendered.

    The contact's history (cooldown, inactivity, consent, a person's answer) can only take that
    reply away, never change it to another, so under the lock the text is used as it is when
    the settings, the template, the name and the number are still those it was rendered with.
    """

    settings: BusinessSettings
    hits: KeywordHits
    template: str | None
    name: str | None
    wa_id: str | None
    text: str | None

    def text_for(
        self, settings: BusinessSettings, template: str, name: str | None, wa_id: str | None
    ) -> str | None:
        if self.text is None or self.settings is not settings:
            return None
        return (
            self.text if (self.template, self.name, self.wa_id) == (template, name, wa_id) else None
        )


def reply_for(
    settings: BusinessSettings,
    inbound: Inbound,
    history: History,
    now: datetime,
    *,
    contact_name: str | None,
    wa_id: str | None,
    ready: Ready | None = None,
) -> AutoReply | None:
    """The auto-reply `inbound` gets at `now` from a contact with this history, or None.

    `ready`: what `prepare` worked out for this message before the lock, reused when it still
    holds.
    """
    hits = ready.hits if ready is not None and ready.settings is settings else None
    decision = choose(inbound, history, settings, now, hits)
    if decision is None:
        return None
    if not decision.reply_due:
        return AutoReply(decision, None)
    text = ready.text_for(settings, decision.template, contact_name, wa_id) if ready else None
    if text is None:
        context = build_context(
            settings, now=now, contact_name=contact_name, wa_id=wa_id, message_text=inbound.text
        )
        text = render(settings, decision.template, context)
    return AutoReply(decision, text)


def prepare(
    settings: BusinessSettings,
    inbound: Inbound,
    now: datetime,
    *,
    contact_name: str | None,
    wa_id: str | None,
) -> Ready:
    """The reply as far as it can be known without the contact's history: see Ready."""
    hits = keyword_hits(settings.keywords, inbound.text)
    if contact_name is None:
        # The stored name decides under the lock: rendering now would most likely be wasted.
        return Ready(settings, hits, None, None, None, None)
    reply = reply_for(
        settings,
        inbound,
        NO_HISTORY,
        now,
        contact_name=contact_name,
        wa_id=wa_id,
        ready=Ready(settings, hits, None, None, None, None),
    )
    if reply is None or reply.text is None:
        return Ready(settings, hits, None, None, None, None)
    return Ready(settings, hits, reply.decision.template, contact_name, wa_id, reply.text)


@dataclass(frozen=True)
class Simulation:
    rule: str | None
    text: str | None
    is_open: bool
    next_open: datetime | None  # None while open
    file: str | None = None  # the name of a keyword rule's file sent with the text


def simulate(
    settings: BusinessSettings,
    *,
    text: str | None,
    at: datetime,
    history: History = NO_HISTORY,
    contact_name: str | None = None,
    wa_id: str | None = None,
    sent_at: datetime | None = None,
) -> Simulation:
    """The reply a text message arriving at `at` would get; sends and stores nothing.

    `sent_at` (default: `at`) is when the customer sent it: a message arriving late gets no
    away or greeting reply, and after a day none at all; an opt-out word then shows its rule
    with no text.
    """
    inbound = Inbound(text=text, kind="text", sent_at=at if sent_at is None else sent_at)
    reply = reply_for(settings, inbound, history, at, contact_name=contact_name, wa_id=wa_id)
    open_now = is_open(settings.hours, at)
    return Simulation(
        rule=reply.decision.rule if reply else None,
        text=reply.text if reply else None,
        is_open=open_now,
        next_open=None if open_now else next_open(settings.hours, at),
        file=reply.decision.file.name if reply and reply.decision.file and reply.text else None,
    )
