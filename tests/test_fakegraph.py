"""The fake Graph API server: records sends, plays scripts, simulates outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.channels.errors import AuthError, PermanentError, RecipientRateLimited, RetryLater
from bot.whatsapp.graph import GraphClient
from bot.whatsapp.payloads import read_payload, text_payload
from tests.fakegraph import FakeGraph, Reply, graph_error

TOKEN = "fake-graph-test-token"
TO = "4915112345678"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as server:
        yield server


@pytest.fixture
def client(fake: FakeGraph) -> Iterator[GraphClient]:
    with GraphClient(fake.url, "v23.0", "106540352242922", TOKEN, pool_size=16) as graph:
        yield graph


def test_it_records_a_send_and_answers_like_meta(fake: FakeGraph, client: GraphClient) -> None:
    wamid = client.send(text_payload(TO, "Hallo"))

    assert wamid.startswith("wamid.")
    assert fake.count == fake.accepted == 1
    [received] = fake.requests
    assert received.path == "/v23.0/106540352242922/messages"
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    assert received.json == text_payload(TO, "Hallo")


def test_read_receipts_answer_success(fake: FakeGraph, client: GraphClient) -> None:
    client.mark_read("wamid.IN", typing=True)

    assert fake.requests[0].json == read_payload("wamid.IN", typing=True)


def test_it_plays_a_script_in_order_then_succeeds(fake: FakeGraph, client: GraphClient) -> None:
    fake.script(
        [
            (429, graph_error(130429, "(#130429) Rate limit hit"), {"Retry-After": "3"}),
            Reply(400, graph_error(131056, "(#131056) pair rate limit hit")),
            (400, graph_error(131026, "(#131026) Message Undeliverable")),
        ]
    )
    payload = text_payload(TO, "Hallo")

    with pytest.raises(RetryLater) as throttled:
        client.send(payload)
    with pytest.raises(RecipientRateLimited):
        client.send(payload)
    with pytest.raises(PermanentError):
        client.send(payload)
    wamid = client.send(payload)

    assert throttled.value.retry_after == 3.0
    assert wamid.startswith("wamid.")
    assert (fake.count, fake.accepted) == (4, 1)


def test_it_simulates_an_outage_until_recovered(fake: FakeGraph, client: GraphClient) -> None:
    fake.fail_all(503, "<html>Service Unavailable</html>", {"Retry-After": "1"})
    for _ in range(3):
        with pytest.raises(RetryLater) as caught:
            client.send(text_payload(TO, "Hallo"))
        assert caught.value.http_status == 503

    fake.recover()

    assert client.send(text_payload(TO, "Hallo")).startswith("wamid.")
    assert (fake.count, fake.accepted) == (4, 1)


def test_a_wrong_token_is_refused_with_code_190(fake: FakeGraph) -> None:
    graph = GraphClient(fake.url, "v23.0", "1", "not-the-token")
    with graph, pytest.raises(AuthError) as caught:
        graph.send(text_payload(TO, "Hallo"))

    assert (caught.value.http_status, caught.value.code) == (401, 190)


def test_many_threads_share_one_client(fake: FakeGraph, client: GraphClient) -> None:
    recipients = [f"49151{n:08d}" for n in range(200)]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda to: client.send(text_payload(to, "Hallo")), recipients))

    assert fake.wait_for(200, timeout=5)
    assert len(set(ids)) == 200
    assert sorted(r.json["to"] for r in fake.requests) == recipients


def test_without_recording_it_only_counts() -> None:
    with FakeGraph(record=False) as fake, GraphClient(fake.url, "v23.0", "1", "t") as graph:
        graph.send(text_payload(TO, "Hallo"))

        assert fake.wait_for(1, timeout=5)
        assert fake.requests == []
        assert fake.count == 1


def test_stop_ends_idle_keep_alive_connections() -> None:
    fake = FakeGraph().start()
    with GraphClient(fake.url, "v23.0", "1", "t") as graph:
        graph.send(text_payload(TO, "Hallo"))  # leaves a keep-alive connection open
        fake.stop()

        with pytest.raises(RetryLater):
            graph.send(text_payload(TO, "Hallo"))


def test_a_journal_holds_a_line_per_accepted_message(tmp_path: Path) -> None:
    journal = tmp_path / "sends.txt"
    with (
        FakeGraph(journal=journal) as fake,
        GraphClient(fake.url, "v23.0", "106540352242922", "t") as graph,
    ):
        before = time.monotonic()
        wamid = graph.send(text_payload(TO, "Hallo"))
        graph.mark_read("wamid.IN")
        [line] = journal.read_text().splitlines()

    at, to, logged = line.split()
    assert (to, logged) == (TO, wamid)
    assert before <= float(at) <= time.monotonic()
