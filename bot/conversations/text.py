"""Searching message texts, the pure half: the LIKE pattern for a search, and the excerpt of
a found message around its match."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIKE_SPECIAL = re.compile(r"([\\%_])")
EXCERPT_WIDTH = 60  # characters of context each side of the match


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's own characters taken literally (the escape character is `\\`)."""
    return "%" + _LIKE_SPECIAL.sub(r"\\\1", text) + "%"


@dataclass(frozen=True)
class Excerpt:
    """A found message's text around the match, in three parts: the page marks the middle one
    (each part is escaped on its own: customer text never becomes markup)."""

    before: str
    match: str
    after: str


def excerpt(text: str, query: str, width: int = EXCERPT_WIDTH) -> Excerpt | None:
    """The first case-insensitive occurrence of `query` in `text` with up to `width`
    characters either side (cut at a word where it can be, "…" where cut); None if absent."""
    query = query.strip()
    if not query:
        return None
    folded = text.casefold()
    at = folded.find(query.casefold())
    if at < 0 or len(folded) != len(text):
        # casefold() can change the length (ß → ss): then fall back to lower(), which keeps it
        # for everything a shop's customers write.
        at = text.lower().find(query.lower())
        if at < 0:
            return None
    end = at + len(query)
    start, stop = max(0, at - width), min(len(text), end + width)
    before, after = _flat(text[start:at]), _flat(text[end:stop])
    if start > 0:
        space = before.find(" ")
        before = "…" + (before[space + 1 :] if 0 <= space < width // 2 else before)
    if stop < len(text):
        space = after.rfind(" ")
        after = (after[:space] if space > width // 2 else after) + "…"
    return Excerpt(before, _flat(text[at:end]), after)


def _flat(text: str) -> str:
    # One line in the list: line breaks become spaces.
    return re.sub(r"\s+", " ", text)
