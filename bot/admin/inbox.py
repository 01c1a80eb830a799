"""The inbox: conversations by last message, one conversation's history, replies by hand."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext, lazy_gettext
from flask_login import current_user
from sqlalchemy import ColumnElement, func, not_, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from bot import audit
from bot.admin import signals_page
from bot.admin.blueprint import SCRIPT_TEXTS, UPLOAD_ENDPOINTS, bp, log_change, now
from bot.admin.display import (
    AttachmentInfo,
    Local,
    message_view,
    reacted_to,
    snippet,
    window_closes,
    window_open,
)
from bot.admin.forms import (
    LabelsForm,
    OptInForm,
    PickerForm,
    ReplyForm,
    TemplateForm,
    keep_upload,
)
from bot.admin.template_picker import mismatch_text, picked, picker
from bot.contacts.consent import ConsentSource, opted_out, set_opt_in
from bot.contacts.label_names import clean_label, label_key
from bot.contacts.labels import set_labels
from bot.contacts.numbers import display
from bot.conversations import notes as team_notes
from bot.conversations import search, team, unread
from bot.conversations.state import TABS, State, View, default_view, initials, parse_view
from bot.conversations.text import excerpt, like_pattern
from bot.db import get_db
from bot.media.kinds import MediaKind
from bot.media.sending import (
    ACCEPT,
    CAPTION_KINDS,
    HEADER_KINDS,
    Refused,
    attach,
    check,
    limits_text,
    refusal_text,
)
from bot.message_templates.mapping import Fields, values_for
from bot.message_templates.model import TemplateMismatch, keyed
from bot.message_templates.sending import checked_components, prepare
from bot.models import (
    Attachment,
    AttachmentState,
    Contact,
    Conversation,
    Direction,
    Label,
    Message,
    Note,
    QuickReply,
)
from bot.outbound import outbox
from bot.rules import Rule
from bot.settings import DEFAULT_LOCALE, DEFAULT_TIMEZONE
from bot.settings.stored import load_settings
from bot.whatsapp.payloads import (
    Payload,
    header_media,
    media_payload,
    template_payload,
    text_payload,
)

# What the page script says (bot/admin/static/admin.js), in the page's language.
SCRIPT_TEXTS["inbox_quoted"] = lazy_gettext("on “%(text)s”")
SCRIPT_TEXTS["inbox_unread"] = lazy_gettext("unread")
SCRIPT_TEXTS["inbox_refused"] = lazy_gettext("The server refused it (HTTP %(status)s).")
SCRIPT_TEXTS["inbox_unreachable"] = lazy_gettext("Not sent: the server cannot be reached.")
SCRIPT_TEXTS["inbox_pinned"] = lazy_gettext("pinned")
SCRIPT_TEXTS["inbox_note"] = lazy_gettext("Note by %(name)s")
SCRIPT_TEXTS["inbox_assigned"] = lazy_gettext("assigned to %(name)s")

# The words for the states and views, as the pages show them.
STATE_WORDS = {
    State.OPEN: lazy_gettext("Open"),
    State.WAITING: lazy_gettext("Waiting for the customer"),
    State.DONE: lazy_gettext("Done"),
}
VIEW_WORDS = {
    View.MINE: lazy_gettext("Mine"),
    View.UNASSIGNED: lazy_gettext("Unassigned"),
    View.ALL: lazy_gettext("All"),
    View.DONE: lazy_gettext("Done"),
    View.ARCHIVED: lazy_gettext("Archived"),
}

LIST_LIMIT = 200
HISTORY_LIMIT = 500
LABELS_MAX = 20


def local_of(session: Session) -> Local:
    """The business's time zone and the page's locale."""
    settings = load_settings(session)
    locale = get_locale()
    tz = ZoneInfo(settings.timezone if settings else DEFAULT_TIMEZONE)
    return Local(tz, str(locale) if locale else DEFAULT_LOCALE)


def conversations(
    session: Session,
    *,
    query: str = "",
    label: str = "",
    at: datetime,
    user_id: int,
    view: View = View.ALL,
    nav: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The conversations of a view, pinned ones first, then by last message, newest first,
    matching a search (name, number or a message's text) and a label. `nav`: the list's
    search and view, carried in the links to each conversation."""
    query = query.strip()
    found = search.in_messages(session, query) if query else {}
    if query or label:
        # Imported contacts who never wrote are found by name or label, listed last.
        order: tuple[Any, ...] = (Contact.last_message_at.desc().nulls_last(), Contact.id.desc())
        stmt = select(Contact, Conversation).order_by(*order)
    else:
        # The plain inbox: a backward walk of the (last_message_at, id) index, which stops
        # at the limit however many contacts were imported.
        stmt = (
            select(Contact, Conversation)
            .where(Contact.last_message_at.is_not(None))
            .order_by(Contact.last_message_at.desc(), Contact.id.desc())
        )
    stmt = stmt.outerjoin(Conversation, Conversation.contact_id == Contact.id).where(
        team.in_view(view, user_id)
    )
    if query:
        matches: list[ColumnElement[bool]] = [Contact.name.ilike(like_pattern(query), escape="\\")]
        digits = re.sub(r"\D", "", query)
        if digits:
            matches.append(Contact.wa_id.like(like_pattern(digits), escape="\\"))
        matches.append(Contact.user_id.ilike(like_pattern(query), escape="\\"))
        if found:
            matches.append(Contact.id.in_(list(found)))
        stmt = stmt.where(or_(*matches))
    if label:
        stmt = stmt.where(Contact.labels.any(Label.name_key == label_key(label)))
    stmt = stmt.options(selectinload(Contact.labels))
    # Pinned ones first: a few rows of their own, so the rest keeps its index walk.
    rows = list(session.execute(stmt.where(team.pinned()).limit(LIST_LIMIT)))
    rows += session.execute(stmt.where(not_(team.pinned())).limit(LIST_LIMIT - len(rows)))
    contacts = [row[0] for row in rows]
    teams: dict[int, Conversation | None] = {row[0].id: row[1] for row in rows}
    last: dict[int, Message] = {}
    if contacts:
        newest = (
            select(func.max(Message.id))
            .where(Message.contact_id.in_([c.id for c in contacts]))
            .group_by(Message.contact_id)
        )
        for message in session.scalars(select(Message).where(Message.id.in_(newest))):
            last[message.contact_id] = message
    counts = unread.unread_counts(session, user_id, [c.id for c in contacts])
    names = (
        team.user_names(session) if any(t and t.assigned_user_id for t in teams.values()) else {}
    )
    local = local_of(session)
    out = []
    for contact in contacts:
        latest = last.get(contact.id)
        preview = ""
        if latest is not None:
            view_of = _view(latest, local, at)
            preview = snippet(view_of["text"] or view_of["note"] or "")
            if latest.direction == Direction.OUT and latest.rule == Rule.MANUAL:
                preview = gettext("You: %(text)s", text=preview)
            elif latest.direction == Direction.OUT:
                preview = gettext("Auto: %(text)s", text=preview)
        row = teams.get(contact.id)
        state = State(row.state) if row is not None else State.OPEN
        assigned_id = row.assigned_user_id if row is not None else None
        assigned = None
        if assigned_id is not None:
            name = names.get(assigned_id, "?")
            assigned = {"id": assigned_id, "name": name, "initials": initials(name)}
        match = None
        hit = found.get(contact.id)
        if hit is not None:
            cut = excerpt(hit[1], query)
            if cut is not None:
                match = {"before": cut.before, "match": cut.match, "after": cut.after}
        out.append(
            {
                "id": contact.id,
                "name": contact.name or contact.wa_id or contact.user_id or "?",
                "number": display(contact.wa_id) if contact.wa_id else (contact.user_id or ""),
                "unread": counts.get(contact.id, 0),
                "labels": sorted(lbl.name for lbl in contact.labels),
                "preview": preview,
                "time": local.time(contact.last_message_at, at) if contact.last_message_at else "",
                "at": contact.last_message_at.isoformat() if contact.last_message_at else "",
                "url": url_for("admin.conversation", contact_id=contact.id, **(nav or {})),
                "assigned": assigned,
                "mine": assigned_id == user_id,
                "state": str(state),
                "state_word": str(STATE_WORDS[state]),
                "pinned": bool(row is not None and row.pinned),
                "archived": bool(row is not None and row.archived),
                "match": match,
            }
        )
    return out


def _me() -> tuple[int, str]:
    return int(current_user.id), str(current_user.name)


def _nav() -> dict[str, Any]:
    """The list's search, label and view as the URL gave them: links keep them."""
    return {key: value for key in ("q", "label", "view") if (value := request.args.get(key, ""))}


def _chosen_view(session: Session, user_id: int) -> View:
    chosen = parse_view(request.args.get("view"))
    return chosen if chosen is not None else default_view(team.anything_mine(session, user_id))


def _list(session: Session, at: datetime) -> dict[str, Any]:
    """What the conversation list beside every inbox page needs."""
    user_id, _ = _me()
    view = _chosen_view(session, user_id)
    query, label = request.args.get("q", ""), request.args.get("label", "")
    nav = _nav()
    items = conversations(
        session, query=query, label=label, at=at, user_id=user_id, view=view, nav=nav
    )
    totals = team.unread_totals(session, user_id, at)
    keep: dict[str, Any] = {key: value for key, value in nav.items() if key != "view"}
    tabs = [
        {
            "view": str(v),
            "word": str(VIEW_WORDS[v]),
            "unread": totals.get(v, 0),
            "url": url_for("admin.inbox", view=str(v), **keep),
            "current": v == view,
        }
        for v in (*TABS, View.DONE, View.ARCHIVED)
    ]
    return {
        "conversations": items,
        "labels": _all_labels(session),
        "query": query,
        "label": label,
        "view": str(view),
        "tabs": tabs,
        "poll_url": url_for("admin.inbox_json", view=str(view), **keep),
        "unread_totals": {str(v): totals.get(v, 0) for v in TABS},
    }


def attachments_of(session: Session, message_ids: list[int]) -> dict[int, AttachmentInfo]:
    """The attachments of these messages, by message id: one query, files joined in."""
    if not message_ids:
        return {}
    found = session.scalars(
        select(Attachment)
        .options(joinedload(Attachment.file))
        .where(Attachment.message_id.in_(message_ids))
    )
    out = {}
    for row in found:
        file = row.file
        out[row.message_id] = AttachmentInfo(
            id=row.id,
            kind=row.kind,
            state=row.state if file is not None else _unstored(row.state),
            failure=row.failure,
            voice=row.voice,
            filename=row.filename,
            content_type=file.content_type if file is not None else row.mime_type,
            size=file.size if file is not None else None,
            url=url_for("admin.media", attachment_id=row.id),
        )
    return out


def _unstored(state: str) -> str:
    # "stored" without a file is a row some code left half done: nothing to show.
    return AttachmentState.FAILED if state == AttachmentState.STORED else state


def _view(
    message: Message,
    local: Local,
    at: datetime,
    quoted: str | None = None,
    attachment: AttachmentInfo | None = None,
) -> dict[str, Any]:
    return message_view(
        id=message.id,
        direction=message.direction,
        kind=message.type,
        text=message.text,
        raw=message.raw,
        payload=message.payload,
        rule=message.rule,
        timestamp=message.timestamp,
        status=message.status,
        error_reason=message.error_reason,
        local=local,
        now=at,
        quoted=quoted,
        attachment=attachment,
    )


def history(
    session: Session, contact: Contact, local: Local, at: datetime, *, after: int = 0
) -> list[dict[str, Any]]:
    """The conversation's messages, oldest first (the newest HISTORY_LIMIT of them)."""
    stmt = (
        select(Message)
        .where(Message.contact_id == contact.id, Message.id > after)
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(HISTORY_LIMIT)
    )
    messages = list(reversed(list(session.scalars(stmt))))
    return views(session, messages, local, at)


def views(
    session: Session, messages: list[Message], local: Local, at: datetime
) -> list[dict[str, Any]]:
    """Messages as the page shows them, with the texts reactions refer to and the
    attachments, each fetched for all the messages at once."""
    attachments = attachments_of(session, [m.id for m in messages])
    targets = {r for m in messages if m.type == "reaction" and (r := reacted_to(m.raw))}
    texts: dict[str, str | None] = {}
    if targets:
        for wamid, text in session.execute(
            select(Message.wamid, Message.text).where(Message.wamid.in_(targets))
        ):
            if wamid is not None:
                texts[wamid] = text
    out = []
    for message in messages:
        quoted = None
        if message.type == "reaction":
            target = reacted_to(message.raw)
            if target is not None:
                quoted = snippet(texts.get(target)) or gettext("a message")
        out.append(_view(message, local, at, quoted, attachments.get(message.id)))
    return out


def _contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    return contact


def _all_labels(session: Session) -> list[str]:
    return list(session.scalars(select(Label.name).order_by(Label.name)))


def _recent_templates(session: Session) -> list[str]:
    payloads = session.scalars(
        select(Message.payload)
        .where(Message.direction == Direction.OUT, Message.type == "template")
        .order_by(Message.id.desc())
        .limit(200)
    )
    names: list[str] = []
    for payload in payloads:
        template = payload.get("template") if isinstance(payload, dict) else None
        name = template.get("name") if isinstance(template, dict) else None
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


@bp.get("/")
def index() -> Response:
    return redirect(url_for("admin.inbox"))


@bp.get("/inbox")
def inbox() -> str:
    with get_db().session() as session:
        listed = _list(session, now())
    return render_template("admin/inbox.html", current=None, **listed)


@bp.get("/inbox.json")
def inbox_json() -> Response:
    with get_db().session() as session:
        listed = _list(session, now())
    return jsonify(
        conversations=listed["conversations"],
        view=listed["view"],
        unread=listed["unread_totals"],
    )


def _state(contact: Contact, at: datetime, local: Local) -> dict[str, Any]:
    """The 24-hour window: open, closed (since when, with the day), or never opened."""
    is_open = window_open(contact.last_inbound_at, at)
    closes, closes_at = "", ""
    if contact.last_inbound_at is not None:
        end = window_closes(contact.last_inbound_at)
        closes, closes_at = local.moment(end), end.isoformat()
    return {
        "window_open": is_open,
        "window_closes": closes,
        "window_closes_at": closes_at,
        "never_wrote": contact.last_inbound_at is None,
    }


@bp.get("/inbox/<int:contact_id>")
def conversation(contact_id: int) -> str:
    at = now()
    user_id, _ = _me()
    with get_db().session() as session:
        contact = _contact(session, contact_id)
        signals_page.read_on_open(session, contact, at)  # before it counts as seen
        contact.unread = 0  # opened: the team's shared count, for users without a row
        local = local_of(session)
        messages = history(session, contact, local, at)
        last_id = max((m["id"] for m in messages), default=0)
        if last_id:
            unread.mark_seen(session, user_id, contact.id, last_id)
        notes = team_notes.notes_of(session, contact.id)
        settings = load_settings(session)
        listed = _list(session, at)
        state = _state(contact, at, local)
        handled = team.team_of(session, contact.id)
        users = team.active_users(session)
        handling = {
            "state": str(handled.state),
            "state_word": str(STATE_WORDS[handled.state]),
            "assigned_user_id": handled.assigned_user_id,
            "assigned_name": team.user_names(session).get(handled.assigned_user_id or 0, ""),
            "pinned": handled.pinned,
            "archived": handled.archived,
        }
        view = {
            "id": contact.id,
            "name": contact.name or contact.wa_id or contact.user_id or "?",
            "number": display(contact.wa_id) if contact.wa_id else (contact.user_id or ""),
            "labels": ", ".join(sorted(lbl.name for lbl in contact.labels)),
            "opted_in": contact.opted_in,
            "opted_in_source": contact.opted_in_source,
        }
        templates = _recent_templates(session)
        picking = picker(session)
        fields = _fields(session, contact)
    language = (settings.locale if settings else DEFAULT_LOCALE).split("_")[0]
    template_form = TemplateForm(formdata=None, language=language)
    return render_template(
        "admin/conversation.html",
        contact=view,
        messages=timeline(messages, [note_view(n, local, at) for n in notes]),
        current=contact_id,
        handling=handling,
        users=users,
        states=[(str(s), str(w)) for s, w in STATE_WORDS.items()],
        notes_after=max((n.id for n in notes), default=0),
        back_url=url_for("admin.inbox", **_nav()),
        **listed,
        reply_form=ReplyForm(formdata=None),
        accept=ACCEPT,
        file_limits=limits_text(),
        template_form=template_form,
        labels_form=LabelsForm(formdata=None, labels=view["labels"]),
        optin_form=OptInForm(formdata=None, opted_in=view["opted_in"]),
        recent_templates=templates,
        picker=picking,
        picker_fields=fields,
        last_id=last_id,
        **state,
    )


@bp.get("/inbox/<int:contact_id>/messages.json")
def conversation_json(contact_id: int) -> Response:
    """New messages after `after`, the delivery state of the latest outbound ones, and the
    messages in `pending` whose file has come (or failed) since."""
    at = now()
    after = request.args.get("after", "0")
    after_id = int(after) if after.isdigit() else 0
    notes_after = request.args.get("notes_after", "0")
    user_id, _ = _me()
    with get_db().session() as session:
        contact = _contact(session, contact_id)
        local = local_of(session)
        messages = history(session, contact, local, at, after=after_id)
        if any(m["direction"] == Direction.IN for m in messages):
            # Shown on an open page: seen, and the customer may see that too.
            signals_page.read_on_open(session, contact, at)
            contact.unread = 0
        if messages:
            unread.mark_seen(session, user_id, contact.id, max(m["id"] for m in messages))
        notes = [
            note_view(n, local, at)
            for n in team_notes.notes_of(
                session, contact.id, after=int(notes_after) if notes_after.isdigit() else 0
            )
        ]
        recent = session.scalars(
            select(Message)
            .where(Message.contact_id == contact.id, Message.direction == Direction.OUT)
            .order_by(Message.id.desc())
            .limit(100)
        )
        statuses = {
            str(m.id): {
                "status": v["status"],
                "tick": v["tick"],
                "status_word": v["status_word"],
                "error": v["error"],
            }
            for m in recent
            for v in [_view(m, local, at)]
        }
        state = _state(contact, at, local)
        updated = _fetched(session, contact, _ids(request.args.get("pending", "")), local, at)
    return jsonify(messages=messages, notes=notes, statuses=statuses, updated=updated, **state)


def note_view(note: Note, local: Local, at: datetime) -> dict[str, Any]:
    """An internal note as the timeline shows it."""
    return {
        "team_note": True,
        "id": note.id,
        "author": note.user_name or "?",
        "text": note.text,
        "time": local.time(note.created_at, at),
        "at": note.created_at.isoformat(),
    }


def timeline(messages: list[dict[str, Any]], notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages and notes in one list by time (a note after a message of the same moment)."""
    merged = [(datetime.fromisoformat(m["at"]), 0, m) for m in messages]
    merged += [(datetime.fromisoformat(n["at"]), 1, n) for n in notes]
    merged.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in merged]


PENDING_MAX = 100


def _ids(text: str) -> list[int]:
    """Message ids the page still shows as being fetched ("12,15"), at most PENDING_MAX."""
    return [int(part) for part in text.split(",") if part.isdigit()][:PENDING_MAX]


def _fetched(
    session: Session, contact: Contact, ids: list[int], local: Local, at: datetime
) -> list[dict[str, Any]]:
    """Those of the messages whose file is no longer being fetched: stored, or given up on,
    for the page to show them anew."""
    if not ids:
        return []
    shown = session.scalars(
        select(Message).where(Message.contact_id == contact.id, Message.id.in_(ids))
    )
    return [
        view
        for view in views(session, list(shown), local, at)
        if view["media"] is not None and view["media"]["state"] != AttachmentState.PENDING
    ]


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _answer(contact_id: int, error: str | None, message: dict[str, Any] | None = None) -> Any:
    if _wants_json():
        if error:
            return jsonify(ok=False, error=error), 400
        return jsonify(ok=True, message=message)
    if error:
        flash(error, "error")
    return redirect(url_for("admin.conversation", contact_id=contact_id) + "#reply")


def _form_error(form: ReplyForm | TemplateForm) -> str:
    for field in form:
        for error in field.errors:
            return f"{field.label.text}: {error}"
    return gettext("The form is incomplete.")


def _queue(contact_id: int, build: Any, text: str | None) -> Any:
    at = now()
    with get_db().session() as session:
        contact = _contact(session, contact_id)
        recipient = contact.wa_id or contact.user_id or ""
        try:
            payload = build(recipient, contact, at, session)
        except TemplateMismatch as exc:
            session.rollback()
            return _answer(contact_id, _mismatch(exc))
        except ValueError as exc:
            session.rollback()
            return _answer(contact_id, str(exc))
        message = outbox.enqueue(session, contact, payload, now=at, text=text, rule=Rule.MANUAL)
        # A person has taken over the conversation: away and greeting pause (bot.rules).
        contact.last_human_reply_at = at
        team.replied(session, contact.id, at)
        sent = audit.Action.TEMPLATE_SENT if text is None else audit.Action.REPLY_SENT
        log_change(session, sent, subject=f"contact:{contact_id}")
        view = _view(message, local_of(session), at)
    return _answer(contact_id, None, view)


def _window_closed() -> str:
    return gettext(
        "More than 24 hours since the customer last wrote: WhatsApp only allows "
        "an approved template now."
    )


@bp.post("/inbox/<int:contact_id>/reply")
def reply(contact_id: int) -> Any:
    form = ReplyForm()
    if not form.validate():
        return _answer(contact_id, _form_error(form))
    text = (form.text.data or "").strip()
    upload = request.files.get("file")
    quick_id = request.form.get("quick_reply", "")
    if upload is not None and not upload.filename:
        upload = None  # the file input left empty
    if not text and upload is None and not quick_id.isdigit():
        return _answer(contact_id, gettext("Write a message first."))
    if upload is None and not quick_id.isdigit():
        return _reply_text(contact_id, text)
    return _reply_with_file(contact_id, text, upload, int(quick_id) if quick_id.isdigit() else None)


def _reply_text(contact_id: int, text: str) -> Any:
    def build(recipient: str, contact: Contact, at: datetime, _session: Session) -> dict[str, Any]:
        if not window_open(contact.last_inbound_at, at):
            raise ValueError(_window_closed())
        return text_payload(recipient, text)

    return _queue(contact_id, build, text)


UPLOAD_ENDPOINTS.add("admin.reply")


def _reply_with_file(
    contact_id: int, text: str, upload: FileStorage | None, quick_id: int | None
) -> Any:
    """A photo, video, document or audio with the typed text as its caption: the uploaded
    file, else the file of the quick reply chosen in the reply box."""
    if upload is None:
        with get_db().session() as session:
            quick = session.get(QuickReply, quick_id)
            has_file = quick is not None and quick.file_id is not None
        if not has_file:  # its file was taken off meanwhile: what was typed goes as a text
            if not text:
                return _answer(contact_id, gettext("Write a message first."))
            return _reply_text(contact_id, text)
    at = now()
    with get_db().session() as session:
        contact = _contact(session, contact_id)
        if not window_open(contact.last_inbound_at, at):
            return _answer(contact_id, _window_closed())
        try:
            if upload is not None:
                kept = keep_upload(session, upload, now=at)
                file, kind, filename = kept.file, kept.kind, kept.name
            else:
                quick = session.get(QuickReply, quick_id)
                if quick is None or quick.file is None:
                    session.rollback()
                    return _answer(contact_id, gettext("Write a message first."))
                file, filename = quick.file, quick.file_name
                kind = check(file.content_type, file.size)
        except Refused as exc:
            session.rollback()
            return _answer(contact_id, refusal_text(exc))
        if text and kind not in CAPTION_KINDS:
            session.rollback()
            return _answer(
                contact_id,
                gettext("Audio and stickers go without text: send the text on its own."),
            )
        recipient = contact.wa_id or contact.user_id or ""
        try:
            payload = media_payload(
                recipient,
                kind,
                file=file.sha256,
                caption=text or None,
                filename=filename if kind == MediaKind.DOCUMENT and filename else None,
            )
        except ValueError as exc:
            session.rollback()
            return _answer(contact_id, str(exc))
        message = outbox.enqueue(
            session, contact, payload, now=at, text=text or None, rule=Rule.MANUAL
        )
        attach(session, message, file, kind, filename, at)
        contact.last_human_reply_at = at
        team.replied(session, contact.id, at)
        log_change(session, audit.Action.REPLY_SENT, subject=f"contact:{contact_id}")
        view = _view(message, local_of(session), at)
    return _answer(contact_id, None, view)


def _mismatch(exc: TemplateMismatch) -> str:
    return gettext("Not sent: %(reason)s. Nothing was queued.", reason=mismatch_text(exc))


UPLOAD_ENDPOINTS.add("admin.reply_template")


@bp.post("/inbox/<int:contact_id>/template")
def reply_template(contact_id: int) -> Any:
    """A template from the picker (`template_id`, a value per parameter), or, where no
    templates are stored at all, by the name and parameters typed in."""
    if "template_id" in request.form:
        return _reply_picked(contact_id)
    form = TemplateForm()
    if not form.validate():
        return _answer(contact_id, _form_error(form))
    params = [line.strip() for line in (form.params.data or "").splitlines() if line.strip()]
    name, language = (form.name.data or "").strip(), (form.language.data or "").strip()

    def build(recipient: str, contact: Contact, _at: datetime, session: Session) -> Payload:
        # A stored template, or an account whose templates Meta listed: the one check.
        said_no = opted_out(contact)
        components = checked_components(session, name, language, params, opted_out=said_no)[0]
        return template_payload(recipient, name, language, components)

    return _queue(contact_id, build, None)


def _fields(session: Session, contact: Contact) -> Fields:
    """What the picker's parameters may be taken from for this contact."""
    settings = load_settings(session)
    return Fields(
        name=contact.name or "",
        phone=f"+{contact.wa_id}" if contact.wa_id else "",
        business=settings.name if settings else "",
    )


def _reply_picked(contact_id: int) -> Any:
    """The picked template with this contact's values, checked against the stored template
    (`prepare`) before anything is queued; a media header carries the uploaded file."""
    if not PickerForm().validate():
        return _answer(contact_id, gettext("The form is incomplete."))
    upload = request.files.get("file")
    if upload is not None and not upload.filename:
        upload = None
    at = now()
    with get_db().session() as session:
        contact = _contact(session, contact_id)
        recipient = contact.wa_id or contact.user_id or ""
        kept = None
        try:
            template, choices = picked(session, request.form)
            values = values_for(choices, _fields(session, contact))
            header = None
            if upload is not None and template.needs_media:
                kept = keep_upload(session, upload, now=at, kinds=HEADER_KINDS)
                filename = kept.name if kept.kind == MediaKind.DOCUMENT else None
                header = header_media(str(kept.kind), file=kept.file.sha256, filename=filename)
            components = prepare(
                session,
                template.name,
                template.language,
                values,
                header=header,
                opted_out=opted_out(contact),
            )
            payload = template_payload(recipient, template.name, template.language, components)
        except TemplateMismatch as exc:
            session.rollback()
            return _answer(contact_id, _mismatch(exc))
        except Refused as exc:
            session.rollback()
            return _answer(contact_id, refusal_text(exc))
        filled = template.filled(keyed(template, values))[1]
        message = outbox.enqueue(session, contact, payload, now=at, text=filled, rule=Rule.MANUAL)
        if kept is not None:
            attach(session, message, kept.file, kept.kind, kept.name, at)
        contact.last_human_reply_at = at
        team.replied(session, contact.id, at)
        log_change(session, audit.Action.TEMPLATE_SENT, subject=f"contact:{contact_id}")
        view = _view(message, local_of(session), at)
    return _answer(contact_id, None, view)


def parse_labels(text: str) -> list[str]:
    """Comma-separated label names; raises ValueError for too many or too long ones."""
    names: list[str] = []
    for part in text.split(","):
        name = clean_label(part)
        if not name or label_key(name) in (label_key(n) for n in names):
            continue
        names.append(name)
    if len(names) > LABELS_MAX:
        raise ValueError(gettext("at most %(num)d labels per contact", num=LABELS_MAX))
    return names


@bp.post("/inbox/<int:contact_id>/labels", endpoint="conversation_labels")
def labels(contact_id: int) -> Response:
    form = LabelsForm()
    try:
        if not form.validate():
            raise ValueError(gettext("the labels are too long"))
        names = parse_labels(form.labels.data or "")
    except ValueError as exc:
        flash(gettext("Labels not changed: %(reason)s.", reason=exc), "error")
        return redirect(url_for("admin.conversation", contact_id=contact_id))
    with get_db().session() as session:
        set_labels(session, _contact(session, contact_id), names)
        log_change(
            session,
            audit.Action.LABELS_CHANGED,
            subject=f"contact:{contact_id}",
            after="; ".join(names),
        )
    flash(gettext("Labels saved."))
    return redirect(url_for("admin.conversation", contact_id=contact_id))


@bp.post("/inbox/<int:contact_id>/optin")
def optin(contact_id: int) -> Response:
    form = OptInForm()
    form.validate()
    with get_db().session() as session:
        contact = _contact(session, contact_id)
        wanted = bool(form.opted_in.data)
        set_opt_in(session, contact, wanted, ConsentSource.ADMIN, now())
        log_change(
            session,
            audit.Action.OPT_IN_CHANGED,
            subject=f"contact:{contact_id}",
            after="yes" if wanted else "no",
        )
    flash(gettext("Gets broadcasts now.") if wanted else gettext("Gets no broadcasts now."))
    return redirect(url_for("admin.conversation", contact_id=contact_id))
