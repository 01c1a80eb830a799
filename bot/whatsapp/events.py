"""Typed events of a WhatsApp Cloud API notification, and parse() that reads them from the JSON.

Pure: no Flask, no database. Untrusted JSON is read through bot.wild, so a wrong shape is a
PayloadError (the web layer answers 400) and never any other exception.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias

from bot.wild import PayloadError, Wild

__all__ = [
    "Context",
    "Edit",
    "ErrorInfo",
    "Event",
    "GraphErrorInfo",
    "Location",
    "Malformed",
    "Media",
    "Message",
    "MessageType",
    "Order",
    "PayloadError",
    "ProductItem",
    "Reaction",
    "Referral",
    "ReferredProduct",
    "Reply",
    "Revoke",
    "SharedContact",
    "SharedPhone",
    "Status",
    "StatusKind",
    "System",
    "TemplateButton",
    "TemplateCategoryUpdate",
    "TemplateQualityUpdate",
    "TemplateStatusUpdate",
    "Unhandled",
    "UserPreference",
    "parse",
    "plausible",
    "read_contacts",
    "read_location",
]

WHATSAPP_OBJECT = "whatsapp_business_account"


class MessageType(enum.StrEnum):
    """The `type` of an inbound message; UNKNOWN for types Meta adds after this was written."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    REQUEST_WELCOME = "request_welcome"
    UNSUPPORTED = "unsupported"
    EDIT = "edit"
    REVOKE = "revoke"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> MessageType:
        return cls.UNKNOWN


class StatusKind(enum.StrEnum):
    """The `status` of an outbound message; UNKNOWN for values Meta adds later."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    DELETED = "deleted"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> StatusKind:
        return cls.UNKNOWN


MEDIA_TYPES = frozenset(
    {
        MessageType.IMAGE,
        MessageType.AUDIO,
        MessageType.VIDEO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    }
)


# -- sub-objects -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphErrorInfo:
    """One entry of an `errors` list (on a failed status, an unsupported message, a value)."""

    code: int | None
    title: str | None
    message: str | None
    details: str | None  # error_data.details: the most specific explanation Meta gives


ErrorInfo = GraphErrorInfo  # shorter name used by storage


@dataclass(frozen=True, slots=True)
class ReferredProduct:
    catalog_id: str
    product_retailer_id: str


@dataclass(frozen=True, slots=True)
class Context:
    """What a message refers to: the message it replies to, forwarding, a product asked about."""

    message_id: str | None  # the replied-to message (context.id)
    from_id: str | None  # who sent the replied-to message (context.from)
    forwarded: bool  # also true when frequently_forwarded
    frequently_forwarded: bool  # forwarded more than five times
    referred_product: ReferredProduct | None


@dataclass(frozen=True, slots=True)
class Referral:
    """The Click to WhatsApp ad (or post) the customer came from."""

    source_url: str | None
    source_id: str | None
    source_type: str | None
    headline: str | None
    body: str | None
    media_type: str | None
    image_url: str | None
    video_url: str | None
    thumbnail_url: str | None
    ctwa_clid: str | None


@dataclass(frozen=True, slots=True)
class Media:
    """An image, audio, video, document or sticker; `id` is the media id for the Graph API."""

    id: str
    mime_type: str | None
    sha256: str | None
    caption: str | None  # image, video, document
    filename: str | None  # document
    url: str | None
    voice: bool | None  # audio: recorded in the app rather than attached as a file
    animated: bool | None  # sticker


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None
    address: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class SharedPhone:
    phone: str | None
    wa_id: str | None
    type: str | None  # CELL, HOME, WORK, ...


@dataclass(frozen=True, slots=True)
class SharedContact:
    """A contact card the customer shared (not the customer themselves)."""

    name: str | None  # formatted_name, or first and last name
    phones: tuple[SharedPhone, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """The customer's choice in an interactive message: a reply button or a list row."""

    kind: str  # "button_reply" or "list_reply"
    id: str
    title: str
    description: str | None  # list rows only


