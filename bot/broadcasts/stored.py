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
    """`content` with its stored template; unchanged for a text, or for a template not
    stored here while the account's templates are not known from Meta (sent by name,
    unchecked, as before templates were synced). A template not among those Meta lists is
    refused (BroadcastError) when `strict`, else left unchecked (a run of a broadcast
    created before)."""
    if content.template is None:
        return content
    row = store.find(session, content.template, content.language or "")
    if row is None:
        if strict and store.known_from_meta(session):
            try:
                stored_template(session, content.template, content.language or "")
            except TemplateMismatch as exc:
                raise BroadcastError(str(exc)) from exc
        return content
    return replace(content, stored=store.template_of(row))
