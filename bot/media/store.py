"""Where media files are kept: one small interface, a folder or an S3-compatible object store.

Files are content-addressed: the key is the SHA-256 of the bytes (lowercase hex), so the same
picture stored twice is one file, and a key names its content for good. Writing streams: the
bytes go to a temporary file as they come and are hashed on the way, so no file is ever held
in memory whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app

from bot import private_files

__all__ = [
    "ChecksumMismatch",
    "LocalStore",
    "MediaStore",
    "MissingFile",
    "StoreUnavailable",
    "StoredFile",
    "TooLarge",
    "get_media_store",
    "is_key",
    "open_store",
]

CHUNK = 64 * 1024


class TooLarge(Exception):
    """More bytes came than the limit allows; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class ChecksumMismatch(Exception):
    """The bytes' SHA-256 is not the one expected; nothing was stored."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 is {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class MissingFile(KeyError):
    """No file is stored under this key."""


class StoreUnavailable(Exception):
    """The store cannot be used just now (a full or unreadable disk, an object store that does
    not answer or refuses us): nothing was stored or read, and trying again later may work."""


@contextlib.contextmanager
def _disk(what: str) -> Iterator[None]:
    """OSErrors of our own file operations as `StoreUnavailable` (a missing file is not one)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc


@dataclass(frozen=True)
class StoredFile:
    sha256: str  # lowercase hex: the key
    size: int


@dataclass(frozen=True)
class Spooled:
    """Bytes written to a temporary file, checked: the file (rewound), its path, what it holds."""

    file: BinaryIO
    path: Path
    stored: StoredFile


def is_key(text: str) -> bool:
    """Whether `text` is a key: 64 lowercase hex digits (and so safe in a path or a URL)."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class MediaStore(Protocol):
    """Content-addressed file storage. Any method may raise `StoreUnavailable`: try later."""

    def put(
        self, chunks: Iterable[bytes], *, limit: int | None = None, expect: str | None = None
    ) -> StoredFile:
        """Store the bytes `chunks` yields, streaming. Raises `TooLarge` once more than `limit`
        bytes came, and `ChecksumMismatch` if `expect` (hex) is not their SHA-256; in both
        cases nothing is stored. Storing bytes already there stores nothing new."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The stored bytes for reading (close it); `MissingFile` if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Delete the file; deleting one that is not there is no error."""
        ...

    def keys(self) -> Iterator[str]:
        """Every key stored, in no order (for finding files nothing refers to)."""
        ...


@contextlib.contextmanager
def spooled(
    chunks: Iterable[bytes], folder: Path | None, limit: int | None, expect: str | None
) -> Iterator[Spooled]:
    """The bytes written to a temporary file (in `folder`, or the system's), hashed and
    counted on the way, checked against `limit` and `expect`; the file is removed on exit."""
    digest = hashlib.sha256()
    size = 0
    with _disk("make a temporary file"):
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(fd, "w+b") as file:
            # Only our own writes become StoreUnavailable: what `chunks` raises (the download
            # failing) goes to the caller as it is.
            for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise TooLarge(limit)
                digest.update(chunk)
                with _disk("write a temporary file"):
                    file.write(chunk)
            actual = digest.hexdigest()
            if expect is not None and expect.lower() != actual:
                raise ChecksumMismatch(expect.lower(), actual)
            with _disk("write a temporary file"):
                file.flush()
                file.seek(0)
            yield Spooled(file, path, StoredFile(actual, size))
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class LocalStore:
    """Files in a folder only their owner may read: `<folder>/ab/abcdef…` (the key's first two
    digits as a subfolder, so no folder grows to hundreds of thousands of entries)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with _disk(f"make the media folder {folder}"):
            private_files.make_folder(folder)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.folder)!r})"

    def _path(self, key: str) -> Path:
        if not is_key(key):
            raise MissingFile(key)
        return self.folder / key[:2] / key

    def put(
        self, chunks: Iterable[bytes], *, limit: int | None = None, expect: str | None = None
    ) -> StoredFile:
        with spooled(chunks, self.folder, limit, expect) as spool:
            target = self._path(spool.stored.sha256)
            with _disk(f"store {target}"):
                if not target.exists():
                    private_files.make_folder(target.parent)
                    # mkstemp made it owner-only. A link, not a rename: of two processes
                    # storing the same bytes at once, one links and the other finds the file
                    # there, and neither replaces a complete file.
                    with contextlib.suppress(FileExistsError):
                        os.link(spool.path, target)
            return spool.stored

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            with _disk(f"read {path}"):
                return path.open("rb")
        except FileNotFoundError:
            raise MissingFile(key) from None

    def exists(self, key: str) -> bool:
        try:
            path = self._path(key)
        except MissingFile:
            return False
        with _disk(f"look for {path}"):
            return path.is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, MissingFile), _disk("delete a file"):
            self._path(key).unlink()

    def keys(self) -> Iterator[str]:
        with _disk(f"list {self.folder}"):
            subs = sorted(self.folder.iterdir())
            for sub in subs:
                if sub.is_dir() and len(sub.name) == 2:
                    for path in sub.iterdir():
                        if is_key(path.name):
                            yield path.name


def open_store(setting: str) -> MediaStore:
    """The store `MEDIA_STORE` names (as `bot.config` checked it): a folder path, or an
    `s3://KEY:SECRET@host:port/bucket` URL."""
    if setting.startswith("s3://"):
        from bot.media.s3 import S3Store  # the S3 client is loaded only by those who use it

        return S3Store.from_url(setting)
    return LocalStore(Path(setting))


def get_media_store(app: Flask | None = None) -> MediaStore:
    """The app's store, opened on first use (tests may put their own in its place)."""
    app = app or current_app
    store: MediaStore | None = app.extensions.get("tresen.media")
    if store is None:
        store = app.extensions["tresen.media"] = open_store(app.config["TRESEN"].media_store)
    return store
