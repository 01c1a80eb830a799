"""Files only their owner may read: the instance folder, the secret key, the SQLite database.

They hold the admin session key, customers' numbers and messages; the usual umask (022) would
let every user of the machine read them.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger("tresen")

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077  # group and world bits


def make_folder(path: Path) -> None:
    """Create `path` (and missing parents) for its owner only, or tighten it if it exists."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    tighten(path)


def create_file(path: Path, data: bytes = b"") -> bool:
    """A new file at `path` holding `data`, owner-only from its first byte; False if one exists.

    The data goes to a temporary name beside it that is then linked into place: a process that
    reads `path` never sees it half-written, and of processes creating it at once (gunicorn's
    workers starting together) exactly one wins and all read its content.
    """
    if not data:  # nothing to be seen half-written
        return _create_in_place(path, data)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # a crash after the link must not leave an empty file behind
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        return _create_in_place(path, data)
    finally:
        temporary.unlink()
    return True


def _create_in_place(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


def tighten(path: Path) -> None:
    """Take group and world access away from an existing `path`, saying so in the log.

    Files made by older versions, or copied in, may be readable by every user of the machine.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & _OTHERS:
        return
    try:
        path.chmod(mode & ~_OTHERS)
    except OSError as exc:
        log.warning(
            "%s is readable by other users (mode %04o) and cannot be changed: %s", path, mode, exc
        )
        return
    log.warning(
        "%s was readable by other users (mode %04o); now its owner's only (%04o)",
        path,
        mode,
        mode & ~_OTHERS,
    )
