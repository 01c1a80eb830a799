"""WhatsApp Cloud API message payloads: pure builders of the JSON the messages endpoint takes.

A payload is stored in the outbox as built and sent later through a channel's transport, so
every check on Meta's limits happens here, where the field can still be named.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final

from bot.channels.transport import Payload

__all__ = [
    "FILE_KEY",
    "HEADER_MEDIA_KINDS",
    "MEDIA_KINDS",
    "TEXT_MAX",
    "Payload",
    "body_parameters",
    "buttons_payload",
    "describe",
    "file_references",
    "header_media",
    "is_read",
    "list_payload",
    "media_payload",
    "read_payload",
    "template_payload",
    "text_payload",
]

MEDIA_KINDS: Final = frozenset({"image", "audio", "video", "document", "sticker"})
_CAPTION_KINDS: Final = frozenset({"image", "video", "document"})
# A template's header may carry one of these (Meta's header formats IMAGE, VIDEO, DOCUMENT).
HEADER_MEDIA_KINDS: Final = frozenset({"image", "video", "document"})

# A media object may name a file of our media store instead of Meta's media id or a link:
# ``{"file": "<sha256 hex>"}``. The outbox keeps it so; the WhatsApp transport uploads the file
# (once, then by the media id Meta gave it while that is valid) and sends ``{"id": …}`` in
# its place (bot.whatsapp.uploads). So a message is queued before anything talks to Meta.
FILE_KEY: Final = "file"

# Limits from Meta's message reference; checked here so a bad payload fails where it is
# built, with the field named, instead of as a Graph error 100 at send time.
TEXT_MAX: Final = 4096
CAPTION_MAX: Final = 1024
BUTTON_BODY_MAX: Final = 1024
LIST_BODY_MAX: Final = 4096
HEADER_MAX: Final = 60
FOOTER_MAX: Final = 60
BUTTONS_MAX: Final = 3
BUTTON_TITLE_MAX: Final = 20
BUTTON_ID_MAX: Final = 256
LIST_BUTTON_MAX: Final = 20
SECTIONS_MAX: Final = 10
ROWS_MAX: Final = 10
SECTION_TITLE_MAX: Final = 24
ROW_TITLE_MAX: Final = 24
ROW_DESCRIPTION_MAX: Final = 72
ROW_ID_MAX: Final = 200

# A wa_id is the phone number in digits; Meta also takes it with a leading "+".
_WA_ID: Final = re.compile(r"\+?[0-9]{5,20}")
# Business-scoped user id: ISO country code, a dot, up to 128 alphanumerics; a parent
# BSUID has "ENT." in between (US.13491208655302741918, US.ENT.11815799212886844830).
_BSUID: Final = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


def _recipient(to: str) -> Payload:
    """Address part of a message: ``to`` for a wa_id, ``recipient`` for a BSUID."""
    if _WA_ID.fullmatch(to):
        return {"to": to}
    if _BSUID.fullmatch(to):
        return {"recipient": to}
    raise ValueError(f"recipient {to!r} is neither a wa_id (digits) nor a business-scoped id")


def _message(to: str, kind: str, content: Payload, *, reply_to: str | None = None) -> Payload:
    payload: Payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **_recipient(to),
        "type": kind,
    }
    if reply_to is not None:
        payload["context"] = {"message_id": _required("reply_to", reply_to)}
    payload[kind] = content
    return payload


def _required(field: str, value: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{field} must not be empty")
    return value


def _limited(field: str, value: str, limit: int) -> str:
    _required(field, value)
    if len(value) > limit:
        raise ValueError(f"{field} is {len(value)} characters, at most {limit} allowed: {value!r}")
    return value


def text_payload(
    to: str, body: str, *, reply_to: str | None = None, preview_url: bool = False
) -> Payload:
    """A text message; ``reply_to`` quotes an earlier message by its wamid."""
    content = {"body": _limited("text body", body, TEXT_MAX), "preview_url": preview_url}
    return _message(to, "text", content, reply_to=reply_to)


def template_payload(
    to: str, name: str, language: str, components: list[Payload] | None = None
) -> Payload:
    """An approved message template; ``language`` is its locale code as in WhatsApp Manager."""
    template: Payload = {
        "name": _required("template name", name),
        "language": {"code": _required("template language", language)},
    }
    if components:
        template["components"] = components
    return _message(to, "template", template)


def body_parameters(values: Sequence[str]) -> list[Payload]:
    """Template components filling the body's ``{{1}}``, ``{{2}}``, … with ``values``.

    Meta refuses empty parameter text (error 100), so an empty value raises here.
    """
    if not values:
        return []
    parameters = [
        {"type": "text", "text": _required(f"template parameter {i}", v)}
        for i, v in enumerate(values, start=1)
    ]
    return [{"type": "body", "parameters": parameters}]


def _media_object(media_id: str | None, link: str | None, file: str | None) -> Payload:
    given = [
        (k, v) for k, v in (("id", media_id), ("link", link), (FILE_KEY, file)) if v is not None
    ]
    if len(given) != 1:
        raise ValueError("give exactly one of media_id, link and file")
    key, value = given[0]
    if key == FILE_KEY and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"file must be a stored file's sha256 (64 hex digits), not {value!r}")
    return {key: _required(key, value)}


def media_payload(
    to: str,
    kind: str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    file: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
) -> Payload:
    """An image, audio, video, document or sticker, by uploaded media id, by link, or by a
    stored file (`file`: its sha256, uploaded when sent; see FILE_KEY)."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"media kind {kind!r} is not one of {sorted(MEDIA_KINDS)}")
    media = _media_object(media_id, link, file)
    if caption is not None:
        if kind not in _CAPTION_KINDS:
            raise ValueError(f"a caption is allowed on {sorted(_CAPTION_KINDS)}, not on {kind}")
        media["caption"] = _limited("caption", caption, CAPTION_MAX)
    if filename is not None:
        if kind != "document":
            raise ValueError(f"a filename is allowed on a document, not on {kind}")
        media["filename"] = _required("filename", filename)
    return _message(to, kind, media)


