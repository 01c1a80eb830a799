"""The settings pages' previews: what each rule would send, each at a moment it applies, to a
sample customer, and what happens to a message that arrives late; all through
`bot.autoreply.simulate`, the code behind the `simulate` command. The wording around the
replies is in the page's language; the replies themselves in the business's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
from flask_babel import get_locale, lazy_gettext

from bot.autoreply import simulate
from bot.hours import OpeningHours, is_open, next_close, next_open, week_lines
from bot.rules import Rule, keyword_hits
from bot.settings import BusinessSettings, KeywordRule

# The customer the previews answer: "Hallo Anna, …" reads as the real thing does.
SAMPLE_NAME = "Anna"

# How late the late-message previews arrive: past the usual limit for away and greeting
# (an hour) but within the day keyword answers keep coming, and past that day.
LATE = timedelta(hours=2)
VERY_LATE = timedelta(days=2)
LATE_ROWS = ("late-away", "late-keyword", "late-old", "late-optout")

# What the previews say around the replies.
WORDS: dict[str, Any] = {
    "open": lazy_gettext("open"),
    "closed": lazy_gettext("closed"),
    "never_closed": lazy_gettext("never closed within a year"),
    "never_open": lazy_gettext("never open within a year"),
    "never_matching_time": lazy_gettext("never at a matching time within a year"),
    "type_matching": lazy_gettext("type a matching message into the test box to see this reply"),
    "title:late-away": lazy_gettext("Arrives 2 hours late, while you are closed:"),
    "title:late-keyword": lazy_gettext("A keyword question, 2 hours late:"),
    "title:late-old": lazy_gettext("Arrives 2 days late:"),
    "title:late-optout": lazy_gettext("A stop word, 2 days late:"),
    "late_unanswered": lazy_gettext(
        "Kept in the inbox, no automatic reply: it was sent more than %(minutes)s minutes "
        "before it arrived, too late for an away or greeting message."
    ),
    "day_old_unanswered": lazy_gettext(
        "Kept in the inbox, no automatic reply at all: after a day nothing is answered "
        "automatically, not even a keyword."
    ),
    "never_answered": lazy_gettext(
        "Kept in the inbox, no automatic reply (there would be none on time either)."
    ),
    "still_answered_keyword": lazy_gettext(
        "Still answered: keyword questions get their answer for up to a day."
    ),
    "still_answered": lazy_gettext(
        "Still answered: it arrived within %(minutes)s minutes of being sent."
    ),
    "optout_applied": lazy_gettext(
        "Unsubscribed: this customer gets no more offers and news. No confirmation is sent, "
        "the word came more than a day late."
    ),
    "no_keywords": lazy_gettext("Add a keyword rule with words to see this."),
    "no_stop_words": lazy_gettext("No stop words set."),
}


# The rules by the name the owner knows them by.
RULE_NAMES: dict[str, Any] = {
    Rule.OPTOUT: lazy_gettext("stop word"),
    Rule.OPTIN: lazy_gettext("start word"),
    Rule.KEYWORD: lazy_gettext("keyword"),
    Rule.AWAY: lazy_gettext("away message"),
    Rule.GREETING: lazy_gettext("greeting"),
}


def rule_label(rule: str | None) -> str:
    """What the preview says about the rule that answered."""
    if rule is None:
        return str(lazy_gettext("no automatic reply"))
    return str(lazy_gettext("answered by: %(rule)s", rule=str(RULE_NAMES.get(rule, rule))))


def say(key: str, **values: object) -> str:
    """A preview's wording, in the page's language."""
    return str(WORDS[key]) % values if values else str(WORDS[key])


def late_titles() -> dict[str, str]:
    """The late-message previews' headings."""
    return {key: say(f"title:{key}") for key in LATE_ROWS}


def _preview_at(text: str, tz: ZoneInfo, default: datetime) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return default
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _keyword_moment(
    rule: KeywordRule, hours: OpeningHours, at: datetime, open_now: bool
) -> datetime | None:
    # The first moment from `at` on when the rule answers at all.
    if rule.when == "open" and not open_now:
        return next_open(hours, at)
    if rule.when == "closed" and open_now:
        return next_close(hours, at)
    return at


