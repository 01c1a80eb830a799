"""X-Hub-Signature-256: signing and checking the raw body of a webhook post."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bot.whatsapp.signature import sign, verify

SECRET = "6c2b9a4f0e1d8c7b5a3f2e1d0c9b8a7f"
BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}],'
    b'"note":"\\u00e4\\u00f6\\u00e5 Gr\\u00fc\\u00dfe"}'
)


def test_sign_is_sha256_hmac_of_the_body_in_lowercase_hex() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET) == f"sha256={expected}"
    assert sign(BODY, SECRET) == sign(BODY, SECRET).lower()


def test_known_vector() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_a_valid_signature_verifies() -> None:
    assert verify(BODY, sign(BODY, SECRET), SECRET) is True


def test_uppercase_hex_of_the_right_digest_verifies() -> None:
    header = "sha256=" + sign(BODY, SECRET).removeprefix("sha256=").upper()
    assert verify(BODY, header, SECRET) is True


def test_signed_with_another_secret_is_refused() -> None:
    assert verify(BODY, sign(BODY, "someone-elses-secret"), SECRET) is False


def test_missing_header_is_refused() -> None:
    assert verify(BODY, None, SECRET) is False


@pytest.mark.parametrize(
    "tampered",
    [
        BODY.replace(b"102290129340398", b"102290129340399"),
        BODY + b" ",
        BODY[:-1],
        b"",
    ],
    ids=["changed-id", "trailing-space", "truncated", "empty"],
)
def test_a_tampered_body_is_refused(tampered: bytes) -> None:
    assert verify(tampered, sign(BODY, SECRET), SECRET) is False


def test_sha1_header_is_refused_even_when_it_is_right() -> None:
    sha1 = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert verify(BODY, f"sha1={sha1}", SECRET) is False


GOOD_HEX = sign(BODY, SECRET).removeprefix("sha256=")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        GOOD_HEX,  # no algorithm prefix
        f"SHA256={GOOD_HEX}",
        f"sha256 ={GOOD_HEX}",
        f" sha256={GOOD_HEX}",
        f"sha256={GOOD_HEX} ",
        f"sha256={GOOD_HEX[:-1]}",  # one digit short
        f"sha256={GOOD_HEX}0",  # one digit long
        f"sha256={GOOD_HEX[:-1]}g",  # not hex
        f"sha256={GOOD_HEX[:-2]}0x",
        f"sha512={GOOD_HEX}{GOOD_HEX}",
        f"sha256={GOOD_HEX},sha256={GOOD_HEX}",
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    assert verify(BODY, header, SECRET) is False


@pytest.mark.parametrize(
    "header",
    [
        f"sha256={GOOD_HEX[:-1]}é",
        f"sha256={GOOD_HEX[:-1]}٣",  # an Arabic-Indic digit
        f"sha256={GOOD_HEX[:-1]}\uff10",  # a fullwidth zero
        f"sha256\u200b={GOOD_HEX}",  # a zero-width space
        "sha256=" + "ä" * 64,
    ],
)
def test_non_ascii_headers_are_refused_without_raising(header: str) -> None:
    assert verify(BODY, header, SECRET) is False


def test_an_empty_secret_verifies_nothing() -> None:
    # With an empty key anyone could compute the "signature"; refuse rather than accept.
    forged = "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest()
    assert verify(BODY, forged, "") is False
    with pytest.raises(ValueError, match="empty app secret"):
        sign(BODY, "")


def test_a_non_ascii_secret_is_used_as_utf8() -> None:
    secret = "geheim-äöü"
    expected = hmac.new(secret.encode("utf-8"), BODY, hashlib.sha256).hexdigest()
    assert verify(BODY, f"sha256={expected}", secret) is True


def test_verify_never_raises_on_wrong_argument_types() -> None:
    # Headers come from the outside; a framework might hand over bytes or something odd.
    assert verify(BODY, sign(BODY, SECRET).encode(), SECRET) is False  # type: ignore[arg-type]
    assert verify("not bytes", sign(BODY, SECRET), SECRET) is False  # type: ignore[arg-type]
