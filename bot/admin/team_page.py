"""The team (owners only, see blueprint.ACCESS): add, invite, change, deactivate and remove
users; and the page where an invited person joins."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot import audit, invitations, users
from bot.admin.account import problem_text
from bot.admin.auth import admin_user
from bot.admin.blueprint import bp, log_change, now
from bot.db import get_db
from bot.models import User


def _team_page(
    created: dict[str, str] | None = None,
    invited: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    at = now()
    with get_db().session() as db_session:
        team = users.summaries(db_session, now=at, lifetime=current_app.permanent_session_lifetime)
        waiting = invitations.open_invitations(db_session, now=at)
    owners = sum(1 for user in team if user.role is users.Role.OWNER and user.active)
    rows = []
    for user in team:
        me = user.id == current_user.id
        last_owner = user.role is users.Role.OWNER and user.active and owners <= 1
        rows.append(
            {
                "summary": user,
                "is_me": me,
                "removable": not me and not last_owner,
                "deactivatable": user.active and not me and not last_owner,
                "role_fixed": last_owner,
            }
        )
    # A refused form keeps what was typed; an added user's form starts empty again.
    typed = request.form if error else {}
    form = {"name": typed.get("name", ""), "role": typed.get("role", "staff")}
    page = render_template(
        "admin/users.html",
        team=rows,
        created=created,
        invited=invited,
        invitations=waiting,
        error=error,
        form=form,
    )
    return page, status


def _role() -> users.Role:
    return users.Role.OWNER if request.form.get("role") == "owner" else users.Role.STAFF


def _may_broadcast() -> bool:
    return request.form.get("may_broadcast") == "1"


@bp.get("/users", endpoint="users")
def users_page() -> tuple[str, int]:
    return _team_page()


@bp.post("/users")
def users_add() -> tuple[str, int]:
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    role = _role()
    generated = not password
    if generated:
        password = users.generate_password()

    def logged(db_session: Session, user: User) -> None:
        log_change(
            db_session, audit.Action.USER_ADDED, subject=f"user:{user.name}", after=str(role)
        )

    try:
        users.add_user(get_db(), name, password, role=role, now=now(), then=logged)
    except users.UserError as error:
        return _team_page(error=problem_text(error), status=400)
    # Shown on this answer only, never stored or flashed (a flash lives in the cookie).
    created = {"name": name, "password": password if generated else ""}
    return _team_page(created=created)


@bp.post("/users/<int:user_id>/remove")
def users_remove(user_id: int) -> Response | tuple[str, int]:
    try:
        with get_db().session() as db_session:
            name = users.remove_user(db_session, user_id, by=current_user.id)
            log_change(db_session, audit.Action.USER_DELETED, subject=f"user:{name}")
    except users.UserError as error:
        return _team_page(error=problem_text(error), status=400)
    flash(gettext("%(name)s is removed and logged out everywhere.", name=name))
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/active")
def users_active(user_id: int) -> Response | tuple[str, int]:
    active = request.form.get("active") == "1"
    action = audit.Action.USER_REACTIVATED if active else audit.Action.USER_DEACTIVATED
    try:
        with get_db().session() as db_session:
            name = users.set_active(db_session, user_id, active, by=current_user.id)
            log_change(db_session, action, subject=f"user:{name}")
    except users.UserError as error:
        return _team_page(error=problem_text(error), status=400)
    if active:
        flash(gettext("%(name)s can log in again.", name=name))
    else:
        flash(gettext("%(name)s is deactivated and logged out everywhere.", name=name))
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/role")
def users_role(user_id: int) -> Response | tuple[str, int]:
    try:
        with get_db().session() as db_session:
            name, before, after = users.set_role(db_session, user_id, _role(), _may_broadcast())
            if before == after:
                audit.nothing_changed()
            else:
                log_change(
                    db_session,
                    audit.Action.USER_CHANGED,
                    subject=f"user:{name}",
                    before=before,
                    after=after,
                )
    except users.UserError as error:
        return _team_page(error=problem_text(error), status=400)
    flash(gettext("The permissions of %(name)s are saved.", name=name))
    return redirect(url_for("admin.users"))


# --- invitations --------------------------------------------------------------------------------


@bp.post("/users/invitations")
def invitation_create() -> tuple[str, int]:
    role = _role()
    with get_db().session() as db_session:
        invitation_id, token = invitations.create(
            db_session,
            role,
            may_broadcast=_may_broadcast(),
            by=current_user.id,
            now=now(),
        )
        # The token never: only that an invitation of this kind was made.
        log_change(
            db_session,
            audit.Action.USER_INVITED,
            subject=f"invitation:{invitation_id}",
            after=users.permissions(role, _may_broadcast()),
        )
    # The link is on this answer only: its token is stored nowhere but as a hash.
    link = url_for("admin.join", token=token, _external=True)
    invited = {"link": link, "role": role, "days": invitations.VALID_FOR.days}
    return _team_page(invited=invited)


@bp.post("/users/invitations/<int:invitation_id>/withdraw")
def invitation_withdraw(invitation_id: int) -> Response:
    with get_db().session() as db_session:
        if invitations.withdraw(db_session, invitation_id):
            log_change(
                db_session,
                audit.Action.INVITATION_WITHDRAWN,
                subject=f"invitation:{invitation_id}",
            )
            withdrawn = True
        else:
            audit.nothing_changed()
            withdrawn = False
    if withdrawn:
        flash(gettext("The invitation is withdrawn: its link no longer works."))
    return redirect(url_for("admin.users"))


# --- joining -----------------------------------------------------------------------------------


def _join_page(token: str, error: str | None = None, status: int = 200) -> tuple[str, int]:
    with get_db().session() as db_session:
        found = invitations.find_open(db_session, token, now=now())
        role = users.Role(found.role) if found is not None else None
    if role is None:
        # Used, expired, withdrawn or never made: the same answer, so that a guess learns
        # nothing.
        return render_template("admin/join_invalid.html"), 404
    name = request.form.get("name", "") if error else ""
    page = render_template("admin/join.html", token=token, role=role, error=error, name=name)
    return page, status


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str) -> Response | tuple[str, int]:
    if request.method == "GET":
        return _join_page(token)
    password = request.form.get("password", "")
    if password != request.form.get("repeat", ""):
        return _join_page(token, gettext("The two passwords are not the same."), 400)

    def logged(db_session: Session, user: User) -> None:
        audit.record(
            db_session,
            audit.Actor(user.id, user.name),
            audit.Action.USER_JOINED,
            now(),
            subject=f"user:{user.name}",
            after=users.permissions(users.Role(user.role), user.may_broadcast),
        )

    try:
        joined, session_token = invitations.join(
            get_db(),
            token,
            request.form.get("name", ""),
            password,
            now=now(),
            lifetime=current_app.permanent_session_lifetime,
            then=logged,
        )
    except users.UserError as error:
        if error.problem is users.Problem.INVITATION:
            return render_template("admin/join_invalid.html"), 404
        return _join_page(token, problem_text(error), 400)
    if current_user.is_authenticated:  # someone else was logged in in this browser
        with get_db().session() as db_session:
            users.end_session(db_session, current_user.token)
    session.clear()  # nothing from before the login survives it
    session.permanent = True
    login_user(admin_user(joined, session_token))
    flash(gettext("Welcome, %(name)s: you are now part of the team.", name=joined.name))
    return redirect(url_for("admin.inbox"))