def header_media(
    kind: str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    file: str | None = None,
    filename: str | None = None,
) -> Payload:
    """A template component filling a media header (image, video or document) with one file:
    by media id, link, or a stored file's sha256 (uploaded when sent)."""
    if kind not in HEADER_MEDIA_KINDS:
        raise ValueError(f"a header carries {sorted(HEADER_MEDIA_KINDS)}, not {kind!r}")
    media = _media_object(media_id, link, file)
    if filename is not None:
        if kind != "document":
            raise ValueError(f"a filename is allowed on a document, not on {kind}")
        media["filename"] = _required("filename", filename)
    return {"type": "header", "parameters": [{"type": kind, kind: media}]}


def file_references(payload: Payload) -> Iterator[Payload]:
    """The media objects of a payload that name a stored file (``{"file": sha256, …}``): the
    message's own media, and a template's header parameter. Yielded as they are in the
    payload, so a caller working on a copy may put the media id in their place."""
    kind = payload.get("type")
    content = payload.get(kind) if isinstance(kind, str) else None
    if not isinstance(content, dict):
        return
    if kind in MEDIA_KINDS and FILE_KEY in content:
        yield content
    elif kind == "template":
        for component in content.get("components") or ():
            if not isinstance(component, dict) or component.get("type") != "header":
                continue
            for parameter in component.get("parameters") or ():
                media = (
                    parameter.get(parameter.get("type")) if isinstance(parameter, dict) else None
                )
                if isinstance(media, dict) and FILE_KEY in media:
                    yield media


def _interactive_frame(
    kind: str, body: str, body_max: int, header: str | None, footer: str | None
) -> Payload:
    interactive: Payload = {"type": kind}
    if header is not None:
        interactive["header"] = {"type": "text", "text": _limited("header", header, HEADER_MAX)}
    interactive["body"] = {"text": _limited("body", body, body_max)}
    if footer is not None:
        interactive["footer"] = {"text": _limited("footer", footer, FOOTER_MAX)}
    return interactive


