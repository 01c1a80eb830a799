"""Graph API errors, classified by what the sender should do next.

The class says what to do; the fields say why (Meta's code, details and trace id)::

    GraphError                     anything the Graph API or the way to it refused
    ├── RetryLater                 HTTP 429/5xx, timeouts, connection errors, throughput
    │   │                          and temporary Graph codes: back off, then send again;
    │   │                          with ``maybe_sent`` (no answer to a request that may
    │   │                          have reached Meta) sending again may duplicate it
    │   └── RecipientRateLimited   131056, pair rate limit: wait for this recipient only,
    │                              others may go on
    ├── PermanentError             bad number, outside the 24-hour window, template or
    │                              parameter errors: record the reason, never resend
    └── AuthError                  token, permission or account problems: every further
                                   send fails the same way; stop sending, alert the operator

`classify` turns an HTTP status, a response body and a ``Retry-After`` header into one
of these; `GraphError.reason` is the short text to store on a failed message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, ClassVar, Final

__all__ = [
    "AuthError",
    "GraphError",
    "PermanentError",
    "RecipientRateLimited",
    "RetryLater",
    "classify",
    "parse_retry_after",
]

# Longest reason stored on a message; Meta's details can run to several sentences.
_REASON_LIMIT: Final = 300


class GraphError(Exception):
    """A request the Graph API, or the network on the way to it, did not accept.

    ``http_status`` is None when no answer came (timeout, connection error).
    ``retry_after`` is the least number of seconds to wait before the next try: the
    ``Retry-After`` header, else what Meta documents for the code, else None.
    ``maybe_sent`` is true when the request may have reached Meta before it failed
    (a read timeout, a connection dropped mid-answer): a resend may then duplicate it.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.error_type = error_type
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent

    @property
    def title(self) -> str:
        """Meta's title for the code: the message without its ``(#code)`` prefix."""
        text = self.message.strip()
        if text.startswith("(#"):
            _, _, rest = text.partition(")")
            text = rest.strip()
        return text

    @property
    def reason(self) -> str:
        """Short human text for a failed message, e.g. ``131047: Re-engagement message — …``."""
        if self.code is not None:
            head = str(self.code)
        elif self.http_status is not None:
            head = f"HTTP {self.http_status}"
        else:
            head = "network"
        text = f"{head}: {self.title or 'error'}"
        if self.details and self.details.strip() not in self.title:
            text = f"{text} — {self.details.strip()}"
        if len(text) > _REASON_LIMIT:
            text = text[: _REASON_LIMIT - 1].rstrip() + "…"
        return text

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(http_status={self.http_status!r}, code={self.code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields: without this a pickled error (multiprocessing,
        # logging queues) could not be rebuilt.
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "http_status": self.http_status,
            "code": self.code,
            "subcode": self.subcode,
            "error_type": self.error_type,
            "details": self.details,
            "fbtrace_id": self.fbtrace_id,
            "retry_after": self.retry_after,
            "maybe_sent": self.maybe_sent,
        }


def _rebuild(cls: type[GraphError], message: str, fields: dict[str, Any]) -> GraphError:
    return cls(message, **fields)


class RetryLater(GraphError):
    """Temporary: send the same payload again after a backoff (at least ``retry_after``)."""

    retryable = True


class RecipientRateLimited(RetryLater):
    """Pair rate limit (131056): too many messages to this one recipient; others may go on."""


class PermanentError(GraphError):
    """This message can never be sent as it is: record the reason and do not resend."""


class AuthError(GraphError):
    """The account cannot send at all (token, permission, registration, billing, policy).

    Every further request fails the same way: stop sending and alert the operator.
    """


# Graph codes, looked up in Meta's WhatsApp Cloud API error-code reference and the
# Graph API error-handling guide. Build on codes, not on titles: Meta says titles change.

RETRY_CODES: Final[frozenset[int]] = frozenset(
    {
        1,  # API Unknown: invalid request or possible server error; check the status page
        2,  # API Service: temporary, due to downtime or overload
        4,  # API Too Many Calls: the app reached its Graph API call rate limit
        17,  # API User Too Many Calls: the user's Graph API call rate limit
        341,  # Application limit reached: temporary Graph API throttle
        613,  # Calls to this API have exceeded the rate limit
        80007,  # Rate limit issues: the WhatsApp Business Account reached its rate limit
        130429,  # Rate limit hit: Cloud API message throughput (80 mps by default) reached
        131000,  # Something went wrong: message failed for an unknown reason; try again
        131016,  # Service unavailable: a service is temporarily unavailable
        131048,  # Spam rate limit hit: sends from this number are restricted for quality
        131057,  # Account in maintenance mode, e.g. during a throughput upgrade
        131064,  # Messaging limit for template classification violations; lifted later
        133004,  # Server temporarily unavailable
    }
)

RECIPIENT_RATE_CODES: Final[frozenset[int]] = frozenset(
    {
        131056,  # Pair rate limit hit: too many messages to the same recipient too fast
    }
)

PERMANENT_CODES: Final[frozenset[int]] = frozenset(
    {
        100,  # Invalid parameter: unsupported or misspelled parameter, or too long a value
        130403,  # The business has blocked this user; unblock before sending again
        130472,  # Not sent as part of Meta's marketing message experiment
        130497,  # The account may not message users in the recipient's country
        131008,  # Required parameter is missing
        131009,  # Parameter value is not valid
        131021,  # Recipient cannot be sender: sender and recipient number are the same
        131026,  # Message undeliverable: not a WhatsApp number, old app, terms not accepted
        131047,  # Re-engagement message: more than 24 hours since the recipient last replied
        131049,  # Not delivered to maintain healthy ecosystem engagement (per-user limit)
        131050,  # The recipient stopped marketing messages from this business
        131051,  # Unsupported message type
        131052,  # Media download error: the user's media could not be downloaded
        131053,  # Media upload error: the media could not be uploaded (type, size)
        131063,  # Marketing templates are disabled for this Cloud API configuration
        132000,  # Template param count mismatch
        132001,  # Template does not exist in this language, or is not approved
        132005,  # Template hydrated text too long
        132007,  # Template format character policy violated
        132012,  # Template parameter format mismatch
        132015,  # Template is paused for low quality
        132016,  # Template is disabled after too many pauses
        132068,  # Flow is blocked
        132069,  # Flow is throttled: 10 messages with it already sent this hour
        135000,  # Generic user error: unknown error with the request parameters
    }
)
# Template errors not listed above (Meta adds them) are permanent too.
_TEMPLATE_CODES: Final = range(132000, 133000)

AUTH_CODES: Final[frozenset[int]] = frozenset(
    {
        0,  # AuthException: the app user could not be authenticated; get a new token
        3,  # API Method: capability or permission issue
        10,  # Permission denied: permission not granted or removed
        33,  # Parameter value is not valid: the business phone number was deleted
        190,  # Access token has expired or is invalid
        368,  # Temporarily blocked for policy violations: the account is restricted
        131005,  # Access denied: permission not granted or removed
        131031,  # Business account locked or restricted (policy, or data not verified)
        131037,  # The 555 business number has no approved display name
        131042,  # Business eligibility payment issue: billing is not set up right
        131045,  # Incorrect certificate: phone number registration error
        133010,  # The business phone number is not registered on the platform
    }
)
# 200-299: API permission errors (permission not granted or removed).
_PERMISSION_CODES: Final = range(200, 300)

# Least wait for a code when no Retry-After header came.
_CODE_RETRY_AFTER: Final[Mapping[int, float]] = {
    131056: 6.0,  # Meta's pair rate: one message every 6 seconds to the same user
    131057: 60.0,  # a throughput upgrade keeps the account in maintenance for about a minute
    131048: 3600.0,  # quality restriction: retrying within minutes only fails again
    131064: 3600.0,  # enforcement period: lifted after hours, not seconds
}


def _kind_of_code(code: int) -> type[GraphError] | None:
    if code in RECIPIENT_RATE_CODES:
        return RecipientRateLimited
    if code in RETRY_CODES:
        return RetryLater
    if code in AUTH_CODES or code in _PERMISSION_CODES:
        return AuthError
    if code in PERMANENT_CODES or code in _TEMPLATE_CODES:
        return PermanentError
    return None


def _kind_of_status(http_status: int) -> type[GraphError]:
    if http_status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.REQUEST_TIMEOUT):
        return RetryLater
    if http_status >= 500:
        return RetryLater
    if http_status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return AuthError
    # Other 4xx, and 1xx/3xx (which this client never follows), will not change on resend.
    return PermanentError


def _error_object(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Meta's ``error`` object from a body, or None when the body is not Graph JSON."""
    data: object = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            return None
    if not isinstance(data, Mapping):
        return None
    error = data.get("error")
    return error if isinstance(error, Mapping) else None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    An HTTP date is measured from ``now`` (the clock when not given); a date in the
    past gives 0. Anything unreadable gives None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now if now is not None else datetime.now(UTC)
        return max(0.0, (when - reference).total_seconds())
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


def classify(
    http_status: int,
    body: bytes | str | Mapping[str, Any] | None,
    retry_after_header: str | None = None,
    *,
    now: datetime | None = None,
) -> GraphError:
    """Build the right `GraphError` subclass for a non-success Graph API answer.

    The Graph code decides when it is known; otherwise the HTTP status does: 429, 408
    and 5xx retry later, 401/403 are auth errors, any other 4xx is permanent. A body
    that is not Graph JSON (an HTML error page) still classifies by status.
    """
    error = _error_object(body)
    code = subcode = None
    message = error_type = details = fbtrace_id = None
    if error is not None:
        code = _as_int(error.get("code"))
        subcode = _as_int(error.get("error_subcode"))
        message = _as_text(error.get("message"))
        error_type = _as_text(error.get("type"))
        fbtrace_id = _as_text(error.get("fbtrace_id"))
        error_data = error.get("error_data")
        if isinstance(error_data, Mapping):
            details = _as_text(error_data.get("details"))

    # A code we do not know (Meta adds them) falls back to the status: a 5xx stays
    # temporary, a 4xx permanent.
    kind = (_kind_of_code(code) if code is not None else None) or _kind_of_status(http_status)

    if message is None:
        try:
            message = HTTPStatus(http_status).phrase
        except ValueError:
            message = "Unexpected HTTP status"

    retry_after = parse_retry_after(retry_after_header, now=now)
    if retry_after is None and code is not None and issubclass(kind, RetryLater):
        retry_after = _CODE_RETRY_AFTER.get(code)

    return kind(
        message,
        http_status=http_status,
        code=code,
        subcode=subcode,
        error_type=error_type,
        details=details,
        fbtrace_id=fbtrace_id,
        retry_after=retry_after,
    )
