"""The stored data: business settings, contacts and their labels, and every message in or out.

Outbound messages are their own outbox: a row is written `queued` in the transaction of the
event that caused it, and the dispatcher moves it on to `sent` or `failed`.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    Unicode,
    false,
    func,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.contacts.label_names import label_key


def utcnow() -> datetime:
    return datetime.now(UTC)


class Direction(enum.StrEnum):
    """Which way a message went: from a customer to the business, or back."""

    IN = "in"
    OUT = "out"


class MessageStatus(enum.StrEnum):
    """Where a message stands; stored as its value, so the values never change.

    In: received, or revoked once the customer deleted it for everyone (its content is gone).
    Out: queued -> sending -> sent -> delivered -> read, or failed; a broadcast's rows start as
    drafts and those a cancel or the 24-hour window stops are skipped. A broadcast message the
    messaging limit or the quiet hours hold back is deferred until it may be queued.
    """

    RECEIVED = "received"
    REVOKED = "revoked"
    DRAFT = "draft"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) as well."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The longest business-scoped user id stored; a longer one is no valid id and keys no contact.
USER_ID_LENGTH = 256

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Business(Base):
    """The one business this server answers for; its settings as the YAML document."""

    __tablename__ = "business"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    settings_yaml: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


contact_labels = Table(
    "contact_labels",
    Base.metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_contact_labels_label", "label_id", "contact_id"),
)


class Label(Base):
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # the first spelling
    # label_key(name): names differing only in case are one label, which the database
    # enforces too. Case folding can lengthen a name ("ß" is "ss"), at most threefold.
    name_key: Mapped[str] = mapped_column(
        String(3 * 64), default=lambda ctx: label_key(ctx.current_parameters["name"])
    )

    # One of bot.contacts.label_names.COLORS; None: one chosen by the label's id.
    color: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index("uq_labels_name_key", "name_key", unique=True),)


class Contact(Base):
    """A customer, known by phone number (`wa_id`), by business-scoped user id, or both."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wa_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # A business-scoped user id: two letters, a dot, up to 128 characters (a parent id has
    # "ENT." too). SQLite keeps the declared 128, which it never enforced: widening it there
    # means rebuilding the table, and dropping the old one would cascade to the messages.
    user_id: Mapped[str | None] = mapped_column(
        String(USER_ID_LENGTH).with_variant(String(128), "sqlite"), unique=True
    )
    name: Mapped[str | None] = mapped_column(String(256))
    # The name in the customer's WhatsApp profile, as their last message had it.
    profile_name: Mapped[str | None] = mapped_column(String(256))
    # Whether the shop gave the name (an import, the admin): a profile name then never
    # replaces it (bot.contacts.names).
    name_by_shop: Mapped[bool] = mapped_column(Boolean, server_default=false())
    opted_in: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_in_changed_at: Mapped[datetime | None]
    opted_in_source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_inbound_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    last_away_at: Mapped[datetime | None]
    # When a person last answered by hand (the admin inbox): the webhook pauses away and
    # greeting after it, and reads it with the contact instead of searching the messages.
    last_human_reply_at: Mapped[datetime | None]
    unread: Mapped[int] = mapped_column(Integer, default=0)
    # When the contact's data was erased on request (bot.contacts.erase): the row is kept,
    # reduced to its numbers and opt-out, only so that no import or broadcast reaches them.
    erased_at: Mapped[datetime | None]

    # Loaded when asked for (pages that list labels use selectinload), not with every contact.
    labels: Mapped[list[Label]] = relationship(secondary=contact_labels)

    __table_args__ = (Index("ix_contacts_last_message", "last_message_at", "id"),)


# Only replies (`text` is a column's name inside Message's class body).
_REPLIES = text("in_reply_to IS NOT NULL")


