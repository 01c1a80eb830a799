"""A template broadcast and the account's stored templates: looked up when it is created (and
checked against a sample contact) and when a run renders it, so each message is built from
the template as Meta approved it."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from bot.broadcasts.content import BroadcastError, Content
from bot.message_templates import store
from bot.message_templates.model import TemplateMismatch
from bot.message_templates.sending import stored_template


def with_stored(session: Session, content: Content, *, strict: bool = True) -> Content:
    """`content` with its stored template; unchanged for a text, or when no templates are
    stored at all (sent by name, unchecked, as before templates were synced). A template
    not among the stored ones is refused (BroadcastError) when `strict`, else left
    unchecked (a run of a broadcast created before)."""
    if content.template is None or not store.any_stored(session):
        return content
    try:
        template = stored_template(session, content.template, content.language or "")
    except TemplateMismatch as exc:
        if strict:
            raise BroadcastError(str(exc)) from exc
        return content
    return replace(content, stored=template)
