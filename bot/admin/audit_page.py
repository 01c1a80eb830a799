"""The audit log for owners: who changed what and when, newest first, filtered by user and by
kind of change; settings changes as a line diff; the same as a CSV download."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext, lazy_gettext, to_user_timezone
from sqlalchemy import Select, or_, select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot.admin.blueprint import bp, now
from bot.audit import Action
from bot.contacts.csvfile import guard
from bot.db import get_db
from bot.models import AuditEntry, Broadcast, Contact

PAGE_SIZE = 50
# The user filter's value for entries made on the server's command line (no user).
COMMAND_LINE = "-"

ACTION_TEXTS: dict[Action, Any] = {
    Action.USER_ADDED: lazy_gettext("added a user"),
    Action.USER_INVITED: lazy_gettext("created an invitation link"),
    Action.USER_JOINED: lazy_gettext("joined the team by invitation"),
    Action.USER_CHANGED: lazy_gettext("changed a user's permissions"),
    Action.USER_DEACTIVATED: lazy_gettext("deactivated a user"),
    Action.USER_REACTIVATED: lazy_gettext("activated a user again"),
    Action.USER_DELETED: lazy_gettext("removed a user"),
    Action.PASSWORD_CHANGED: lazy_gettext("changed their password"),
    Action.LANGUAGE_CHANGED: lazy_gettext("changed their language"),
    Action.INVITATION_WITHDRAWN: lazy_gettext("withdrew an invitation"),
    Action.SETTINGS_CHANGED: lazy_gettext("changed the settings"),
    Action.QUICK_REPLY_SAVED: lazy_gettext("saved a quick reply"),
    Action.QUICK_REPLY_DELETED: lazy_gettext("deleted a quick reply"),
    Action.CONTACT_ADDED: lazy_gettext("added a contact"),
    Action.CONTACT_CHANGED: lazy_gettext("changed a contact"),
    Action.CONTACTS_IMPORTED: lazy_gettext("imported contacts"),
    Action.CONTACTS_EXPORTED: lazy_gettext("downloaded contacts"),
    Action.CONTACT_DATA_EXPORTED: lazy_gettext("downloaded a customer's data"),
    Action.CONTACT_ERASED: lazy_gettext("erased a customer's data"),
    Action.LABELS_CHANGED: lazy_gettext("changed a contact's labels"),
    Action.OPT_IN_CHANGED: lazy_gettext("changed a contact's broadcast consent"),
    Action.LABEL_SAVED: lazy_gettext("saved a label"),
    Action.LABEL_DELETED: lazy_gettext("deleted a label"),
    Action.REPLY_SENT: lazy_gettext("answered a customer"),
    Action.TEMPLATE_SENT: lazy_gettext("sent a WhatsApp template"),
    Action.NOTE_ADDED: lazy_gettext("wrote a note"),
    Action.ASSIGNED: lazy_gettext("assigned a conversation"),
    Action.STATE_CHANGED: lazy_gettext("changed a conversation's state"),
    Action.PINNED: lazy_gettext("pinned a conversation"),
    Action.ARCHIVED: lazy_gettext("archived a conversation"),
    Action.MARKED_UNREAD: lazy_gettext("marked a conversation unread"),
    Action.BROADCAST_CREATED: lazy_gettext("created a broadcast"),
    Action.BROADCAST_CANCELLED: lazy_gettext("cancelled a broadcast"),
    Action.TEMPLATES_SYNCED: lazy_gettext("fetched the WhatsApp templates"),
    Action.TEMPLATE_SUBMITTED: lazy_gettext("submitted a WhatsApp template"),
    Action.NOTICE_DISMISSED: lazy_gettext("dismissed a notice"),
    Action.API_KEY_CREATED: lazy_gettext("created an API key"),
    Action.API_KEY_REVOKED: lazy_gettext("revoked an API key"),
    Action.WEBHOOK_CREATED: lazy_gettext("added a webhook"),
    Action.WEBHOOK_CHANGED: lazy_gettext("changed a webhook's events"),
    Action.WEBHOOK_ENABLED: lazy_gettext("switched a webhook on again"),
    Action.WEBHOOK_SECRET_ROTATED: lazy_gettext("made a new signing secret for a webhook"),
    Action.WEBHOOK_TESTED: lazy_gettext("sent a test event to a webhook"),
    Action.WEBHOOK_DELETED: lazy_gettext("deleted a webhook"),
    Action.OTHER: lazy_gettext("changed something else"),
}

# Values the entries keep in the log's own words, shown in the page's.
VALUE_TEXTS: dict[str, Any] = {
    "owner": lazy_gettext("Owner"),
    "staff": lazy_gettext("Staff"),
    "staff, no broadcasts": lazy_gettext("Staff, no broadcasts"),
    "yes": lazy_gettext("gets broadcasts"),
    "no": lazy_gettext("gets no broadcasts"),
}


def value_text(value: str | None) -> str | None:
    return str(VALUE_TEXTS[value]) if value in VALUE_TEXTS else value


# The kinds of change to filter by: each a set of action values' prefixes.
KINDS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "team": (lazy_gettext("Team and accounts"), ("user.", "invitation.")),
    "settings": (lazy_gettext("Settings and quick replies"), ("settings.", "quick_reply.")),
    "contacts": (lazy_gettext("Contacts and labels"), ("contact.", "contacts.", "label.")),
    "conversations": (lazy_gettext("Conversations"), ("conversation.",)),
    "broadcasts": (lazy_gettext("Broadcasts"), ("broadcast.",)),
    "notices": (lazy_gettext("Notices"), ("notice.",)),
    "other": (lazy_gettext("Other"), ("other",)),
}


def action_text(action: str) -> str:
    try:
        return str(ACTION_TEXTS[Action(action)])
    except (ValueError, KeyError):  # an action of a newer version, read by an older one
        return action


def who(entry: AuditEntry) -> str:
    return entry.user_name if entry.user_name is not None else gettext("command line")


@dataclass(frozen=True)
class Filters:
    user: str  # a user name, COMMAND_LINE, or "" for everyone
    kind: str  # a KINDS key or ""
    page: int

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> Filters:
        kind = args.get("kind", "")
        page = args.get("page", "1")
        return cls(
            user=args.get("user", "")[:64],
            kind=kind if kind in KINDS else "",
            page=max(1, int(page)) if page.isdigit() and len(page) < 7 else 1,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {"user": self.user, "kind": self.kind, "page": self.page, **changes}
        return {key: value for key, value in values.items() if value and value != 1}


def _query(filters: Filters) -> Select[Any]:
    stmt = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if filters.user == COMMAND_LINE:
        stmt = stmt.where(AuditEntry.user_name.is_(None))
    elif filters.user:
        stmt = stmt.where(AuditEntry.user_name == filters.user)
    if filters.kind:
        prefixes = KINDS[filters.kind][1]
        stmt = stmt.where(
            or_(*(AuditEntry.action.startswith(prefix, autoescape=True) for prefix in prefixes))
        )
    return stmt


def diff_lines(before: str | None, after: str | None) -> list[dict[str, str]]:
    """The changed lines of a settings document with a little context, each marked added
    ("add"), removed ("del"), unchanged ("same") or a gap between hunks ("gap")."""
    lines = difflib.unified_diff(
        (before or "").splitlines(), (after or "").splitlines(), lineterm="", n=2
    )
    out: list[dict[str, str]] = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append({"kind": "gap", "text": "…"})
        elif line.startswith("+"):
            out.append({"kind": "add", "text": line[1:]})
        elif line.startswith("-"):
            out.append({"kind": "del", "text": line[1:]})
        else:
            out.append({"kind": "same", "text": line[1:]})
    return out


def _subject(
    entry: AuditEntry, contacts: dict[int, str], broadcasts: dict[int, str]
) -> dict[str, Any]:
    """What an entry is about, as the page shows it: a text and, for a contact or a
    broadcast, a link."""
    kind, _, value = (entry.subject or "").partition(":")
    if kind == "contact" and value.isdigit():
        cid = int(value)
        name = contacts.get(cid)
        text = name if name else gettext("contact %(id)s", id=cid)
        return {
            "text": text,
            "url": url_for("admin.contact", contact_id=cid) if name is not None else None,
        }
    if kind == "broadcast" and value.isdigit():
        bid = int(value)
        name = broadcasts.get(bid)
        text = gettext("broadcast %(id)s", id=bid)
        url = url_for("admin.broadcast_page", broadcast_id=bid) if name is not None else None
        return {"text": text, "url": url}
    if kind in ("user", "label", "quick_reply") and value:
        return {"text": value, "url": None}
    if kind == "invitation" or kind == "settings":
        return {"text": "", "url": None}
    return {"text": entry.subject or "", "url": None}


def _ids(entries: list[AuditEntry], kind: str) -> set[int]:
    found = set()
    for entry in entries:
        prefix, _, value = (entry.subject or "").partition(":")
        if prefix == kind and value.isdigit() and len(value) < 19:
            found.add(int(value))
    return found


@bp.get("/audit")
def audit() -> str:
    filters = Filters.from_args(request.args)
    with get_db().session() as session:
        entries = list(
            session.scalars(
                _query(filters).offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
            )
        )
        more = len(entries) > PAGE_SIZE
        entries = entries[:PAGE_SIZE]
        contact_ids, broadcast_ids = _ids(entries, "contact"), _ids(entries, "broadcast")
        contacts = {
            cid: name or ""
            for cid, name in session.execute(
                select(Contact.id, Contact.name).where(Contact.id.in_(contact_ids))
            )
        }
        broadcasts = {
            bid: str(bid)
            for (bid,) in session.execute(
                select(Broadcast.id).where(Broadcast.id.in_(broadcast_ids))
            )
        }
        names = sorted(
            {
                name
                for name in session.scalars(select(AuditEntry.user_name).distinct())
                if name is not None
            },
            key=str.casefold,
        )
        session.expunge_all()
    rows = [
        {
            "at": entry.at,
            "who": who(entry),
            "what": action_text(entry.action),
            "subject": _subject(entry, contacts, broadcasts),
            "diff": diff_lines(entry.before, entry.after)
            if entry.action == Action.SETTINGS_CHANGED
            else None,
            "before": value_text(entry.before),
            "after": value_text(entry.after),
            "other": entry.subject if entry.action == Action.OTHER else None,
        }
        for entry in entries
    ]
    return render_template(
        "admin/audit.html",
        rows=rows,
        filters=filters,
        names=names,
        kinds={key: label for key, (label, _) in KINDS.items()},
        command_line=COMMAND_LINE,
        newer=url_for("admin.audit", **filters.args(page=filters.page - 1))
        if filters.page > 1
        else None,
        older=url_for("admin.audit", **filters.args(page=filters.page + 1)) if more else None,
        csv_url=url_for("admin.audit_csv", **filters.args(page=1)),
    )


CSV_COLUMNS = ("time", "user", "action", "what", "subject", "before", "after")


def write_csv(entries: Iterator[AuditEntry], local: Any) -> Iterator[str]:
    """The log as CSV for a spreadsheet: a byte order mark and semicolons, which German
    Excel opens as columns by a double click (it reads commas as one column)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        cells = [
            local(entry.at).strftime("%Y-%m-%d %H:%M:%S"),
            entry.user_name or "",
            entry.action,
            action_text(entry.action),
            entry.subject or "",
            entry.before or "",
            entry.after or "",
        ]
        writer.writerow([guard(cell) for cell in cells])
        yield out.getvalue()
        out.seek(0)
        out.truncate()


@bp.get("/audit.csv")
def audit_csv() -> Response:
    filters = Filters.from_args(request.args)
    with get_db().session() as session:
        entries = list(session.scalars(_query(filters)))
        session.expunge_all()
    stamp = now().strftime("%Y-%m-%d")
    body = "".join(write_csv(iter(entries), to_user_timezone))
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
        },
    )
