"""The media store's contract, run against both stores: a folder, and an S3-compatible server
(moto's, on 127.0.0.1; see `s3_server` in conftest)."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from bot.media.s3 import S3Store
from bot.media.store import (
    ChecksumMismatch,
    LocalStore,
    MediaStore,
    MissingFile,
    StoreUnavailable,
    TooLarge,
    get_media_store,
    open_store,
)

PHOTO = b"\xff\xd8\xff\xe0 a small photo of a wreath" * 100
PHOTO_KEY = hashlib.sha256(PHOTO).hexdigest()


def pieces(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "folder":
        return open_store(str(tmp_path / "media"))
    return open_store(request.getfixturevalue("s3_media_url"))


def read(store: MediaStore, key: str) -> bytes:
    with store.open(key) as file:
        return file.read()


def test_put_stores_under_the_sha256_and_open_reads_it_back(store: MediaStore) -> None:
    stored = store.put(pieces(PHOTO))
    assert stored.sha256 == PHOTO_KEY
    assert stored.size == len(PHOTO)
    assert store.exists(PHOTO_KEY)
    assert read(store, PHOTO_KEY) == PHOTO
    assert list(store.keys()) == [PHOTO_KEY]


def test_the_same_bytes_twice_are_one_file(store: MediaStore) -> None:
    first = store.put(pieces(PHOTO, 7))
    second = store.put([PHOTO], expect=PHOTO_KEY.upper())  # Meta's hex may be either case
    assert first == second
    assert list(store.keys()) == [PHOTO_KEY]


def test_empty_file(store: MediaStore) -> None:
    stored = store.put([])
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert read(store, stored.sha256) == b""


def test_more_than_the_limit_is_refused_and_nothing_kept(store: MediaStore) -> None:
    with pytest.raises(TooLarge) as raised:
        store.put(pieces(PHOTO), limit=len(PHOTO) - 1)
    assert raised.value.limit == len(PHOTO) - 1
    assert list(store.keys()) == []
    assert not store.exists(PHOTO_KEY)
    assert store.put(pieces(PHOTO), limit=len(PHOTO)).sha256 == PHOTO_KEY  # exactly: fine


def test_a_wrong_checksum_is_refused_and_nothing_kept(store: MediaStore) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChecksumMismatch) as raised:
        store.put(pieces(PHOTO), expect=wrong)
    assert (raised.value.expected, raised.value.actual) == (wrong, PHOTO_KEY)
    assert list(store.keys()) == []


def test_delete(store: MediaStore) -> None:
    other = store.put([b"the price list"]).sha256
    store.put([PHOTO])
    store.delete(PHOTO_KEY)
    assert not store.exists(PHOTO_KEY)
    assert list(store.keys()) == [other]
    store.delete(PHOTO_KEY)  # not there any more: no error
    with pytest.raises(MissingFile):
        store.open(PHOTO_KEY)


@pytest.mark.parametrize(
    "key",
    [
        hashlib.sha256(b"never stored").hexdigest(),
        "../../etc/passwd",
        PHOTO_KEY.upper(),
        PHOTO_KEY[:-1],
        "",
        "a/" + PHOTO_KEY[2:],
    ],
)
def test_missing_and_invalid_keys(store: MediaStore, key: str) -> None:
    store.put([PHOTO])
    assert not store.exists(key)
    with pytest.raises(MissingFile):
        store.open(key)
    store.delete(key)  # no error, and nothing else deleted
    assert store.exists(PHOTO_KEY)


def test_an_error_from_the_source_passes_through_and_nothing_is_kept(
    store: MediaStore,
) -> None:
    def broken() -> Iterator[bytes]:
        yield PHOTO[:100]
        raise ConnectionResetError("the download broke off")  # an OSError, not the store's

    with pytest.raises(ConnectionResetError):
        store.put(broken())
    assert list(store.keys()) == []


def test_two_threads_storing_the_same_bytes_at_once(store: MediaStore) -> None:
    data = os.urandom(300_000)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def slow() -> Iterator[bytes]:
        barrier.wait(10)  # both are streaming before either has finished
        yield from pieces(data, 10_000)

    def put() -> None:
        try:
            results.append(store.put(slow()))
        except Exception as exc:  # recorded, to fail the assertion below
            results.append(exc)

    threads = [threading.Thread(target=put) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    key = hashlib.sha256(data).hexdigest()
    assert [getattr(r, "sha256", r) for r in results] == [key, key]
    assert list(store.keys()) == [key]
    assert read(store, key) == data


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_large_file_streams_in_and_out(store: MediaStore) -> None:
    """20 MB in and out: the process grows by a small part of that (nothing held whole)."""
    size, block = 20 * 1024 * 1024, os.urandom(64 * 1024)
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)

    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kb())
            done.wait(0.005)

    def source() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    store.put([b"warm"])  # connections and buffers made before measuring
    read(store, hashlib.sha256(b"warm").hexdigest())
    before = _rss_kb()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        stored = store.put(source(), expect=digest.hexdigest())
        check = hashlib.sha256()
        with store.open(stored.sha256) as file:
            while chunk := file.read(64 * 1024):
                check.update(chunk)
    finally:
        done.set()
        watcher.join()
    assert stored.size == size
    assert check.hexdigest() == stored.sha256
    grown_mb = (max(peak, _rss_kb()) - before) / 1024
    assert grown_mb < 5, f"RSS grew by {grown_mb:.1f} MB while storing 20 MB"


def test_open_reads_partly_then_closed(store: MediaStore) -> None:
    store.put([PHOTO])
    for _ in range(30):
        with store.open(PHOTO_KEY) as file:
            assert file.read(10) == PHOTO[:10]
    assert read(store, PHOTO_KEY) == PHOTO


# What each store does beyond the contract.


def test_the_folder_is_owner_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    store.put([PHOTO])
    path = tmp_path / "media" / PHOTO_KEY[:2] / PHOTO_KEY
    assert path.read_bytes() == PHOTO
    for each in (tmp_path / "media", path.parent, path):
        assert stat.S_IMODE(each.stat().st_mode) & 0o077 == 0


def test_a_disk_that_fails_is_unavailable_not_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "media")
    store.put([PHOTO])

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    for name in ("open", "is_file", "unlink", "iterdir"):
        monkeypatch.setattr(Path, name, failing)
    for attempt in (
        lambda: store.open(PHOTO_KEY),
        lambda: store.exists(PHOTO_KEY),
        lambda: store.delete(PHOTO_KEY),
        lambda: list(store.keys()),
    ):
        with pytest.raises(StoreUnavailable, match="Input/output error"):
            attempt()


def test_a_full_disk_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "media")

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", full)
    with pytest.raises(StoreUnavailable, match="No space left"):
        store.put([PHOTO])
    assert list(store.keys()) == []
    assert [p.name for p in (tmp_path / "media").iterdir() if p.is_file()] == []


def test_the_bucket_is_made_at_first_use_and_said_so(
    s3_media_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(s3_media_url)
    assert isinstance(store, S3Store)
    assert not store.client.bucket_exists(store.location.bucket)
    assert list(store.keys()) == []
    assert store.client.bucket_exists(store.location.bucket)
    assert f"made the bucket {store.location.bucket!r}" in caplog.text
    assert "s3cret" not in caplog.text and "s3cret" not in repr(store)
    # A second store (another process) finds it there.
    caplog.clear()
    assert not open_store(s3_media_url).exists(PHOTO_KEY)
    assert "made the bucket" not in caplog.text


def test_closing_what_open_gave_gives_its_connection_back(s3_media_url: str) -> None:
    store = open_store(s3_media_url)
    assert isinstance(store, S3Store)
    data = os.urandom(1024 * 1024)  # more than one read takes
    key = store.put([data]).sha256
    pool = store._http.connection_from_url(f"http://{store.location.endpoint}")
    idle = pool.pool.qsize() if pool.pool else 0
    for _ in range(20):
        file = store.open(key)
        assert pool.pool is not None and pool.pool.qsize() == idle - 1  # taken while open
        assert file.read(10) == data[:10]
        file.close()
        assert pool.pool.qsize() == idle  # back, even though the body was not read to its end
    connections = pool.num_connections
    for _ in range(20):
        assert read(store, key) == data
    assert pool.num_connections <= connections + 1  # read to the end: the connection is reused


def test_a_prefix_keeps_the_files_in_a_folder_of_the_bucket(s3_media_url: str) -> None:
    base, _, query = s3_media_url.partition("?")
    store = open_store(f"{base}/shop/media/?{query}")
    assert isinstance(store, S3Store)
    store.put([PHOTO])
    plain = open_store(s3_media_url)
    assert isinstance(plain, S3Store)
    names = [
        o.object_name for o in plain.client.list_objects(plain.location.bucket, recursive=True)
    ]
    assert names == [f"shop/media/{PHOTO_KEY}"]
    assert list(plain.keys()) == []  # the prefix-less store sees no files of its own
    assert list(store.keys()) == [PHOTO_KEY]


def test_a_server_that_does_not_answer_is_unavailable(s3_media_url: str) -> None:
    from tests.processes import free_port

    host = s3_media_url.split("@", 1)[1].split("/", 1)[0]
    store = open_store(s3_media_url.replace(host, f"127.0.0.1:{free_port()}"))
    for attempt in (
        lambda: store.put([PHOTO]),
        lambda: store.open(PHOTO_KEY),
        lambda: store.exists(PHOTO_KEY),
        lambda: list(store.keys()),
        lambda: store.delete(PHOTO_KEY),
    ):
        with pytest.raises(StoreUnavailable, match="object store"):
            attempt()


def test_a_bucket_removed_behind_the_stores_back_is_made_again(s3_media_url: str) -> None:
    store = open_store(s3_media_url)
    store.put([PHOTO])
    assert isinstance(store, S3Store)
    bucket = store.location.bucket
    store.client.remove_object(bucket, PHOTO_KEY)
    store.client.remove_bucket(bucket)
    # Made again when it vanished behind the store's back: the next put says so and works.
    with pytest.raises(StoreUnavailable):
        store.put([PHOTO])
    assert store.put([PHOTO]).sha256 == PHOTO_KEY


def test_the_app_opens_the_configured_s3_store(s3_app: Flask) -> None:
    store = get_media_store(s3_app)
    assert isinstance(store, S3Store)
    assert store.put([PHOTO]).sha256 == PHOTO_KEY
    assert get_media_store(s3_app) is store


def test_a_failed_upload_does_not_log_its_presigned_url(
    s3_media_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3

    store = open_store(s3_media_url)
    assert isinstance(store, S3Store)

    def broken(method: str, url: str, **kwargs: object) -> None:
        reason = urllib3.exceptions.ProtocolError("Connection aborted.")
        raise urllib3.exceptions.MaxRetryError(None, url, reason)  # type: ignore[arg-type]

    monkeypatch.setattr(store._http, "request", broken)
    with pytest.raises(StoreUnavailable) as raised:
        store.put([PHOTO])
    assert "Connection aborted" in str(raised.value)
    assert "Signature" not in str(raised.value)
    assert not store.exists(PHOTO_KEY)
