"""The Graph API client: posts stored payloads to the WhatsApp Cloud API's messages endpoint.

It is WhatsApp's `bot.channels.transport.Transport`; every refusal comes back classified as a
`bot.channels.errors.SendError` for the dispatcher to decide on.
"""

from __future__ import annotations

import http.cookiejar
import logging
import ssl
from collections.abc import Iterator
from typing import Any, Self

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

from bot.channels.errors import PermanentError, RetryLater, SendError
from bot.whatsapp.errors import classify
from bot.whatsapp.payloads import Payload, describe, is_read, read_payload

__all__ = ["GraphClient"]

logger = logging.getLogger("tresen.outbound")
# The phone number field that holds the business portfolio's messaging limit tier.
LIMIT_FIELD = "whatsapp_business_manager_messaging_limit"


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
        self.phone_url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}"
        self.messages_url = f"{self.phone_url}/messages"
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
        errors, and the classified `SendError` on any refusal.
        """
        answer = self._post(payload)
        if is_read(payload):
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

    def messaging_limit(self) -> str:
        """The business portfolio's messaging limit tier (`TIER_2K`, `TIER_UNLIMITED` …), read
        as the phone number's `whatsapp_business_manager_messaging_limit` field (Meta's
        replacement of the deprecated `messaging_limit_tier`). Raises the classified
        `SendError` on a refusal, `RetryLater` when the API cannot be reached."""
        try:
            response = self._session.get(
                self.phone_url,
                params={"fields": LIMIT_FIELD},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise RetryLater(self._scrub(f"{type(exc).__name__}: {exc}")[:300]) from exc
        if not 200 <= response.status_code < 300:
            raise self._scrubbed(classify(response.status_code, response.content))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        tier = answer.get(LIMIT_FIELD) if isinstance(answer, dict) else None
        if not isinstance(tier, str) or not tier:
            raise PermanentError(f"no {LIMIT_FIELD} in the answer", http_status=200)
        return tier

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

    def _scrubbed(self, error: SendError) -> SendError:
        error.message = self._scrub(error.message)
        error.args = (error.message,)
        if error.details is not None:
            error.details = self._scrub(error.details)
        return error
