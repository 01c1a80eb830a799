"""The business settings file (YAML): its values, reading it with line numbers, parsing and
validating it whole, writing it back out, and the demo business.

The settings as stored in the database are in bot.settings.stored, kept apart so that this
package stays free of the database.
"""

from bot.replies import DEFAULT_LOCALE
from bot.settings.demo import DEMO_SETTINGS
from bot.settings.parsers import parse_settings
from bot.settings.reading import SettingsError
from bot.settings.values import (
    DAYS,
    DEFAULT_COOLDOWN_HOURS,
    DEFAULT_HUMAN_PAUSE_MINUTES,
    DEFAULT_INACTIVE_DAYS,
    DEFAULT_STALE_AFTER_MINUTES,
    DEFAULT_START,
    DEFAULT_STOP,
    DEFAULT_TIMEZONE,
    WHEN,
    AwayRule,
    BroadcastHours,
    BusinessSettings,
    FollowUpRule,
    FrozenMap,
    GreetingRule,
    InboxSignals,
    KeywordFile,
    KeywordRule,
    Retention,
    bare_word,
    fold_text,
)
from bot.settings.writer import dump_settings

__all__ = [
    "DAYS",
    "DEFAULT_COOLDOWN_HOURS",
    "DEFAULT_HUMAN_PAUSE_MINUTES",
    "DEFAULT_INACTIVE_DAYS",
    "DEFAULT_LOCALE",
    "DEFAULT_STALE_AFTER_MINUTES",
    "DEFAULT_START",
    "DEFAULT_STOP",
    "DEFAULT_TIMEZONE",
    "DEMO_SETTINGS",
    "WHEN",
    "AwayRule",
    "BroadcastHours",
    "BusinessSettings",
    "FollowUpRule",
    "FrozenMap",
    "GreetingRule",
    "InboxSignals",
    "KeywordFile",
    "KeywordRule",
    "Retention",
    "SettingsError",
    "bare_word",
    "dump_settings",
    "fold_text",
    "parse_settings",
]
