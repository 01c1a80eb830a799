"""Quick replies: saved answers the owner picks in the reply box by a shortcut like "/danke".

The text is plain text with the placeholders of bot.placeholders ("Danke, [Name]!"); it is
rendered for one contact the way the automatic replies are (bot.replies), so the owner sees
and can change the final words before sending them.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

from bot.placeholders import to_jinja
from bot.replies import ReplySettings, build_context, formatting, render_source

SHORTCUT_MAX = 32
# As much as a WhatsApp text takes (bot.whatsapp.payloads.TEXT_MAX).
TEXT_MAX = 4096
# Letters (any alphabet), digits, "-" and "_", starting with a letter or digit.
_SHORTCUT = re.compile(r"[^\W_][\w-]*")


class ShortcutProblem(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    CHARACTERS = "characters"


class ShortcutError(ValueError):
    """A shortcut that cannot be stored; `problem` says why (the pages word it)."""

    def __init__(self, problem: ShortcutProblem) -> None:
        super().__init__(f"invalid shortcut: {problem}")
        self.problem = problem


def clean_shortcut(typed: str) -> str:
    """The shortcut as stored: without the slash, lowercase ("/Danke " → "danke"); raises
    ShortcutError for an empty, too long or oddly spelled one."""
    shortcut = typed.strip().removeprefix("/").strip().lower()
    if not shortcut:
        raise ShortcutError(ShortcutProblem.EMPTY)
    if len(shortcut) > SHORTCUT_MAX:
        raise ShortcutError(ShortcutProblem.TOO_LONG)
    if not _SHORTCUT.fullmatch(shortcut):
        raise ShortcutError(ShortcutProblem.CHARACTERS)
    return shortcut


def typed_prefix(typed: str) -> str:
    """What the owner typed after the slash, as shortcuts are stored: "/Da" → "da"."""
    return typed.strip().removeprefix("/").lower()


def render_quick_reply(
    settings: ReplySettings,
    text: str,
    *,
    now: datetime,
    contact_name: str | None,
    wa_id: str | None,
) -> str:
    """The quick reply's text for one contact, its placeholders filled in as the automatic
    replies fill them; raises what bot.replies.render_source raises."""
    context = build_context(
        settings, now=now, contact_name=contact_name, wa_id=wa_id, message_text=None
    )
    return render_source(to_jinja(text), formatting(settings, context))
