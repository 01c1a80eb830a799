"""Security headers on every answer of the app: the admin's pages, its errors, the login, the
health check, the webhook and the API alike.

Everything a page needs comes from this server (`default-src 'self'`): no script, style, font
or image from another host, no inline script, and no page of ours inside another site's frame.
An answer that sets its own policy keeps it (a media file's sandbox, bot.media.serve).
"""

from __future__ import annotations

from typing import Final

from flask import Flask
from werkzeug.wrappers import Response

# Scripts and styles come from our own static files only: no inline script can run even if
# something customer-supplied ever slipped into a page unescaped.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
REFERRER_POLICY: Final = "same-origin"


def secure(response: Response) -> Response:
    """The policy, `nosniff` and the referrer policy, unless the answer set its own."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", REFERRER_POLICY)
    return response


def init_app(app: Flask) -> None:
    app.after_request(secure)
