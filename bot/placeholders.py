"""Reply texts without code: plain text with readable placeholders such as "[Name]".

A shop owner writes "Hallo [Name], wir sind ab [nächste Öffnung] wieder da." and the settings
keep it as the Jinja template the replies render. The two forms convert both ways: a template
made only of text and placeholders reads back as plain text, anything else (an `{% if %}` of
someone's own) is left to the advanced editor. Placeholders are read in German and English
whatever the admin's language, and written in the admin's.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Placeholder(StrEnum):
    NAME = "name"
    NEXT_OPEN = "next_open"
    HOURS = "hours"
    SHOP = "shop"


# What the owner sees and types, per language, in the order the buttons are offered.
LABELS: dict[str, dict[Placeholder, str]] = {
    "de": {
        Placeholder.NAME: "Name",
        Placeholder.NEXT_OPEN: "nächste Öffnung",
        Placeholder.HOURS: "Öffnungszeiten",
        Placeholder.SHOP: "Geschäftsname",
    },
    "en": {
        Placeholder.NAME: "name",
        Placeholder.NEXT_OPEN: "next opening",
        Placeholder.HOURS: "opening hours",
        Placeholder.SHOP: "shop name",
    },
}

# The Jinja each placeholder stands for (variables and filters of bot/replies.py).
JINJA: dict[Placeholder, str] = {
    Placeholder.NAME: "{{ contact.name }}",
    Placeholder.NEXT_OPEN: "{{ next_open | format_opening }}",
    Placeholder.HOURS: "{{ hours | join('\\n') }}",
    Placeholder.SHOP: "{{ business.name }}",
}
# " [Name]": the space goes with the name when a customer has none ("Hallo," not "Hallo ,").
NAME_AFTER_SPACE = "{% if contact.name %} {{ contact.name }}{% endif %}"

_BARE_NAME = re.compile(r"(?<!%\}) " + re.escape(JINJA[Placeholder.NAME]))
_JINJA_START = re.compile(r"\{[{%#]")
_RAW = re.compile(r"\{%-?\s*raw\s*-?%\}(.*?)\{%-?\s*endraw\s*-?%\}", re.S)


def _label_pattern() -> re.Pattern[str]:
    names: dict[str, Placeholder] = {}
    for labels in LABELS.values():
        for placeholder, label in labels.items():
            names[label.casefold()] = placeholder
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"( ?)\[({alternatives})\]", re.I)


_TOKEN = _label_pattern()
_BY_NAME = {label.casefold(): p for labels in LABELS.values() for p, label in labels.items()}


def token(placeholder: Placeholder, lang: str) -> str:
    """The placeholder as the owner sees it: "[nächste Öffnung]"."""
    return f"[{LABELS.get(lang, LABELS['en'])[placeholder]}]"


def _text(segment: str) -> str:
    # Braces the owner typed are text, not Jinja.
    if _JINJA_START.search(segment) or segment.endswith("{"):
        return "{% raw %}" + segment + "{% endraw %}"
    return segment


def to_jinja(text: str) -> str:
    """The reply template for a plain text with placeholders."""
    out: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        out.append(_text(text[last : match.start()]))
        placeholder = _BY_NAME[match.group(2).casefold()]
        if placeholder is Placeholder.NAME and match.group(1):
            out.append(NAME_AFTER_SPACE)
        else:
            out.append(match.group(1) + JINJA[placeholder])
        last = match.end()
    out.append(_text(text[last:]))
    return "".join(out)


def _pieces(lang: str) -> list[tuple[str, str]]:
    # Longest first, so that " [Name]" wins over the bare "[Name]".
    pieces = [(NAME_AFTER_SPACE, " " + token(Placeholder.NAME, lang))]
    pieces += [(jinja, token(p, lang)) for p, jinja in JINJA.items()]
    return pieces


def from_jinja(source: str, lang: str) -> str | None:
    """The template as plain text with placeholders in `lang`, or None when it holds Jinja of
    its own (then only the advanced editor shows it faithfully)."""
    out: list[str] = []
    pieces = _pieces(lang)
    i = 0
    while i < len(source):
        raw = _RAW.match(source, i)
        if raw:
            out.append(raw.group(1))
            i = raw.end()
            continue
        for jinja, plain in pieces:
            if source.startswith(jinja, i):
                out.append(plain)
                i += len(jinja)
                break
        else:
            found = _JINJA_START.search(source, i)
            if found is None:
                out.append(source[i:])
                break
            if found.start() == i:
                return None
            out.append(source[i : found.start()])
            i = found.start()
    text = "".join(out)
    # Text that merely looks like a placeholder would come back as one: not plain, then. A
    # name after a space comes back taking its space along, which only reads better.
    same = _BARE_NAME.sub(lambda _m: NAME_AFTER_SPACE, source)
    return text if to_jinja(text) == same else None


def as_template(text: str) -> str:
    """What an owner typed, as a template: Jinja of their own stays as written (for those who
    want it), plain text with placeholders becomes the Jinja it stands for."""
    return text if _JINJA_START.search(text) else to_jinja(text)


def readable(source: str, lang: str) -> str:
    """A template as the owner reads it: plain text with placeholders where it is one."""
    plain = from_jinja(source, lang)
    return source if plain is None else plain
