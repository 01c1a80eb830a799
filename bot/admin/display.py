"""How a stored message shows in the inbox: one plain dict per message, for Jinja and the poll.

Everything a customer sent stays plain text here; the page escapes it (Jinja autoescaping,
and `textContent` in the script), so nothing in these dicts is ever markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
import babel.units
from babel import Locale
from flask_babel import gettext, ngettext

from bot.broadcasts.runs import CANCELLED, OUTSIDE_WINDOW
from bot.media import serve
from bot.media.kinds import Failure, MediaKind, base_type
from bot.models import AttachmentState, Direction, MessageStatus
from bot.rules import AUTO_RULES, Rule
from bot.whatsapp.events import read_contacts, read_location

# Customer-service window: free text is allowed this long after the customer's last message.
WINDOW = timedelta(hours=24)

# Media kinds: an emoji the same in every language, and the word, translated when shown.
_MEDIA_ICONS = {"image": "📷", "video": "🎬", "audio": "🎤", "document": "📄", "sticker": "🙂"}
_TICKS: dict[str, str] = {
    MessageStatus.DEFERRED: "…",
    MessageStatus.QUEUED: "…",
    MessageStatus.SENDING: "…",
    MessageStatus.SENT: "✓",
    MessageStatus.DELIVERED: "✓✓",
    MessageStatus.READ: "✓✓",
    MessageStatus.FAILED: "!",
}


def _media_word(kind: str) -> str:
    words: dict[str, str] = {
        "image": gettext("Photo"),
        "video": gettext("Video"),
        "audio": gettext("Audio"),
        "document": gettext("Document"),
        "sticker": gettext("Sticker"),
    }
    return words[kind]


def _media(kind: str) -> str:
    return f"{_MEDIA_ICONS[kind]} {_media_word(kind)}"


def revoked_note() -> str:
    """A message the customer deleted for everyone, in the page's language."""
    return "🗑 " + gettext("Message deleted by the customer")


def status_word(status: str) -> str:
    """An outbound message's status as the page says it (the tick's tooltip)."""
    words: dict[str, str] = {
        # A broadcast message held for the quiet hours or the messaging limit waits too.
        MessageStatus.DEFERRED: gettext("waiting to be sent"),
        MessageStatus.QUEUED: gettext("waiting to be sent"),
        MessageStatus.SENDING: gettext("being sent"),
        MessageStatus.SENT: gettext("sent"),
        MessageStatus.DELIVERED: gettext("delivered"),
        MessageStatus.READ: gettext("read"),
        MessageStatus.FAILED: gettext("not delivered"),
        MessageStatus.SKIPPED: gettext("skipped"),
        MessageStatus.DRAFT: gettext("being prepared"),
    }
    return words.get(status, status)


def rule_name(rule: str) -> str:
    """An automatic answer's name as the pages say it."""
    names: dict[str, str] = {
        Rule.OPTOUT: gettext("unsubscribe"),
        Rule.OPTIN: gettext("subscribe"),
        Rule.KEYWORD: gettext("keyword"),
        Rule.AWAY: gettext("away message"),
        Rule.GREETING: gettext("greeting"),
        Rule.MANUAL: gettext("by hand"),
        Rule.BROADCAST: gettext("broadcast"),
        Rule.FOLLOW_UP: gettext("automatic follow-up after closing"),
        Rule.API: gettext("from the shop system (API)"),
    }
    return names.get(rule, rule)


@dataclass(frozen=True)
class Local:
    """The business's time zone and the page's locale, for showing times."""

    tz: ZoneInfo
    locale: str

    def _babel(self) -> Locale:
        try:
            return Locale.parse(self.locale)
        except (ValueError, LookupError):
            return Locale.parse("en")

    def _join(self, locale: Locale, day: str, clock: str) -> str:
        pattern = locale.datetime_formats.get("short", "{1} {0}")
        return str(pattern).replace("{1}", day).replace("{0}", clock)

    def time(self, at: datetime, now: datetime) -> str:
        """A message's time as a chat shows it: the clock today, the weekday this week, the
        date before that; 24-hour where the locale says so (German)."""
        local = in_zone(at, self.tz)
        locale = self._babel()
        try:
            clock = babel.dates.format_time(local, "short", tzinfo=self.tz, locale=locale)
            if local.date() == in_zone(now, self.tz).date():
                return clock
            if timedelta(0) <= (now - at) < timedelta(days=6):
                day = babel.dates.format_skeleton("E", local, tzinfo=self.tz, locale=locale)
            else:
                day = babel.dates.format_date(local, "medium", locale=locale)
            return self._join(locale, day, clock)
        except (ValueError, LookupError, OverflowError):
            return local.strftime("%Y-%m-%d %H:%M")

    def moment(self, at: datetime) -> str:
        """A time with its day, for a moment that may be tomorrow or yesterday: "Sa.,
        28.11., 08:20"."""
        local = in_zone(at, self.tz)
        locale = self._babel()
        try:
            day = babel.dates.format_skeleton("MEd", local, tzinfo=self.tz, locale=locale)
            clock = babel.dates.format_time(local, "short", tzinfo=self.tz, locale=locale)
            return self._join(locale, day, clock)
        except (ValueError, LookupError, OverflowError):
            return local.strftime("%Y-%m-%d %H:%M")


