"""The business settings as values: frozen dataclasses, their defaults, and the folding of
words that the opt-out and keyword rules compare by."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import time

from bot.hours import OpeningHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHEN = ("always", "open", "closed")
DEFAULT_TIMEZONE = "Europe/Berlin"
DEFAULT_STOP = ("STOP", "ABMELDEN")
DEFAULT_START = ("START", "ANMELDEN")
DEFAULT_COOLDOWN_HOURS = 12.0
DEFAULT_INACTIVE_DAYS = 14.0
# Away and greeting say "we are closed now" and "welcome": wrong for a message that reaches us
# this late (Meta replaying a backlog after an outage, a phone that was offline).
DEFAULT_STALE_AFTER_MINUTES = 60
# Once a person has answered, "we are closed" or "welcome" from the bot would talk over them.
DEFAULT_HUMAN_PAUSE_MINUTES = 120


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable str -> str mapping that keeps its order (for the templates)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._data: dict[str, str] = dict(items or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


@dataclass(frozen=True)
class KeywordFile:
    """A stored file a keyword rule answers with (the price list): its name as the customer
    sees it, and its SHA-256, the key it is kept under (bot.media.store)."""

    name: str
    sha256: str  # 64 lowercase hex digits


@dataclass(frozen=True)
class KeywordRule:
    match: tuple[str, ...]  # words or phrases, case-insensitive, whole words; () with a pattern
    pattern: str | None  # a regular expression searched in the text
    template: str
    when: str = "always"  # "always", "open" or "closed"
    file: KeywordFile | None = None  # sent with the answer, the answer its caption


@dataclass(frozen=True)
class AwayRule:
    """The away message: at most once per closed period per contact (`once_per_closure`),
    and/or at most every `cooldown_hours` (None: no such limit).

    A settings file that gives `cooldown_hours` and no `once_per_closure` means the cooldown
    alone, as the settings file's contract has it; one that gives neither means once per
    closed period. Without either limit the away message would go with every message.
    """

    template: str = "away"
    cooldown_hours: float | None = None
    once_per_closure: bool = True

    def __post_init__(self) -> None:
        if not self.once_per_closure and self.cooldown_hours is None:
            raise ValueError("an away rule needs once_per_closure or cooldown_hours")


@dataclass(frozen=True)
class GreetingRule:
    template: str = "greeting"
    after_inactive_days: float = DEFAULT_INACTIVE_DAYS


@dataclass(frozen=True)
class FollowUpRule:
    """A WhatsApp template sent once after a closure to customers who got the away message
    and whose 24-hour window closed before the shop reopened ("we're back, how can we help?").

    `params` are Jinja sources, one per template parameter in the template's order, rendered
    for each contact like a broadcast's (`{{ contact.name }}`)."""

    template: str  # the approved template's name as Meta has it
    language: str  # its locale code: de, en_US
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Retention:
    """How many days messages and media are kept; None: for good. The scheduler leader's
    daily pass deletes what is older (bot.retention)."""

    messages_days: int | None = None
    media_days: int | None = None


@dataclass(frozen=True)
class InboxSignals:
    """What the customer sees of the team at work: blue ticks when a person opens an unread
    conversation, and WhatsApp's typing indicator while a person writes a reply (which marks
    the message read as well)."""

    read_receipts: bool = False
    typing_indicator: bool = True


@dataclass(frozen=True)
class BroadcastHours:
    """When broadcasts may go out, in the business time zone: from `send_from` until
    `send_until` (None: until midnight), and on closed holidays and closures only when
    `on_closed_holidays`. Messages a broadcast could not send meanwhile wait for the next
    allowed time."""

    send_from: time = time(9, 0)
    send_until: time | None = time(20, 0)
    on_closed_holidays: bool = False


@dataclass(frozen=True)
class BusinessSettings:
    name: str
    timezone: str
    locale: str
    hours: OpeningHours
    optout_stop: tuple[str, ...] = DEFAULT_STOP
    optout_start: tuple[str, ...] = DEFAULT_START
    keywords: tuple[KeywordRule, ...] = ()
    away: AwayRule | None = None
    greeting: GreetingRule | None = None
    follow_up: FollowUpRule | None = None
    templates: Mapping[str, str] = field(default_factory=FrozenMap)
    stale_after_minutes: int = DEFAULT_STALE_AFTER_MINUTES
    human_pause_minutes: int = DEFAULT_HUMAN_PAUSE_MINUTES  # 0: no pause
    retention: Retention = Retention()
    inbox: InboxSignals = InboxSignals()
    broadcasts: BroadcastHours = BroadcastHours()

    def __post_init__(self) -> None:
        # Accept a plain dict from callers, but keep the value hashable and immutable.
        if not isinstance(self.templates, FrozenMap):
            object.__setattr__(self, "templates", FrozenMap(self.templates))


def fold_text(text: str) -> str:
    """Unicode case folding with composed characters and single spaces: "ÖFFNUNGS  ZEITEN"."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    return " ".join(folded.split())


def bare_word(text: str) -> str:
    """The folded text without surrounding punctuation, symbols (emoji too) and spaces.

    "Stop!", " stop. " and "STOP 🙏" all become "stop"; "stoppen" stays "stoppen".
    """
    folded = fold_text(text)
    start, end = 0, len(folded)
    while start < end and not _is_word_char(folded[start]):
        start += 1
    while end > start and not _is_word_char(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in ("L", "N")
