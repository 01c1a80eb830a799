"""Fetching one customer's media from the Graph API into the media store.

`GET /{version}/{media-id}` gives a download URL (valid about five minutes), the MIME type,
the size and the SHA-256 in hex; the URL then needs the same bearer token. The bytes stream
straight into the store (`MediaStore.put`), never whole into memory. Each way this can end is
its own exception, for the fetcher (`bot.media.fetcher`) to record or retry::

    FetchError                 media not stored
    ├── Gone                   Meta has no such media (404, Graph code 100): give up
    ├── Refused                token or permission problems, or a request Meta will never take
    ├── Unavailable            429, 5xx, timeouts, connection errors: retry with backoff
    ├── OverLimit              larger than RECEIVE_LIMITS allows: refused, nothing kept
    └── Mismatch               the bytes are not what Meta's sha256 says: try again a few times

No message of these ever carries the token.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.cookiejar
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from bot.channels.errors import RetryLater
from bot.media.store import CHUNK, ChecksumMismatch, MediaStore, StoredFile, TooLarge
from bot.whatsapp.errors import classify

__all__ = [
    "FetchError",
    "Fetched",
    "Gone",
    "MediaClient",
    "MediaInfo",
    "Mismatch",
    "OverLimit",
    "Refused",
    "Unavailable",
    "as_hex_sha256",
    "fetch",
]

log = logging.getLogger("tresen.media")

# A download URL answering these has expired (Meta's last about five minutes): ask for a new one.
EXPIRED_STATUSES: Final = frozenset({401, 403, 404, 410})
# Graph's "Object with ID … does not exist, cannot be loaded due to missing permissions, or
# does not support this operation" comes as code 100, subcode 33.
_MISSING_SUBCODE: Final = 33


class FetchError(Exception):
    """The media was not stored; `str()` is the reason in English, without the token."""


class Gone(FetchError):
    """Meta has no media under this id (any more)."""


class Refused(FetchError):
    """Meta refused the request, and asking again will not change that (token, permission)."""


class Unavailable(FetchError):
    """No answer, or Meta is overloaded or down: try again later (not before `retry_after`)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OverLimit(FetchError):
    """Larger than we keep for this kind; nothing was stored."""


class Mismatch(FetchError):
    """The bytes' SHA-256 is not the one Meta gave; nothing was stored."""


@dataclass(frozen=True)
class MediaInfo:
    """What `GET /{media-id}` says of a media item."""

    id: str
    url: str
    mime_type: str | None
    sha256: str | None  # lowercase hex
    file_size: int | None


@dataclass(frozen=True)
class Fetched:
    """Media stored: the file, and its content type as Meta gave it."""

    stored: StoredFile
    content_type: str


