"""WhatsApp Cloud API client: payload builders, the Graph API transport and console mode.

Builders are pure functions returning the JSON payload, so a payload can be stored in
the outbox and sent later by any `Transport`: `GraphClient` posts it to Meta,
`ConsoleTransport` only logs it.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import ssl
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Final, Protocol, Self

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
)
from urllib3.exceptions import ProxyError as ProxyConnectError
from urllib3.util.ssl_match_hostname import CertificateError

from bot.outbound.errors import GraphError, PermanentError, RetryLater, classify

__all__ = [
    "MEDIA_KINDS",
    "ConsoleTransport",
    "GraphClient",
    "Transport",
    "body_parameters",
    "buttons_payload",
    "describe",
    "list_payload",
    "media_payload",
    "read_payload",
    "template_payload",
    "text_payload",
]

logger = logging.getLogger("tresen.outbound")

Payload = dict[str, Any]

MEDIA_KINDS: Final = frozenset({"image", "audio", "video", "document", "sticker"})
_CAPTION_KINDS: Final = frozenset({"image", "video", "document"})

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


# --- payload builders -------------------------------------------------------------------


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


def media_payload(
    to: str,
    kind: str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
) -> Payload:
    """An image, audio, video, document or sticker, by uploaded media id or by link."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"media kind {kind!r} is not one of {sorted(MEDIA_KINDS)}")
    if (media_id is None) == (link is None):
        raise ValueError("give exactly one of media_id and link")
    media: Payload = (
        {"id": _required("media_id", media_id)}
        if media_id is not None
        else {"link": _required("link", link or "")}
    )
    if caption is not None:
        if kind not in _CAPTION_KINDS:
            raise ValueError(f"a caption is allowed on {sorted(_CAPTION_KINDS)}, not on {kind}")
        media["caption"] = _limited("caption", caption, CAPTION_MAX)
    if filename is not None:
        if kind != "document":
            raise ValueError(f"a filename is allowed on a document, not on {kind}")
        media["filename"] = _required("filename", filename)
    return _message(to, kind, media)


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


def _is_read(payload: Payload) -> bool:
    return payload.get("status") == "read" and "message_id" in payload


def describe(payload: Payload, *, limit: int = 60) -> str:
    """One line saying what a payload sends, for logs: ``text to 4915112345678: Hallo …``."""
    if _is_read(payload):
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


# --- transports -------------------------------------------------------------------------


class Transport(Protocol):
    """Something that sends one stored payload and returns the id Meta gave it."""

    def send(self, payload: Payload) -> str:
        """Send ``payload``; return the new message's wamid (for a read receipt, the
        wamid that was marked read). Raises `GraphError` subclasses."""
        ...


def _connection_never_made(exc: requests.RequestException) -> bool:
    """True when the request surely did not leave: no connection to Meta (or to the proxy)
    was established, or the TLS handshake failed. Anything else may have reached Meta."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    for cause in _causes(exc):
        if isinstance(
            cause,
            NewConnectionError | ConnectTimeoutError | CertificateError | ssl.CertificateError,
        ):
            return True
        if isinstance(cause, ssl.SSLError) and _raised_in_handshake(cause):
            return True
    return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the errors it wraps, as requests and urllib3 nest them."""
    current: object = exc
    for _ in range(8):
        if not isinstance(current, BaseException):
            return
        yield current
        if isinstance(current, MaxRetryError):
            current = current.reason
        elif isinstance(current, ProxyConnectError):
            current = current.original_error
        else:
            current = current.args[0] if current.args else None


def _raised_in_handshake(error: ssl.SSLError) -> bool:
    # urllib3 wraps TLS errors of the handshake and of reading the answer alike; only the
    # place it was raised tells them apart, and before the handshake ends nothing is sent.
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name == "do_handshake":
            return True
        traceback = traceback.tb_next
    return False


