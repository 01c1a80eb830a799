"""Why a send failed, as the class of what the sender should do next; the same for every channel.

The class says what to do; the fields say why (the channel's code, details and trace id)::

    SendError                      anything the channel or the way to it refused
    ├── RetryLater                 HTTP 429/5xx, timeouts, connection errors, throughput
    │   │                          and temporary codes: back off, then send again;
    │   │                          with ``maybe_sent`` (no answer to a request that may
    │   │                          have reached the channel) sending again may duplicate it
    │   └── RecipientRateLimited   too many messages to this one recipient: wait for this
    │                              recipient only, others may go on
    ├── PermanentError             bad number, outside the service window, template or
    │                              parameter errors: record the reason, never resend
    └── AuthError                  token, permission or account problems: every further
                                   send fails the same way; stop sending, alert the operator

Each channel turns its own answers into these (WhatsApp's in `bot.whatsapp.errors.classify`);
`SendError.reason` is the short text to store on a failed message.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

__all__ = [
    "AuthError",
    "PermanentError",
    "RecipientRateLimited",
    "RetryLater",
    "SendError",
]

# Longest reason stored on a message; a channel's details can run to several sentences.
_REASON_LIMIT: Final = 300


class SendError(Exception):
    """A request the channel, or the network on the way to it, did not accept.

    ``http_status`` is None when no answer came (timeout, connection error). ``code``,
    ``subcode``, ``error_type``, ``details`` and ``trace_id`` are what the channel said, as
    far as it says it (for WhatsApp, the Graph API's error object; ``trace_id`` its
    ``trace_id``). ``retry_after`` is the least number of seconds to wait before the next
    try: the ``Retry-After`` header, else what the channel documents for the code, else None.
    ``maybe_sent`` is true when the request may have reached the channel before it failed
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
        trace_id: str | None = None,
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
        self.trace_id = trace_id
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent

    @property
    def title(self) -> str:
        """The channel's title for the code: the message without a ``(#code)`` prefix (as
        the Graph API writes it)."""
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
            "trace_id": self.trace_id,
            "retry_after": self.retry_after,
            "maybe_sent": self.maybe_sent,
        }


def _rebuild(cls: type[SendError], message: str, fields: dict[str, Any]) -> SendError:
    return cls(message, **fields)


class RetryLater(SendError):
    """Temporary: send the same payload again after a backoff (at least ``retry_after``)."""

    retryable = True


class RecipientRateLimited(RetryLater):
    """Too many messages to this one recipient (WhatsApp's pair rate limit, 131056); others
    may go on."""


class PermanentError(SendError):
    """This message can never be sent as it is: record the reason and do not resend."""


class AuthError(SendError):
    """The account cannot send at all (token, permission, registration, billing, policy).

    Every further request fails the same way: stop sending and alert the operator.
    """
