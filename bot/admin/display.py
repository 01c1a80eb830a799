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

from bot.models import Direction, MessageStatus
from bot.rules import AUTO_RULES, Rule

# Customer-service window: free text is allowed this long after the customer's last message.
WINDOW = timedelta(hours=24)

_MEDIA = {
    "image": "📷 Photo",
    "video": "🎬 Video",
    "audio": "🎤 Audio",
    "document": "📄 Document",
    "sticker": "🙂 Sticker",
}
# A message the customer deleted for everyone. The admin pages are English; the German
# wording is kept beside it for when they follow the business's language.
REVOKED_NOTE = {
    "en": "🗑 Message deleted by the customer",
    "de": "🗑 Nachricht vom Kunden gelöscht",
}
_TICKS: dict[str, str] = {
    MessageStatus.QUEUED: "…",
    MessageStatus.SENDING: "…",
    MessageStatus.SENT: "✓",
    MessageStatus.DELIVERED: "✓✓",
    MessageStatus.READ: "✓✓",
    MessageStatus.FAILED: "!",
}
# The admin pages are English: the words are the statuses themselves.
_STATUS_WORDS: dict[str, str] = {status: str(status) for status in _TICKS}


@dataclass(frozen=True)
class Local:
    """The business's time zone and locale, for showing times."""

    tz: ZoneInfo
    locale: str

    def time(self, at: datetime, now: datetime) -> str:
        local = in_zone(at, self.tz)
        if local.date() == in_zone(now, self.tz).date():
            pattern = "HH:mm"
        elif (now - at) < timedelta(days=6):
            pattern = "EEE HH:mm"
        else:
            pattern = "d MMM yyyy, HH:mm"
        try:
            return babel.dates.format_datetime(local, pattern, locale=self.locale)
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


def _num(value: Any, key: str) -> float | None:
    inner = value.get(key) if isinstance(value, dict) else None
    if isinstance(inner, bool) or not isinstance(inner, int | float | str):
        return None
    try:
        return float(inner)
    except ValueError:
        return None


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
        return "by hand"
    if rule in AUTO_RULES:
        return f"auto-reply: {rule}"
    return rule


def _inbound(kind: str, raw: dict[str, Any], text: str | None) -> dict[str, Any]:
    """The placeholder line and text of a customer's message, by its Cloud API type."""
    content = raw
    if kind == "edit" or (isinstance(raw.get("edit"), dict) and kind not in raw):
        content = _obj(_obj(raw, "edit"), "message") or raw
        kind = _str(content, "type") or kind
    out: dict[str, Any] = {"text": text, "note": None, "link": None, "link_label": None}
    if kind in _MEDIA:
        media = _obj(content, kind)
        note = _MEDIA[kind]
        if kind == "audio" and media.get("voice"):
            note = "🎤 Voice message"
        if filename := _str(media, "filename"):
            note = f"{note}: {filename}"
        out["note"] = note
    elif kind == "location":
        loc = _obj(content, "location")
        lat, lon = _num(loc, "latitude"), _num(loc, "longitude")
        parts = [p for p in (_str(loc, "name"), _str(loc, "address")) if p]
        out["note"] = "📍 Location" + (": " + ", ".join(parts) if parts else "")
        if lat is not None and lon is not None:
            out["link"] = (
                f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"
            )
            out["link_label"] = f"{lat:.5f}, {lon:.5f}"
    elif kind in ("interactive", "button"):
        out["note"] = "↩ Tapped a button"
        if kind == "interactive" and _obj(content, "interactive").get("type") == "list_reply":
            out["note"] = "↩ Chose from a list"
    elif kind == "reaction":
        out["note"] = "Reaction removed" if not text else "Reacted"
    elif kind == "contacts":
        cards = content.get("contacts")
        names = []
        for card in cards if isinstance(cards, list) else []:
            name = _str(_obj(card, "name"), "formatted_name")
            if name:
                names.append(name)
        out["note"] = "👤 Contact card" + (": " + ", ".join(names) if names else "")
    elif kind == "order":
        items = _obj(content, "order").get("product_items")
        count = len(items) if isinstance(items, list) else 0
        out["note"] = f"🛒 Order: {count} item{'s' if count != 1 else ''}"
    elif kind == "system":
        out["note"] = "ℹ WhatsApp notice"
        out["text"] = text or _str(_obj(content, "system"), "body")
    elif kind == "revoke":
        out["note"] = "🗑 Deleted a message"
    elif kind != "text":
        out["note"] = f"Message of a kind not shown here ({kind})"
    return out


def _outbound(payload: dict[str, Any] | None, text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text, "note": None, "link": None, "link_label": None}
    if not isinstance(payload, dict):
        return out
    kind = payload.get("type")
    if kind == "template":
        template = _obj(payload, "template")
        language = _str(_obj(template, "language"), "code") or "?"
        out["note"] = f"Template {template.get('name', '?')} ({language})"
        params = []
        components = template.get("components")
        for component in components if isinstance(components, list) else []:
            found = component.get("parameters") if isinstance(component, dict) else None
            for param in found if isinstance(found, list) else []:
                if isinstance(param, dict) and isinstance(param.get("text"), str):
                    params.append(param["text"])
        if not text and params:
            out["text"] = " · ".join(params)
    elif kind in _MEDIA:
        out["note"] = _MEDIA[str(kind)]
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
) -> dict[str, Any]:
    """One message as the inbox shows it; JSON-serialisable, every value plain text."""
    if direction == Direction.IN and status == MessageStatus.REVOKED:
        # Whatever is left of it is not shown: the customer took it back.
        body = {"text": None, "note": REVOKED_NOTE["en"], "link": None, "link_label": None}
    elif direction == Direction.IN:
        body = _inbound(kind, raw if isinstance(raw, dict) else {}, text)
    else:
        body = _outbound(payload, text)
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
        "status_word": _STATUS_WORDS.get(status, status) if direction == Direction.OUT else None,
        "error": error_reason if status == MessageStatus.FAILED else None,
        "rule": rule_label(rule) if direction == Direction.OUT else None,
        "auto": direction == Direction.OUT and rule in AUTO_RULES,
    }


def reacted_to(raw: dict[str, Any] | None) -> str | None:
    """The wamid a reaction refers to."""
    return _str(_obj(raw or {}, "reaction"), "message_id")


def snippet(text: str | None, limit: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