def in_zone(at: datetime, tz: ZoneInfo) -> datetime:
    """`at` in the zone, or in UTC where the zone's time would fall off the calendar (a
    stored time in the year 9999 or the year 1)."""
    try:
        return at.astimezone(tz)
    except OverflowError:
        return at


def _obj(value: Any, key: str) -> dict[str, Any]:
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


def _str(value: Any, key: str) -> str | None:
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, str) and inner else None


def _body(text: str | None, note: str | None = None) -> dict[str, Any]:
    """A message's content as the bubble shows it: its text, a line saying what it is, and
    what a location (place), a contact card (cards) or a file (media) adds."""
    return {"text": text, "note": note, "place": None, "cards": None, "media": None}


def place_view(
    latitude: float, longitude: float, name: str | None, address: str | None
) -> dict[str, Any]:
    """A shared location: its name and address, coordinates, and a link to OpenStreetMap (a
    link only: the page itself asks no map server for anything)."""
    return {
        "name": name,
        "address": address,
        "coords": f"{latitude:.5f}, {longitude:.5f}",
        "url": (
            f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}"
            f"#map=17/{latitude:.6f}/{longitude:.6f}"
        ),
        "open": gettext("Open on the map"),
        "title": "📍 " + gettext("Location"),
    }


@dataclass(frozen=True)
class AttachmentInfo:
    """What the page needs of a message's attachment (bot.models.Attachment and its file)."""

    id: int
    kind: str  # a MediaKind
    state: str  # an AttachmentState
    failure: str | None  # a Failure
    voice: bool
    filename: str | None
    content_type: str | None  # the stored file's, else the one WhatsApp declared
    size: int | None  # the stored file's
    url: str  # where the admin serves it (bot.admin.media_page)


def _thing(kind: str, voice: bool) -> str:
    """The file as the subject of a sentence: "The photo"."""
    if kind == MediaKind.AUDIO and voice:
        return gettext("The voice message")
    things: dict[str, str] = {
        MediaKind.IMAGE: gettext("The photo"),
        MediaKind.AUDIO: gettext("The audio file"),
        MediaKind.VIDEO: gettext("The video"),
        MediaKind.STICKER: gettext("The sticker"),
    }
    return things.get(kind, gettext("The document"))


def media_status(kind: str, voice: bool, state: str, failure: str | None) -> str | None:
    """What the page says of a file not (yet) there: being fetched, or why it was not kept,
    in words for the shop owner (the technical details stay in the log)."""
    thing = _thing(kind, voice)
    if state == AttachmentState.PENDING:
        return gettext("%(thing)s is being fetched from WhatsApp …", thing=thing)
    if state == AttachmentState.STORED:
        return None
    reasons: dict[str, str] = {
        Failure.NOT_FOUND: gettext(
            "%(thing)s is no longer available at WhatsApp and could not be fetched.",
            thing=thing,
        ),
        Failure.TOO_LARGE: gettext("%(thing)s is too large and was not kept.", thing=thing),
        Failure.CHECKSUM: gettext("%(thing)s arrived damaged and was not kept.", thing=thing),
        Failure.UNREACHABLE: gettext(
            "%(thing)s could not be fetched: WhatsApp did not answer for a long time.",
            thing=thing,
        ),
        Failure.REFUSED: gettext(
            "%(thing)s could not be fetched: WhatsApp refused access. Please check the "
            "access token (WHATSAPP_TOKEN).",
            thing=thing,
        ),
        Failure.CONSOLE: gettext(
            "%(thing)s was not fetched: in console mode Tresen is not connected to WhatsApp.",
            thing=thing,
        ),
        Failure.EXPIRED: gettext(
            "%(thing)s was deleted after the retention period of the settings.", thing=thing
        ),
    }
    return reasons.get(failure or "", gettext("%(thing)s could not be fetched.", thing=thing))