@dataclass(frozen=True, slots=True)
class TemplateButton:
    """A quick-reply button of a template message, pressed."""

    payload: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Reaction:
    message_id: str  # the message reacted to
    emoji: str | None  # None: the customer removed their reaction

    @property
    def removed(self) -> bool:
        return self.emoji is None


@dataclass(frozen=True, slots=True)
class ProductItem:
    product_retailer_id: str
    quantity: int
    item_price: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Order:
    catalog_id: str
    product_items: tuple[ProductItem, ...]
    text: str | None


@dataclass(frozen=True, slots=True)
class System:
    """A notice from WhatsApp about the customer, e.g. a changed phone number."""

    body: str | None
    type: str | None  # user_changed_number, user_changed_user_id, customer_identity_changed, ...
    new_wa_id: str | None  # system.wa_id: the new phone number's WhatsApp id


@dataclass(frozen=True, slots=True)
class Edit:
    """The customer edited an earlier message; the Message's content fields hold the new version."""

    original_message_id: str
    type: MessageType  # type of the new version
    type_name: str


@dataclass(frozen=True, slots=True)
class Revoke:
    """The customer deleted an earlier message for everyone."""

    original_message_id: str


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A message a customer sent to the business.

    The sender is `from_wa_id` (phone number) and/or `from_user_id` (business-scoped user id,
    BSUID); at least one is set. `text` is the human-readable text for rules and display: the
    body of a text, the caption of media, the title of the chosen button or list row, the text
    of a template button, the emoji of a reaction, the text of an order; None otherwise. The
    typed sub-object matching `type` holds the rest. `raw` is the message's own JSON object
    (the dict that was parsed, not a copy).
    """

    id: str
    from_wa_id: str | None
    from_user_id: str | None
    profile_name: str | None
    phone_number_id: str
    display_phone_number: str | None
    timestamp: datetime
    type: MessageType
    type_name: str
    text: str | None
    context: Context | None = None
    referral: Referral | None = None
    errors: tuple[GraphErrorInfo, ...] = ()
    group_id: str | None = None
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    reply: Reply | None = None
    button: TemplateButton | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    edit: Edit | None = None
    revoke: Revoke | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sender_id(self) -> str:
        """The phone number when known, else the BSUID: whichever Meta gave."""
        sender = self.from_wa_id or self.from_user_id
        assert sender is not None  # parse() guarantees one of the two
        return sender


@dataclass(frozen=True, slots=True)
class Status:
    """A delivery status of a message the business sent."""

    message_id: str
    status: StatusKind
    timestamp: datetime
    recipient_id: str | None
    recipient_user_id: str | None
    phone_number_id: str
    errors: tuple[GraphErrorInfo, ...] = ()
    conversation_id: str | None = None
    pricing_category: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UserPreference:
    """The customer stopped or resumed marketing messages from inside WhatsApp."""

    wa_id: str | None
    user_id: str | None
    category: str  # "marketing_messages"
    value: str  # "stop", "resume" (and "signup" for sign-up links)
    timestamp: datetime
    detail: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The business number the preference is about, when the notification names it.
    phone_number_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unhandled:
    """A change of a webhook field this server does not act on (account_update, ...)."""

    field: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """An event (or a whole change) of the wrong shape, skipped so that the others of its
    notification are kept: Meta would deliver it the same way again, so nothing is gained by
    refusing the batch. `raw` is the JSON that could not be read."""

    path: str
    problem: str
    raw: Any = field(compare=False, repr=False)

    @classmethod
    def of(cls, error: PayloadError, raw: Wild) -> Malformed:
        return cls(path=error.path, problem=error.problem, raw=raw.value)


@dataclass(frozen=True, slots=True)
class TemplateStatusUpdate:
    """Meta approved, rejected, paused, disabled … one of the account's templates
    (`message_template_status_update`). `event` is Meta's word as it came (APPROVED, PAUSED,
    REINSTATED, …); `template_id` Meta's template id, as text like the stored `meta_id`."""

    account_id: str  # the WhatsApp Business Account (the entry's id)
    template_id: str
    name: str
    language: str  # as Meta writes it: de, en_US (or en-US)
    timestamp: datetime
    event: str
    reason: str | None = None  # Meta's code: NONE, INVALID_FORMAT, …
    category: str | None = None
    # Meta's words about it, where given: why it was rejected, locked or flagged.
    detail: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TemplateCategoryUpdate:
    """Meta moved a template to another category (`template_category_update`), or announces
    that it will: then `correct_category` is set and `previous_category` is not."""

    account_id: str
    template_id: str
    name: str
    language: str
    timestamp: datetime
    new_category: str
    previous_category: str | None = None
    correct_category: str | None = None  # an impending change: the category it will get
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def impending(self) -> bool:
        return self.previous_category is None and self.correct_category is not None