def buttons_payload(
    to: str,
    body: str,
    buttons: Sequence[tuple[str, str]],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> Payload:
    """Reply buttons: ``buttons`` are (id, title) pairs, 1 to 3, titles up to 20 characters.

    A tap comes back as an ``interactive.button_reply`` carrying the id.
    """
    if not 1 <= len(buttons) <= BUTTONS_MAX:
        raise ValueError(f"reply buttons need 1 to {BUTTONS_MAX} buttons, got {len(buttons)}")
    ids = [button_id for button_id, _ in buttons]
    if len(set(ids)) != len(ids):
        raise ValueError(f"button ids must be unique: {ids}")
    interactive = _interactive_frame("button", body, BUTTON_BODY_MAX, header, footer)
    interactive["action"] = {
        "buttons": [
            {
                "type": "reply",
                "reply": {
                    "id": _limited("button id", button_id, BUTTON_ID_MAX),
                    "title": _limited("button title", title, BUTTON_TITLE_MAX),
                },
            }
            for button_id, title in buttons
        ]
    }
    return _message(to, "interactive", interactive)


def list_payload(
    to: str,
    body: str,
    button: str,
    sections: Sequence[tuple[str, Sequence[tuple[str, str, str | None]]]],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> Payload:
    """A list message: ``button`` opens it; sections of (id, title, description) rows.

    At most 10 sections and 10 rows in all; with more than one section each needs a
    title. A choice comes back as an ``interactive.list_reply`` carrying the row id.
    """
    if not 1 <= len(sections) <= SECTIONS_MAX:
        raise ValueError(f"a list needs 1 to {SECTIONS_MAX} sections, got {len(sections)}")
    rows_total = sum(len(rows) for _, rows in sections)
    if not 1 <= rows_total <= ROWS_MAX:
        raise ValueError(f"a list needs 1 to {ROWS_MAX} rows in all, got {rows_total}")
    row_ids = [row[0] for _, rows in sections for row in rows]
    if len(set(row_ids)) != len(row_ids):
        raise ValueError(f"row ids must be unique: {row_ids}")
    built_sections: list[Payload] = []
    for section_title, rows in sections:
        if not rows:
            raise ValueError(f"section {section_title!r} has no rows")
        section: Payload = {}
        if section_title or len(sections) > 1:
            section["title"] = _limited("section title", section_title, SECTION_TITLE_MAX)
        built_rows = []
        for row_id, title, description in rows:
            row: Payload = {
                "id": _limited("row id", row_id, ROW_ID_MAX),
                "title": _limited("row title", title, ROW_TITLE_MAX),
            }
            if description:
                row["description"] = _limited("row description", description, ROW_DESCRIPTION_MAX)
            built_rows.append(row)
        section["rows"] = built_rows
        built_sections.append(section)
    interactive = _interactive_frame("list", body, LIST_BODY_MAX, header, footer)
    interactive["action"] = {
        "button": _limited("list button", button, LIST_BUTTON_MAX),
        "sections": built_sections,
    }
    return _message(to, "interactive", interactive)


def read_payload(message_id: str, *, typing: bool = False) -> Payload:
    """Mark a received message as read; with ``typing`` also show the typing indicator.

    The indicator shows until the next message is sent, or about 25 seconds.
    """
    payload: Payload = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": _required("message_id", message_id),
    }
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    return payload


def is_read(payload: Payload) -> bool:
    """Whether ``payload`` is a read receipt (see `read_payload`) rather than a message."""
    return payload.get("status") == "read" and "message_id" in payload


def describe(payload: Payload, *, limit: int = 60) -> str:
    """One line saying what a payload sends, for logs: ``text to 4915112345678: Hallo …``."""
    if is_read(payload):
        typing = " with typing indicator" if "typing_indicator" in payload else ""
        return f"read receipt for {payload['message_id']}{typing}"
    kind = str(payload.get("type", "?"))
    to = payload.get("to") or payload.get("recipient") or "?"
    content = payload.get(kind)
    text: str | None = None
    if isinstance(content, dict):
        if kind == "text":
            text = content.get("body")
        elif kind == "template":
            language = content.get("language", {}).get("code", "?")
            kind = f"template {content.get('name')} ({language})"
        elif kind == "interactive":
            kind = f"interactive {content.get('type')}"
            text = content.get("body", {}).get("text")
        elif kind in MEDIA_KINDS:
            text = content.get("caption")
    line = f"{kind} to {to}"
    if text:
        flat = " ".join(str(text).split())
        line += f": {flat if len(flat) <= limit else flat[: limit - 1].rstrip() + ' …'}"
    return line