class Message(Base):
    """One WhatsApp message, inbound or outbound; outbound rows are the outbox."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # a Direction
    # Meta's message id: unique, so a redelivered notification cannot store a message twice.
    wamid: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Inbound: the business number it was sent to (metadata.phone_number_id), so a message to
    # another number of the same app is kept as what it is and never answered from ours.
    phone_number_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None]
    payload: Mapped[dict[str, Any] | None]
    rule: Mapped[str | None] = mapped_column(String(16))  # a bot.rules.Rule
    in_reply_to: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16))  # a MessageStatus
    status_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_reason: Mapped[str | None] = mapped_column(Text)
    # 0: replies a customer is waiting for; 1: broadcasts, which may queue behind them
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Requests that may have reached Meta without an answer (a read timeout, a dropped
    # connection, a sender that died mid-send): each may have delivered the message, so
    # they limit how often it is sent again. A server default only: a Python default would be
    # added to every INSERT, which the webhook's one-statement write (INSERTs in WITH clauses)
    # cannot compile.
    uncertain_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    # The broadcast run that wrote it; unique with the contact, so a run reaches each once.
    broadcast_run_id: Mapped[int | None] = mapped_column(Integer)
    # When Meta first refused it for the recipient's marketing cap (131049): it gets one
    # later try at most.
    capped_at: Mapped[datetime | None]

    contact: Mapped[Contact] = relationship(foreign_keys=[contact_id])

    __table_args__ = (
        Index("ix_messages_contact_time", "contact_id", "timestamp"),
        Index("ix_messages_outbox", "status", "priority", "id"),
        Index("ix_messages_contact_status", "contact_id", "status"),
        Index("ux_messages_broadcast_recipient", "broadcast_run_id", "contact_id", unique=True),
        # The unique recipients of the last 24 hours, which the messaging limit counts.
        Index("ix_messages_sent_at", "sent_at"),
        # Deleting a message (retention, erasure) looks up the replies to it; only replies are
        # indexed, so the webhook's insert of a plain message pays nothing.
        Index(
            "ix_messages_in_reply_to",
            "in_reply_to",
            postgresql_where=_REPLIES,
            sqlite_where=_REPLIES,
        ),
    )


class MediaFile(Base):
    """A file kept in the media store (bot.media.store), keyed there by its SHA-256.

    One row per distinct content: a picture sent twice is one file. Whatever uses a file
    refers to this row; a file nothing refers to any more is deleted, row and bytes."""

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # lowercase hex
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttachmentState(enum.StrEnum):
    """Where a message's media stands; stored as its value.

    A customer's media is pending until the worker fetched it (stored) or gave up (failed,
    with the reason); media the shop sends is stored from the start."""

    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"


class Attachment(Base):
    """The media of one message, inbound or outbound: what WhatsApp said of it, and the
    stored file once there is one."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # One per message: a WhatsApp message carries at most one media item.
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # a bot.media.kinds.MediaKind
    # Inbound: Meta's media id, to fetch it with (valid for 7 days after the message).
    media_id: Mapped[str | None] = mapped_column(String(255))
    mime_type: Mapped[str | None] = mapped_column(String(255))  # as WhatsApp declared it
    declared_sha256: Mapped[str | None] = mapped_column(String(128))  # as the webhook gave it
    filename: Mapped[str | None] = mapped_column(String(512))
    voice: Mapped[bool] = mapped_column(Boolean, server_default=false())
    animated: Mapped[bool] = mapped_column(Boolean, server_default=false())
    state: Mapped[str] = mapped_column(String(16))  # an AttachmentState
    # Why it failed: a bot.media.kinds.Failure (the admin words it), and the details in
    # English for the log and the operator.
    failure: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("media_files.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    file: Mapped[MediaFile | None] = relationship()

    __table_args__ = (
        # The fetcher's queue: only the few rows still waiting.
        Index(
            "ix_attachments_pending",
            "next_attempt_at",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )


class MediaUpload(Base):
    """A file uploaded to Meta for one business number, and the media id Meta gave it: sent
    again by that id while it is valid (Meta keeps uploads for 30 days)."""

    __tablename__ = "media_uploads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("media_files.id", ondelete="CASCADE"))
    phone_number_id: Mapped[str] = mapped_column(String(64))
    media_id: Mapped[str] = mapped_column(String(255))
    uploaded_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (
        Index("ux_media_uploads_file_number", "file_id", "phone_number_id", unique=True),
    )


class QuickReply(Base):
    """A saved answer the owner picks in the reply box by its shortcut ("/danke")."""

    __tablename__ = "quick_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lowercase and without the slash (bot.quick_replies.clean_shortcut): unique whatever
    # the case it was typed in.
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)
    text: Mapped[str] = mapped_column(Text)  # plain text with placeholders (bot.placeholders)
    # A photo or document sent with it (the text then its caption), and its name as shown.
    file_id: Mapped[int | None] = mapped_column(ForeignKey("media_files.id"), index=True)
    file_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    file: Mapped[MediaFile | None] = relationship()


class SendQuota(Base):
    """The shared send rate: the next free sending slot (unix seconds), one row per number."""

    __tablename__ = "send_quota"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)