@dataclass(frozen=True, slots=True)
class TemplateQualityUpdate:
    """A template's quality score changed (`message_template_quality_update`): GREEN, YELLOW,
    RED or UNKNOWN."""

    account_id: str
    template_id: str
    name: str
    language: str
    timestamp: datetime
    new_quality: str
    previous_quality: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


TemplateUpdate: TypeAlias = TemplateStatusUpdate | TemplateCategoryUpdate | TemplateQualityUpdate

Event: TypeAlias = (
    Message
    | Status
    | UserPreference
    | TemplateStatusUpdate
    | TemplateCategoryUpdate
    | TemplateQualityUpdate
    | Unhandled
)


# -- parsing -----------------------------------------------------------------------------


def parse(doc: object) -> tuple[Event | Malformed, ...]:
    """Every event of a notification body (already decoded from JSON), in document order.

    Reads every entry and every change. A document for another `object` is not ours to
    handle and gives (). An entry, change, message, status or preference of the wrong shape is
    a Malformed event in its place; when nothing else could be read, or the envelope itself is
    wrong, it raises PayloadError, and nothing else.
    """
    root = Wild(doc)
    if root["object"].as_str() != WHATSAPP_OBJECT:
        return ()
    events: list[Event | Malformed] = []
    for entry in root["entry"].as_list():
        try:
            changes = entry["changes"].as_list()
        except PayloadError as exc:
            events.append(Malformed.of(exc, entry))
            continue
        for change in changes:
            try:
                events.extend(_change(change, entry))
            except PayloadError as exc:
                events.append(Malformed.of(exc, change))
    if events and all(isinstance(e, Malformed) for e in events):
        first = events[0]
        assert isinstance(first, Malformed)
        raise PayloadError(first.path, first.problem)
    return tuple(events)


def _change(change: Wild, entry: Wild) -> Iterator[Event | Malformed]:
    kind = change["field"].as_str()
    if kind == "messages":
        yield from _messages_value(change["value"])
    elif kind == "user_preferences":
        yield from _preferences_value(change["value"])
    elif kind in _TEMPLATE_FIELDS:
        yield _TEMPLATE_FIELDS[kind](change["value"], entry)
    else:
        # Other fields are not acted on, whatever their value looks like.
        yield Unhandled(field=kind)


def _messages_value(value: Wild) -> Iterator[Event | Malformed]:
    value.as_object()
    messages = value.opt_list("messages")
    statuses = value.opt_list("statuses")
    if not messages and not statuses:
        return
    metadata = value["metadata"]
    phone_number_id = metadata["phone_number_id"].as_str()
    display_phone_number = metadata.opt_str("display_phone_number")
    contacts = [_Sender.read(c) for c in value.opt_list("contacts")]
    # Errors on the value concern its messages (e.g. a payload Meta could not render).
    value_errors = tuple(_error(e) for e in value.opt_list("errors"))
    for msg in messages:
        try:
            event: Event | Malformed = _message(
                msg, contacts, phone_number_id, display_phone_number, value_errors
            )
        except PayloadError as exc:
            event = Malformed.of(exc, msg)
        yield event
    for status in statuses:
        try:
            event = _status(status, phone_number_id)
        except PayloadError as exc:
            event = Malformed.of(exc, status)
        yield event


