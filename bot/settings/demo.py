"""The demo business, a flower shop in Munich: the settings a fresh installation starts with,
kept as demo.yaml beside this module."""

from __future__ import annotations

from importlib import resources

DEMO_SETTINGS = resources.files("bot.settings").joinpath("demo.yaml").read_text(encoding="utf-8")
