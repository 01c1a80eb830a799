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


# The colours a label can have, as the WhatsApp Business app offers a few: a name each (the
# page's CSS knows them), in the order the labels page shows them.
COLORS = ("blue", "green", "yellow", "orange", "red", "purple", "teal", "pink", "grey")

# The labels the WhatsApp Business app starts with, in the business's language (English for
# any other), with their colours.
DEFAULT_LABELS = {
    "de": (
        ("Neuer Kunde", "blue"),
        ("Neue Bestellung", "yellow"),
        ("Zahlung ausstehend", "orange"),
        ("Bezahlt", "green"),
        ("Bestellung abgeschlossen", "teal"),
    ),
    "en": (
        ("New customer", "blue"),
        ("New order", "yellow"),
        ("Pending payment", "orange"),
        ("Paid", "green"),
        ("Order complete", "teal"),
    ),
}


def default_labels(locale: str) -> tuple[tuple[str, str], ...]:
    """The starting labels (name, colour) for a business in this locale (`de_DE`, `en`)."""
    return DEFAULT_LABELS.get(locale.replace("-", "_").split("_")[0].lower(), DEFAULT_LABELS["en"])


def color_of(label_id: int, color: str | None) -> str:
    """A label's colour: its own, else one of COLORS by its id, so that it keeps one."""
    return color if color in COLORS else COLORS[label_id % len(COLORS)]