# -- template notifications (entry.id is the WhatsApp Business Account) ---------------------


def _template_head(value: Wild, entry: Wild) -> dict[str, Any]:
    """What every template notification names: the account, the template, and when."""
    value.as_object()
    time = entry.get("time")
    return {
        "account_id": _id_text(entry["id"]),
        "template_id": _id_text(value["message_template_id"]),
        "name": value["message_template_name"].as_str(),
        "language": value["message_template_language"].as_str(),
        # Meta puts the time on the entry; without one the processor takes the arrival
        # (plausible() reads the epoch as a wrong clock).
        "timestamp": _timestamp(time) if time is not None else datetime.fromtimestamp(0, tz=UTC),
        "raw": value.as_object(),
    }


def _id_text(value: Wild) -> str:
    """A Graph id: Meta writes a template's as a number, an account's as text; kept as text."""
    raw = value.value
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return str(raw)
    text = value.as_str()
    if not text.isdigit() or len(text) > 64:
        raise PayloadError(value.path, "expected an id of digits")
    return text


def _template_status(value: Wild, entry: Wild) -> TemplateStatusUpdate:
    return TemplateStatusUpdate(
        **_template_head(value, entry),
        event=value["event"].as_str(),
        reason=value.opt_str("reason"),
        category=value.opt_str("message_template_category"),
        detail=_template_detail(value),
    )


def _template_detail(value: Wild) -> str | None:
    rejection = value.get("rejection_info")
    if rejection is not None and (reason := rejection.opt_str("reason")):
        return reason
    other = value.get("other_info")
    if other is not None:
        return other.opt_str("description") or other.opt_str("title")
    return None


def _template_category(value: Wild, entry: Wild) -> TemplateCategoryUpdate:
    return TemplateCategoryUpdate(
        **_template_head(value, entry),
        new_category=value["new_category"].as_str(),
        previous_category=value.opt_str("previous_category"),
        correct_category=value.opt_str("correct_category"),
    )


def _template_quality(value: Wild, entry: Wild) -> TemplateQualityUpdate:
    return TemplateQualityUpdate(
        **_template_head(value, entry),
        new_quality=value["new_quality_score"].as_str(),
        previous_quality=value.opt_str("previous_quality_score"),
    )


_TEMPLATE_FIELDS: dict[str, Callable[[Wild, Wild], Event]] = {
    "message_template_status_update": _template_status,
    "template_category_update": _template_category,
    "message_template_quality_update": _template_quality,
}


def _preferences_value(value: Wild) -> Iterator[Event | Malformed]:
    value.as_object()
    contacts = [_Sender.read(c) for c in value.opt_list("contacts")]
    metadata = value.get("metadata")
    number = metadata.opt_str("phone_number_id") if metadata is not None else None
    for pref in value.opt_list("user_preferences"):
        try:
            event: Event | Malformed = _preference(pref, contacts, number)
        except PayloadError as exc:
            event = Malformed.of(exc, pref)
        yield event


def _preference(pref: Wild, contacts: list[_Sender], number: str | None) -> UserPreference:
    wa_id = pref.opt_str("wa_id")
    user_id = pref.opt_str("user_id")
    if wa_id is None and user_id is None:
        raise PayloadError(pref.path, "expected a wa_id or a user_id")
    sender = _matching_contact(contacts, wa_id, user_id)
    return UserPreference(
        wa_id=wa_id,
        user_id=user_id or (sender.user_id if sender else None),
        category=pref["category"].as_str(),
        value=pref["value"].as_str(),
        timestamp=_timestamp(pref["timestamp"]),
        detail=pref.opt_str("detail"),
        raw=pref.as_object(),
        phone_number_id=number,
    )


@dataclass(frozen=True, slots=True)
class _Sender:
    """An entry of a value's `contacts` list: who the messages in that value are from."""

    wa_id: str | None
    user_id: str | None
    name: str | None

    @classmethod
    def read(cls, contact: Wild) -> _Sender:
        profile = contact.get("profile")
        return cls(
            wa_id=contact.opt_str("wa_id"),
            user_id=contact.opt_str("user_id"),
            name=profile.opt_str("name") if profile is not None else None,
        )


