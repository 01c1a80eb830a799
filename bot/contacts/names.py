"""Whose name a contact goes by: the shop's, once the shop has set one, else the customer's
WhatsApp profile name. Pure."""

from __future__ import annotations


def name_after_message(name: str | None, by_shop: bool, profile_name: str | None) -> str | None:
    """The contact's name once a message with this profile name came in.

    A name the shop gave (a CSV import, the admin) stays whatever the profile says; the
    profile name is kept beside it (Contact.profile_name). Otherwise the profile name is the
    name, and a message without one leaves the name as it was.
    """
    if by_shop and name:
        return name
    return profile_name or name


def shop_name(text: str | None, limit: int) -> str | None:
    """A name as the shop typed it: runs of spaces as one, cut to `limit`; None when empty."""
    name = " ".join((text or "").split())[:limit]
    return name or None
