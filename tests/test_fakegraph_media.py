"""The fake Graph API serves customers' media as Meta does: GET /{media-id}, then a download
URL that needs the token and expires."""

from __future__ import annotations

import hashlib
import os
import struct
import time

import requests

from tests.fakegraph import FakeGraph, Reply, graph_error, sample_picture

TOKEN = "EAAG-fake-media"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_get_answers_metas_shape_and_the_url_serves_the_bytes() -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several MB, streamed in pieces
    with FakeGraph(token=TOKEN) as fake:
        media_id = fake.add_media(data, "video/mp4")
        info = requests.get(f"{fake.url}/v24.0/{media_id}", headers=AUTH, timeout=5).json()
        assert info["messaging_product"] == "whatsapp"
        assert (info["id"], info["mime_type"]) == (media_id, "video/mp4")
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert info["file_size"] == str(len(data))
        assert info["url"].startswith(fake.url)
        download = requests.get(info["url"], headers=AUTH, timeout=5)
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "video/mp4"
        assert download.content == data
        # The phone_number_id parameter is accepted as Meta accepts it.
        with_number = requests.get(
            f"{fake.url}/v24.0/{media_id}?phone_number_id=106540352242922", headers=AUTH, timeout=5
        )
        assert with_number.status_code == 200


def test_the_token_is_needed_for_both() -> None:
    with FakeGraph(token=TOKEN) as fake:
        media_id = fake.add_media(b"abc", "image/jpeg")
        refused = requests.get(f"{fake.url}/v24.0/{media_id}", timeout=5)
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, 190)
        url = requests.get(f"{fake.url}/v24.0/{media_id}", headers=AUTH, timeout=5).json()["url"]
        assert requests.get(url, timeout=5).status_code == 401


def test_urls_expire_after_their_time_or_at_once() -> None:
    with FakeGraph(token=TOKEN) as fake:
        media_id = fake.add_media(b"abc", "image/jpeg")

        def url() -> str:
            answer = requests.get(f"{fake.url}/v24.0/{media_id}", headers=AUTH, timeout=5)
            return str(answer.json()["url"])

        first = url()
        fake.expire_urls()
        assert requests.get(first, headers=AUTH, timeout=5).status_code == 404
        assert requests.get(url(), headers=AUTH, timeout=5).content == b"abc"
        fake.media_ttl = 0.05
        late = url()
        time.sleep(0.1)
        assert requests.get(late, headers=AUTH, timeout=5).status_code == 404


def test_unknown_ids_scripts_outages_and_latency_apply_to_get() -> None:
    with FakeGraph(token=TOKEN) as fake:
        unknown = requests.get(f"{fake.url}/v24.0/999", headers=AUTH, timeout=5)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == 100
        assert "does not exist" in unknown.json()["error"]["message"]
        media_id = fake.add_media(b"abc", "image/jpeg")
        fake.script([Reply(429, graph_error(4, "(#4) Too many calls"), {"Retry-After": "3"})])
        limited = requests.get(f"{fake.url}/v24.0/{media_id}", headers=AUTH, timeout=5)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
        fake.fail_all(503)
        assert (
            requests.get(f"{fake.url}/v24.0/{media_id}", headers=AUTH, timeout=5).status_code == 503
        )
        fake.recover()
        fake.latency = 0.2
        started = time.monotonic()
        assert requests.get(f"{fake.url}/v24.0/{media_id}", headers=AUTH, timeout=5).ok
        assert time.monotonic() - started >= 0.2
        assert fake.media_gets == 4


def test_the_standalone_picture_is_a_png() -> None:
    picture = sample_picture(64, 48)
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", picture[16:24]) == (64, 48)
    with FakeGraph() as fake:
        fake.serve_unknown_media(picture, "image/png")
        info = requests.get(f"{fake.url}/v24.0/anything", timeout=5).json()
        assert requests.get(info["url"], timeout=5).content == picture