def _matching_contact(
    contacts: list[_Sender], wa_id: str | None, user_id: str | None
) -> _Sender | None:
    """The contacts[] entry for a sender: matched by wa_id or user_id.

    If nothing matches by id but there is exactly one entry and none of its ids contradicts
    the sender's, that one is taken: Meta sends one contact per message and may leave an id
    out on either side. A contradicting id is never merged, so a name or BSUID is never
    attached to the wrong customer.
    """
    for contact in contacts:
        if (wa_id and contact.wa_id == wa_id) or (user_id and contact.user_id == user_id):
            return contact
    if len(contacts) == 1:
        (only,) = contacts
        wa_conflict = wa_id is not None and only.wa_id is not None and only.wa_id != wa_id
        user_conflict = user_id is not None and only.user_id is not None and only.user_id != user_id
        if not wa_conflict and not user_conflict:
            return only
    return None


def _message(
    msg: Wild,
    contacts: list[_Sender],
    phone_number_id: str,
    display_phone_number: str | None,
    value_errors: tuple[GraphErrorInfo, ...],
) -> Message:
    raw = msg.as_object()
    from_wa_id = msg.opt_str("from")
    from_user_id = msg.opt_str("from_user_id")
    if from_wa_id is None and from_user_id is None:
        raise PayloadError(msg.path, "expected a sender: 'from' or 'from_user_id'")
    sender = _matching_contact(contacts, from_wa_id, from_user_id)
    type_name = msg["type"].as_str()
    msg_type = MessageType(type_name)

    # An edit carries the new version as a message of its own: its content fills the
    # content fields, so rules and display see the edited text.
    content = msg
    edit = None
    if msg_type is MessageType.EDIT:
        edit_obj = msg.get("edit")
        if edit_obj is not None:
            content = edit_obj["message"]
            inner_name = content["type"].as_str()
            edit = Edit(
                original_message_id=edit_obj["original_message_id"].as_str(),
                type=MessageType(inner_name),
                type_name=inner_name,
            )
    content_type = edit.type if edit is not None else msg_type
    parts = _content(content, content_type)
    text = _text_of(content_type, parts)

    context_obj = msg.get("context") or (content.get("context") if content is not msg else None)
    revoke_obj = msg.get("revoke") if msg_type is MessageType.REVOKE else None
    return Message(
        id=msg["id"].as_str(),
        from_wa_id=from_wa_id,
        from_user_id=from_user_id or (sender.user_id if sender else None),
        profile_name=sender.name if sender else None,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        timestamp=_timestamp(msg["timestamp"]),
        type=msg_type,
        type_name=type_name,
        text=text,
        context=_context(context_obj) if context_obj is not None else None,
        referral=_referral(r) if (r := msg.get("referral")) is not None else None,
        errors=tuple(_error(e) for e in msg.opt_list("errors")) + value_errors,
        group_id=msg.opt_str("group_id"),
        edit=edit,
        revoke=(
            Revoke(original_message_id=revoke_obj["original_message_id"].as_str())
            if revoke_obj is not None
            else None
        ),
        raw=raw,
        **parts,
    )


def _content(msg: Wild, msg_type: MessageType) -> dict[str, Any]:
    """The typed sub-object of a message, as keyword arguments for Message.

    The object named by the type is optional (Meta leaves it out of some messages it could
    not render, see the errors); when present it must have the right shape.
    """
    if msg_type is MessageType.CONTACTS:
        return {"contacts": tuple(_shared_contact(c) for c in msg.opt_list("contacts"))}
    found = _PARTS.get(msg_type)
    if found is None:
        return {}
    name, read = found
    sub = msg.get(msg_type.value)
    part = read(sub) if sub is not None else None
    return {name: part} if part is not None else {}