class WorkerHeartbeat(Base):
    """A worker process's sign of life, for /healthz and for taking over from a dead one."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent: Mapped[int] = mapped_column(BigInteger, default=0)


def _newest_message(context: Any) -> int:
    newest = context.connection.scalar(select(func.max(Message.id)))
    return int(newest or 0)


class User(Base):
    """Someone who may use the admin pages: the owner or staff."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # "owner" or "staff" (bot.users.Role): only owners manage the team.
    role: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")
    # The admin language the user chose ("de", "en"); none: the business's.
    locale: Mapped[str | None] = mapped_column(String(16))
    # The password was made by Tresen and printed once (the first start's login), not chosen.
    password_generated: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # The newest message when the user joined: in a conversation they never opened, the
    # customer's messages after it are unread for them (bot.conversations.unread).
    unread_from: Mapped[int] = mapped_column(
        BigInteger,
        default=_newest_message,
        server_default="0",
    )
    # A deactivated user cannot log in; their name stays on what they did (audit, notes).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Staff only: whether they may create and cancel broadcasts (owners always may).
    may_broadcast: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Invitation(Base):
    """A one-time link an owner hands to a new member of the team: whoever opens it first
    chooses a name and a password. Only the token's hash is kept."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # a bot.users.Role
    may_broadcast: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # Who joined with it.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AuditEntry(Base):
    """One change a user made in the admin: who, what, when, and for settings the before and
    after. The user's name is copied so the entry outlives the user."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    user_name: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # a bot.team.audit.Action
    subject: Mapped[str | None] = mapped_column(String(255))  # "contact:12", "settings", …
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)


class ConversationState(enum.StrEnum):
    OPEN = "open"
    WAITING = "waiting"  # for the customer
    DONE = "done"


class Conversation(Base):
    """How the team handles one contact's conversation. A contact without a row is an open,
    unassigned, unpinned conversation: rows are written when someone changes that."""

    __tablename__ = "conversations"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(
        String(16), default=ConversationState.OPEN, server_default="open"
    )
    assigned_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Hidden from the lists until the customer writes again.
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationRead(Base):
    """How far one user has read one conversation: the unread count is per person."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # The id of the last message this user has seen in it.
    read_up_to: Mapped[int] = mapped_column(BigInteger, default=0)
    # "Mark unread": shown unread until opened again.
    marked_unread: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Note(Base):
    """An internal note on a conversation: the team sees it, the customer never does."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    user_name: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class SignalKind(enum.StrEnum):
    READ = "read"  # blue ticks on the customer's message
    TYPING = "typing"  # "typing…" (it also marks the message read)


