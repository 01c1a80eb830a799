"""`flask --app app users create|delete|list`: the users of the admin pages."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from bot import audit
from bot.cli.common import clock_now, migrated
from bot.db import get_db
from bot.users import Role, UserError, check_name, create_or_reset, delete_user, summaries

users_cli = AppGroup("users", help="Users of the admin pages.")
# Who the audit log names for changes made here: no user (the page says "command line").
COMMAND_LINE = audit.Actor(None, None)


@users_cli.command("create")
@click.argument("name")
@click.option("--password", help="The password; without it you are asked twice.")
@click.option(
    "--staff",
    is_flag=True,
    help="Staff, who may do everything but manage the team; without it an owner.",
)
@migrated
def users_create(name: str, password: str | None, staff: bool) -> None:
    """Create user NAME for the admin pages (an owner), or give an existing one a new password.

    With --staff the user is staff, an existing one too; without it an existing user keeps
    its role.
    """
    try:
        check_name(name)
        pw = password
        if pw is None:
            pw = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        with get_db(current_app).session() as session:
            role = Role.STAFF if staff else None
            at = clock_now()
            created = create_or_reset(session, name, pw, now=at, role=role)
            # The command line's entry: the new password never, only that one was set.
            action = audit.Action.USER_ADDED if created else audit.Action.PASSWORD_CHANGED
            audit.record(session, COMMAND_LINE, action, at, subject=f"user:{name.strip()}")
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "created" if created else "updated (new password, logged out everywhere)"
    click.echo(f"user {name.strip()} {verb}: log in at /admin/login")


@users_cli.command("delete")
@click.argument("name")
@migrated
def users_delete(name: str) -> None:
    """Remove user NAME; its sessions end at once."""
    try:
        with get_db(current_app).session() as session:
            delete_user(session, name)
            audit.record(
                session,
                COMMAND_LINE,
                audit.Action.USER_DELETED,
                clock_now(),
                subject=f"user:{name.strip()}",
            )
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name.strip()} deleted and logged out everywhere")


@users_cli.command("list")
@migrated
def users_list() -> None:
    """List the users of the admin pages: name, last login, open sessions, role, and
    "deactivated" (or, for staff, "no broadcasts") where that is so."""
    with get_db(current_app).session() as session:
        rows = summaries(session, now=clock_now(), lifetime=current_app.permanent_session_lifetime)
    if not rows:
        click.echo("no users yet: create one with `flask --app app users create NAME`")
        return
    for row in rows:
        last = row.last_login_at
        seen = last.strftime("%Y-%m-%d %H:%M UTC") if last else "never"
        sessions = f"{row.open_sessions} open session(s)"
        # A fifth column only for the exceptions, so the lines of scripts that read four stay.
        extra = "" if row.active else "\tdeactivated"
        if row.active and row.role == Role.STAFF and not row.may_broadcast:
            extra = "\tno broadcasts"
        click.echo(f"{row.name}\tlast login {seen}\t{sessions}\t{row.role}{extra}")
