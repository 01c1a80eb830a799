"""The audit log: every change a user makes in the admin, with who, what and when.

Each edge that changes something records it in the same transaction as the change, so an entry
exists exactly when the change does. Settings keep their before and after in full.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from bot.models import AuditEntry


class Action(StrEnum):
    """What was done. The admin's audit page names each in the page's language."""

    # the team
    USER_ADDED = "user.added"
    USER_INVITED = "user.invited"
    USER_JOINED = "user.joined"
    USER_CHANGED = "user.changed"  # role, broadcasts allowed
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    USER_DELETED = "user.deleted"
    PASSWORD_CHANGED = "user.password"  # noqa: S105 (an action, not a password)
    LANGUAGE_CHANGED = "user.language"
    # settings
    SETTINGS_CHANGED = "settings.changed"
    QUICK_REPLY_SAVED = "quick_reply.saved"
    QUICK_REPLY_DELETED = "quick_reply.deleted"
    # contacts
    CONTACT_ADDED = "contact.added"
    CONTACT_CHANGED = "contact.changed"
    CONTACTS_IMPORTED = "contacts.imported"
    CONTACTS_EXPORTED = "contacts.exported"
    CONTACT_DATA_EXPORTED = "contact.data_exported"  # one customer's data (GDPR Art. 15)
    CONTACT_ERASED = "contact.erased"  # one customer's data (GDPR Art. 17), naming no one
    LABELS_CHANGED = "contact.labels"
    OPT_IN_CHANGED = "contact.opt_in"
    LABEL_SAVED = "label.saved"
    LABEL_DELETED = "label.deleted"
    # conversations
    REPLY_SENT = "conversation.reply"
    TEMPLATE_SENT = "conversation.template"
    NOTE_ADDED = "conversation.note"
    ASSIGNED = "conversation.assigned"
    STATE_CHANGED = "conversation.state"
    PINNED = "conversation.pinned"
    ARCHIVED = "conversation.archived"
    MARKED_UNREAD = "conversation.unread"
    # broadcasts
    BROADCAST_CREATED = "broadcast.created"
    BROADCAST_CANCELLED = "broadcast.cancelled"
    # WhatsApp templates
    TEMPLATES_SYNCED = "templates.synced"
    TEMPLATE_SUBMITTED = "template.submitted"
    # anything else a form changed (see bot.admin: a POST that recorded nothing itself)
    OTHER = "other"
    # invitations
    INVITATION_WITHDRAWN = "invitation.withdrawn"
    # notices (template paused, moved to marketing …)
    NOTICE_DISMISSED = "notice.dismissed"
    # API keys for shop systems
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    # outgoing webhooks for shop systems
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_CHANGED = "webhook.changed"  # its events
    WEBHOOK_ENABLED = "webhook.enabled"
    WEBHOOK_SECRET_ROTATED = "webhook.secret"  # noqa: S105 (an action, not a secret)
    WEBHOOK_TESTED = "webhook.tested"
    WEBHOOK_DELETED = "webhook.deleted"


# Entries recorded since start_counting(): the admin's safety net records a change whose view
# recorded none. A context variable, as each request runs in a context of its own.
_count: ContextVar[int] = ContextVar("audit_count", default=0)


def start_counting() -> None:
    _count.set(0)


def counted() -> int:
    return _count.get()


def nothing_changed() -> None:
    """A form was saved as it was: no entry, and none from the safety net either."""
    _count.set(_count.get() + 1)


@dataclass(frozen=True)
class Actor:
    """Who did it: a user of the admin, or none (the command line, the system)."""

    id: int | None
    name: str | None


def record(
    session: Session,
    actor: Actor,
    action: Action,
    at: datetime,
    *,
    subject: str | None = None,
    before: str | None = None,
    after: str | None = None,
) -> AuditEntry:
    """Add one entry to `session`; it is committed with the change it describes."""
    entry = AuditEntry(
        at=at,
        user_id=actor.id,
        user_name=actor.name,
        action=str(action),
        subject=subject,
        before=before,
        after=after,
    )
    session.add(entry)
    _count.set(_count.get() + 1)
    return entry
