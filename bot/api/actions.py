"""What each API route does, in the caller's transaction: the same functions the admin and the
inbound pipeline use (numbers, contact lookup, the 24-hour window, the template check, the
outbox, labels, the consent record), answered as JSON-ready dicts. No Flask here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.api.errors import ApiError, Code
from bot.api.requests import ContactPatch, SendRequest
from bot.contacts.audiences import window_open
from bot.contacts.consent import ConsentSource, opted_out, set_opt_in
from bot.contacts.label_names import clean_label
from bot.contacts.labels import set_labels
from bot.contacts.lookup import NAME_LENGTH, find_or_create_contact
from bot.contacts.names import shop_name
from bot.contacts.numbers import NumberError, to_wa_id
from bot.message_templates.model import TemplateMismatch
from bot.message_templates.sending import checked_components
from bot.models import ApiKey, Contact, Message
from bot.outbound import outbox
from bot.rules import Rule
from bot.whatsapp.payloads import template_payload, text_payload

# As many labels as a person may give a contact in the inbox.
LABELS_MAX = 20


def _wa_id(text: str, region: str) -> str:
    try:
        return to_wa_id(text, region)
    except NumberError as exc:
        raise ApiError(Code.INVALID_NUMBER, str(exc), problem=str(exc.problem)) from None


def contact_of(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ApiError(Code.NOT_FOUND, f"there is no contact {contact_id}")
    return contact


def send(session: Session, wanted: SendRequest, *, region: str, now: datetime) -> Message:
    """Queue a text (inside the 24-hour window only) or a template (checked against the stored
    one) for a contact, created when a number is new; ApiError when it cannot go."""
    if wanted.contact_id is not None:
        contact = contact_of(session, wanted.contact_id)
    else:
        contact = find_or_create_contact(session, _wa_id(wanted.to or "", region), None, now)
    recipient = contact.wa_id or contact.user_id or ""
    try:
        if wanted.template is not None:
            ref = wanted.template
            try:
                components, text = checked_components(
                    session, ref.name, ref.language, ref.params, opted_out=opted_out(contact)
                )
            except TemplateMismatch as exc:
                reason = None if exc.reason is None else str(exc.reason)
                raise ApiError(Code.TEMPLATE_MISMATCH, str(exc), reason=reason) from None
            payload = template_payload(recipient, ref.name, ref.language, components)
        else:
            if not window_open(contact.last_inbound_at, now):
                raise ApiError(
                    Code.OUTSIDE_WINDOW,
                    "more than 24 hours since the customer last wrote: only a template may be "
                    "sent now",
                )
            text = wanted.text
            payload = text_payload(recipient, text or "")
    except ValueError as exc:  # a text too long, an empty template parameter
        raise ApiError(Code.INVALID, str(exc)) from None
    return outbox.enqueue(session, contact, payload, now=now, text=text, rule=Rule.API)


def message_of(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise ApiError(Code.NOT_FOUND, f"there is no message {message_id}")
    return message


def find_contact(session: Session, number: str, region: str) -> Contact | None:
    wa_id = _wa_id(number, region)
    return session.scalar(select(Contact).where(Contact.wa_id == wa_id))


def update_contact(
    session: Session, contact: Contact, patch: ContactPatch, key: ApiKey, now: datetime
) -> None:
    """Change name, labels and opt-in as the admin's contact page does; an opt-in change goes
    into the consent record (source api), and each change into the audit log under the key's
    name."""
    actor = audit.Actor(None, f"API: {key.name}")
    subject = f"contact:{contact.id}"
    if patch.name is not None:
        before = contact.name
        name = shop_name(patch.name, NAME_LENGTH)
        # No name of the shop's: the customer's own WhatsApp name again.
        contact.name = name if name is not None else contact.profile_name
        contact.name_by_shop = name is not None
        if contact.name != before:
            audit.record(session, actor, audit.Action.CONTACT_CHANGED, now, subject=subject)
    if patch.labels is not None:
        try:
            names = [name for name in (clean_label(n) for n in patch.labels) if name]
        except ValueError as exc:
            raise ApiError(Code.INVALID, str(exc), field="labels") from None
        if len(names) > LABELS_MAX:
            raise ApiError(Code.INVALID, f"at most {LABELS_MAX} labels per contact", field="labels")
        before_labels = ", ".join(sorted(label.name for label in contact.labels))
        set_labels(session, contact, names)
        after_labels = ", ".join(sorted(label.name for label in contact.labels))
        if before_labels != after_labels:
            audit.record(
                session,
                actor,
                audit.Action.LABELS_CHANGED,
                now,
                subject=subject,
                before=before_labels,
                after=after_labels,
            )
    if patch.opted_in is not None and set_opt_in(
        session, contact, patch.opted_in, ConsentSource.API, now
    ):
        audit.record(
            session,
            actor,
            audit.Action.OPT_IN_CHANGED,
            now,
            subject=subject,
            after="yes" if patch.opted_in else "no",
        )


def conversation(
    session: Session, contact: Contact, before: int | None, limit: int
) -> tuple[list[Message], int | None]:
    """Up to `limit` of the contact's messages, newest first, older than message `before`;
    and the id to ask `before` next (None: there are no older ones)."""
    query = select(Message).where(Message.contact_id == contact.id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = list(session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
