"""Graph API errors: `classify` turns a refusal of the Cloud API into a channel send error.

Meta's codes decide the class (see `bot.channels.errors` for the tree and what each asks of the
sender): throughput and temporary codes retry later, the pair rate limit waits for the one
recipient, token and account codes stop sending, parameter and template codes are permanent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final

from bot.channels.errors import (
    AuthError,
    PermanentError,
    RecipientRateLimited,
    RetryLater,
    SendError,
)

__all__ = ["classify", "parse_retry_after"]

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


def _kind_of_code(code: int) -> type[SendError] | None:
    if code in RECIPIENT_RATE_CODES:
        return RecipientRateLimited
    if code in RETRY_CODES:
        return RetryLater
    if code in AUTH_CODES or code in _PERMISSION_CODES:
        return AuthError
    if code in PERMANENT_CODES or code in _TEMPLATE_CODES:
        return PermanentError
    return None


def _kind_of_status(http_status: int) -> type[SendError]:
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
) -> SendError:
    """Build the right `SendError` subclass for a non-success Graph API answer.

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
        trace_id=fbtrace_id,
        retry_after=retry_after,
    )