def file_size(size: int, locale: str) -> str:
    """A file's size as people read it, in the page's language: "1,2 MB", "340 kB"."""
    units = (
        (1000**3, "digital-gigabyte"),
        (1000**2, "digital-megabyte"),
        (1000, "digital-kilobyte"),
    )
    try:
        for factor, unit in units:
            if size >= factor:
                value = round(size / factor, 1 if size < 10 * factor else 0)
                return str(babel.units.format_unit(value, unit, length="short", locale=locale))
        return str(babel.units.format_unit(size, "digital-byte", length="short", locale=locale))
    except (ValueError, LookupError):
        return f"{size} B"


def _shown_as(kind: str, content_type: str | None) -> str:
    """How a stored file shows: as a picture, a player, or a file to download. Only types a
    browser may show inline (bot.media.serve) get an element that shows them; a "photo" that
    is an SVG is a download like any document, and a document stays one whatever its type
    (a customer sends a picture as a document to keep its name and full quality)."""
    if kind == MediaKind.DOCUMENT or not serve.is_inline(content_type):
        return "file"
    major = base_type(content_type).split("/")[0]
    if major == "image":
        return "sticker" if kind == MediaKind.STICKER else "image"
    if major in ("audio", "video"):
        return major
    return "file"


def media_view(attachment: AttachmentInfo, locale: str) -> dict[str, Any]:
    """A message's file as the bubble shows it; JSON-serialisable like the rest."""
    kind, stored = attachment.kind, attachment.state == AttachmentState.STORED
    shown = _shown_as(kind, attachment.content_type) if stored else "none"
    label = _media_word(kind) if kind in _MEDIA_ICONS else gettext("Document")
    if kind == MediaKind.AUDIO and attachment.voice:
        label = gettext("Voice message")
    return {
        "id": attachment.id,
        "shown": shown,
        "state": attachment.state,
        "url": attachment.url if stored else None,
        "label": label,
        "name": serve.download_name(attachment.filename, attachment.content_type, attachment.id),
        "size": file_size(attachment.size, locale) if attachment.size is not None else None,
        "status": media_status(kind, attachment.voice, attachment.state, attachment.failure),
        "download": gettext("Download"),
        "open": gettext("Open full size"),
        # A picture, player or file box says what it is; a player keeps its line above it.
        "hide_note": stored and shown != "audio",
    }


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether free text may be sent: the customer wrote within the last 24 hours."""
    return last_inbound_at is not None and now - last_inbound_at < WINDOW


def window_closes(last_inbound_at: datetime) -> datetime:
    """When the customer-service window closes; the calendar's end for a stored time so late
    that a day more does not fit."""
    try:
        return last_inbound_at + WINDOW
    except OverflowError:
        return datetime.max.replace(tzinfo=last_inbound_at.tzinfo)


def rule_label(rule: str | None) -> str | None:
    if rule is None:
        return None
    if rule == Rule.MANUAL:
        return rule_name(rule)
    if rule in AUTO_RULES:
        return gettext("auto-reply: %(rule)s", rule=rule_name(rule))
    return rule_name(rule)


def _inbound(kind: str, raw: dict[str, Any], text: str | None) -> dict[str, Any]:
    """The placeholder line and text of a customer's message, by its Cloud API type."""
    content = raw
    if kind == "edit" or (isinstance(raw.get("edit"), dict) and kind not in raw):
        content = _obj(_obj(raw, "edit"), "message") or raw
        kind = _str(content, "type") or kind
    out: dict[str, Any] = _body(text)
    if kind in _MEDIA_ICONS:
        media = _obj(content, kind)
        note = _media(kind)
        if kind == "audio" and media.get("voice"):
            note = "🎤 " + gettext("Voice message")
        if filename := _str(media, "filename"):
            note = gettext("%(kind)s: %(file)s", kind=note, file=filename)
        out["note"] = note
    elif kind == "location":
        loc = read_location(content.get("location"))
        parts = [p for p in (loc.name, loc.address) if p] if loc else []
        place = ", ".join(parts)
        out["note"] = "📍 " + (
            gettext("Location: %(place)s", place=place) if parts else gettext("Location")
        )
        if loc is not None:
            out["place"] = place_view(loc.latitude, loc.longitude, loc.name, loc.address)
    elif kind in ("interactive", "button"):
        out["note"] = "↩ " + gettext("Tapped a button")
        if kind == "interactive" and _obj(content, "interactive").get("type") == "list_reply":
            out["note"] = "↩ " + gettext("Chose from a list")
    elif kind == "reaction":
        out["note"] = gettext("Reaction removed") if not text else gettext("Reacted")
    elif kind == "contacts":
        cards = read_contacts(content.get("contacts"))
        names = [card.name for card in cards if card.name]
        listed = ", ".join(names)
        out["note"] = "👤 " + (
            gettext("Contact card: %(names)s", names=listed) if names else gettext("Contact card")
        )
        if cards:
            out["cards"] = {
                "title": "👤 " + gettext("Contact card"),
                "items": [
                    {
                        "name": card.name,
                        "phones": [n for p in card.phones if (n := p.phone or p.wa_id)],
                    }
                    for card in cards
                ],
            }
    elif kind == "order":
        items = _obj(content, "order").get("product_items")
        count = len(items) if isinstance(items, list) else 0
        out["note"] = "🛒 " + ngettext("Order: %(num)d item", "Order: %(num)d items", count)
    elif kind == "system":
        out["note"] = "ℹ " + gettext("WhatsApp notice")
        out["text"] = text or _str(_obj(content, "system"), "body")
    elif kind == "revoke":
        out["note"] = "🗑 " + gettext("Deleted a message")
    elif kind != "text":
        out["note"] = gettext("Message of a kind not shown here (%(kind)s)", kind=kind)
    return out


