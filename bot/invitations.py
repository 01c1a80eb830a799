"""Invitations to the team: a one-time link an owner hands over; whoever opens it first chooses
a name and a password and is logged in. Only the token's hash is kept, as for sessions."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot import users
from bot.db import Database
from bot.models import Invitation, User

VALID_FOR = timedelta(days=7)


@dataclass(frozen=True)
class OpenInvitation:
    """An invitation not yet used, as the team page lists it."""

    id: int
    role: users.Role
    may_broadcast: bool
    created_by: str | None
    created_at: datetime
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    session: Session, role: users.Role, *, may_broadcast: bool, by: int | None, now: datetime
) -> tuple[int, str]:
    """A new invitation; returns its id and the token for the link, which is not kept."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        token_hash=_hash(token),
        role=role,
        may_broadcast=may_broadcast or role is users.Role.OWNER,
        created_by_id=by,
        created_at=now,
        expires_at=now + VALID_FOR,
    )
    session.add(invitation)
    session.flush()
    return invitation.id, token


def open_invitations(session: Session, *, now: datetime) -> list[OpenInvitation]:
    """The invitations that can still be used, the newest first."""
    rows = session.execute(
        select(Invitation, User.name)
        .outerjoin(User, User.id == Invitation.created_by_id)
        .where(Invitation.used_at.is_(None), Invitation.expires_at > now)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
    ).all()
    return [
        OpenInvitation(
            inv.id,
            users.Role(inv.role),
            inv.may_broadcast,
            name,
            inv.created_at,
            inv.expires_at,
        )
        for inv, name in rows
    ]


def withdraw(session: Session, invitation_id: int) -> bool:
    """Withdraw an unused invitation: its link no longer works. False when there was none."""
    result = session.execute(
        delete(Invitation).where(Invitation.id == invitation_id, Invitation.used_at.is_(None))
    )
    return bool(getattr(result, "rowcount", 0))


def find_open(session: Session, token: str, *, now: datetime) -> Invitation | None:
    """The invitation of `token` while it can be used; none when used, expired or unknown."""
    found = session.scalars(
        select(Invitation).where(Invitation.token_hash == _hash(token))
    ).one_or_none()
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    return found


def join(
    db: Database,
    token: str,
    name: str,
    password: str,
    *,
    now: datetime,
    lifetime: timedelta,
    then: Callable[[Session, User], None] | None = None,
) -> tuple[users.SessionUser, str]:
    """Join with invitation `token`: a new user, the invitation used, a session started.

    Returns the user and the session's token. `then` runs in the same transaction (the audit
    entry). Raises UserError for a name or password that cannot be used, and for an invitation
    that cannot (Problem.INVITATION).
    """
    name = users.check_name(name)
    # Hashing outside any transaction: on SQLite an open one would hold up every writer.
    password_hash = users.hash_password(users.check_password(password))
    with db.session() as session:
        invitation = session.scalars(
            select(Invitation).where(Invitation.token_hash == _hash(token)).with_for_update()
        ).one_or_none()
        if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
            raise users.UserError("the invitation cannot be used", users.Problem.INVITATION)
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise users.UserError(
                f"there is already a user named {name!r}", users.Problem.NAME_TAKEN
            )
        user = User(
            name=name,
            password_hash=password_hash,
            created_at=now,
            role=invitation.role,
            may_broadcast=invitation.may_broadcast,
            last_login_at=now,
        )
        session.add(user)
        session.flush()
        invitation.used_at = now
        invitation.user_id = user.id
        session_token = users.start_session(session, user.id, now=now, lifetime=lifetime)
        if then is not None:
            then(session, user)
        found = users.SessionUser(
            user.id, user.name, users.Role(user.role), user.locale, user.may_broadcast
        )
    return found, session_token
