"""Which auto-reply, if any, an inbound message gets: opt-out/in, keywords, away, greeting.

Pure: the message, the contact's history, the settings and `now` in; a decision out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from bot.hours import is_open, next_open
from bot.replies import build_context, render
from bot.settings import BusinessSettings, KeywordRule, bare_word, fold_text

# Reactions and status updates never get a reply; nor do WhatsApp's own system notices
# (a contact changed their number) and revocations (a contact deleted a message), which
# carry nothing to answer. Edits count: the edited text is read like a new message.
NO_REPLY_KINDS = frozenset({"reaction", "status", "system", "revoke"})
# A message delivered this late (the phone was offline, Meta replays a backlog after an outage)
# gets no reply: it is answered by a person, if at all. Its opt-out or opt-in still counts.
MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class Inbound:
    text: str | None  # the text, caption or button title; None for media without one
    kind: str  # the Cloud API message type: "text", "image", "reaction", ...
    sent_at: datetime


@dataclass(frozen=True)
class History:
    last_inbound_at: datetime | None  # the contact's last message before this one
    last_away_at: datetime | None  # when the contact last got the away reply
    # The latest opt-in change or opt-out/opt-in word on record, as of when it was made or
    # sent: a word sent before it arrived out of order and changes nothing.
    last_consent_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    rule: str  # "optout", "optin", "keyword", "away" or "greeting"
    template: str
    opt_in: bool | None  # False: opt out of broadcasts, True: opt in, None: unchanged
    # False for an opt-out or opt-in word that came too late for its reply, or after a later
    # one: it is recorded (and a late one applies), only its reply is not sent.
    reply_due: bool = True


@dataclass(frozen=True)
class Simulation:
    rule: str | None
    text: str | None
    is_open: bool
    next_open: datetime | None  # None while open


NO_HISTORY = History(last_inbound_at=None, last_away_at=None)


@dataclass(frozen=True)
class _CompiledRule:
    rule: KeywordRule
    regex: re.Pattern[str]
    on_folded: bool  # match words are searched in the folded text, patterns in the raw text


def _word_regex(phrases: tuple[str, ...]) -> re.Pattern[str]:
    # Whole words: no word character (letters with umlauts and ß included, \w is Unicode)
    # right before or after; the words of a phrase may be separated by any whitespace.
    alternatives = []
    for phrase in phrases:
        words = fold_text(phrase).split()
        alternatives.append(r"\s+".join(re.escape(w) for w in words))
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


@lru_cache(maxsize=64)
def _compile_rules(keywords: tuple[KeywordRule, ...]) -> tuple[_CompiledRule, ...]:
    out = []
    for rule in keywords:
        if rule.pattern is not None:
            out.append(_CompiledRule(rule, re.compile(rule.pattern), on_folded=False))
        else:
            out.append(_CompiledRule(rule, _word_regex(rule.match), on_folded=True))
    return tuple(out)


@lru_cache(maxsize=64)
def _optout_words(
    stop: tuple[str, ...], start: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(bare_word(w) for w in stop), frozenset(bare_word(w) for w in start)


def choose(
    inbound: Inbound, history: History, settings: BusinessSettings, now: datetime
) -> Decision | None:
    """The auto-reply for one inbound message, in the contract's order, or None.

    `now` is when the message is processed; how late it is decides which replies are still
    due (see Decision.reply_due), never whether an opt-out or opt-in counts.
    """
    if inbound.kind in NO_REPLY_KINDS:
        return None
    age = now - inbound.sent_at

    text = inbound.text if inbound.text and inbound.text.strip() else None
    if text is not None:
        bare = bare_word(text)
        stop, start = _optout_words(settings.optout_stop, settings.optout_start)
        if bare and (bare in stop or bare in start):
            # A confirmation of a word the customer has since taken back would mislead them.
            superseded = (
                history.last_consent_at is not None and inbound.sent_at < history.last_consent_at
            )
            due = age <= MAX_AGE and not superseded
            if bare in stop:
                return Decision("optout", "optout", opt_in=False, reply_due=due)
            return Decision("optin", "optin", opt_in=True, reply_due=due)
    if age > MAX_AGE:
        return None

    open_now: bool | None = None  # computed once, and only when needed
    if text is not None and settings.keywords:
        folded = fold_text(text)
        for compiled in _compile_rules(settings.keywords):
            if not compiled.regex.search(folded if compiled.on_folded else text):
                continue
            when = compiled.rule.when
            if when != "always":
                if open_now is None:
                    open_now = is_open(settings.hours, now)
                if open_now != (when == "open"):
                    continue
            return Decision(rule="keyword", template=compiled.rule.template, opt_in=None)

    # "We are closed" or "welcome" would answer a conversation that has moved on.
    if age.total_seconds() / 60 > settings.stale_after_minutes:
        return None
    if open_now is None:
        open_now = is_open(settings.hours, now)
    if not open_now:
        away = settings.away
        if away is None:
            return None
        if (
            history.last_away_at is not None
            and _hours_between(history.last_away_at, now) < away.cooldown_hours
        ):
            return None
        return Decision(rule="away", template=away.template, opt_in=None)

    greeting = settings.greeting
    if greeting is None:
        return None
    if (
        history.last_inbound_at is None
        or _hours_between(history.last_inbound_at, now) > greeting.after_inactive_days * 24
    ):
        return Decision(rule="greeting", template=greeting.template, opt_in=None)
    return None


def _hours_between(earlier: datetime, later: datetime) -> float:
    # In float hours rather than timedelta(hours=...), which overflows for huge settings.
    return (later - earlier).total_seconds() / 3600


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
    decision = choose(inbound, history, settings, at)
    open_now = is_open(settings.hours, at)
    reply = None
    if decision is not None and decision.reply_due:
        context = build_context(
            settings, now=at, contact_name=contact_name, wa_id=wa_id, message_text=text
        )
        reply = render(settings, decision.template, context)
    return Simulation(
        rule=decision.rule if decision else None,
        text=reply,
        is_open=open_now,
        next_open=None if open_now else next_open(settings.hours, at),
    )