class SignalState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Signal(Base):
    """A read receipt or typing indicator waiting for the dispatcher: not a message, but a
    request to the Graph API all the same, so it keeps the shared send rate."""

    __tablename__ = "signals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # a SignalKind
    wamid: Mapped[str] = mapped_column(String(255))  # the customer's message it is about
    state: Mapped[str] = mapped_column(String(16))  # a SignalState
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]

    __table_args__ = (Index("ix_signals_state", "state", "id"),)


class UserSession(Base):
    """One logged-in browser: its cookie holds a random token, this row only the token's hash.

    Deleting the row ends the session on every process at once (logout, a new password, the
    user deleted).
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed logins of one client address or one user name, and how long it must wait."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)  # addr:… or name:…
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    blocked_until: Mapped[datetime | None]


class ConsentEvent(Base):
    """One change of a contact's broadcast opt-in, kept for the record: when and how."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    opted_in: Mapped[bool] = mapped_column(Boolean)
    # a bot.contacts.consent.ConsentSource
    source: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_consent_events_contact", "contact_id", "at"),)


class Broadcast(Base):
    """A message to an audience: a Jinja text or an approved template, once or by cron."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # a bot.broadcasts.BroadcastKind
    text: Mapped[str | None] = mapped_column(Text)
    template_name: Mapped[str | None] = mapped_column(String(512))
    language: Mapped[str | None] = mapped_column(String(16))
    params: Mapped[list[str] | None] = mapped_column(JSON)
    # A file sent with it: a template's media header, or a text's image (the text its
    # caption); `media_kind` is the MediaKind it goes as, `media_name` a document's name.
    file_id: Mapped[int | None] = mapped_column(ForeignKey("media_files.id"), index=True)
    media_kind: Mapped[str | None] = mapped_column(String(16))
    media_name: Mapped[str | None] = mapped_column(String(255))
    file: Mapped[MediaFile | None] = relationship()
    audience: Mapped[str] = mapped_column(String(80))  # "all" | "label:NAME"
    # A one-off broadcast starts at `at`; a recurring one at every `cron` time in `timezone`.
    at: Mapped[datetime | None]
    cron: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]


class BroadcastRun(Base):
    """One occurrence of a broadcast: its recipients are written to the outbox when it starts."""

    __tablename__ = "broadcast_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    # The occurrence; unique per broadcast, so an occurrence fired twice is one run.
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # a bot.broadcasts.RunStatus
    # Recipients are written in contact id order; a restarted run goes on after this id.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ux_broadcast_runs_occurrence", "broadcast_id", "due_at", unique=True),
        Index("ix_broadcast_runs_status", "status"),
    )


class HeldStatus(Base):
    """A status notification for a wamid not recorded yet (it can overtake the send's answer);
    applied when the dispatcher records the wamid."""

    __tablename__ = "held_statuses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wamid: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationState(enum.StrEnum):
    """Where a journalled webhook notification stands; stored as its value."""

    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"  # parked with its error until `inbound retry`


class InboundNotification(Base):
    """A webhook notification as it came, committed before Meta gets its 200: the journal the
    inbound processor works through. Meta keeps no history, so until processed this row is the
    only copy of the customer's message."""

    __tablename__ = "inbound_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # SHA-256 of the body: a redelivery of the same notification is the same row.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # Emptied once processed: the messages it held are stored, and retention applies there.
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]
    # 0: holds a customer message; 1: statuses and other callbacks only, which wait behind them.
    priority: Mapped[int] = mapped_column(Integer)
    # Its earliest event's time: a contact's messages are processed in this order.
    sort_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))  # a NotificationState
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        # Only rows not processed (waiting or failed, a few): the processor's next batch in
        # order without a sort, and the health check's figures. One index besides the keys:
        # each costs the webhook's INSERT.
        Index(
            "ix_inbound_open",
            "priority",
            "sort_at",
            "id",
            postgresql_where=text("state <> 'processed'"),
            sqlite_where=text("state <> 'processed'"),
        ),
    )


class SchedulerLock(Base):
    """On SQLite, which worker runs the scheduler: a lease its holder keeps renewing."""

    __tablename__ = "scheduler_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