def previews(settings: BusinessSettings, *, at: datetime, text: str) -> dict[str, dict[str, Any]]:
    """What each rule would send, each at a moment it applies, and what happens to a message
    that arrives late; all through `simulate`."""
    tz = ZoneInfo(settings.timezone)
    hours = settings.hours
    open_now = is_open(hours, at)
    out: dict[str, dict[str, Any]] = {}

    def when(moment: datetime, open_then: bool) -> str:
        return _when(moment, tz, say("open" if open_then else "closed"))

    def run(key: str, message: str | None, moment: datetime | None, *, missing: str) -> None:
        if moment is None:
            out[key] = {"rule": None, "text": None, "when": "", "note": say(missing)}
            return
        result = simulate(settings, text=message, at=moment, contact_name=SAMPLE_NAME)
        out[key] = {
            "rule": result.rule,
            "label": rule_label(result.rule),
            "text": result.text,
            "when": when(moment, result.is_open),
            "note": None,
        }

    def late(
        key: str,
        message: str | None,
        moment: datetime | None,
        sent_before: timedelta,
        *,
        missing: str,
        unanswered: str,
    ) -> None:
        # The message once on time and once late: the difference is the late policy's
        # doing, so the rules stay in one place and only their outcome is put into words.
        title = say(f"title:{key}")
        if moment is None:
            out[key] = {
                "title": title,
                "rule": None,
                "text": None,
                "when": "",
                "note": say(missing),
            }
            return
        on_time = simulate(settings, text=message, at=moment, contact_name=SAMPLE_NAME)
        result = simulate(
            settings,
            text=message,
            at=moment,
            sent_at=moment - sent_before,
            contact_name=SAMPLE_NAME,
        )
        minutes = settings.stale_after_minutes
        if result.text is not None:
            note = "still_answered_keyword" if result.rule == Rule.KEYWORD else "still_answered"
        elif result.rule == Rule.OPTOUT:
            note = "optout_applied"
        elif on_time.rule is not None:
            note = unanswered
        else:
            note = "never_answered"
        out[key] = {
            "title": title,
            "rule": result.rule,
            "label": rule_label(result.rule),
            "text": result.text,
            "when": when(moment, result.is_open),
            "note": say(note, minutes=minutes),
        }

    out["week"] = {"text": "\n".join(week_lines(hours, settings.locale))}
    run("custom", text or None, at, missing="")  # `at` itself: never missing
    closed_at = at if not open_now else next_close(hours, at)
    run("away", None, closed_at, missing="never_closed")
    opened_at = at if open_now else next_open(hours, at)
    run("greeting", None, opened_at, missing="never_open")
    # The same bounded search as for a customer's message: a test text is as untrusted.
    hits = keyword_hits(settings.keywords, text)
    question: tuple[str, datetime | None] | None = None  # the first keyword rule's question
    for i, rule in enumerate(settings.keywords):
        moment = _keyword_moment(rule, hours, at, open_now)
        if rule.pattern is not None:
            if i not in hits.found:
                note = say("type_matching")
                out[f"kw-{i}"] = {"rule": None, "text": None, "when": "", "note": note}
                continue
            sample = text
        else:
            sample = rule.match[0]
        if question is None:
            question = (sample, moment)
        run(f"kw-{i}", sample, moment, missing="never_matching_time")

    late("late-away", None, closed_at, LATE, missing="never_closed", unanswered="late_unanswered")
    sample_text, sample_at = question or (None, None)
    late(
        "late-keyword",
        sample_text,
        sample_at,
        LATE,
        missing="no_keywords" if question is None else "never_matching_time",
        unanswered="late_unanswered",
    )
    # The keyword question if there is one: after a day not even that is answered.
    if sample_at is None:
        sample_text, sample_at = None, closed_at
    late(
        "late-old",
        sample_text,
        sample_at,
        VERY_LATE,
        missing="never_closed",
        unanswered="day_old_unanswered",
    )
    stop = settings.optout_stop[0] if settings.optout_stop else None
    late(
        "late-optout",
        stop,
        at if stop else None,
        VERY_LATE,
        missing="no_stop_words",
        unanswered="day_old_unanswered",
    )
    return out


def _when(moment: datetime, tz: ZoneInfo, open_word: str) -> str:
    local = moment.astimezone(tz)
    locale = str(get_locale() or "en")
    try:
        day = babel.dates.format_date(local, "full", locale=locale)
        text = f"{day}, {babel.dates.format_time(local, 'short', locale=locale)}"
    except (ValueError, LookupError):
        text = local.strftime("%a %Y-%m-%d %H:%M")
    return f"{text} ({open_word})"
