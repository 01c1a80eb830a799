"""Which auto-reply, if any, an inbound message gets: opt-out/in, keywords, away, greeting.

Pure: the message, the contact's history, the settings and `now` in; a decision out.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import regex

from bot.hours import closed_since, is_open
from bot.settings import BusinessSettings, KeywordFile, KeywordRule, bare_word, fold_text
from bot.strain import Strain

# Reactions and status updates never get a reply; nor do WhatsApp's own system notices
# (a contact changed their number) and revocations (a contact deleted a message), which
# carry nothing to answer. Edits count: the edited text is read like a new message.
NO_REPLY_KINDS = frozenset({"reaction", "status", "system", "revoke"})
# A message delivered this late (the phone was offline, Meta replays a backlog after an outage)
# gets no reply: it is answered by a person, if at all. Its opt-out or opt-in still counts.
MAX_AGE = timedelta(hours=24)
# WhatsApp's limit for a text message: keyword rules look at no more than this of any text.
MAX_TEXT = 4096
# All keyword rules together get this much processor time per message, in seconds. A pattern
# that needs more (nested repetition such as (a+)+$ backtracks for hours on some texts)
# counts as no match: one bad pattern must hold neither the webhook nor the database's write
# turn.
MATCH_BUDGET = 0.05

log = logging.getLogger("tresen.rules")


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
    # When a person last answered this contact by hand: away and greeting pause after it.
    last_human_reply_at: datetime | None = None


class Rule(enum.StrEnum):
    """What wrote an outbound message, stored with it: one of the auto-replies, a person's
    answer from the inbox (MANUAL), a broadcast, the template follow-up after a closure
    (bot.followups), or a shop system's message through /api/v1 (API)."""

    OPTOUT = "optout"
    OPTIN = "optin"
    KEYWORD = "keyword"
    AWAY = "away"
    GREETING = "greeting"
    MANUAL = "manual"
    BROADCAST = "broadcast"
    FOLLOW_UP = "follow_up"
    API = "api"


# The rules the bot answers by itself.
AUTO_RULES = frozenset({Rule.OPTOUT, Rule.OPTIN, Rule.KEYWORD, Rule.AWAY, Rule.GREETING})


@dataclass(frozen=True)
class Decision:
    rule: Rule  # one of AUTO_RULES
    template: str
    opt_in: bool | None  # False: opt out of broadcasts, True: opt in, None: unchanged
    # False for an opt-out or opt-in word that came too late for its reply, or after a later
    # one: it is recorded (and a late one applies), only its reply is not sent.
    reply_due: bool = True
    # A keyword rule's file (the price list), sent with the answer as its caption.
    file: KeywordFile | None = None


NO_HISTORY = History(last_inbound_at=None, last_away_at=None)


@dataclass(frozen=True)
class KeywordHits:
    """Which keyword rules' words or patterns are found in one text: the costly part of
    `choose`, which needs nothing but the text, so callers can work it out before they lock."""

    keywords: tuple[KeywordRule, ...]
    text: str | None
    found: frozenset[int]  # positions in keywords


@dataclass(frozen=True)
class _CompiledRule:
    # The `regex` module, not `re`: same syntax, and a search it can stop after a timeout.
    regex: Any | None  # None: a stored pattern this version cannot compile, never matches
    on_folded: bool  # match words are searched in the folded text, patterns in the raw text


def _word_regex(phrases: tuple[str, ...]) -> Any:
    # Whole words: no word character (letters with umlauts and ß included, \w is Unicode)
    # right before or after; the words of a phrase may be separated by any whitespace.
    alternatives = []
    for phrase in phrases:
        words = fold_text(phrase).split()
        alternatives.append(r"\s+".join(regex.escape(w) for w in words))
    return regex.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


@lru_cache(maxsize=64)
def _compile_rules(keywords: tuple[KeywordRule, ...]) -> tuple[_CompiledRule, ...]:
    out = []
    for number, rule in enumerate(keywords, 1):
        if rule.pattern is None:
            out.append(_CompiledRule(_word_regex(rule.match), on_folded=True))
            continue
        try:
            compiled = regex.compile(rule.pattern)
        except (regex.error, RecursionError) as exc:
            # Saved by an older version that checked less: the other rules still work.
            log.warning("keyword rule %d: pattern %r never matches: %s", number, rule.pattern, exc)
            compiled = None
        out.append(_CompiledRule(compiled, on_folded=False))
    return tuple(out)


# A pattern that ran out of time: the next searches get this much processor time, for ten
# minutes (see bot.strain). An ordinary search of a whole WhatsApp text takes a fraction of it.
_strained = Strain(tight=0.002)


