"""Label names: when two are the same label, and what a name may be. Pure."""

from __future__ import annotations

LABEL_MAX = 64


def label_key(name: str) -> str:
    """What makes two label names the same label: case does not count, in any script
    ("Stammkunden" is "STAMMKUNDEN", "Straße" is "STRASSE"), so an audience never splits."""
    return name.casefold()


def clean_label(text: str) -> str:
    """A label name as kept: runs of spaces as one, trimmed; "" when there is none.

    Raises ValueError when the name is longer than LABEL_MAX.
    """
    name = " ".join(text.split())
    if len(name) > LABEL_MAX:
        raise ValueError(f"label {name[:20]!r}… is longer than {LABEL_MAX} characters")
    return name
