"""One's own account: password and language (the team: bot/admin/team_page.py)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext, lazy_gettext
from flask_login import current_user
from werkzeug.wrappers import Response

from bot import audit, users
from bot.admin.blueprint import bp, log_change
from bot.db import get_db
from bot.i18n import language_of

# The languages by their own names: someone who cannot read the page's language finds theirs.
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}
# What the pages say for each refusal of bot.users (its own messages are the CLI's English).
PROBLEMS: dict[users.Problem, Any] = {
    users.Problem.NAME_EMPTY: lazy_gettext("Please enter a name."),
    users.Problem.NAME_TOO_LONG: lazy_gettext("The name is too long: at most 64 characters."),
    users.Problem.NAME_SPACES: lazy_gettext("The name must not contain spaces."),
    users.Problem.NAME_TAKEN: lazy_gettext("There is already a user with this name."),
    users.Problem.PASSWORD_SHORT: lazy_gettext(
        "The new password is too short: at least 8 characters."
    ),
    users.Problem.WRONG_PASSWORD: lazy_gettext("Your current password is not right."),
    users.Problem.UNKNOWN_USER: lazy_gettext("This user does not exist any more."),
    users.Problem.SELF: lazy_gettext("You cannot remove yourself."),
    users.Problem.LAST_OWNER: lazy_gettext(
        "The last owner stays: make another user an owner first."
    ),
    users.Problem.INVITATION: lazy_gettext("This invitation link cannot be used."),
}


def problem_text(error: users.UserError) -> str:
    return str(PROBLEMS[error.problem])


def business_language() -> str:
    from bot.admin import business  # the package imports this module: no import at load

    settings = business()
    return language_of(settings.locale if settings else None)


def _account_page(password_error: str | None = None, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "admin/account.html",
        languages=LANGUAGE_NAMES,
        business_language=LANGUAGE_NAMES[business_language()],
        password_error=password_error,
    )
    return page, status


@bp.get("/account")
def account() -> tuple[str, int]:
    return _account_page()


@bp.post("/account/password")
def account_password() -> Response | tuple[str, int]:
    current = request.form.get("current", "")
    new, repeat = request.form.get("new", ""), request.form.get("repeat", "")
    if new != repeat:
        return _account_page(gettext("The two new passwords are not the same."), 400)
    subject = f"user:{current_user.name}"
    try:
        users.change_password(
            get_db(),
            current_user.id,
            current,
            new,
            keep_token=current_user.token,
            # Which password, never: the entry says that it changed.
            then=lambda session: log_change(
                session, audit.Action.PASSWORD_CHANGED, subject=subject
            ),
        )
    except users.UserError as error:
        return _account_page(problem_text(error), 400)
    flash(gettext("Your password is changed. Everywhere else you are logged out."))
    return redirect(url_for("admin.account"))


@bp.post("/account/language")
def account_language() -> Response:
    chosen = request.form.get("language", "")
    locale = chosen if chosen in LANGUAGE_NAMES else None
    with get_db().session() as session:
        before = current_user.locale
        users.set_locale(session, current_user.id, locale)
        log_change(
            session,
            audit.Action.LANGUAGE_CHANGED,
            subject=f"user:{current_user.name}",
            before=before or "",
            after=locale or "",
        )
    # Said in the language just chosen: this request still speaks the old one.
    with force_locale(locale or business_language()):
        flash(gettext("The language is saved."))
    return redirect(url_for("admin.account"))