def as_hex_sha256(value: str | None) -> str | None:
    """A SHA-256 as lowercase hex, from hex or from base64 (webhooks have carried both);
    None when it is neither."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    padded = text + "=" * (-len(text) % 4)
    try:
        # Standard or URL-safe alphabet: the two differ only in two characters.
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


class MediaClient:
    """The Graph API's media endpoints for reading: one pooled, thread-safe session.

    ``token`` None talks to a fake Graph API without one (console mode, see bot.media.fetcher).
    It never retries by itself: every failure is raised as a `FetchError` for the caller.
    """

    def __init__(
        self,
        base_url: str,
        version: str,
        token: str | None,
        *,
        timeout: tuple[float, float] = (3.05, 30.0),
        pool_size: int = 16,
        session: requests.Session | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"GRAPH_API_URL must start with https:// or http://, got {base_url!r}")
        self.base = f"{base_url.rstrip('/')}/{version}"
        self.timeout = timeout
        self._token = token
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._session = session

    def __repr__(self) -> str:
        return f"MediaClient({self.base!r})"

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _scrub(self, text: str) -> str:
        # As GraphClient._scrub: Graph has echoed a malformed token back in its messages.
        return text.replace(self._token, "[token]") if self._token else text

    def info(self, media_id: str, phone_number_id: str | None = None) -> MediaInfo:
        """`GET /{version}/{media-id}`: the download URL and what Meta says of the file."""
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        url = f"{self.base}/{quote(media_id, safe='')}"
        response = self._request(url, params=params)
        with response:
            if response.status_code != 200:
                raise self._graph_error(response)
            try:
                answer = response.json()
            except ValueError:
                answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("url"), str):
            raise Unavailable(f"GET media {media_id}: an answer without a url")
        size = answer.get("file_size")
        return MediaInfo(
            id=str(answer.get("id") or media_id),
            url=answer["url"],
            mime_type=answer.get("mime_type") if isinstance(answer.get("mime_type"), str) else None,
            sha256=as_hex_sha256(
                answer.get("sha256") if isinstance(answer.get("sha256"), str) else None
            ),
            file_size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        )

    @contextlib.contextmanager
    def download(self, url: str) -> Iterator[Iterator[bytes]]:
        """The file at a download URL, as chunks read while they are consumed.

        Raises `_Expired` (internal: the caller asks for a new URL) for 401/403/404/410."""
        response = self._request(url, stream=True)
        with response:
            if response.status_code in EXPIRED_STATUSES:
                raise _Expired(response.status_code)
            if response.status_code != 200:
                raise self._graph_error(response)
            yield self._chunks(response)

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_content(CHUNK)
        except requests.RequestException as exc:  # cut off mid-file, or stalled
            raise Unavailable(self._scrub(f"download: {type(exc).__name__}: {exc}")[:300]) from exc

    def _request(self, url: str, **options: Any) -> requests.Response:
        # A redirect is followed (a download host may hand over to another); requests drops
        # the Authorization header when it leads to another host.
        try:
            return self._session.get(url, headers=self._headers(), timeout=self.timeout, **options)
        except requests.RequestException as exc:
            kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
            raise Unavailable(self._scrub(f"{kind}: {type(exc).__name__}: {exc}")[:300]) from exc

    def _graph_error(self, response: requests.Response) -> FetchError:
        body = response.content[:10_000]
        error = classify(response.status_code, body, response.headers.get("Retry-After"))
        reason = error.reason
        if error.code is not None:
            reason = f"HTTP {response.status_code}, {reason}"
        text = self._scrub(reason)[:300]
        if response.status_code == 404 or (
            error.code == 100
            and (error.subcode == _MISSING_SUBCODE or "does not exist" in error.message)
        ):
            return Gone(text)
        if isinstance(error, RetryLater):
            return Unavailable(text, error.retry_after)
        # Token and permission errors (AuthError), and requests Meta calls wrong for good.
        return Refused(text)


class _Expired(FetchError):
    """A download URL no longer valid (or refused)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"download answered HTTP {status}")
        self.status = status


def fetch(
    client: MediaClient,
    store: MediaStore,
    media_id: str,
    *,
    limit: int,
    declared_sha256: str | None = None,
    declared_mime_type: str | None = None,
    phone_number_id: str | None = None,
) -> Fetched:
    """Fetch one media item into `store`, checked against `limit` and Meta's SHA-256.

    An expired download URL is asked for again once, at once. Store errors other than size
    and checksum (the store unreachable) propagate as they are."""
    for attempt in (1, 2):
        info = client.info(media_id, phone_number_id)
        if info.file_size is not None and info.file_size > limit:
            raise OverLimit(f"{info.file_size} bytes, more than the {limit} we keep")
        declared = as_hex_sha256(declared_sha256)
        expect = info.sha256 or declared
        if info.sha256 and declared and info.sha256 != declared:
            # The webhook's and GET's may differ in form only; if they differ in value,
            # GET's is the one the download is meant to match.
            log.warning("media %s: the webhook's sha256 is not GET's; checking GET's", media_id)
        try:
            with client.download(info.url) as chunks:
                stored = store.put(chunks, limit=limit, expect=expect)
        except _Expired as exc:
            if attempt == 1:
                log.info("media %s: %s; asking for a new URL", media_id, exc)
                continue
            if exc.status in (401, 403):
                raise Refused(f"download refused twice, with a fresh URL: {exc}") from exc
            raise Gone(f"download gone with a fresh URL: {exc}") from exc
        except TooLarge as exc:
            raise OverLimit(f"more than the {limit} bytes we keep") from exc
        except ChecksumMismatch as exc:
            raise Mismatch(str(exc)) from exc
        content_type = info.mime_type or declared_mime_type or "application/octet-stream"
        return Fetched(stored, content_type[:255])
    raise AssertionError("unreachable")  # pragma: no cover
