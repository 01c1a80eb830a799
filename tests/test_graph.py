"""The Graph API client at its HTTP boundary: exact requests, classified errors, backoff."""

from __future__ import annotations

import logging
import pickle
import random
import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from responses import matchers
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError

from bot.channels.console import ConsoleTransport
from bot.channels.errors import (
    AuthError,
    PermanentError,
    RecipientRateLimited,
    RetryLater,
    SendError,
)
from bot.channels.transport import Transport
from bot.outbound.backoff import MAX_RETRY_AFTER, delay
from bot.whatsapp.errors import classify, parse_retry_after
from bot.whatsapp.graph import GraphClient
from bot.whatsapp.payloads import (
    body_parameters,
    buttons_payload,
    describe,
    list_payload,
    media_payload,
    read_payload,
    template_payload,
    text_payload,
)
from tests.fakegraph import FakeGraph, Reply

TOKEN = "EAAJtestTOKENvalue0123456789secret"
BASE = "https://graph.facebook.com"
URL = f"{BASE}/v23.0/106540352242922/messages"
TO = "4915112345678"
WAMID = "wamid.HBgNNDkxNTExMjM0NTY3OBUCABEYEjA3RjM5QzE2QjI1NzNCQTk3RQA="
SUCCESS = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": TO, "wa_id": TO}],
    "messages": [{"id": WAMID}],
}
AUTH_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def client() -> Iterator[GraphClient]:
    with GraphClient(BASE, "v23.0", "106540352242922", TOKEN) as graph:
        yield graph


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def _expect(rsps: responses.RequestsMock, body: dict[str, Any], answer: dict[str, Any]) -> None:
    rsps.post(
        URL,
        json=answer,
        match=[matchers.header_matcher(AUTH_HEADERS), matchers.json_params_matcher(body)],
    )


def _meta_error(
    code: int, message: str, details: str | None = None, subcode: int | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "Az8or2yhqkZfEZ-_4Qn_Bam"
    return {"error": error}


# --- payload builders: the exact request each one makes ----------------------------------

ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO}

