"""One webhook POST, to the address checked and no other.

The check happens where the connection is made: the host is looked up once, every address it
resolves to is checked (bot.webhooks_out.guard), and the socket is connected to a checked
address, the URL's host kept for the Host header and TLS. So a name that resolves to a public
address at one moment and a private one the next (DNS rebinding) reaches no private address.
Redirects are never followed, environment proxies never used, cookies never kept.
"""

from __future__ import annotations

import http.cookiejar
import socket
from typing import Any, Final

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from bot.webhooks_out.events import Attempt
from bot.webhooks_out.guard import Allowed, Refusal, first_refusal, host_of, url_problem

CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 10.0
# Of the receiver's answer only this much is read: its status is all that counts.
BODY_MAX: Final = 64 * 1024


class AddressRefused(Exception):
    """The host resolved to an address webhooks may not reach; nothing was connected to."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def _guarded(base: type[HTTPConnection], allowed: Allowed) -> type[HTTPConnection]:
    class Guarded(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            name: str = self._dns_host  # type: ignore[has-type]
            try:
                infos = socket.getaddrinfo(name, self.port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            refused = first_refusal(addresses, allowed, self.host)
            if refused is not None:
                raise AddressRefused(refused)
            failed: Exception | None = None
            for address in addresses:
                # urllib3 connects to `_dns_host`: the checked address, not the name again.
                self._dns_host = address
                try:
                    sock: socket.socket = super()._new_conn()
                except NewConnectionError as exc:
                    failed = exc
                    continue
                finally:
                    self._dns_host = name
                return sock
            assert failed is not None
            raise failed

    return Guarded


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through the address guard."""

    def __init__(self, allowed: Allowed, **kwargs: Any) -> None:
        self.allowed = allowed
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type(
                "GuardedHTTPPool",
                (HTTPConnectionPool,),
                {"ConnectionCls": _guarded(HTTPConnection, self.allowed)},
            ),
            "https": type(
                "GuardedHTTPSPool",
                (HTTPSConnectionPool,),
                {"ConnectionCls": _guarded(HTTPSConnection, self.allowed)},
            ),
        }


def check_host(url: str, allowed: Allowed) -> Refusal | None:
    """Look the URL's host up now and check what it resolves to (the admin, on save); raises
    OSError when the name cannot be found. Delivery checks again at each connection."""
    host, port = host_of(url)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return first_refusal([str(info[4][0]) for info in infos], allowed, host)


class Poster:
    """POSTs signed bodies: one HTTP session, kept between deliveries."""

    def __init__(self, allowed: Allowed) -> None:
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment: it would connect for us
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = GuardedAdapter(allowed, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[Attempt, bool]:
        """The outcome, and whether it is final (no retry can change it: the URL or the
        address is refused)."""
        problem = url_problem(url)
        if problem is not None:
            return Attempt(False, error=f"URL refused: {problem}"), True
        try:
            response = self.session.post(
                url,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
        except AddressRefused as exc:
            return Attempt(False, error=str(exc)), True
        except requests.Timeout:
            return Attempt(False, error="no answer in time"), False
        except requests.RequestException as exc:
            return Attempt(False, error=f"cannot connect: {_reason(exc)}"), False
        try:
            response.raw.read(BODY_MAX, decode_content=False)
        except Exception:  # noqa: S110 (the answer's body does not count, its status does)
            pass
        finally:
            response.close()
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(True, status), False
        if 300 <= status < 400:
            return Attempt(False, status, error=f"redirect refused (HTTP {status})"), False
        return Attempt(False, status, retry_after=_retry_after(response.headers)), False


def _reason(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    return text.rsplit(": ", 1)[-1][:200] or type(exc).__name__


def _retry_after(headers: Any) -> float | None:
    """The receiver's Retry-After in seconds (its date form is taken as no wish)."""
    value = str(headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None
