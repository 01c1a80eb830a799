"""Users of the admin pages: hashed passwords and their sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.models import User, UserSession

NAME_MAX = 64
PASSWORD_MIN = 8
# Checked against when the name is unknown, so an unknown name costs the same hashing as a
# wrong password and the answer does not tell which names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A name or password that cannot be used; str() says why."""


@dataclass(frozen=True)
class SessionUser:
    """Who a session cookie belongs to."""

    id: int
    name: str


@dataclass(frozen=True)
class UserSummary:
    """A user as `users list` shows it."""

    name: str
    last_login_at: datetime | None
    open_sessions: int


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """The expensive check: with no stored hash (an unknown name) a dummy is checked instead."""
    if stored_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(stored_hash, password)


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UserError("the user name must not be empty")
    if len(name) > NAME_MAX:
        raise UserError(f"the user name is {len(name)} characters, at most {NAME_MAX} allowed")
    if any(ch.isspace() for ch in name):
        raise UserError("the user name must not contain spaces")
    return name


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UserError(f"the password must have at least {PASSWORD_MIN} characters")
    return password


def create_or_reset(session: Session, name: str, password: str, *, now: datetime) -> bool:
    """Create user `name` or give it a new password, which ends all of its sessions.

    True when the user was created. Raises UserError for an unusable name or password.
    """
    name = check_name(name)
    password_hash = hash_password(check_password(password))
    user = session.scalars(select(User).where(User.name == name).with_for_update()).one_or_none()
    if user is None:
        session.add(User(name=name, password_hash=password_hash, created_at=now))
        session.flush()
        return True
    user.password_hash = password_hash
    end_sessions(session, user.id)
    return False


def delete_user(session: Session, name: str) -> None:
    """Remove user `name` and end its sessions. Raises UserError for an unknown name."""
    user = session.scalars(select(User).where(User.name == name.strip())).one_or_none()
    if user is None:
        raise UserError(f"there is no user named {name.strip()!r}: see `users list`")
    # Explicitly, not by the foreign key alone: SQLite enforces it only when told to.
    end_sessions(session, user.id)
    session.delete(user)


def has_users(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(User)))


def first_user(session: Session, *, now: datetime, name: str = "admin") -> str | None:
    """With no user yet, create `name` with a random password and return the password."""
    if has_users(session):
        return None
    password = secrets.token_urlsafe(12)
    create_or_reset(session, name, password, now=now)
    return password


def find(session: Session, name: str) -> tuple[int, str] | None:
    """The id and password hash of user `name`, if there is one."""
    row = session.execute(
        select(User.id, User.password_hash).where(User.name == name.strip())
    ).one_or_none()
    return (row.id, row.password_hash) if row is not None else None


def summaries(session: Session, *, now: datetime, lifetime: timedelta) -> list[UserSummary]:
    """Every user by name, with the last login and the sessions not yet past `lifetime`."""
    sessions = (
        select(UserSession.user_id, func.count().label("n"))
        .where(UserSession.created_at > now - lifetime)
        .group_by(UserSession.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User.name, User.last_login_at, func.coalesce(sessions.c.n, 0))
        .outerjoin(sessions, sessions.c.user_id == User.id)
        .order_by(User.name)
    ).all()
    return [UserSummary(name, last_login, int(n)) for name, last_login, n in rows]


# --- sessions ---------------------------------------------------------------------------------
# The cookie carries a random token and nothing else about the user; the database keeps only
# the token's hash, so a copy of the table logs nobody in.


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user_id: int, *, now: datetime, lifetime: timedelta) -> str:
    """A new session for `user_id`: returns the token for the cookie."""
    # Sessions past their lifetime are of no use to anyone: forget them as new ones start.
    session.execute(delete(UserSession).where(UserSession.created_at <= now - lifetime))
    token = secrets.token_urlsafe(32)
    session.add(UserSession(token_hash=_token_hash(token), user_id=user_id, created_at=now))
    return token


def session_user(
    session: Session, token: str, *, now: datetime, lifetime: timedelta
) -> SessionUser | None:
    """The user of a session token, unless the session ended or outlived `lifetime`."""
    row = session.execute(
        select(User.id, User.name)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.token_hash == _token_hash(token),
            UserSession.created_at > now - lifetime,
        )
    ).one_or_none()
    return SessionUser(row.id, row.name) if row is not None else None


def end_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(token)))


def end_sessions(session: Session, user_id: int) -> int:
    """End every session of `user_id`; returns how many there were."""
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)