BUILDER_CASES: list[tuple[str, Callable[[], dict[str, Any]], dict[str, Any]]] = [
    (
        "text",
        lambda: text_payload(TO, "Hallo, wir haben geöffnet."),
        {
            **ENVELOPE,
            "type": "text",
            "text": {"body": "Hallo, wir haben geöffnet.", "preview_url": False},
        },
    ),
    (
        "text reply with preview",
        lambda: text_payload(TO, "https://example.org", reply_to="wamid.IN", preview_url=True),
        {
            **ENVELOPE,
            "type": "text",
            "context": {"message_id": "wamid.IN"},
            "text": {"body": "https://example.org", "preview_url": True},
        },
    ),
    (
        "text to a business-scoped user id",
        lambda: text_payload("US.13491208655302741918", "Hi"),
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "recipient": "US.13491208655302741918",
            "type": "text",
            "text": {"body": "Hi", "preview_url": False},
        },
    ),
    (
        "template without parameters",
        lambda: template_payload(TO, "hello_world", "en_US"),
        {
            **ENVELOPE,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        },
    ),
    (
        "template with body parameters",
        lambda: template_payload(TO, "order_ready", "de", body_parameters(["Anna", "#4711"])),
        {
            **ENVELOPE,
            "type": "template",
            "template": {
                "name": "order_ready",
                "language": {"code": "de"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Anna"},
                            {"type": "text", "text": "#4711"},
                        ],
                    }
                ],
            },
        },
    ),
    (
        "image by id with caption",
        lambda: media_payload(TO, "image", media_id="1037543291543636", caption="Strauß"),
        {**ENVELOPE, "type": "image", "image": {"id": "1037543291543636", "caption": "Strauß"}},
    ),
    (
        "document by link with filename",
        lambda: media_payload(
            TO, "document", link="https://example.org/menu.pdf", filename="menu.pdf"
        ),
        {
            **ENVELOPE,
            "type": "document",
            "document": {"link": "https://example.org/menu.pdf", "filename": "menu.pdf"},
        },
    ),
    (
        "sticker",
        lambda: media_payload(TO, "sticker", media_id="798882015472548"),
        {**ENVELOPE, "type": "sticker", "sticker": {"id": "798882015472548"}},
    ),
    (
        "reply buttons",
        lambda: buttons_payload(
            TO,
            "Möchten Sie einen Termin?",
            [("yes", "Ja"), ("no", "Nein")],
            header="Termin",
            footer="Blumen Müller",
        ),
        {
            **ENVELOPE,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "header": {"type": "text", "text": "Termin"},
                "body": {"text": "Möchten Sie einen Termin?"},
                "footer": {"text": "Blumen Müller"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "yes", "title": "Ja"}},
                        {"type": "reply", "reply": {"id": "no", "title": "Nein"}},
                    ]
                },
            },
        },
    ),
    (
        "list",
        lambda: list_payload(
            TO,
            "Was dürfen wir binden?",
            "Auswählen",
            [
                ("Sträuße", [("rose", "Rosen", "rot, 12 Stück"), ("tulip", "Tulpen", None)]),
                ("Gestecke", [("wreath", "Kranz", None)]),
            ],
        ),
        {
            **ENVELOPE,
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": "Was dürfen wir binden?"},
                "action": {
                    "button": "Auswählen",
                    "sections": [
                        {
                            "title": "Sträuße",
                            "rows": [
                                {"id": "rose", "title": "Rosen", "description": "rot, 12 Stück"},
                                {"id": "tulip", "title": "Tulpen"},
                            ],
                        },
                        {"title": "Gestecke", "rows": [{"id": "wreath", "title": "Kranz"}]},
                    ],
                },
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"), [c[1:] for c in BUILDER_CASES], ids=[c[0] for c in BUILDER_CASES]
)
def test_send_posts_the_exact_cloud_api_request(
    client: GraphClient,
    mocked: responses.RequestsMock,
    build: Callable[[], dict[str, Any]],
    expected: dict[str, Any],
) -> None:
    _expect(mocked, expected, SUCCESS)

    assert client.send(build()) == WAMID

    assert len(mocked.calls) == 1
    assert mocked.calls[0].request.url == URL


@pytest.mark.parametrize("typing", [False, True])
def test_mark_read_posts_the_receipt(
    client: GraphClient, mocked: responses.RequestsMock, typing: bool
) -> None:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    _expect(mocked, body, {"success": True})

    client.mark_read(WAMID, typing=typing)


def test_a_read_receipt_sent_as_a_payload_returns_the_marked_id(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    _expect(mocked, read_payload(WAMID), {"success": True})

    assert client.send(read_payload(WAMID)) == WAMID


def test_a_receipt_not_acknowledged_is_an_error(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, json={"success": False})

    with pytest.raises(PermanentError, match="not acknowledged"):
        client.mark_read(WAMID)


def test_a_success_without_a_message_id_is_not_taken_for_sent(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, json={"messaging_product": "whatsapp", "messages": []})

    with pytest.raises(PermanentError, match="without a message id"):
        client.send(text_payload(TO, "Hallo"))


def test_redirects_are_not_followed(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(URL, status=302, headers={"Location": "https://elsewhere.example/"})

    with pytest.raises(PermanentError) as caught:
        client.send(text_payload(TO, "Hallo"))

    assert caught.value.http_status == 302
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: text_payload("not-a-number", "x"), "neither a wa_id"),
        (lambda: text_payload(TO, ""), "text body must not be empty"),
        (lambda: text_payload(TO, "x" * 4097), "at most 4096"),
        (lambda: template_payload(TO, "", "de"), "template name"),
        (lambda: body_parameters(["Anna", " "]), "template parameter 2"),
        (lambda: media_payload(TO, "gif", media_id="1"), "media kind"),
        (lambda: media_payload(TO, "image"), "exactly one of"),
        (lambda: media_payload(TO, "image", media_id="1", link="https://x"), "exactly one of"),
        (lambda: media_payload(TO, "audio", media_id="1", caption="x"), "caption"),
        (lambda: media_payload(TO, "image", media_id="1", filename="a.jpg"), "filename"),
        (lambda: buttons_payload(TO, "b", []), "1 to 3 buttons"),
        (
            lambda: buttons_payload(TO, "b", [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")]),
            "1 to 3",
        ),
        (lambda: buttons_payload(TO, "b", [("a", "Einundzwanzig Zeichen")]), "at most 20"),
        (lambda: buttons_payload(TO, "b", [("a", "A"), ("a", "B")]), "unique"),
        (lambda: buttons_payload(TO, "b", [("a", "A")], header="h" * 61), "header"),
        (
            lambda: list_payload(TO, "b", "Ein sehr langer Knopftext", [("s", [("r", "R", None)])]),
            "list button",
        ),
        (lambda: list_payload(TO, "b", "Menü", []), "1 to 10 sections"),
        (
            lambda: list_payload(
                TO, "b", "Menü", [("s", [(f"r{i}", "R", None) for i in range(11)])]
            ),
            "1 to 10 rows",
        ),
        (
            lambda: list_payload(
                TO, "b", "Menü", [("", [("a", "A", None)]), ("", [("b", "B", None)])]
            ),
            "section title",
        ),
        (lambda: list_payload(TO, "b", "Menü", [("s", [("r", "R", "d" * 73)])]), "row description"),
        (lambda: read_payload(""), "message_id"),
    ],
)
def test_builders_refuse_what_meta_would_refuse(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_single_untitled_list_section_omits_the_title() -> None:
    payload = list_payload(TO, "b", "Menü", [("", [("a", "A", None)])])

    assert payload["interactive"]["action"]["sections"] == [{"rows": [{"id": "a", "title": "A"}]}]


def test_no_body_parameters_means_no_components() -> None:
    assert body_parameters([]) == []
    assert (
        "components"
        not in template_payload(TO, "hello_world", "en_US", body_parameters([]))["template"]
    )


# --- errors: real Meta answers, classified ----------------------------------------------

ERROR_CASES: list[
    tuple[str, int, Any, dict[str, str], type[SendError], int | None, float | None, str]
] = [
    (
        "131047 outside the 24-hour window",
        400,
        _meta_error(
            131047,
            "(#131047) Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer "
            "last replied to this number.",
            2494010,
        ),
        {},
        PermanentError,
        131047,
        None,
        "131047: Re-engagement message — Message failed to send because more than 24 hours",
    ),
    (
        "131026 undeliverable",
        400,
        _meta_error(131026, "(#131026) Message Undeliverable", "Message Undeliverable."),
        {},
        PermanentError,
        131026,
        None,
        "131026: Message Undeliverable",
    ),
    (
        "131056 pair rate limit",
        400,
        _meta_error(
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone "
            "number to the same phone number in a short period of time.",
        ),
        {},
        RecipientRateLimited,
        131056,
        6.0,
        "131056: (Business Account, Consumer Account) pair rate limit hit — Message failed",
    ),
    (
        "130429 throughput",
        400,
        _meta_error(
            130429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
            2494055,
        ),
        {},
        RetryLater,
        130429,
        None,
        "130429: Rate limit hit — Cloud API message throughput has been reached.",
    ),
    (
        "132001 template missing",
        404,
        _meta_error(
            132001,
            "(#132001) Template name does not exist in the translation",
            "template name (order_ready) does not exist in de",
        ),
        {},
        PermanentError,
        132001,
        None,
        "132001: Template name does not exist in the translation — template name (order_ready)",
    ),
    (
        "100 invalid parameter",
        400,
        _meta_error(
            100,
            "(#100) Invalid parameter",
            "Param text['body'] must be at most 4096 characters long.",
        ),
        {},
        PermanentError,
        100,
        None,
        "100: Invalid parameter — Param text['body']",
    ),
    (
        "190 expired token",
        401,
        _meta_error(
            190,
            "Error validating access token: Session has expired on Friday, 10-Oct-25 04:00:00 PDT.",
            subcode=463,
        ),
        {},
        AuthError,
        190,
        None,
        "190: Error validating access token: Session has expired",
    ),
    (
        "500 with an HTML page",
        500,
        "<html><body><h1>500 Internal Server Error</h1></body></html>",
        {"Content-Type": "text/html"},
        RetryLater,
        None,
        None,
        "HTTP 500: Internal Server Error",
    ),
    (
        "503 with Retry-After",
        503,
        "Service Unavailable",
        {"Retry-After": "120"},
        RetryLater,
        None,
        120.0,
        "HTTP 503: Service Unavailable",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code", "retry_after", "reason"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_refusals_raise_the_classified_error(
    client: GraphClient,
    mocked: responses.RequestsMock,
    status: int,
    body: Any,
    headers: dict[str, str],
    kind: type[SendError],
    code: int | None,
    retry_after: float | None,
    reason: str,
) -> None:
    if isinstance(body, dict):
        mocked.post(URL, status=status, json=body, headers=headers)
    else:
        mocked.post(URL, status=status, body=body, headers=headers)

    with pytest.raises(SendError) as caught:
        client.send(text_payload(TO, "Hallo"))

    error = caught.value
    assert type(error) is kind
    assert error.http_status == status
    assert error.code == code
    assert error.retry_after == retry_after
    assert error.reason.startswith(reason)
    assert str(error) == error.reason
    assert error.maybe_sent is False
    if isinstance(body, dict):
        assert error.trace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"


def test_error_fields_carry_meta_json(client: GraphClient, mocked: responses.RequestsMock) -> None:
    mocked.post(
        URL,
        status=400,
        json=_meta_error(
            130429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
            2494055,
        ),
    )

    with pytest.raises(RetryLater) as caught:
        client.send(text_payload(TO, "Hallo"))

    error = caught.value
    assert (error.code, error.subcode, error.error_type) == (130429, 2494055, "OAuthException")
    assert error.message == "(#130429) Rate limit hit"
    assert error.title == "Rate limit hit"
    assert error.details == "Cloud API message throughput has been reached."
    assert error.retryable is True


@pytest.mark.parametrize(
    ("exception", "maybe_sent"),
    [
        (requests.ConnectTimeout("connect timed out"), False),
        (requests.ReadTimeout("read timed out"), True),
        (requests.ConnectionError("Connection aborted: RemoteDisconnected"), True),
    ],
)
def test_timeouts_and_dropped_connections_retry_later(
    client: GraphClient,
    mocked: responses.RequestsMock,
    exception: requests.RequestException,
    maybe_sent: bool,
) -> None:
    mocked.post(URL, body=exception)

    with pytest.raises(RetryLater) as caught:
        client.send(text_payload(TO, "Hallo"))

    assert caught.value.__cause__ is exception
    assert caught.value.http_status is None
    assert caught.value.maybe_sent is maybe_sent
    assert caught.value.reason.startswith("network: ")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_retries_later_and_surely_was_not_sent() -> None:
    graph = GraphClient(f"http://127.0.0.1:{_closed_port()}", "v23.0", "1", TOKEN)
    with graph, pytest.raises(RetryLater) as caught:
        graph.send(text_payload(TO, "Hallo"))

    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert caught.value.maybe_sent is False
    assert "connection error" in caught.value.message


def test_a_proxy_that_refuses_the_connection_surely_did_not_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    graph = GraphClient("http://graph.example", "v23.0", "1", TOKEN)
    with graph, pytest.raises(RetryLater) as caught:
        graph.send(text_payload(TO, "Hallo"))

    assert isinstance(caught.value.__cause__, requests.exceptions.ProxyError)
    assert caught.value.maybe_sent is False


def test_a_failed_tls_handshake_surely_did_not_send() -> None:
    with FakeGraph() as plain:  # speaks plain HTTP: the TLS handshake fails
        graph = GraphClient(plain.url.replace("http://", "https://"), "v23.0", "1", TOKEN)
        with graph, pytest.raises(RetryLater) as caught:
            graph.send(text_payload(TO, "Hallo"))
        assert plain.count == 0

    assert isinstance(caught.value.__cause__, requests.exceptions.SSLError)
    assert caught.value.maybe_sent is False


def test_a_certificate_that_does_not_verify_surely_did_not_send(
    client: GraphClient, mocked: responses.RequestsMock
) -> None:
    refused = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped = MaxRetryError(None, URL, reason=urllib3.exceptions.SSLError(refused))  # type: ignore[arg-type]
    mocked.post(URL, body=requests.exceptions.SSLError(wrapped))

    with pytest.raises(RetryLater) as caught:
        client.send(text_payload(TO, "Hallo"))

    assert caught.value.maybe_sent is False


@pytest.mark.parametrize(
    "reply",
    [Reply(delay=1.0), Reply(drop=True)],
    ids=["answer after the read timeout", "connection dropped without an answer"],
)
def test_a_request_meta_got_but_did_not_answer_may_have_been_sent(reply: Reply) -> None:
    with FakeGraph() as fake:
        fake.script([reply])
        graph = GraphClient(fake.url, "v23.0", "1", TOKEN, timeout=(1.0, 0.3))
        with graph, pytest.raises(RetryLater) as caught:
            graph.send(text_payload(TO, "Hallo"))
        assert fake.accepted == 1

    assert caught.value.maybe_sent is True


# --- the error classes drive retries -----------------------------------------------------


def send_with_retries(
    transport: Transport,
    payload: dict[str, Any],
    *,
    sleep: Callable[[float], None],
    rng: random.Random,
    max_attempts: int = 5,
) -> str:
    """The smallest dispatcher: retry what RetryLater says, give up on anything else."""
    failures = 0
    while True:
        try:
            return transport.send(payload)
        except RetryLater as error:
            failures += 1
            if failures >= max_attempts:
                raise
            sleep(delay(failures, retry_after=error.retry_after, rng=rng))


def test_429_429_200_is_retried_with_backoff_until_sent(client: GraphClient) -> None:
    throttled = _meta_error(
        130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."
    )
    waits: list[float] = []
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(URL, status=429, json=throttled)
        rsps.post(URL, status=429, json=throttled, headers={"Retry-After": "7"})
        rsps.post(URL, status=200, json=SUCCESS)

        wamid = send_with_retries(
            client, text_payload(TO, "Hallo"), sleep=waits.append, rng=random.Random(4)
        )

        assert len(rsps.calls) == 3
    assert wamid == WAMID
    assert len(waits) == 2
    assert 0 <= waits[0] <= 1.0  # first retry: full jitter under base
    assert waits[1] >= 7.0  # the server asked for 7 seconds


def test_a_permanent_error_is_not_retried(client: GraphClient) -> None:
    waits: list[float] = []
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(URL, status=400, json=_meta_error(131026, "(#131026) Message Undeliverable"))

        with pytest.raises(PermanentError):
            send_with_retries(
                client, text_payload(TO, "Hallo"), sleep=waits.append, rng=random.Random(1)
            )

        assert len(rsps.calls) == 1
    assert waits == []


# --- the token stays secret --------------------------------------------------------------


def test_the_token_never_appears_in_logs_or_errors(
    client: GraphClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.post(URL, json=SUCCESS)
    # Graph echoes a malformed token back in its message.
    mocked.post(
        URL,
        status=400,
        json=_meta_error(190, f"Malformed access token {TOKEN}", f"token {TOKEN} rejected"),
    )
    mocked.post(URL, body=requests.ConnectionError("connection reset"))

    client.send(text_payload(TO, "Hallo"))
    errors: list[SendError] = []
    for _ in range(2):
        with pytest.raises(SendError) as caught:
            client.send(text_payload(TO, "Hallo"))
        errors.append(caught.value)

    assert isinstance(errors[0], AuthError)
    assert "[token]" in errors[0].reason
    texts = [caplog.text, repr(client)]
    for error in errors:
        texts += [
            str(error),
            repr(error),
            error.reason,
            error.message,
            str(error.details),
            str(error.args),
        ]
    assert all(TOKEN not in text for text in texts)
    assert "sent text to 4915112345678" in caplog.text


# --- console mode ------------------------------------------------------------------------


def test_console_transport_logs_and_invents_an_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tresen.outbound")
    transport: Transport = ConsoleTransport()

    first = transport.send(text_payload(TO, "Hallo Anna,\nwir sind ab Montag wieder da."))
    second = transport.send(template_payload(TO, "away", "de"))

    assert first.startswith("wamid.console.") and len(first) == len("wamid.console.") + 32
    assert first != second
    assert [r.getMessage() for r in caplog.records] == [
        "console mode: would send text to 4915112345678: Hallo Anna, wir sind ab Montag wieder da.",
        "console mode: would send template away (de) to 4915112345678",
    ]
    assert caplog.records[0].name == "tresen.outbound"


def test_console_transport_marks_read_without_sending(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tresen.outbound")

    assert ConsoleTransport().send(read_payload(WAMID, typing=True)) == WAMID
    assert f"read receipt for {WAMID} with typing indicator" in caplog.text


@pytest.mark.parametrize(
    ("payload", "line"),
    [
        (text_payload(TO, "x" * 100), f"text to {TO}: {'x' * 59} …"),
        (media_payload(TO, "image", media_id="1", caption="Rosen"), f"image to {TO}: Rosen"),
        (buttons_payload(TO, "Termin?", [("y", "Ja")]), f"interactive button to {TO}: Termin?"),
        (read_payload(WAMID), f"read receipt for {WAMID}"),
    ],
)
def test_describe_says_what_a_payload_sends(payload: dict[str, Any], line: str) -> None:
    assert describe(payload) == line


# --- the client's own setup --------------------------------------------------------------


def test_client_uses_one_pooled_session_without_transport_retries() -> None:
    with GraphClient(BASE, "v23.0", "1", TOKEN, pool_size=32, timeout=(1.0, 2.0)) as graph:
        adapter = graph.session.get_adapter(BASE)

        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
        assert adapter._pool_maxsize == 32  # type: ignore[attr-defined]
        assert graph.timeout == (1.0, 2.0)
        assert graph.messages_url == f"{BASE}/v23.0/1/messages"


@pytest.mark.parametrize(
    ("base", "version", "phone", "token"),
    [("graph.facebook.com", "v23.0", "1", TOKEN), (BASE, "", "1", TOKEN), (BASE, "v23.0", "1", "")],
)
def test_client_refuses_a_bad_configuration(
    base: str, version: str, phone: str, token: str
) -> None:
    with pytest.raises(ValueError):
        GraphClient(base, version, phone, token)


def test_a_given_session_is_used_and_left_open(mocked: responses.RequestsMock) -> None:
    session = requests.Session()
    mocked.post(URL, json=SUCCESS)
    with GraphClient(BASE, "v23.0", "106540352242922", TOKEN, session=session) as graph:
        assert graph.session is session
        graph.send(text_payload(TO, "Hallo"))
    assert session.adapters  # not closed by the client: the caller owns it


# --- classify on its own -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, {"error": {"code": 999999, "message": "new"}}, PermanentError, 999999),
        (500, {"error": {"code": 999999, "message": "new"}}, RetryLater, 999999),
        (
            500,
            {"error": {"code": 131057, "message": "(#131057) Account in maintenance mode"}},
            RetryLater,
            131057,
        ),
        (500, {"error": {"code": 100, "message": "(#100) Invalid parameter"}}, PermanentError, 100),
        (
            400,
            {"error": {"code": "131056", "message": "code as a string"}},
            RecipientRateLimited,
            131056,
        ),
        (403, {"error": {"code": 10, "message": "(#10) Permission denied"}}, AuthError, 10),
        (403, {"error": {"code": 200, "message": "(#200) Permissions error"}}, AuthError, 200),
        (
            400,
            {"error": {"code": 131042, "message": "(#131042) Business eligibility payment issue"}},
            AuthError,
            131042,
        ),
        (
            400,
            {"error": {"code": 132999, "message": "a template error Meta adds later"}},
            PermanentError,
            132999,
        ),
        (
            400,
            {"error": {"code": 4, "message": "(#4) Application request limit reached"}},
            RetryLater,
            4,
        ),
        (401, None, AuthError, None),
        (429, b"", RetryLater, None),
        (408, b"timeout", RetryLater, None),
        (404, b"not json", PermanentError, None),
        (502, b'{"error": "not an object"}', RetryLater, None),
        (400, "[1, 2]", PermanentError, None),
    ],
)
def test_classify(status: int, body: Any, kind: type[SendError], code: int | None) -> None:
    error = classify(status, body, None)

    assert type(error) is kind
    assert error.code == code
    assert error.http_status == status


def test_codes_with_a_documented_wait_get_it_unless_the_server_says_otherwise() -> None:
    body = {"error": {"code": 131057, "message": "(#131057) Account in maintenance mode"}}

    assert classify(500, body, None).retry_after == 60.0
    assert classify(500, body, "5").retry_after == 5.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Wed, 25 Nov 2026 09:02:00 GMT", 120.0),
        ("Wed, 25 Nov 2026 08:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    assert parse_retry_after(header, now=now) == seconds


def test_errors_survive_pickling() -> None:
    error = classify(400, _meta_error(131056, "(#131056) pair rate limit hit"), None)

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert type(copy) is RecipientRateLimited
    assert (copy.code, copy.retry_after, copy.reason) == (131056, 6.0, error.reason)


def test_long_reasons_are_shortened() -> None:
    error = classify(
        400, _meta_error(131009, "(#131009) Parameter value is not valid", "x" * 1000), None
    )

    assert len(error.reason) == 300
    assert error.reason.endswith("…")


# --- backoff -----------------------------------------------------------------------------


def test_delay_is_deterministic_with_a_seeded_rng() -> None:
    first = [delay(n, rng=random.Random(42)) for n in range(1, 12)]
    second = [delay(n, rng=random.Random(42)) for n in range(1, 12)]

    assert first == second
    assert len(set(first)) > 1


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    retry_after=st.none() | st.floats(min_value=-10, max_value=1e9),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_stays_within_its_bounds(attempt: int, retry_after: float | None, seed: int) -> None:
    wait = delay(attempt, retry_after=retry_after, rng=random.Random(seed))

    ceiling = min(300.0, 2.0 ** min(attempt - 1, 64))
    assert 0.0 <= wait <= max(ceiling, MAX_RETRY_AFTER if retry_after else 0.0)
    if retry_after is None:
        assert wait <= ceiling
    else:
        assert wait >= min(max(retry_after, 0.0), MAX_RETRY_AFTER)


def test_delay_ceiling_doubles_then_caps() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [delay(n, rng=Top()) for n in (1, 2, 3, 4, 9, 10, 500)] == [1, 2, 4, 8, 256, 300, 300]
    assert delay(3, base=0.5, cap=1.5, rng=Top()) == 1.5
    assert delay(1, retry_after=86_400, rng=Top()) == MAX_RETRY_AFTER


@pytest.mark.parametrize("attempt", [0, -1])
def test_delay_counts_attempts_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        delay(attempt)
