"""Which coming broadcasts a template's state puts at risk, and why: the one rule behind the
flag on the broadcast pages and the broadcasts a template notice names. Pure: the callers read
the rows (bot.message_templates.changes) and show the result.

A broadcast is at risk while it is still to go out (scheduled or running) and its template
cannot be sent (paused, disabled, rejected, or any other state but approved), or Meta moved
it from utility to marketing: it still goes out, but every message now costs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from bot.message_templates.model import TemplateCategory, TemplateStatus


class FlagReason(enum.StrEnum):
    PAUSED = "paused"
    DISABLED = "disabled"
    REJECTED = "rejected"
    NOT_APPROVED = "not_approved"  # pending, deleted, archived, … : not sendable either
    RECATEGORISED = "recategorised"  # utility → marketing: it now costs


# Statuses that say nothing about whether it can be sent: no flag for them.
_UNSURE = frozenset({TemplateStatus.APPROVED, TemplateStatus.UNKNOWN})
_BY_STATUS = {
    TemplateStatus.PAUSED: FlagReason.PAUSED,
    TemplateStatus.DISABLED: FlagReason.DISABLED,
    TemplateStatus.REJECTED: FlagReason.REJECTED,
}


@dataclass(frozen=True)
class TemplateState:
    """What the rule needs of a template: as stored, or as a notification describes it."""

    name: str
    language: str
    status: str
    category: str | None = None
    previous_category: str | None = None


@dataclass(frozen=True)
class BroadcastUse:
    """A broadcast that sends a template; `coming`: scheduled or running, not done or
    cancelled."""

    id: int
    template: str
    language: str
    coming: bool


@dataclass(frozen=True)
class Flag:
    broadcast_id: int
    template: str
    language: str
    reason: FlagReason
    status: str  # the template's status, for the words of NOT_APPROVED


def language_key(code: str) -> str:
    """A language code as compared: Meta writes `en_US`, a person may write `en-US` or `en_us`."""
    return code.strip().replace("-", "_").lower()


def template_key(name: str, language: str) -> tuple[str, str]:
    return name.strip(), language_key(language)


def reason_for(state: TemplateState) -> FlagReason | None:
    """Why a broadcast with this template is at risk; None when it is not."""
    try:
        status = TemplateStatus(state.status.lower())
    except ValueError:
        status = TemplateStatus.UNKNOWN
    if status not in _UNSURE:
        return _BY_STATUS.get(status, FlagReason.NOT_APPROVED)
    if (
        state.category == TemplateCategory.MARKETING
        and state.previous_category == TemplateCategory.UTILITY
    ):
        return FlagReason.RECATEGORISED
    return None


def affected(broadcasts: Iterable[BroadcastUse], templates: Iterable[TemplateState]) -> list[Flag]:
    """The flags of the coming broadcasts among `broadcasts` whose template (by name and
    language, the language compared as language_key does) is at risk, by broadcast id."""
    reasons: dict[tuple[str, str], tuple[FlagReason, str]] = {}
    for state in templates:
        reason = reason_for(state)
        if reason is not None:
            reasons[template_key(state.name, state.language)] = (reason, state.status)
    flags = []
    for use in broadcasts:
        found = reasons.get(template_key(use.template, use.language)) if use.coming else None
        if found is not None:
            flags.append(Flag(use.id, use.template, use.language, found[0], found[1]))
    return sorted(flags, key=lambda flag: flag.broadcast_id)
