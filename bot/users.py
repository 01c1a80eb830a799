"""Users of the admin pages: owners and staff, hashed passwords, chosen languages, sessions."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.db import Database
from bot.models import User, UserSession

NAME_MAX = 64
PASSWORD_MIN = 8
# Checked against when the name is unknown, so an unknown name costs the same hashing as a
# wrong password and the answer does not tell which names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


# The admin languages a user may choose; none means the business's.
LANGUAGES = ("de", "en")


class Role(StrEnum):
    OWNER = "owner"  # everything, including the team
    STAFF = "staff"  # everything but the team


class Problem(StrEnum):
    """Why a user change was refused: the admin pages say it in the page's language."""

    NAME_EMPTY = "name_empty"
    NAME_TOO_LONG = "name_too_long"
    NAME_SPACES = "name_spaces"
    NAME_TAKEN = "name_taken"
    PASSWORD_SHORT = "password_short"  # noqa: S105 (a reason, not a password)
    WRONG_PASSWORD = "wrong_password"  # noqa: S105
    UNKNOWN_USER = "unknown_user"
    SELF = "self"
    LAST_OWNER = "last_owner"
    INVITATION = "invitation"  # used, expired, withdrawn or never made: all alike


class UserError(ValueError):
    """A name or password that cannot be used; str() says why (in English, for the CLI)."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class SessionUser:
    """Who a session cookie belongs to."""

    id: int
    name: str
    role: Role = Role.OWNER
    locale: str | None = None  # the chosen admin language, none: the business's
    may_broadcast: bool = True  # staff only: owners always may


@dataclass(frozen=True)
class UserSummary:
    """A user as `users list` and the team page show it."""

    name: str
    last_login_at: datetime | None
    open_sessions: int
    role: Role = Role.OWNER
    id: int = 0
    active: bool = True
    may_broadcast: bool = True


@dataclass(frozen=True)
class OneTimeLogin:
    """What `python app.py` prints while nobody has logged in yet."""

    name: str
    password: str | None  # None: the users were made with `users create`, their passwords chosen


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
        raise UserError("the user name must not be empty", Problem.NAME_EMPTY)
    if len(name) > NAME_MAX:
        raise UserError(
            f"the user name is {len(name)} characters, at most {NAME_MAX} allowed",
            Problem.NAME_TOO_LONG,
        )
    if any(ch.isspace() for ch in name):
        raise UserError("the user name must not contain spaces", Problem.NAME_SPACES)
    return name


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UserError(
            f"the password must have at least {PASSWORD_MIN} characters", Problem.PASSWORD_SHORT
        )
    return password


# No 0/O, 1/l/I: a generated password is read off a screen and typed on another.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_password() -> str:
    """A random password to be typed once and then changed: four groups of four, ~90 bits."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


def create_or_reset(
    session: Session, name: str, password: str, *, now: datetime, role: Role | None = None
) -> bool:
    """Create user `name` (an owner unless `role` says otherwise) or give it a new password,
    which ends all of its sessions; `role`, when given, changes an existing user's too.

    True when the user was created. Raises UserError for an unusable name or password, or for
    making the last owner staff.
    """
    name = check_name(name)
    password_hash = hash_password(check_password(password))
    user = session.scalars(select(User).where(User.name == name).with_for_update()).one_or_none()
    if user is None:
        session.add(
            User(name=name, password_hash=password_hash, created_at=now, role=role or Role.OWNER)
        )
        session.flush()
        return True
    if role is not None and role != user.role:
        if _last_owner(session, user):
            raise UserError(f"{name} is the only owner: make another one first", Problem.LAST_OWNER)
        user.role = role
    user.password_hash = password_hash
    user.password_generated = False
    end_sessions(session, user.id)
    return False


def add_user(
    db: Database,
    name: str,
    password: str,
    *,
    role: Role,
    now: datetime,
    then: Callable[[Session, User], None] | None = None,
) -> None:
    """A new user, from the team page: an existing name is refused, never reset.

    `then` runs in the same transaction once the user is there (the audit entry).
    """
    name = check_name(name)
    # Hashing outside any transaction: on SQLite an open one would hold up every writer.
    password_hash = hash_password(check_password(password))
    with db.session() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserError(f"there is already a user named {name!r}", Problem.NAME_TAKEN)
        user = User(name=name, password_hash=password_hash, created_at=now, role=role)
        session.add(user)
        session.flush()
        if then is not None:
            then(session, user)


def delete_user(session: Session, name: str) -> None:
    """Remove user `name` and end its sessions. Raises UserError for an unknown name."""
    user = session.scalars(select(User).where(User.name == name.strip())).one_or_none()
    if user is None:
        raise UserError(
            f"there is no user named {name.strip()!r}: see `users list`", Problem.UNKNOWN_USER
        )
    # Explicitly, not by the foreign key alone: SQLite enforces it only when told to.
    end_sessions(session, user.id)
    session.delete(user)


def remove_user(session: Session, user_id: int, *, by: int) -> str:
    """User `by` removes user `user_id` from the team page; returns the removed user's name.

    Nobody removes themselves there (they would lock themselves out mid-click), and the last
    owner stays: without one, nobody could manage the team from the browser.
    """
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserError("there is no such user", Problem.UNKNOWN_USER)
    if user.id == by:
        raise UserError("you cannot remove yourself", Problem.SELF)
    if _last_owner(session, user):
        raise UserError(f"{user.name} is the only owner", Problem.LAST_OWNER)
    name = user.name
    delete_user(session, name)
    return name


