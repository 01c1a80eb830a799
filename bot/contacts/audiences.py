"""Who a broadcast is for: every opted-in contact, or those with a label. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.contacts.label_names import clean_label

# WhatsApp's customer-service window: free text only within 24 hours of the customer's last
# message; outside it only an approved template may be sent.
SERVICE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Audience:
    label: str | None = None  # None: all opted-in contacts

    def __str__(self) -> str:
        return "all" if self.label is None else f"label:{self.label}"


def parse_audience(text: str) -> Audience:
    """`all` or `label:NAME`; ValueError naming the accepted forms otherwise."""
    value = text.strip()
    if value.lower() == "all":
        return Audience()
    kind, sep, rest = value.partition(":")
    if sep and kind.strip().lower() == "label" and (name := clean_label(rest)):
        return Audience(label=name)
    raise ValueError(f"audience {text!r} is neither `all` nor `label:NAME`")


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether a free text may still be sent: the contact wrote within the last 24 hours."""
    return last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW


def window_start(now: datetime) -> datetime:
    """Contacts who wrote at or after this instant are inside the window at `now`."""
    return now - SERVICE_WINDOW
