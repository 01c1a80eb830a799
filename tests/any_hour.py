"""Broadcasts at any hour, for tests and benchmarks that run on the wall clock: with the
default quiet hours (9:00-20:00, not on holidays) their outcome would depend on when they run."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

from bot.db import Database
from bot.settings import BroadcastHours, dump_settings
from bot.settings.stored import load_settings, save_settings, seed_demo

ANY_HOUR = BroadcastHours(send_from=time(0, 0), send_until=None, on_closed_holidays=True)


def send_at_any_hour(database: Database) -> None:
    """Keep the stored settings (the demo's if none), with broadcasts allowed at any hour."""
    with database.session() as session:
        settings = load_settings(session)
        if settings is None:
            seed_demo(session)
            settings = load_settings(session)
        assert settings is not None
        save_settings(session, dump_settings(replace(settings, broadcasts=ANY_HOUR)))