def _last_owner(session: Session, user: User) -> bool:
    """Whether `user` is the only active owner: without one, nobody could manage the team."""
    if user.role != Role.OWNER or not user.active:
        return False
    owners = session.scalar(
        select(func.count()).where(User.role == Role.OWNER, User.active.is_(True))
    )
    return int(owners or 0) <= 1


def set_active(session: Session, user_id: int, active: bool, *, by: int) -> str:
    """Deactivate (every session ends at once) or reactivate user `user_id`; returns its name.

    A deactivated user keeps its name on what it did but cannot log in. Nobody deactivates
    themselves, and the last active owner stays active.
    """
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserError("there is no such user", Problem.UNKNOWN_USER)
    if not active:
        if user.id == by:
            raise UserError("you cannot deactivate yourself", Problem.SELF)
        if _last_owner(session, user):
            raise UserError(f"{user.name} is the only owner", Problem.LAST_OWNER)
        end_sessions(session, user.id)
    user.active = active
    return user.name


def set_role(
    session: Session, user_id: int, role: Role, may_broadcast: bool
) -> tuple[str, str, str]:
    """A user's role and, for staff, whether they may send broadcasts.

    Returns the name and the user's permissions before and after, in words for the audit log
    ("staff, no broadcasts"). The last active owner stays an owner.
    """
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserError("there is no such user", Problem.UNKNOWN_USER)
    before = permissions(Role(user.role), user.may_broadcast)
    if role != user.role and _last_owner(session, user):
        raise UserError(f"{user.name} is the only owner", Problem.LAST_OWNER)
    user.role = role
    user.may_broadcast = may_broadcast
    return user.name, before, permissions(role, may_broadcast)


def permissions(role: Role, may_broadcast: bool) -> str:
    """A user's role in the audit log's words: "owner", "staff" or "staff, no broadcasts"."""
    if role is Role.OWNER or may_broadcast:
        return str(role)
    return f"{role}, no broadcasts"


def change_password(
    db: Database,
    user_id: int,
    old: str,
    new: str,
    *,
    keep_token: str | None,
    then: Callable[[Session], None] | None = None,
) -> None:
    """A user's own new password: the old one must be right; every other session ends.

    The session `keep_token` (the browser that asked) stays logged in. The hashing runs
    outside any transaction, as a login's does. `then` runs in the change's transaction.
    """
    check_password(new)
    with db.session() as session:
        stored = session.scalar(select(User.password_hash).where(User.id == user_id))
    if stored is None:
        raise UserError("there is no such user", Problem.UNKNOWN_USER)
    if not password_matches(stored, old):
        raise UserError("the current password is not right", Problem.WRONG_PASSWORD)
    new_hash = hash_password(new)
    with db.session() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise UserError("there is no such user", Problem.UNKNOWN_USER)
        if user.password_hash != stored:  # changed meanwhile: the old one typed is no more
            raise UserError("the current password is not right", Problem.WRONG_PASSWORD)
        user.password_hash = new_hash
        user.password_generated = False
        others = delete(UserSession).where(UserSession.user_id == user.id)
        if keep_token is not None:
            others = others.where(UserSession.token_hash != _token_hash(keep_token))
        session.execute(others)
        if then is not None:
            then(session)


def set_locale(session: Session, user_id: int, locale: str | None) -> None:
    """The admin language user `user_id` chose: one of LANGUAGES, or None for the business's."""
    if locale is not None and locale not in LANGUAGES:
        raise ValueError(f"unknown admin language {locale!r}")
    user = session.get(User, user_id)
    if user is not None:
        user.locale = locale


def has_users(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(User)))


def one_time_login(session: Session, *, now: datetime, name: str = "admin") -> OneTimeLogin | None:
    """The login `python app.py` prints while nobody has logged in yet; None once someone has.

    With no user, `name` is created with a random password. When the user made that way has
    still not logged in (its password scrolled away, or the start failed before it was read),
    it gets a new one: a password that was printed stays good only until the next start.
    Users made with `users create` keep their chosen passwords: only their name is given.
    """
    if session.scalar(select(User.id).where(User.last_login_at.is_not(None)).limit(1)):
        return None
    generated = session.scalars(
        select(User).where(User.password_generated.is_(True)).order_by(User.id).limit(1)
    ).first()
    if generated is None:
        existing = session.scalar(select(User.name).order_by(User.id).limit(1))
        if existing is not None:
            return OneTimeLogin(existing, None)
        create_or_reset(session, name, password := generate_password(), now=now)
        generated = session.scalars(select(User).where(User.name == name)).one()
    else:
        password = generate_password()
        create_or_reset(session, generated.name, password, now=now)
    generated.password_generated = True
    return OneTimeLogin(generated.name, password)


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
        select(
            User.name,
            User.last_login_at,
            func.coalesce(sessions.c.n, 0),
            User.role,
            User.id,
            User.active,
            User.may_broadcast,
        )
        .outerjoin(sessions, sessions.c.user_id == User.id)
        .order_by(User.name)
    ).all()
    return [
        UserSummary(name, last_login, int(n), Role(role), user_id, active, may_broadcast)
        for name, last_login, n, role, user_id, active, may_broadcast in rows
    ]


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
        select(User.id, User.name, User.role, User.locale, User.may_broadcast)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.token_hash == _token_hash(token),
            UserSession.created_at > now - lifetime,
            # Deactivating ends the sessions too; this holds should one start meanwhile.
            User.active.is_(True),
        )
    ).one_or_none()
    if row is None:
        return None
    return SessionUser(row.id, row.name, Role(row.role), row.locale, row.may_broadcast)


def end_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(token)))


def end_sessions(session: Session, user_id: int) -> int:
    """End every session of `user_id`; returns how many there were."""
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)
