"""Media files in an S3-compatible object store (AWS S3, EU-hosted providers, a MinIO of
one's own), through the MinIO client library, which speaks to any of them.

Objects are named `<prefix><sha256>`, flat: an object store needs no subfolders to stay fast.
Uploads stream from the temporary file `spooled` wrote, as one PUT of known length: the
client's own upload would hold parts of 5 MiB or more in memory, several at once.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import BinaryIO, NoReturn

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.response import BaseHTTPResponse

from bot.media.s3url import S3Location, parse_s3_url
from bot.media.store import (
    CHUNK,
    MissingFile,
    StoredFile,
    StoreUnavailable,
    is_key,
    spooled,
)

__all__ = ["S3Store"]

log = logging.getLogger(__name__)

# A store that does not answer must not hold a worker for minutes (the client's default): the
# caller retries later. Reads of large files get more time than connecting.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# Codes that mean "no such object" (HEAD answers carry no body, so the client names them).
_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_BUCKET_TAKEN = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}
# What the client raises when the service fails or cannot be reached; OSError for sockets.
_FAILURES = (MinioException, urllib3.exceptions.HTTPError, OSError)


def _http() -> urllib3.PoolManager:
    """The client's connection pool: as the library's default, with short timeouts."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


class _Body(io.RawIOBase):
    """An object's streamed body; closing it gives the connection back to the pool."""

    def __init__(self, response: BaseHTTPResponse, key: str) -> None:
        self._response = response
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._response.read(len(buffer))
        except _FAILURES as exc:
            raise StoreUnavailable(f"reading {self._key} from the object store: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


class S3Store:
    """Content-addressed files in one bucket of an S3-compatible service."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._http = _http()
        self.client = Minio(
            location.endpoint,
            access_key=location.access_key,
            secret_key=location.secret_key,
            secure=location.secure,
            region=location.region,
            http_client=self._http,
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        return cls(parse_s3_url(url))

    def __repr__(self) -> str:
        return f"S3Store({self.location.describe()!r})"

    def _name(self, key: str) -> str:
        if not is_key(key):
            raise MissingFile(key)
        return f"{self.location.prefix}{key}"

    def _fail(self, doing: str, exc: Exception) -> NoReturn:
        if isinstance(exc, S3Error) and exc.code == "NoSuchBucket":
            self._bucket_ready = False  # removed behind our back: made again on next use
        if isinstance(exc, S3Error):
            detail = f"{exc.code}: {exc.message}"
        elif isinstance(exc, urllib3.exceptions.MaxRetryError):
            # Its text names the URL, which for an upload is a presigned one: a password to
            # write that object for a quarter of an hour, not for the log.
            detail = str(exc.reason or "no answer")
        else:
            detail = str(exc)
        raise StoreUnavailable(
            f"{doing} in the object store {self.location.describe()}: {detail}"
        ) from exc

    def _ensure_bucket(self) -> None:
        """Make the bucket on first use if it is not there (once per process, not per call)."""
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            bucket = self.location.bucket
            try:
                if not self.client.bucket_exists(bucket):
                    try:
                        self.client.make_bucket(bucket, location=self.location.region)
                        log.warning(
                            "media: made the bucket %r at %s, which was not there",
                            bucket,
                            self.location.describe(),
                        )
                    except S3Error as exc:
                        if exc.code not in _BUCKET_TAKEN:  # another process made it first
                            raise
            except _FAILURES as exc:
                self._fail(f"making sure the bucket {bucket!r} exists", exc)
            self._bucket_ready = True

    def _exists(self, name: str) -> bool:
        try:
            self.client.stat_object(self.location.bucket, name)
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            self._fail(f"looking for {name}", exc)
        except _FAILURES as exc:
            self._fail(f"looking for {name}", exc)
        return True

    def put(
        self, chunks: Iterable[bytes], *, limit: int | None = None, expect: str | None = None
    ) -> StoredFile:
        with spooled(chunks, None, limit, expect) as spool:
            key = spool.stored.sha256
            name = self._name(key)
            self._ensure_bucket()
            if self._exists(name):
                return spool.stored
            # A presigned URL lets the body stream from the file in one request: the client
            # library's own upload reads the file into memory a part at a time. Two processes
            # storing the same bytes at once both write the same object, which is harmless.
            try:
                url = self.client.presigned_put_object(
                    self.location.bucket, name, expires=timedelta(minutes=15)
                )
                response = self._http.request(
                    "PUT",
                    url,
                    body=spool.file,
                    headers={
                        "Content-Length": str(spool.stored.size),
                        "Content-Type": "application/octet-stream",
                    },
                    preload_content=True,
                )
            except _FAILURES as exc:
                self._fail(f"storing {name}", exc)
            if response.status != 200:
                self._bucket_ready = False  # perhaps removed: looked for again next time
                text = response.data[:300].decode(errors="replace")
                raise StoreUnavailable(
                    f"storing {name} in the object store {self.location.describe()}: "
                    f"HTTP {response.status}: {text}"
                )
            return spool.stored

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        self._ensure_bucket()
        try:
            response = self.client.get_object(self.location.bucket, name)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise MissingFile(key) from None
            self._fail(f"reading {name}", exc)
        except _FAILURES as exc:
            self._fail(f"reading {name}", exc)
        return io.BufferedReader(_Body(response, name), CHUNK)

    def exists(self, key: str) -> bool:
        try:
            name = self._name(key)
        except MissingFile:
            return False
        self._ensure_bucket()
        return self._exists(name)

    def delete(self, key: str) -> None:
        try:
            name = self._name(key)
        except MissingFile:
            return
        self._ensure_bucket()
        try:
            self.client.remove_object(self.location.bucket, name)  # none there: no error
        except _FAILURES as exc:
            self._fail(f"deleting {name}", exc)

    def keys(self) -> Iterator[str]:
        self._ensure_bucket()
        prefix = self.location.prefix
        try:
            for item in self.client.list_objects(
                self.location.bucket, prefix=prefix or None, recursive=True
            ):
                name = item.object_name or ""
                key = name[len(prefix) :]
                if name.startswith(prefix) and is_key(key):
                    yield key
        except _FAILURES as exc:
            self._fail("listing the files", exc)