def _outbound(payload: dict[str, Any] | None, text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = _body(text)
    if not isinstance(payload, dict):
        return out
    kind = payload.get("type")
    if kind == "template":
        template = _obj(payload, "template")
        language = _str(_obj(template, "language"), "code") or "?"
        out["note"] = gettext(
            "Template %(name)s (%(language)s)",
            name=str(template.get("name", "?")),
            language=language,
        )
        params = []
        components = template.get("components")
        for component in components if isinstance(components, list) else []:
            found = component.get("parameters") if isinstance(component, dict) else None
            for param in found if isinstance(found, list) else []:
                if isinstance(param, dict) and isinstance(param.get("text"), str):
                    params.append(param["text"])
        if not text and params:
            out["text"] = " · ".join(params)
    elif kind in _MEDIA_ICONS:
        out["note"] = _media(str(kind))
        out["text"] = text or _str(_obj(payload, str(kind)), "caption")
    elif kind == "interactive" and not text:
        out["text"] = _str(_obj(_obj(payload, "interactive"), "body"), "text")
    elif kind == "text" and not text:
        out["text"] = _str(_obj(payload, "text"), "body")
    return out


def message_view(
    *,
    id: int,
    direction: str,
    kind: str,
    text: str | None,
    raw: dict[str, Any] | None,
    payload: dict[str, Any] | None,
    rule: str | None,
    timestamp: datetime,
    status: str,
    error_reason: str | None,
    local: Local,
    now: datetime,
    quoted: str | None = None,
    attachment: AttachmentInfo | None = None,
) -> dict[str, Any]:
    """One message as the inbox shows it; JSON-serialisable, every value plain text."""
    if direction == Direction.IN and status == MessageStatus.REVOKED:
        # Whatever is left of it is not shown: the customer took it back.
        body = _body(None, revoked_note())
    elif direction == Direction.IN:
        body = _inbound(kind, raw if isinstance(raw, dict) else {}, text)
    else:
        body = _outbound(payload, text)
        if status in (MessageStatus.SKIPPED, MessageStatus.DRAFT) and rule == Rule.BROADCAST:
            body["note"] = broadcast_note(status, error_reason)
    if attachment is not None and not (
        direction == Direction.IN and status == MessageStatus.REVOKED
    ):
        body["media"] = media_view(attachment, local.locale)
        if not body["note"]:
            body["note"] = _media(attachment.kind) if attachment.kind in _MEDIA_ICONS else None
    return {
        "id": id,
        "direction": direction,
        "kind": kind,
        **body,
        "quoted": quoted,
        "time": local.time(timestamp, now),
        "at": timestamp.isoformat(),
        "status": status if direction == Direction.OUT else None,
        "tick": _TICKS.get(status) if direction == Direction.OUT else None,
        "status_word": status_word(status) if direction == Direction.OUT else None,
        "error": error_reason if status == MessageStatus.FAILED else None,
        "rule": rule_label(rule) if direction == Direction.OUT else None,
        "auto": direction == Direction.OUT and rule in AUTO_RULES,
    }


def broadcast_note(status: str, reason: str | None) -> str:
    """What a broadcast's message that never went out shows instead of an empty bubble."""
    if status == MessageStatus.DRAFT:
        return gettext("Broadcast: being prepared")
    if reason == OUTSIDE_WINDOW:
        return gettext("Broadcast skipped: outside the 24-hour window")
    if reason == CANCELLED:
        return gettext("Broadcast skipped: cancelled")
    return gettext("Broadcast skipped")


def reacted_to(raw: dict[str, Any] | None) -> str | None:
    """The wamid a reaction refers to."""
    return _str(_obj(raw or {}, "reaction"), "message_id")


def snippet(text: str | None, limit: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
