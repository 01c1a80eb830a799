"""API keys for shop systems: made once and shown once, kept as their SHA-256 only, found again
by that hash (so checking a key compares no secret byte by byte), scoped and revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.api.scopes import Scope
from bot.models import ApiKey

# `tresen_<prefix>_<secret>`: the prefix tells the owner's keys apart on the admin page and in
# a shop system's configuration; the secret carries the 256 bits that make the key.
KEY_START = "tresen_"
PREFIX_LENGTH = 8
NAME_MAX = 80
# Writing last_used_at on every request would make every API call a write on the key's row:
# once a minute is exact enough for "last used".
LAST_USED_STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    token: str  # the whole key, shown to the owner once
    prefix: str
    key_hash: str


def key_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> NewKey:
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    token = f"{KEY_START}{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(token=token, prefix=prefix, key_hash=key_hash(token))


def clean_scopes(values: list[str]) -> list[str]:
    """The known scopes among `values`, in Scope's order."""
    return [scope.value for scope in Scope if scope.value in values]


def create_key(
    session: Session, name: str, scopes: list[str], *, by: int | None, now: datetime
) -> tuple[ApiKey, str]:
    """A new key and its token (the only time the token exists outside the caller)."""
    made = new_key()
    key = ApiKey(
        name=name.strip()[:NAME_MAX],
        prefix=made.prefix,
        key_hash=made.key_hash,
        scopes=clean_scopes(scopes),
        created_at=now,
        created_by_id=by,
    )
    session.add(key)
    session.flush()
    return key, made.token


def revoke(session: Session, key_id: int, now: datetime) -> ApiKey | None:
    """Revoke a key at once; None when there is no such key."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = now
    return key


def find_key(session: Session, token: str) -> ApiKey | None:
    """The key this token is, revoked or not; None for an unknown token."""
    if not token.startswith(KEY_START):
        return None
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(token)))


def mark_used(session: Session, key: ApiKey, now: datetime) -> bool:
    """Note the key's use (at most once per LAST_USED_STEP); whether this wrote."""
    last = key.last_used_at
    if last is None or now - last >= LAST_USED_STEP:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        return True
    return False
