"""What an API key may do. Pure."""

from __future__ import annotations

import enum


class Scope(enum.StrEnum):
    """What a key may do, stored in ApiKey.scopes."""

    SEND = "send"  # send texts and templates
    CONTACTS = "contacts"  # look up and change contacts
    MESSAGES = "messages"  # read conversations and message statuses
