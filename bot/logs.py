"""Logging: one line per event on stdout, as Heroku-style platforms collect it."""

from __future__ import annotations

import logging
import sys


def configure() -> None:
    """Set up logging unless the host (gunicorn, pytest) already did."""
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
