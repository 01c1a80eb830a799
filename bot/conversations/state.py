"""How a conversation's state moves (open, waiting for the customer, done) and which of the
inbox's views a conversation belongs in: plain rules, no database.

A contact without a `conversations` row is open, unassigned, not pinned and not archived; the
functions here take the values as they read, with those defaults filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """The same words as bot.models.ConversationState (a test keeps them equal)."""

    OPEN = "open"
    WAITING = "waiting"  # for the customer
    DONE = "done"


class View(StrEnum):
    """The inbox's tabs (mine, unassigned, all) and its two filters (done, archived)."""

    MINE = "mine"
    UNASSIGNED = "unassigned"
    ALL = "all"
    DONE = "done"
    ARCHIVED = "archived"


TABS = (View.MINE, View.UNASSIGNED, View.ALL)
FILTERS = (View.DONE, View.ARCHIVED)


@dataclass(frozen=True)
class Team:
    """What the team decided about one conversation."""

    state: State = State.OPEN
    assigned_user_id: int | None = None
    pinned: bool = False
    archived: bool = False


def after_reply(state: State) -> State:
    """A person answered: an open conversation now waits for the customer. A done one stays
    done: the last word after closing it ("you're welcome") should not put it back on the
    list; a waiting one waits on."""
    return State.WAITING if state == State.OPEN else state


def after_customer_message(team: Team) -> Team:
    """The customer wrote: whatever the team had put aside is open and in the lists again."""
    return Team(State.OPEN, team.assigned_user_id, team.pinned, archived=False)


def needs_reopening(team: Team) -> bool:
    """Whether a customer's message changes anything (the inbound pipeline writes only then)."""
    return team.archived or team.state != State.OPEN


def parse_view(text: str | None) -> View | None:
    """The view named in a URL, or None for an unknown or missing one."""
    try:
        return View(text or "")
    except ValueError:
        return None


def default_view(anything_mine: bool) -> View:
    """The view the inbox opens with when the URL names none: your own conversations if any
    are assigned to you, else all of them."""
    return View.MINE if anything_mine else View.ALL


def in_view(view: View, team: Team, user_id: int) -> bool:
    """Whether a conversation is listed in `view` for `user_id`.

    Mine and Unassigned are work queues: done conversations leave them. All lists every
    conversation but the archived ones; Done and Archived are the filters for what was put
    aside."""
    if view == View.ARCHIVED:
        return team.archived
    if team.archived:
        return False
    if view == View.DONE:
        return team.state == State.DONE
    if view == View.ALL:
        return True
    if team.state == State.DONE:
        return False
    if view == View.MINE:
        return team.assigned_user_id == user_id
    return team.assigned_user_id is None


def initials(name: str) -> str:
    """One or two letters for a name: "Anna Huber" is AH, "owner" is O."""
    parts = [part for part in name.replace(".", " ").replace("_", " ").split() if part]
    if not parts:
        return "?"
    if len(parts) == 1:
        return parts[0][:1].upper()
    return (parts[0][:1] + parts[-1][:1]).upper()