def _text_of(msg_type: MessageType, parts: dict[str, Any]) -> str | None:
    """The human text of a message: body, caption, chosen title, button text, emoji, order text.

    Pops the text body out of `parts` (it has no sub-object of its own). Empty text is None.
    """
    text: str | None = parts.pop("_text", None)
    if msg_type is MessageType.TEXT:
        pass
    elif (media := parts.get("media")) is not None:
        text = media.caption
    elif (reply := parts.get("reply")) is not None:
        text = reply.title
    elif (button := parts.get("button")) is not None:
        text = button.text
    elif (reaction := parts.get("reaction")) is not None:
        text = reaction.emoji
    elif (order := parts.get("order")) is not None:
        text = order.text
    return text or None


def _media(media: Wild) -> Media:
    return Media(
        id=media["id"].as_str(),
        mime_type=media.opt_str("mime_type"),
        sha256=media.opt_str("sha256"),
        caption=media.opt_str("caption"),
        filename=media.opt_str("filename"),
        url=media.opt_str("url"),
        voice=media.opt_bool("voice"),
        animated=media.opt_bool("animated"),
    )


def _text_body(text: Wild) -> str:
    return text["body"].as_str()


def _button(button: Wild) -> TemplateButton:
    return TemplateButton(payload=button.opt_str("payload"), text=button["text"].as_str())


def _reaction(reaction: Wild) -> Reaction:
    # An empty or missing emoji is how Meta reports a removed reaction.
    emoji = reaction.opt_str("emoji") or None
    return Reaction(message_id=reaction["message_id"].as_str(), emoji=emoji)


def _system(system: Wild) -> System:
    return System(
        body=system.opt_str("body"),
        type=system.opt_str("type"),
        new_wa_id=system.opt_str("wa_id"),
    )


def _location(loc: Wild) -> Location:
    return Location(
        latitude=loc["latitude"].as_float(),
        longitude=loc["longitude"].as_float(),
        name=loc.opt_str("name"),
        address=loc.opt_str("address"),
        url=loc.opt_str("url"),
    )


def read_location(value: object) -> Location | None:
    """A stored message's `location` object (its raw JSON) as a Location; None if it is not one."""
    try:
        return _location(Wild(value, "location"))
    except PayloadError:
        return None


def read_contacts(value: object) -> tuple[SharedContact, ...]:
    """A stored message's `contacts` list (its raw JSON) as cards; the cards that read, only."""
    cards = []
    for item in value if isinstance(value, list) else []:
        try:
            cards.append(_shared_contact(Wild(item, "contacts")))
        except PayloadError:
            continue
    return tuple(cards)


def _shared_contact(contact: Wild) -> SharedContact:
    name = contact.get("name")
    display = None
    if name is not None:
        display = name.opt_str("formatted_name")
        if not display:
            given = [name.opt_str("first_name"), name.opt_str("last_name")]
            display = " ".join(p for p in given if p) or None
    phones = tuple(
        SharedPhone(phone=p.opt_str("phone"), wa_id=p.opt_str("wa_id"), type=p.opt_str("type"))
        for p in contact.opt_list("phones")
    )
    return SharedContact(name=display, phones=phones)


def _reply(interactive: Wild) -> Reply | None:
    # Only the two reply kinds carry a choice; flow replies (nfm_reply) and others are kept
    # in raw without a Reply.
    kind = interactive["type"].as_str()
    if kind not in ("button_reply", "list_reply"):
        return None
    chosen = interactive[kind]
    return Reply(
        kind=kind,
        id=chosen["id"].as_str(),
        title=chosen["title"].as_str(),
        description=chosen.opt_str("description"),
    )


def _order(order: Wild) -> Order:
    items = []
    for item in order["product_items"].as_list():
        price = item["item_price"]
        items.append(
            ProductItem(
                product_retailer_id=item["product_retailer_id"].as_str(),
                quantity=item["quantity"].as_int(),
                # Through the float's shortest repr, so 30.1 stays 30.1 and not its binary value.
                item_price=Decimal(repr(price.as_float())),
                currency=item["currency"].as_str(),
            )
        )
    return Order(
        catalog_id=order["catalog_id"].as_str(),
        product_items=tuple(items),
        text=order.opt_str("text"),
    )


# Each type's sub-object (named as the type) and the Message field it fills; "_text" is the
# body of a text message, taken out again by _text_of.
_PARTS: dict[MessageType, tuple[str, Callable[[Wild], object]]] = {
    **{kind: ("media", _media) for kind in MEDIA_TYPES},
    MessageType.TEXT: ("_text", _text_body),
    MessageType.LOCATION: ("location", _location),
    MessageType.INTERACTIVE: ("reply", _reply),
    MessageType.BUTTON: ("button", _button),
    MessageType.REACTION: ("reaction", _reaction),
    MessageType.ORDER: ("order", _order),
    MessageType.SYSTEM: ("system", _system),
}


def _context(ctx: Wild) -> Context:
    frequently = ctx.opt_bool("frequently_forwarded") is True
    product = ctx.get("referred_product")
    return Context(
        message_id=ctx.opt_str("id"),
        from_id=ctx.opt_str("from"),
        forwarded=ctx.opt_bool("forwarded") is True or frequently,
        frequently_forwarded=frequently,
        referred_product=(
            ReferredProduct(
                catalog_id=product["catalog_id"].as_str(),
                product_retailer_id=product["product_retailer_id"].as_str(),
            )
            if product is not None
            else None
        ),
    )


def _referral(ref: Wild) -> Referral:
    return Referral(
        source_url=ref.opt_str("source_url"),
        source_id=ref.opt_str("source_id"),
        source_type=ref.opt_str("source_type"),
        headline=ref.opt_str("headline"),
        body=ref.opt_str("body"),
        media_type=ref.opt_str("media_type"),
        image_url=ref.opt_str("image_url"),
        video_url=ref.opt_str("video_url"),
        thumbnail_url=ref.opt_str("thumbnail_url"),
        ctwa_clid=ref.opt_str("ctwa_clid"),
    )


def _status(status: Wild, phone_number_id: str) -> Status:
    conversation = status.get("conversation")
    pricing = status.get("pricing")
    return Status(
        message_id=status["id"].as_str(),
        status=StatusKind(status["status"].as_str()),
        timestamp=_timestamp(status["timestamp"]),
        recipient_id=status.opt_str("recipient_id"),
        recipient_user_id=status.opt_str("recipient_user_id"),
        phone_number_id=phone_number_id,
        errors=tuple(_error(e) for e in status.opt_list("errors")),
        conversation_id=conversation.opt_str("id") if conversation is not None else None,
        pricing_category=pricing.opt_str("category") if pricing is not None else None,
        raw=status.as_object(),
    )


def _error(error: Wild) -> GraphErrorInfo:
    code = error.get("code")
    data = error.get("error_data")
    return GraphErrorInfo(
        code=code.as_int() if code is not None else None,
        title=error.opt_str("title"),
        message=error.opt_str("message"),
        details=data.opt_str("details") if data is not None else None,
    )


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second datetime can hold


def _timestamp(value: Wild) -> datetime:
    """Unix seconds, as Meta sends them: a string of digits ("1749416383") or an integer."""
    raw = value.value
    if isinstance(raw, str) and _UNIX_SECONDS.fullmatch(raw):
        seconds = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        seconds = raw
    else:
        raise PayloadError(value.path, "expected unix seconds")
    if not 0 <= seconds <= _LAST_SECOND:
        raise PayloadError(value.path, "timestamp out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


# WhatsApp's first release; a timestamp before it is a wrong clock, not an old message.
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
# How far a sender's clock may run ahead of ours before its timestamp is not believed.
AHEAD = timedelta(days=1)


def plausible(at: datetime, now: datetime) -> datetime:
    """`at` if something could have happened then, else `now` (when it reached us).

    Meta passes the sender's timestamp on. Stored as it came, one from the year 9999 would
    top the inbox for good and overflow when shown in local time; the raw JSON keeps it.
    """
    return at if EARLIEST <= at <= now + AHEAD else now
