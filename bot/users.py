"""Users of the admin pages: hashed passwords, create or reset, and slowed-down failed logins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.commands import migrated
from bot.db import get_db
from bot.models import User, utcnow

NAME_MAX = 64
PASSWORD_MIN = 8
# The first few mistakes are typos; after that every failure doubles the wait, up to a cap,
# so guessing is hopeless while the owner is never locked out for long.
FREE_FAILURES = 3
FIRST_LOCK = timedelta(seconds=2)
MAX_LOCK = timedelta(minutes=15)
# Checked against when the name is unknown or locked, so every refusal costs the same time
# and the answer does not tell which names exist.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A name or password that cannot be used; str() says why."""


@dataclass(frozen=True)
class LoginResult:
    user_id: int | None  # set when the login succeeded
    session_key: str | None  # changes with the password, so a reset ends old sessions

    @property
    def ok(self) -> bool:
        return self.user_id is not None


REFUSED = LoginResult(user_id=None, session_key=None)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def session_key(user: User) -> str:
    """A short fingerprint of the password hash, kept in the session next to the user id."""
    return user.password_hash[-12:]


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
    """Create user `name` or give it a new password (which also lifts a lock-out).

    True when the user was created. Raises UserError for an unusable name or password.
    """
    name = check_name(name)
    password_hash = hash_password(check_password(password))
    user = session.scalars(select(User).where(User.name == name).with_for_update()).one_or_none()
    if user is None:
        session.add(User(name=name, password_hash=password_hash, created_at=now, failed_logins=0))
        session.flush()
        return True
    user.password_hash = password_hash
    user.failed_logins = 0
    user.locked_until = None
    return False


def has_users(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(User)))


def first_user(session: Session, *, now: datetime, name: str = "admin") -> str | None:
    """With no user yet, create `name` with a random password and return the password."""
    if has_users(session):
        return None
    password = secrets.token_urlsafe(12)
    create_or_reset(session, name, password, now=now)
    return password


def lock_for(failures: int) -> timedelta | None:
    """How long a user is locked after `failures` failed logins in a row."""
    if failures < FREE_FAILURES:
        return None
    # The exponent is capped before it is used: a timedelta overflows long before 2**50.
    doublings = min(failures - FREE_FAILURES, 20)
    return min(FIRST_LOCK * 2**doublings, MAX_LOCK)


def authenticate(session: Session, name: str, password: str, *, now: datetime) -> LoginResult:
    """Check a login; count failures and lock the user out for a while after several.

    Unknown names, wrong passwords and locked users are all refused the same way, after the
    same amount of hashing, so the answer tells nothing about which names exist.
    """
    user = session.scalars(
        select(User).where(User.name == name.strip()).with_for_update()
    ).one_or_none()
    if user is None or (user.locked_until is not None and user.locked_until > now):
        check_password_hash(_DUMMY_HASH, password)
        return REFUSED
    if not check_password_hash(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        lock = lock_for(user.failed_logins)
        user.locked_until = now + lock if lock is not None else None
        return REFUSED
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return LoginResult(user_id=user.id, session_key=session_key(user))


def load(session: Session, user_id: int, key: str) -> User | None:
    """The user of a session, unless the password changed since it logged in."""
    user = session.get(User, user_id)
    if user is None or not secrets.compare_digest(session_key(user), key):
        return None
    return user


users_cli = AppGroup("users", help="Users of the admin pages.")


@users_cli.command("create")
@click.argument("name")
@click.option("--password", help="The password; without it you are asked twice.")
@migrated
def users_create(name: str, password: str | None) -> None:
    """Create user NAME for the admin pages, or give an existing one a new password."""
    try:
        check_name(name)
        pw = password
        if pw is None:
            pw = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        with get_db(current_app).session() as session:
            created = create_or_reset(session, name, pw, now=utcnow())
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "created" if created else "updated (new password, lock-out lifted)"
    click.echo(f"user {name.strip()} {verb}: log in at /admin/login")
