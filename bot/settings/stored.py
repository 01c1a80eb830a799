"""The business's settings as stored in the database: load (parsed once per version), replace,
seed the demo."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.contacts.labels import seed_default_labels
from bot.models import Business, utcnow
from bot.settings import DEMO_SETTINGS, BusinessSettings, dump_settings, parse_settings

BUSINESS_ID = 1


@lru_cache(maxsize=8)
def parsed(text: str) -> BusinessSettings:
    """Stored settings, parsed once per text: they are read for every inbound message, and
    parsing and validating YAML is not free."""
    return parse_settings(text, stored=True)


# The stored settings document; the webhook reads it as a column of its contact query.
SETTINGS_TEXT = select(Business.settings_yaml).where(Business.id == BUSINESS_ID)


def load_settings(session: Session) -> BusinessSettings | None:
    # Straight on the connection (this runs for every customer message), after any settings
    # saved but not yet flushed in this session.
    if session.new or session.dirty:
        session.flush()
    text = session.connection().execute(SETTINGS_TEXT).scalar()
    return None if text is None else parsed(text)


def save_settings(session: Session, text: str) -> BusinessSettings:
    """Validate the whole document (SettingsError names the line) and replace the settings."""
    settings = parse_settings(text, try_templates=True)
    canonical = dump_settings(settings)
    business = session.get(Business, BUSINESS_ID, with_for_update=True)
    if business is None:
        session.add(
            Business(id=BUSINESS_ID, settings_yaml=canonical, version=1, updated_at=utcnow())
        )
        # A new business starts with the WhatsApp Business app's labels, once.
        seed_default_labels(session, settings.locale)
    else:
        business.settings_yaml = canonical
        business.version += 1
        business.updated_at = utcnow()
    return settings


def save_settings_by(
    session: Session, text: str, actor: audit.Actor, at: datetime
) -> BusinessSettings:
    """save_settings for a person: the audit log gets the whole document before and after
    (nothing when it stays the same)."""
    business = session.get(Business, BUSINESS_ID, with_for_update=True)
    before = business.settings_yaml if business is not None else None
    settings = save_settings(session, text)
    after = session.get(Business, BUSINESS_ID)
    after_text = after.settings_yaml if after is not None else None
    if after_text == before:
        audit.nothing_changed()
    else:
        audit.record(
            session,
            actor,
            audit.Action.SETTINGS_CHANGED,
            at,
            subject="settings",
            before=before,
            after=after_text,
        )
    return settings


def seed_demo(session: Session) -> bool:
    """Give a fresh installation the demo business; True when it was seeded now."""
    if session.get(Business, BUSINESS_ID) is not None:
        return False
    save_settings(session, DEMO_SETTINGS)
    return True
