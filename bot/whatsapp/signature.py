"""Meta's webhook signature: X-Hub-Signature-256 is "sha256=" + hex HMAC-SHA256 of the raw body.

Pure functions over bytes; the web layer passes the body exactly as received, since Meta signs
its own serialisation (re-encoding parsed JSON would not reproduce it).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "sign", "verify"]

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DIGEST_LENGTH = 64  # SHA-256 is 32 bytes, 64 hex digits


def sign(body: bytes, secret: str) -> str:
    """The header value Meta sends for `body` signed with the app secret `secret`."""
    if not secret:
        raise ValueError("an empty app secret signs nothing")
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Whether `header` is a valid signature of `body` under `secret`. Never raises.

    False for a missing header, another algorithm ("sha1=..."), a malformed digest (wrong
    length, not hex, not ASCII), an empty secret, or a digest that does not match. The
    comparison is constant-time.
    """
    if not isinstance(header, str) or not secret or not isinstance(secret, str):
        return False
    if not isinstance(body, bytes | bytearray | memoryview):
        return False
    if not header.isascii() or not header.startswith(_PREFIX):
        return False
    given = header[len(_PREFIX) :]
    if len(given) != _DIGEST_LENGTH or not _HEX_DIGITS.issuperset(given):
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    # Meta sends lowercase hex; accepting uppercase costs nothing and is still exact.
    return hmac.compare_digest(expected, given.lower())