class GraphClient:
    """The WhatsApp Cloud API's messages endpoint on one pooled, thread-safe session.

    One instance serves all dispatcher threads: requests shares the connection pool
    (``pool_size`` keep-alive connections; give at least one per sending thread) and
    the session keeps no cookies, so nothing else is shared. It never retries by
    itself: every failure is raised, classified, for the dispatcher to decide.
    The session's headers and the environment's proxy and CA bundle settings are read
    once, when the client is made.
    """

    def __init__(
        self,
        base_url: str,
        version: str,
        phone_number_id: str,
        token: str,
        *,
        timeout: tuple[float, float] = (3.05, 10),
        pool_size: int = 64,
        session: requests.Session | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"GRAPH_API_URL must start with https:// or http://, got {base_url!r}")
        if not version or not phone_number_id or not token:
            raise ValueError("version, phone number id and token must not be empty")
        self.messages_url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}/messages"
        self.timeout = timeout
        self._token = token
        self._owns_session = session is None
        self._session = session if session is not None else self._new_session(pool_size)
        # What `Session.request` would work out again for every message is worked out once:
        # the request line and headers (the session's defaults with ours), and the proxy and
        # CA bundle settings from the environment (looking those up took about a third of a
        # request's CPU time). Each message copies the prepared request and adds its body.
        headers = merge_setting(
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            self._session.headers,
            dict_class=CaseInsensitiveDict,
        )
        self._prepared = requests.PreparedRequest()
        self._prepared.prepare(method="POST", url=self.messages_url, headers=headers)
        self._send_options = self._session.merge_environment_settings(
            self.messages_url, {}, None, None, None
        )

    @staticmethod
    def _new_session(pool_size: int) -> requests.Session:
        session = requests.Session()
        # max_retries=0: retrying belongs to the dispatcher, which knows the message.
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # The cookie jar is the one piece of session state threads would share.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        return session

    @property
    def session(self) -> requests.Session:
        """The pooled session requests go through."""
        return self._session

    def __repr__(self) -> str:
        return f"GraphClient({self.messages_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections (only of a session this client made)."""
        if self._owns_session:
            self._session.close()

    def send(self, payload: Payload) -> str:
        """POST ``payload`` to the messages endpoint and return the new message's wamid.

        A read receipt (see `read_payload`) returns the wamid it marked read.
        Raises `RetryLater` (with the cause chained) on timeouts and connection
        errors, and the classified `GraphError` on any refusal.
        """
        answer = self._post(payload)
        if _is_read(payload):
            if answer.get("success") is not True:
                raise PermanentError(
                    f"mark as read not acknowledged: {answer!r}"[:200], http_status=200
                )
            return str(payload["message_id"])
        messages = answer.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            message_id = messages[0].get("id")
            if isinstance(message_id, str) and message_id:
                logger.debug("sent %s as %s", describe(payload), message_id)
                return message_id
        # Accepted or not, this is not the Graph API answering: resending blindly could
        # repeat a message, so the message fails with this on record.
        raise PermanentError(
            f"success answer without a message id: {answer!r}"[:200], http_status=200
        )

    def mark_read(self, message_id: str, typing: bool = False) -> None:
        """Mark a received message as read, optionally showing the typing indicator."""
        self.send(read_payload(message_id, typing=typing))

    def _post(self, payload: Payload) -> dict[str, Any]:
        try:
            request = self._prepared.copy()
            request.prepare_body(None, None, json=payload)
            response = self._session.send(
                request, timeout=self.timeout, allow_redirects=False, **self._send_options
            )
        except requests.RequestException as exc:
            kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
            raise RetryLater(
                self._scrub(f"{kind}: {type(exc).__name__}: {exc}")[:300],
                maybe_sent=not _connection_never_made(exc),
            ) from exc
        if not 200 <= response.status_code < 300:
            error = classify(
                response.status_code, response.content, response.headers.get("Retry-After")
            )
            raise self._scrubbed(error)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PermanentError(
                f"HTTP {response.status_code} answer is not a JSON object", http_status=200
            )
        return answer

    def _scrub(self, text: str) -> str:
        # Graph has echoed a malformed token back in its error message; keep it out of
        # exceptions, logs and stored reasons.
        return text.replace(self._token, "[token]")

    def _scrubbed(self, error: GraphError) -> GraphError:
        error.message = self._scrub(error.message)
        error.args = (error.message,)
        if error.details is not None:
            error.details = self._scrub(error.details)
        return error


class ConsoleTransport:
    """Console mode: logs what would be sent on ``tresen.outbound`` and sends nothing.

    Returns ids shaped ``wamid.console.<hex>`` so stored messages look like sent ones.
    """

    def send(self, payload: Payload) -> str:
        logger.info("console mode: would send %s", describe(payload, limit=200))
        if _is_read(payload):
            return str(payload["message_id"])
        return f"wamid.console.{uuid.uuid4().hex}"

    def mark_read(self, message_id: str, typing: bool = False) -> None:
        """Same as `GraphClient.mark_read`: logs the receipt."""
        self.send(read_payload(message_id, typing=typing))
