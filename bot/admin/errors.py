"""The admin's error pages (400, 403, 404, 405, 500 and a refused CSRF token), in its look and
language, each with a way back.

Only paths under /admin get them: the webhook, the health checks and the API keep their plain
answers for the machines that call them.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from bot.admin.blueprint import bp, headers, navigation

log = logging.getLogger("tresen.admin")

# status → (heading, explanation)
PAGES: dict[int, tuple[Any, Any]] = {
    400: (
        lazy_gettext("That did not go through"),
        lazy_gettext("The request could not be read. Go back, reload the page and try again."),
    ),
    403: (
        lazy_gettext("Not allowed"),
        lazy_gettext("Only an owner of the shop can open this page."),
    ),
    404: (
        lazy_gettext("Page not found"),
        lazy_gettext("This page does not exist, or no longer does. Perhaps the link is old."),
    ),
    405: (
        lazy_gettext("That did not go through"),
        lazy_gettext(
            "This address cannot be opened like that. Go back and use the page's buttons."
        ),
    ),
    413: (
        lazy_gettext("The file is too large"),
        lazy_gettext(
            "WhatsApp sends photos up to 5 MB, videos and audio up to 16 MB and documents up "
            "to 100 MB. Go back and choose a smaller file."
        ),
    ),
    500: (
        lazy_gettext("Something went wrong"),
        lazy_gettext(
            "The error has been written to the log. Try again in a moment; if it keeps "
            "happening, tell whoever runs Tresen for you."
        ),
    ),
}
CSRF_HEADING = lazy_gettext("That did not go through")
CSRF_TEXT = lazy_gettext(
    "The form was refused because it came from a page that is too old, for example from "
    "before your last login. Go back, reload the page and try again."
)


def _for_admin() -> bool:
    return request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")


def _wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def _page(status: int, heading: Any, text: Any) -> Response:
    response: Response
    if _wants_json():
        # A refused upload is answered to the reply box's script: it shows the limits too.
        response = jsonify(error=f"{heading}. {text}" if status == 413 else str(heading))
    else:
        response = Response(
            # The menu too: an unknown address belongs to no blueprint, so the admin's
            # context processor did not run.
            render_template(
                "admin/error.html", status=status, heading=heading, text=text, **navigation()
            ),
            mimetype="text/html",
        )
    response.status_code = status
    return headers(response)


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> Response:
        # Flask-WTF's reason ("The CSRF token is missing.") goes to the log, not to the owner.
        log.info("form refused: %s %s", request.path, error.description)
        return _page(400, CSRF_HEADING, CSRF_TEXT)

    def http_error(error: HTTPException) -> Response | HTTPException:
        if not _for_admin() or error.code not in PAGES:
            return error
        heading, text = PAGES[error.code]
        page = _page(error.code, heading, getattr(error, "text", text))
        if error.code == 405 and (allowed := error.get_headers()):
            page.headers.update({k: v for k, v in allowed if k == "Allow"})
        return page

    for code in (400, 403, 404, 405, 413):
        app.register_error_handler(code, http_error)

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError) -> Response | InternalServerError:
        if not _for_admin():
            return error
        try:
            heading, text = PAGES[500]
            return _page(500, heading, text)
        except Exception:  # the page itself failed (the database is gone): the plain answer
            log.exception("the error page failed too")
            return error