def keyword_hits(
    keywords: tuple[KeywordRule, ...], text: str | None, *, budget: float = MATCH_BUDGET
) -> KeywordHits:
    """The keyword rules found in `text` (its first MAX_TEXT characters), within `budget`
    seconds for all of them; a rule that runs out of time counts as not found."""
    if not keywords or not text or not text.strip():
        return KeywordHits(keywords, text, frozenset())
    seen = text[:MAX_TEXT]
    folded = fold_text(seen)
    compiled_rules = _compile_rules(keywords)
    # A budget, not a time from the caller: it bounds this process's own work, counted in
    # processor time as regex counts its timeout (a busy machine stretches it on the clock).
    deadline = time.process_time() + budget
    found = set()
    for i, compiled in enumerate(compiled_rules):
        if compiled.regex is None:
            continue
        # An equal share of what is left, for this rule and each after it: a slow pattern
        # cannot take the time of the rules after it (a fast one takes microseconds).
        share = (deadline - time.process_time()) / (len(compiled_rules) - i)
        share = _strained.budget(compiled.regex.pattern, share)
        try:
            if share <= 0:
                raise TimeoutError
            if compiled.regex.search(folded if compiled.on_folded else seen, timeout=share):
                found.add(i)
        except TimeoutError:
            _strained.overran(compiled.regex.pattern)
            rule = keywords[i]
            log.warning(
                "keyword rule %d (%s) gave up after %.1f ms on a text of %d characters: "
                "counted as no match",
                i + 1,
                f"pattern {rule.pattern!r}" if rule.pattern is not None else f"match {rule.match}",
                max(share, 0) * 1000,
                len(seen),
            )
    return KeywordHits(keywords, text, frozenset(found))


@lru_cache(maxsize=64)
def _optout_words(
    stop: tuple[str, ...], start: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(bare_word(w) for w in stop), frozenset(bare_word(w) for w in start)


def choose(
    inbound: Inbound,
    history: History,
    settings: BusinessSettings,
    now: datetime,
    hits: KeywordHits | None = None,
) -> Decision | None:
    """The auto-reply for one inbound message, in the contract's order, or None.

    `now` is when the message is processed; how late it is decides which replies are still
    due (see Decision.reply_due), never whether an opt-out or opt-in counts.

    `hits`: keyword_hits for this text, if the caller worked them out already (before taking
    a lock); ignored unless they are for these keyword rules and this text.
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
                return Decision(Rule.OPTOUT, "optout", opt_in=False, reply_due=due)
            return Decision(Rule.OPTIN, "optin", opt_in=True, reply_due=due)
    if age > MAX_AGE:
        return None

    open_now: bool | None = None  # computed once, and only when needed
    if text is not None and settings.keywords:
        if hits is None or hits.keywords != settings.keywords or hits.text != text:
            hits = keyword_hits(settings.keywords, text)
        for i, rule in enumerate(settings.keywords):
            if i not in hits.found:
                continue
            when = rule.when
            if when != "always":
                if open_now is None:
                    open_now = is_open(settings.hours, now)
                if open_now != (when == "open"):
                    continue
            return Decision(rule=Rule.KEYWORD, template=rule.template, opt_in=None, file=rule.file)

    # "We are closed" or "welcome" would answer a conversation that has moved on.
    if age.total_seconds() / 60 > settings.stale_after_minutes:
        return None
    # A person is talking with the customer: the bot's "we are closed" or "welcome" would
    # talk over them. Opt-out words and keyword answers (above) still come.
    if (
        settings.human_pause_minutes > 0
        and history.last_human_reply_at is not None
        and (now - history.last_human_reply_at).total_seconds() / 60 < settings.human_pause_minutes
    ):
        return None
    if open_now is None:
        open_now = is_open(settings.hours, now)
    if not open_now:
        away = settings.away
        if away is None:
            return None
        last = history.last_away_at
        if last is not None:
            # Once per closed period: a customer who writes again while still closed has
            # been told already, however long the closure lasts.
            if away.once_per_closure and last >= closed_since(settings.hours, now):
                return None
            if away.cooldown_hours is not None and _hours_between(last, now) < away.cooldown_hours:
                return None
        return Decision(rule=Rule.AWAY, template=away.template, opt_in=None)

    greeting = settings.greeting
    if greeting is None:
        return None
    if (
        history.last_inbound_at is None
        or _hours_between(history.last_inbound_at, now) > greeting.after_inactive_days * 24
    ):
        return Decision(rule=Rule.GREETING, template=greeting.template, opt_in=None)
    return None


def _hours_between(earlier: datetime, later: datetime) -> float:
    # In float hours rather than timedelta(hours=...), which overflows for huge settings.
    return (later - earlier).total_seconds() / 3600