# APScheduler's SQLAlchemy job store table, as the job store defines it, so that migrations
# create it and the job store finds it in place.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class MessageTemplate(Base):
    """A WhatsApp message template of the business account: as Meta lists it (synced), as
    submitted from here and not yet listed, or a console-mode demo. Values are stored as
    bot.message_templates' StrEnums (lowercase); `components` as Meta's JSON."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meta_id: Mapped[str | None] = mapped_column(String(64))  # Meta's template id
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    # The category before Meta last moved it (template_category_update): a utility template
    # moved to marketing now costs.
    previous_category: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    quality: Mapped[str | None] = mapped_column(String(16))
    parameter_format: Mapped[str | None] = mapped_column(String(16))  # positional | named
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)  # why rejected, paused or disabled
    origin: Mapped[str] = mapped_column(String(16))  # synced | submitted | demo
    synced_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ux_message_templates_name_language", "name", "language", unique=True),
        Index("ix_message_templates_meta_id", "meta_id"),
    )


class Notice(Base):
    """Something the shop should know and has not dismissed yet, shown on every admin page:
    a template paused, re-categorised or rejected, a broadcast held back. The text is built
    from `kind` and `details` in the reader's language."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("message_templates.id", ondelete="SET NULL")
    )
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dismissed_at: Mapped[datetime | None]
    dismissed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_notices_open", "dismissed_at", "created_at"),)


class MessagingLimit(Base):
    """The business portfolio's messaging limit, as last read from the Graph API or learnt
    from a refusal: how many unique customers business-initiated messages may reach in any
    24 hours. One row (id 1); `limit` None is unlimited."""

    __tablename__ = "messaging_limit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tier: Mapped[str] = mapped_column(String(32))  # Meta's name, e.g. TIER_2K
    limit: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # api | error | default
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A key a shop system uses for /api/v1/ (a bearer token): only its SHA-256 is kept, and
    its first characters (`prefix`) to tell keys apart; `scopes` are bot.api's Scope values."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class ApiIdempotency(Base):
    """The answer given to a request with an Idempotency-Key, kept 24 hours: the same key
    again gets the same answer, and nothing is done twice."""

    __tablename__ = "api_idempotency"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ux_api_idempotency_key", "api_key_id", "idempotency_key", unique=True),
        Index("ix_api_idempotency_created_at", "created_at"),
    )


class MessageTotal(Base):
    """How many messages of one kind (a bot.statistics.Kind) one day had, kept for the weekly
    statistics when retention deletes the messages themselves (bot.retention)."""

    __tablename__ = "message_totals"

    # The business's local date the messages were written on.
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class WebhookEndpoint(Base):
    """A URL of the shop's own system told of events by signed POSTs (bot.webhooks_out).

    `secret` signs each body: the receiver must hold the same, so it is kept as it is (a shared
    secret, unlike an API key's hash). `failing_since`: the first failure after the last
    success; three days of that and the endpoint is disabled (`disabled_at`, `disabled_reason`).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)  # bot.webhooks_out.events.EventKind values
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)  # the last answer's HTTP status
    last_error: Mapped[str | None] = mapped_column(String(500))  # None after a success
    last_success_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event's POST to one endpoint: queued in the transaction of the event, claimed by a
    deliverer for a lease (`due_at` moves to the lease's end while claimed, so a claim whose
    holder died is simply due again), then sent, retried later, or failed with its reason.

    `body` is the JSON text exactly as it is sent and signed. `contact_id`: whose data it holds,
    for erasing a contact."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(32))  # an EventKind
    body: Mapped[str] = mapped_column(Text)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))  # a DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    due_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]

    __table_args__ = (
        # The deliverer's claim: pending rows by when they are due.
        Index("ix_webhook_deliveries_due", "status", "due_at"),
        # An endpoint's recent deliveries, and its counts, on the admin page.
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        # Retention: settled deliveries by age.
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )
