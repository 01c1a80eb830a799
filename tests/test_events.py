"""Parsing webhook notifications into typed events: real payloads, wrong shapes, random input."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.whatsapp.events import (
    Context,
    Event,
    GraphErrorInfo,
    Location,
    Malformed,
    Media,
    Message,
    MessageType,
    PayloadError,
    ProductItem,
    Reaction,
    ReferredProduct,
    Reply,
    SharedPhone,
    Status,
    StatusKind,
    TemplateButton,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    Unhandled,
    UserPreference,
    parse,
)
from tests.conftest import examples
from tests.payloads import json_paths

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
KINDS = (
    Message
    | Status
    | UserPreference
    | TemplateStatusUpdate
    | TemplateCategoryUpdate
    | TemplateQualityUpdate
    | Unhandled
)
PYWA = FIXTURES / "pywa"


def meta(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def pywa(name: str) -> dict[str, Any]:
    return json.loads((PYWA / f"{name}.json").read_text(encoding="utf-8"))


def one_message(doc: object) -> Message:
    (event,) = parse(doc)
    assert isinstance(event, Message)
    return event


def one_status(doc: object) -> Status:
    (event,) = parse(doc)
    assert isinstance(event, Status)
    return event


def attr(obj: object, dotted: str) -> object:
    """Follow a dotted path of attributes and tuple indexes: "errors.0.code"."""

    def step(node: Any, name: str) -> Any:
        return node[int(name)] if name.isdigit() else getattr(node, name)

    return functools.reduce(step, dotted.split("."), obj)


# -- every pywa notification ----------------------------------------------------------------

PYWA_CASES = [
    (path.stem, case)
    for path in sorted(PYWA.glob("*.json"))
    for case in json.loads(path.read_text(encoding="utf-8"))
]


def test_the_pywa_fixtures_are_all_there() -> None:
    assert len(PYWA_CASES) == 60


@pytest.mark.parametrize(("file", "case"), PYWA_CASES)
def test_every_pywa_notification_parses(file: str, case: str) -> None:
    events = parse(pywa(file)[case])
    assert len(events) == 1
    expected = {
        "account_update": Unhandled,
        "template_status_update": TemplateStatusUpdate,
        "message_status": Status,
        "user_marketing_preferences": UserPreference,
    }.get(file, Message)
    assert isinstance(events[0], expected)


# What each customer message of pywa's fixtures must turn into: the type, the text for rules,
# and the sub-object fields that matter.
MESSAGE_TABLE: list[tuple[str, str, MessageType, str | None, dict[str, object]]] = [
    ("message", "text", MessageType.TEXT, "Body Text", {"context": None, "media": None}),
    (
        "message",
        "image",
        MessageType.IMAGE,
        None,
        {
            "media": Media(
                id="65463453",
                mime_type="image/jpeg",
                sha256="4654+8g=",
                caption=None,
                filename=None,
                url=None,
                voice=None,
                animated=None,
            )
        },
    ),
    (
        "message",
        "media_with_url",
        MessageType.IMAGE,
        None,
        {
            "media.id": "65463453",
            "media.url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/"
            "?mid=65463453&source=webhook&ext=487r9re&hash=heiwchueowbcew-dnedcw",
        },
    ),
    (
        "message",
        "video",
        MessageType.VIDEO,
        "caption",
        {
            "media.id": "765756756",
            "media.mime_type": "video/mp4",
            "media.caption": "caption",
            "context.forwarded": True,
            "context.frequently_forwarded": False,
            "context.message_id": None,
        },
    ),
    (
        "message",
        "document",
        MessageType.DOCUMENT,
        "caption",
        {
            "media.id": "1234567890987654321",
            "media.mime_type": "application/pdf",
            "media.filename": "filename.pdf",
            "media.sha256": "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=",
        },
    ),
    (
        "message",
        "audio",
        MessageType.AUDIO,
        None,
        {"media.mime_type": "audio/ogg; codecs=opus", "media.voice": False},
    ),
    ("message", "voice", MessageType.AUDIO, None, {"media.voice": True}),
    (
        "message",
        "static_sticker",
        MessageType.STICKER,
        None,
        {"media.mime_type": "image/webp", "media.animated": False},
    ),
    ("message", "animated_sticker", MessageType.STICKER, None, {"media.animated": True}),
    (
        "message",
        "reaction",
        MessageType.REACTION,
        "\U0001f62e",
        {"reaction": Reaction(message_id="wamid.yzxyzx=", emoji="\U0001f62e")},
    ),
    (
        "message",
        "unreaction_empty",
        MessageType.REACTION,
        None,
        {"reaction.removed": True, "reaction.message_id": "wamid.yzxyzx="},
    ),
    ("message", "unreaction_no_emoji", MessageType.REACTION, None, {"reaction.removed": True}),
    (
        "message",
        "current_location",
        MessageType.LOCATION,
        None,
        {"location": Location(12.25089, 43.90539, None, None, None)},
    ),
    (
        "message",
        "chosen_location",
        MessageType.LOCATION,
        None,
        {
            "location": Location(
                latitude=37.4611978,
                longitude=-122.2164385,
                name="Facebook HQ",
                address="1 Hacker Way, Menlo Park, CA 94025",
                url="https://maps.google.com/?cid=2000000000000000000",
            )
        },
    ),
    (
        "message",
        "contacts",
        MessageType.CONTACTS,
        None,
        {"contacts.0.name": "Chandler Bing", "contacts.2.phones.0.phone": "+1 777-777-7777"},
    ),
    (
        "message",
        "order",
        MessageType.ORDER,
        None,  # the order's text is empty
        {
            "order.catalog_id": "354160437058781",
            "order.text": "",
            "order.product_items": (
                ProductItem("HAMBURGER", 3, Decimal(30), "ILS"),
                ProductItem("FRENCH_FRIES", 2, Decimal(35), "ILS"),
                ProductItem("SODA", 2, Decimal(10), "ILS"),
            ),
        },
    ),
    (
        "message",
        "unsupported",
        MessageType.UNSUPPORTED,
        None,
        {
            "errors": (
                GraphErrorInfo(
                    code=131051,
                    title="Message type unknown",
                    message="Message type unknown",
                    details="Message type is currently not supported.",
                ),
            )
        },
    ),
    ("message", "unsupported_with_type", MessageType.UNSUPPORTED, None, {"errors.0.code": 131051}),
    (
        "message",
        "reply",
        MessageType.TEXT,
        "replied text",
        {
            "context": Context(
                message_id="wamid.xyzxyz==",
                from_id="972123456789",
                forwarded=False,
                frequently_forwarded=False,
                referred_product=None,
            )
        },
    ),
    ("message", "forwarded", MessageType.TEXT, "forwarded text", {"context.forwarded": True}),
    (
        "message",
        "forwarded_many_times",
        MessageType.TEXT,
        "text forwarded many times",
        {"context.forwarded": True, "context.frequently_forwarded": True},
    ),
    (
        "message",
        "interactive_message_with_err",
        MessageType.INTERACTIVE,
        None,
        {
            "reply": None,
            "context.message_id": "wamid.gvwegfretge==",
            "errors.0.code": 131000,
            "errors.0.details": "Unsupported webhook payload",
        },
    ),
    (
        "message",
        "referral",
        MessageType.TEXT,
        "BODY",
        {
            "referral.source_url": "AD_OR_POST_FB_URL",
            "referral.source_id": "ADID",
            "referral.headline": "AD_TITLE",
            "referral.ctwa_clid": "CTWA_CLID",
        },
    ),
    (
        "callback_button",
        "button",
        MessageType.INTERACTIVE,
        "title",
        {"reply": Reply(kind="button_reply", id="callback_data", title="title", description=None)},
    ),
    (
        "callback_button",
        "quick_reply",
        MessageType.BUTTON,
        "title",
        {
            "button": TemplateButton(payload="callback_data", text="title"),
            "context.message_id": "wamid.xyzxyz==",
        },
    ),
    (
        "callback_button",
        "quick_reply_without_context",
        MessageType.BUTTON,
        "title",
        {"context": None, "from_user_id": "US.13491208655302741918"},
    ),
    (
        "callback_selection",
        "callback",
        MessageType.INTERACTIVE,
        "title",
        {"reply.kind": "list_reply", "reply.id": "callback_data", "reply.description": None},
    ),
    (
        "callback_selection",
        "description",
        MessageType.INTERACTIVE,
        "title",
        {"reply.kind": "list_reply", "reply.description": "description"},
    ),
    (
        "system",
        "phone_number_change",
        MessageType.SYSTEM,
        None,
        {
            "system.type": "user_changed_number",
            "system.new_wa_id": "972912345678",
            "system.body": "User A changed from 972987654321 to 972912345678",
            "profile_name": None,  # system notices come without contacts
        },
    ),
    (
        "system",
        "identity_change",
        MessageType.SYSTEM,
        None,
        {"system.type": "customer_identity_changed", "profile_name": "User A"},
    ),
    (
        "deleted_message",
        "revoke",
        MessageType.REVOKE,
        None,
        {"revoke.original_message_id": "<ORIGINAL_WHATSAPP_MESSAGE_ID>"},
    ),
    (
        "edited_message",
        "image",
        MessageType.EDIT,
        "Updated image caption",
        {
            "edit.original_message_id": (
                "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
            ),
            "edit.type": MessageType.IMAGE,
            "media.id": "1234567890",
            "media.caption": "Updated image caption",
            "context.message_id": "M0",
        },
    ),
]


@pytest.mark.parametrize(("file", "case", "msg_type", "text", "fields"), MESSAGE_TABLE)
def test_pywa_messages(
    file: str, case: str, msg_type: MessageType, text: str | None, fields: dict[str, object]
) -> None:
    msg = one_message(pywa(file)[case])
    assert msg.type is msg_type
    assert msg.type_name == msg_type.value
    assert msg.text == text
    for dotted, expected in fields.items():
        assert attr(msg, dotted) == expected, dotted


def test_the_table_covers_every_pywa_message() -> None:
    messages = {
        (file, case)
        for file, case in PYWA_CASES
        if file not in ("account_update", "template_status_update", "message_status")
        and file != "user_marketing_preferences"
    }
    assert messages == {(file, case) for file, case, *_ in MESSAGE_TABLE}


def test_pywa_message_common_fields() -> None:
    msg = one_message(pywa("message")["text"])
    assert msg.id == "wamid.xyzxyz"
    assert msg.from_wa_id == "972987654321"
    assert msg.from_user_id == "US.13491208655302741918"  # from the matching contacts[] entry
    assert msg.profile_name == "Test Name"
    assert msg.phone_number_id == "1122334455667"
    assert msg.display_phone_number == "972123456789"
    assert msg.timestamp == datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)
    assert msg.raw == pywa("message")["text"]["entry"][0]["changes"][0]["value"]["messages"][0]


def test_shared_contacts_keep_names_and_phones() -> None:
    msg = one_message(pywa("message")["contacts"])
    assert [c.name for c in msg.contacts] == ["Chandler Bing", "Monica", "Rachel Green"]
    assert msg.contacts[0].phones == (
        SharedPhone(phone="+1 555-555-5555", wa_id="972987654321", type="CELL"),
    )
    assert [c.phones[0].type for c in msg.contacts] == ["CELL", "HOME", "WORK"]
    assert msg.text is None


def test_a_sender_whose_contact_entry_has_another_number_gets_no_name() -> None:
    # The edited-message example's only contact is someone else: never attach their name or BSUID.
    msg = one_message(pywa("edited_message")["image"])
    assert msg.from_wa_id == "16505551234"
    assert msg.profile_name is None
    assert msg.from_user_id is None


STATUS_TABLE = [
    ("sent", StatusKind.SENT, "7270432eae37498234f4444b35ffc5", "service"),
    ("delivered", StatusKind.DELIVERED, "7270432eae37498234f4444b35ffc5", "service"),
    ("read", StatusKind.READ, "7270432eae37498234f4444b35ffc5", "service"),
    ("played", StatusKind.PLAYED, "7270432eae37498234f4444b35ffc5", "service"),
    ("failed", StatusKind.FAILED, None, None),
    ("with_tracker", StatusKind.SENT, "7270432eae37498234f4444b35ffc5", "service"),
    ("group", StatusKind.READ, None, None),
]


@pytest.mark.parametrize(("case", "kind", "conversation_id", "category"), STATUS_TABLE)
def test_pywa_statuses(
    case: str, kind: StatusKind, conversation_id: str | None, category: str | None
) -> None:
    status = one_status(pywa("message_status")[case])
    assert status.status is kind
    assert status.conversation_id == conversation_id
    assert status.pricing_category == category
    assert status.timestamp.tzinfo is UTC
    assert status.errors == () or kind is StatusKind.FAILED


def test_pywa_failed_status_carries_its_error() -> None:
    status = one_status(pywa("message_status")["failed"])
    assert status.message_id == "wamid.xyzxyz"
    assert status.recipient_id == "972987654321"
    assert status.timestamp == datetime(2023, 7, 15, 0, 20, 58, tzinfo=UTC)
    assert status.errors == (
        GraphErrorInfo(
            code=130472,
            title="User's number is part of an experiment",
            message="User's number is part of an experiment",
            details="Failed to send message because this user's phone number is part of an "
            "experiment",
        ),
    )


@pytest.mark.parametrize(
    ("case", "value", "detail"),
    [
        ("resume", "resume", "User requested to resume marketing messages"),
        ("signup", "signup", "User signed up via signup link"),
    ],
)
def test_pywa_user_preferences(case: str, value: str, detail: str) -> None:
    (pref,) = parse(pywa("user_marketing_preferences")[case])
    assert pref == UserPreference(
        wa_id="16505551234",
        user_id=None,  # the notification's contact is another number: not this customer's BSUID
        category="marketing_messages",
        value=value,
        timestamp=datetime(2024, 11, 15, 21, 22, 1, tzinfo=UTC),
        detail=detail,
        phone_number_id="106540352242922",
    )


# -- Meta's reference examples --------------------------------------------------------------


def test_meta_text() -> None:
    msg = one_message(meta("text.json"))
    assert msg == Message(
        id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        from_wa_id="16505551234",
        from_user_id=None,
        profile_name="Sheena Nelson",
        phone_number_id="106540352242922",
        display_phone_number="15550783881",
        timestamp=datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC),
        type=MessageType.TEXT,
        type_name="text",
        text="Does it come in another color?",
    )
    assert msg.sender_id == "16505551234"
    assert msg.raw["text"] == {"body": "Does it come in another color?"}


def test_meta_text_about_a_product() -> None:
    msg = one_message(meta("text_referred_product.json"))
    assert msg.text == "Is this still available?"
    assert msg.context == Context(
        message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
        from_id="15550783881",
        forwarded=False,
        frequently_forwarded=False,
        referred_product=ReferredProduct(
            catalog_id="194836987003835", product_retailer_id="di9ozbzfi4"
        ),
    )


def test_meta_text_from_a_click_to_whatsapp_ad() -> None:
    msg = one_message(meta("text_ctwa_ad.json"))
    assert msg.text == "Can I get more info about this?"
    assert msg.referral is not None
    assert msg.referral.source_type == "ad"
    assert msg.referral.source_id == "120226305854810726"
    assert msg.referral.headline == "Chat with us"
    assert msg.referral.body == "Summer Succulents are here!"
    assert msg.referral.media_type == "image"
    assert msg.referral.video_url is None
    assert msg.referral.ctwa_clid is not None and msg.referral.ctwa_clid.startswith("Aff-n8ZT")


def test_meta_text_from_a_username_user_has_only_the_bsuid() -> None:
    msg = one_message(meta("text_bsuid.json"))
    assert msg.from_wa_id is None
    assert msg.from_user_id == "US.13491208655302741918"
    assert msg.sender_id == "US.13491208655302741918"
    assert msg.profile_name == "Sheena Nelson"
    assert msg.text == "Hallo, habt ihr heute offen?"
    assert msg.timestamp == datetime(2026, 4, 23, 11, 39, 4, tzinfo=UTC)


def test_meta_image() -> None:
    msg = one_message(meta("image.json"))
    assert msg.type is MessageType.IMAGE
    assert msg.text == "Taj Mahal"
    assert msg.media is not None
    assert msg.media.id == "1003383421387256"
    assert msg.media.mime_type == "image/jpeg"
    assert msg.media.sha256 == "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI="
    assert msg.media.caption == "Taj Mahal"
    assert msg.media.url is not None and "mid=1003383421387256" in msg.media.url
    assert msg.timestamp == datetime(2025, 4, 11, 4, 8, 16, tzinfo=UTC)


def test_meta_location() -> None:
    msg = one_message(meta("location.json"))
    assert msg.type is MessageType.LOCATION
    assert msg.text is None
    assert msg.location == Location(
        latitude=37.44221496582,
        longitude=-122.16165924072,
        name="Philz Coffee",
        address="101 Forest Ave, Palo Alto, CA 94301",
        url="https://philzcoffee.com/",
    )


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        (
            "interactive_button_reply.json",
            Reply(kind="button_reply", id="change-button", title="Change", description=None),
        ),
        (
            "interactive_list_reply.json",
            Reply(
                kind="list_reply",
                id="priority_express",
                title="Priority Mail Express",
                description="Next Day to 2 Days",
            ),
        ),
    ],
)
def test_meta_interactive_replies(name: str, reply: Reply) -> None:
    msg = one_message(meta(name))
    assert msg.type is MessageType.INTERACTIVE
    assert msg.reply == reply
    assert msg.text == reply.title
    assert msg.context is not None and msg.context.from_id == "15550783881"
    assert msg.context.message_id is not None and msg.context.message_id.startswith("wamid.")


def test_meta_template_quick_reply_button() -> None:
    msg = one_message(meta("button.json"))
    assert msg.type is MessageType.BUTTON
    assert msg.button == TemplateButton(
        payload="Unsubscribe from Promos", text="Unsubscribe from Promos"
    )
    assert msg.text == "Unsubscribe from Promos"


def test_meta_reaction() -> None:
    msg = one_message(meta("reaction.json"))
    assert msg.type is MessageType.REACTION
    assert msg.reaction == Reaction(
        message_id="wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=", emoji="👍"
    )
    assert not msg.reaction.removed
    assert msg.text == "👍"


def test_meta_order() -> None:
    msg = one_message(meta("order.json"))
    assert msg.type is MessageType.ORDER
    assert msg.text == "Please deliver before noon"
    assert msg.order is not None
    assert msg.order.catalog_id == "194836987003835"
    assert msg.order.product_items == (
        ProductItem("di9ozbzfi4", 2, Decimal("30.0"), "USD"),
        ProductItem("nqryix03ez", 1, Decimal("12.5"), "USD"),
    )
    assert sum(i.item_price * i.quantity for i in msg.order.product_items) == Decimal("72.5")


SENT_ID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIzRUIwQzdGMUE1RTREMkI5QzgA"


@pytest.mark.parametrize(
    ("name", "kind", "at", "conversation_id", "category", "recipient_user_id"),
    [
        (
            "status_sent.json",
            StatusKind.SENT,
            datetime(2025, 6, 15, 23, 27, 53, tzinfo=UTC),
            "72b14d6bd5407799e66f64d1b338e567",
            "marketing",
            None,
        ),
        (
            "status_delivered.json",
            StatusKind.DELIVERED,
            datetime(2025, 6, 15, 23, 28, 1, tzinfo=UTC),
            "72b14d6bd5407799e66f64d1b338e567",
            "marketing",
            None,
        ),
        (
            "status_read.json",
            StatusKind.READ,
            datetime(2025, 6, 15, 23, 30, 14, tzinfo=UTC),
            None,  # read statuses carry no conversation or pricing
            None,
            "US.13491208655302741918",
        ),
    ],
)
def test_meta_statuses(
    name: str,
    kind: StatusKind,
    at: datetime,
    conversation_id: str | None,
    category: str | None,
    recipient_user_id: str | None,
) -> None:
    status = one_status(meta(name))
    assert status.message_id == SENT_ID
    assert status.status is kind
    assert status.timestamp == at
    assert status.recipient_id == "16505551234"
    assert status.recipient_user_id == recipient_user_id
    assert status.phone_number_id == "106540352242922"
    assert status.conversation_id == conversation_id
    assert status.pricing_category == category
    assert status.errors == ()


def test_meta_failed_status() -> None:
    status = one_status(meta("status_failed.json"))
    assert status.status is StatusKind.FAILED
    assert status.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA"
    assert status.timestamp == datetime(2025, 6, 28, 20, 34, 48, tzinfo=UTC)
    (error,) = status.errors
    assert error.code == 131049
    assert error.title == "This message was not delivered to maintain healthy ecosystem engagement."
    assert error.details == (
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
    )
    assert status.raw["errors"][0]["href"].endswith("/error-codes")


def test_meta_user_preference_stop() -> None:
    (pref,) = parse(meta("user_preferences_stop.json"))
    assert isinstance(pref, UserPreference)
    assert (pref.wa_id, pref.category, pref.value) == ("16505551234", "marketing_messages", "stop")
    assert pref.timestamp == datetime(2024, 11, 15, 21, 22, 1, tzinfo=UTC)


def test_unknown_future_message_type() -> None:
    msg = one_message(meta("unknown_type.json"))
    assert msg.type is MessageType.UNKNOWN
    assert msg.type_name == "hologram"
    assert msg.text is None
    assert msg.media is None
    assert msg.raw["hologram"]["id"] == "2212009387261945"


def test_a_batch_yields_every_entry_and_every_change_in_order() -> None:
    events = parse(meta("batch.json"))
    assert [type(e).__name__ for e in events] == [
        "Message",
        "Message",
        "Status",
        "UserPreference",
        "Unhandled",
        "Unhandled",
    ]
    sheena, omar, status, pref, account, quality = events
    assert isinstance(sheena, Message) and isinstance(omar, Message)
    assert (sheena.from_wa_id, sheena.profile_name, sheena.text) == (
        "16505551234",
        "Sheena Nelson",
        "Does it come in another color?",
    )
    # Two contacts in one value: each message gets its own sender's name.
    assert (omar.from_wa_id, omar.profile_name, omar.type) == (
        "4915112345678",
        "Omar Haddad",
        MessageType.IMAGE,
    )
    assert omar.media is not None and omar.media.id == "1347266379897104"
    assert isinstance(status, Status)
    assert (status.status, status.pricing_category) == (StatusKind.DELIVERED, "service")
    assert isinstance(pref, UserPreference)
    assert (pref.wa_id, pref.value) == ("4915112345678", "stop")
    assert pref.timestamp == datetime(2025, 6, 8, 21, 0, 5, tzinfo=UTC)
    assert account == Unhandled(field="account_update")
    assert quality == Unhandled(field="phone_number_quality_update")


def test_events_are_frozen_and_hashable() -> None:
    events = (
        parse(meta("batch.json")) + parse(meta("order.json")) + parse(meta("status_failed.json"))
    )
    assert len({hash(e) for e in events}) == len(events)
    message = events[0]
    assert isinstance(message, Message)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.text = "changed"  # type: ignore[misc]


# -- documents that are not ours, or carry nothing -----------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        {"object": "page", "entry": [{"id": "1", "messaging": []}]},
        {"object": "instagram"},
        {"object": "whatsapp_business_account", "entry": []},
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]},
        # A messages value with neither messages nor statuses (e.g. only errors).
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "messages", "value": {"errors": []}}]}],
        },
    ],
)
def test_nothing_to_handle(doc: object) -> None:
    assert parse(doc) == ()


@pytest.mark.parametrize("value", [None, [], "text", 17, 1.5, True, {"any": {"thing": [1]}}])
def test_other_fields_never_fail_whatever_their_value(value: object) -> None:
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "security", "value": value}]}],
    }
    assert parse(doc) == (Unhandled(field="security"),)


# -- wrong shapes ---------------------------------------------------------------------------


def _msg(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["entry"][0]["changes"][0]["value"]["messages"][0]


def _set(path: Callable[[Any], dict[str, Any]], key: str, value: object) -> Callable[[Any], None]:
    def mutate(doc: Any) -> None:
        path(doc)[key] = value

    return mutate


def _delete(path: Callable[[Any], dict[str, Any]], key: str) -> Callable[[Any], None]:
    def mutate(doc: Any) -> None:
        del path(doc)[key]

    return mutate


def _value(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["entry"][0]["changes"][0]["value"]


WRONG_SHAPES: list[tuple[str, Callable[[Any], None], str]] = [
    ("text.json", _set(_msg, "id", 42), "entry[0].changes[0].value.messages[0].id: expected a string"),
    ("text.json", _delete(_msg, "id"), "entry[0].changes[0].value.messages[0].id: missing"),
    ("text.json", _delete(_msg, "type"), "entry[0].changes[0].value.messages[0].type: missing"),
    (
        "text.json",
        _delete(_msg, "from"),
        "entry[0].changes[0].value.messages[0]: expected a sender: 'from' or 'from_user_id'",
    ),
    ("text.json", _set(_msg, "from", 16505551234), "entry[0].changes[0].value.messages[0].from: expected a string"),
    ("text.json", _set(_msg, "timestamp", "yesterday"), "entry[0].changes[0].value.messages[0].timestamp: expected unix seconds"),
    ("text.json", _set(_msg, "timestamp", "١٧٤٩٤١٦٣٨٣"), "entry[0].changes[0].value.messages[0].timestamp: expected unix seconds"),
    ("text.json", _set(_msg, "timestamp", 10**30), "entry[0].changes[0].value.messages[0].timestamp: timestamp out of range"),
    ("text.json", _set(_msg, "timestamp", -1), "entry[0].changes[0].value.messages[0].timestamp: timestamp out of range"),
    ("text.json", _set(_msg, "timestamp", 1.5e9), "entry[0].changes[0].value.messages[0].timestamp: expected unix seconds"),
    ("text.json", _set(_msg, "text", {"body": None}), "entry[0].changes[0].value.messages[0].text.body: expected a string"),
    ("text.json", _set(_msg, "text", "hi"), "entry[0].changes[0].value.messages[0].text: expected an object"),
    ("text.json", _set(_msg, "context", []), "entry[0].changes[0].value.messages[0].context: expected an object"),
    ("text.json", _set(_msg, "context", {"forwarded": "yes"}), "entry[0].changes[0].value.messages[0].context.forwarded: expected true or false"),
    ("text.json", _delete(_value, "metadata"), "entry[0].changes[0].value.metadata: missing"),
    ("text.json", _set(_value, "messages", {}), "entry[0].changes[0].value.messages: expected a list"),
    ("text.json", _set(_value, "contacts", [{"profile": "Sheena"}]), "entry[0].changes[0].value.contacts[0].profile: expected an object"),
    ("image.json", _delete(lambda d: _msg(d)["image"], "id"), "entry[0].changes[0].value.messages[0].image.id: missing"),
    ("location.json", _set(lambda d: _msg(d)["location"], "latitude", "37.44"), "entry[0].changes[0].value.messages[0].location.latitude: expected a number"),
    ("location.json", _set(lambda d: _msg(d)["location"], "latitude", 10**400), "entry[0].changes[0].value.messages[0].location.latitude: number out of range"),
    ("location.json", _set(lambda d: _msg(d)["location"], "longitude", float("inf")), "entry[0].changes[0].value.messages[0].location.longitude: expected a finite number"),
    ("location.json", _set(lambda d: _msg(d)["location"], "longitude", True), "entry[0].changes[0].value.messages[0].location.longitude: expected a number"),
    ("interactive_list_reply.json", _delete(lambda d: _msg(d)["interactive"]["list_reply"], "title"), "entry[0].changes[0].value.messages[0].interactive.list_reply.title: missing"),
    ("order.json", _set(lambda d: _msg(d)["order"]["product_items"][1], "quantity", "1"), "entry[0].changes[0].value.messages[0].order.product_items[1].quantity: expected an integer"),
    ("reaction.json", _delete(lambda d: _msg(d)["reaction"], "message_id"), "entry[0].changes[0].value.messages[0].reaction.message_id: missing"),
    ("status_failed.json", _set(lambda d: _value(d)["statuses"][0]["errors"][0], "code", "131049"), "entry[0].changes[0].value.statuses[0].errors[0].code: expected an integer"),
    ("status_sent.json", _delete(lambda d: _value(d)["statuses"][0], "status"), "entry[0].changes[0].value.statuses[0].status: missing"),
    ("user_preferences_stop.json", _delete(lambda d: _value(d)["user_preferences"][0], "value"), "entry[0].changes[0].value.user_preferences[0].value: missing"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "mutate", "message"), WRONG_SHAPES)
def test_wrong_shapes_name_their_path(
    name: str, mutate: Callable[[Any], None], message: str
) -> None:
    doc = meta(name)
    mutate(doc)
    with pytest.raises(PayloadError) as caught:
        parse(doc)
    assert str(caught.value) == message
    assert caught.value.path == message.split(": ")[0]


@pytest.mark.parametrize(
    ("mutate", "message", "kept"),
    [
        (_set(lambda d: d["entry"][1]["changes"][0], "value", []), "entry[1].changes[0].value: expected an object", 5),
        (_set(lambda d: d["entry"][1]["changes"][2], "field", None), "entry[1].changes[2].field: expected a string", 5),
        (_set(lambda d: d["entry"][1], "changes", None), "entry[1].changes: expected a list", 3),
        (_set(lambda d: _value(d)["messages"][1], "timestamp", "soon"), "entry[0].changes[0].value.messages[1].timestamp: expected unix seconds", 5),
    ],
)  # fmt: skip
def test_a_wrong_shape_in_a_batch_costs_only_its_own_event(
    mutate: Callable[[Any], None], message: str, kept: int
) -> None:
    """Meta would deliver the batch the same way again: the rest of it is read."""
    doc = meta("batch.json")
    mutate(doc)
    events = parse(doc)
    [bad] = [e for e in events if isinstance(e, Malformed)]
    assert f"{bad.path}: {bad.problem}" == message
    assert len(events) - 1 == kept


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "document: expected an object"),
        ("whatsapp_business_account", "document: expected an object"),
        (None, "document: expected an object"),
        ({}, "object: missing"),
        ({"object": 1}, "object: expected a string"),
        ({"object": "whatsapp_business_account"}, "entry: missing"),
        ({"object": "whatsapp_business_account", "entry": {}}, "entry: expected a list"),
        ({"object": "whatsapp_business_account", "entry": [[]]}, "entry[0]: expected an object"),
        ({"object": "whatsapp_business_account", "entry": [{}]}, "entry[0].changes: missing"),
    ],
)
def test_wrong_envelopes(doc: object, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(doc)
    assert str(caught.value) == message


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


# -- random input: only ever PayloadError ----------------------------------------------------

KEYS = sorted(
    {
        "object", "entry", "id", "changes", "field", "value", "metadata", "phone_number_id",
        "display_phone_number", "contacts", "wa_id", "user_id", "profile", "name", "messages",
        "statuses", "from", "from_user_id", "timestamp", "type", "text", "body", "image",
        "audio", "voice", "sticker", "animated", "location", "latitude", "longitude", "context",
        "forwarded", "frequently_forwarded", "referred_product", "catalog_id",
        "product_retailer_id", "interactive", "button_reply", "list_reply", "title",
        "description", "button", "payload", "reaction", "message_id", "emoji", "order",
        "product_items", "quantity", "item_price", "currency", "system", "errors", "code",
        "error_data", "details", "edit", "message", "original_message_id", "revoke", "status",
        "recipient_id", "conversation", "pricing", "category", "user_preferences", "referral",
        "phones", "phone", "formatted_name", "first_name",
    }
)  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(
        [
            "whatsapp_business_account", "messages", "user_preferences", "text", "image",
            "location", "interactive", "button_reply", "list_reply", "button", "reaction",
            "order", "system", "edit", "revoke", "failed", "1749416383", "", "\u202e\ud7ff\U0010ffff",
        ]
    )
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


def _only_payload_errors(doc: object) -> None:
    try:
        events = parse(doc)
    except PayloadError:
        return
    assert all(isinstance(e, KINDS | Malformed) for e in events)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_raises_only_payload_error(doc: object) -> None:
    _only_payload_errors(doc)


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4))
def test_random_envelopes_raise_only_payload_error(extra: dict[str, Any]) -> None:
    _only_payload_errors({"object": "whatsapp_business_account", **extra})


def _documents() -> list[object]:
    docs: list[object] = [meta(p.name) for p in sorted(FIXTURES.glob("*.json"))]
    for path in sorted(PYWA.glob("*.json")):
        docs.extend(json.loads(path.read_text(encoding="utf-8")).values())
    return docs


DOCUMENTS = _documents()


def _step(node: Any, key: Any) -> Any:
    return node[key]


@settings(max_examples=examples(500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_notifications_raise_only_payload_error(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(DOCUMENTS), label="document"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(json_paths(doc)), label="path")
        if not path:
            doc = data.draw(json_values, label="replacement")
            continue
        *parents, last = path
        parent: Any = functools.reduce(_step, parents, doc)
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate"]), label="action")
        if action == "delete":
            del parent[last]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[last] = data.draw(json_values, label="replacement")
    _only_payload_errors(doc)


ODD_VALUES: list[object] = [
    None, True, 0, -1, 10**400, 1.5, float("inf"), float("nan"), "", "x", "١٢", [], {}, [{}],
]  # fmt: skip


def _replaced(doc: object, path: tuple[Any, ...], value: object) -> object:
    if not path:
        return value
    copied = copy.deepcopy(doc)
    *parents, last = path
    parent: Any = functools.reduce(_step, parents, copied)
    parent[last] = value
    return copied


def _without(doc: object, path: tuple[Any, ...]) -> object:
    copied = copy.deepcopy(doc)
    *parents, last = path
    parent: Any = functools.reduce(_step, parents, copied)
    del parent[last]
    return copied


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_every_value_of_every_notification_replaced_or_removed(index: int) -> None:
    """Each value of a real notification swapped for an odd one, and each key or item dropped."""
    doc = DOCUMENTS[index]
    for path in json_paths(doc):
        for value in ODD_VALUES:
            _only_payload_errors(_replaced(doc, path, value))
        if path:
            _only_payload_errors(_without(doc, path))


# Random notifications that follow the envelope, so random values reach the deep fields too.
SUBKEYS = [
    "id", "body", "caption", "mime_type", "sha256", "filename", "url", "voice", "animated",
    "latitude", "longitude", "name", "address", "type", "button_reply", "list_reply", "title",
    "description", "payload", "text", "message_id", "emoji", "catalog_id", "product_items",
    "product_retailer_id", "quantity", "item_price", "currency", "wa_id", "message",
    "original_message_id", "forwarded", "frequently_forwarded", "referred_product", "from",
    "formatted_name", "phones", "phone", "code", "title", "error_data", "details", "timestamp",
]  # fmt: skip
TYPES = [t.value for t in MessageType] + ["hologram", "nfm_reply"]


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually `good`, one time in four a random scalar in its place.

    (`good | scalars` would flatten into one choice among all of scalars' branches, so the
    well-formed branch would hardly ever be drawn and nothing deep would be reached.)
    """
    # Hypothesis favours 0, so 0 is the well-formed choice.
    return st.integers(0, 3).flatmap(lambda n: scalars if n == 3 else good)


level1 = st.fixed_dictionaries({}, optional=dict.fromkeys(SUBKEYS, scalars))
level2 = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(SUBKEYS, st.one_of(scalars, level1, st.lists(level1, max_size=2)))
)
nested = mostly(st.one_of(level2, st.lists(level2, max_size=2)))
random_messages = st.sampled_from(TYPES).flatmap(
    # One type and the sub-object it names, as Meta sends them; the values inside are random.
    lambda kind: st.fixed_dictionaries(
        {
            "id": mostly(st.just("wamid.X")),
            "from": mostly(st.just("16505551234")),
            "timestamp": mostly(st.just("1749416383")),
            "type": mostly(st.just(kind)),
            kind: mostly(level2),
        },
        optional={"context": nested},
    )
)
random_statuses = st.fixed_dictionaries(
    {
        "id": mostly(st.just("wamid.Y")),
        "status": mostly(st.sampled_from([k.value for k in StatusKind])),
        "timestamp": mostly(st.just("1750030073")),
    },
    optional=dict.fromkeys(["recipient_id", "errors", "conversation", "pricing"], nested),
)
random_values = st.fixed_dictionaries(
    {
        "metadata": mostly(
            st.fixed_dictionaries({"phone_number_id": mostly(st.just("106540352242922"))})
        ),
        "messages": mostly(st.lists(random_messages, min_size=1, max_size=2)),
    },
    optional={
        "contacts": mostly(st.lists(level2, max_size=2)),
        "statuses": mostly(st.lists(random_statuses, max_size=2)),
        "user_preferences": mostly(st.lists(level2, max_size=2)),
        "errors": mostly(st.lists(level2, max_size=2)),
    },
)
random_notifications = st.fixed_dictionaries(
    {
        "object": st.just("whatsapp_business_account"),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {
                                "field": st.sampled_from(["messages", "user_preferences", "x"]),
                                "value": mostly(random_values),
                            }
                        ),
                        min_size=1,
                        max_size=2,
                    )
                }
            ),
            min_size=1,
            max_size=2,
        ),
    }
)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=list(HealthCheck))
@given(random_notifications)
def test_random_notifications_raise_only_payload_error(doc: object) -> None:
    _only_payload_errors(doc)


def test_event_alias_lists_the_kinds() -> None:
    assert set(Event.__args__) == set(KINDS.__args__)
