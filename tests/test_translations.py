"""Every admin text is translated: into German in the catalogue, and on every page.

Two checks. The catalogue check extracts every text the code and templates mark for
translation and wants a German one for each. The page check renders every admin page with
pseudo translations (each translated text comes out as ⟦…⟧) and fails on any word outside the
marks: a text that was never marked at all. Data (names, messages, numbers, dates) is not a
text of ours: the pages mark it `translate="no"` (the HTML attribute for exactly that) or put
it in a `<time>` element.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from flask import Flask
from flask.testing import FlaskClient

from bot import i18n
from tests.conftest import ROOT
from tests.test_admin import admin, clock, receive  # noqa: F401  (fixtures)

KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "pgettext": ((1, "c"), 2),
    "lazy_ngettext": (1, 2),
}
METHODS = [("bot/**.py", "python"), ("templates/admin/**.html", "jinja2")]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


def extracted() -> dict[str, list[str]]:
    """Every marked text: msgid → where it was found. A text with a plural form is one
    catalogue entry, under its singular."""
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS
    ):
        # A plural text is one catalogue entry, found by its singular (msgid_plural beside it).
        ids = message[:1] if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def test_every_marked_text_has_a_german_translation() -> None:
    german = i18n.read_catalogue("de")
    # An ngettext's plural text is found through its entry (keyed by the singular).
    plurals = {m.id[1]: m for m in german if isinstance(m.id, tuple)}
    missing = []
    for msgid, where in sorted(extracted().items()):
        message = german.get(msgid) or plurals.get(msgid)
        if message is None or not message.string or message.fuzzy:
            missing.append(f"{where[0]}: {msgid!r}")
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(msgid)):
                missing.append(f"{where[0]}: {msgid!r} has other placeholders in German")
    assert not missing, "texts without German (add them to translations/de/*.po):\n" + "\n".join(
        missing
    )


def test_no_text_is_in_two_catalogue_files_and_none_is_unused() -> None:
    seen: dict[str, str] = {}
    twice = []
    from babel.messages.pofile import read_po

    for path in i18n.catalogue_files("de"):
        with path.open("rb") as fp:
            for message in read_po(fp, locale="de"):
                if not message.id:
                    continue
                key = message.id if isinstance(message.id, str) else message.id[0]
                if key in seen:
                    twice.append(f"{key!r} in {seen[key]} and {path.name}")
                seen[key] = path.name
    assert not twice
    used = {msgid for msgid in extracted()}
    unused = sorted(set(seen) - used)
    assert not unused, f"German texts no code uses any more: {unused}"


def test_german_is_chosen_by_the_business_locale_and_html_lang_follows(
    admin: FlaskClient,  # noqa: F811
) -> None:
    html = admin.get("/admin/inbox").get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Posteingang" in html and "Abmelden" in html


# --- the page check ---------------------------------------------------------------------------

LETTER = re.compile(r"[^\W\d_]")
# A translated text with no other inside it; unwrap() removes them from the inside out.
INNERMOST = re.compile(
    f"{i18n.PSEUDO_OPEN}[^{i18n.PSEUDO_OPEN}{i18n.PSEUDO_CLOSE}]*{i18n.PSEUDO_CLOSE}"
)
CHECKED_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")
# Names that read the same in every language.
PROPER_NAMES = re.compile(r"\b(?:Tresen|WhatsApp|CSV|YAML|Jinja|cron)\b")
SKIPPED = {"script", "style", "time", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class Unmarked(HTMLParser):
    """Collects visible texts and labelled attributes that came through no translation."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.found: list[str] = []

    def _skipping(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        skipped = self._skipping() or tag in SKIPPED or values.get("translate") == "no"
        if not skipped:
            for name in CHECKED_ATTRIBUTES:
                self._check(values.get(name), f"<{tag} {name}>")
            if tag == "input" and values.get("type") in ("submit", "button"):
                self._check(values.get("value"), "<input value>")
        if tag == "script" and values.get("id") == "texts":
            self.stack.append((tag, True))
            self.script_texts = True
            return
        if tag not in VOID:
            self.stack.append((tag, skipped))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "script" and getattr(self, "script_texts", False):
            self.script_texts = False
            for key, text in json.loads(data).items():
                self._check(text, f"script text {key}")
            return
        if not self._skipping():
            self._check(data, "text")

    def _check(self, text: str | None, where: str) -> None:
        if text and LETTER.search(PROPER_NAMES.sub("", unwrap(text))):
            self.found.append(f"{where}: {text.strip()!r}")


def unwrap(text: str) -> str:
    """`text` without its translated parts, also those with a translated text inside
    ("⟦⟦The photo⟧ is too large⟧")."""
    while (shorter := INNERMOST.sub("", text)) != text:
        text = shorter
    return text


def unmarked(html: str) -> list[str]:
    parser = Unmarked()
    parser.feed(html)
    return parser.found


def test_the_page_check_finds_an_unmarked_text() -> None:
    assert unmarked("<p>⟦Posteingang⟧</p><p translate='no'>Anna</p><time>Mo.</time>") == []
    assert unmarked("<p>⟦Posteingang⟧ Inbox</p>") == ["text: '⟦Posteingang⟧ Inbox'"]
    assert unmarked('<input placeholder="Search">') == ["<input placeholder>: 'Search'"]
    assert unmarked("<p>12:30 · 3 ✓✓</p>") == []
    assert unmarked("<p>⟦⟦Das Foto⟧ ist zu groß⟧</p>") == []
    assert unmarked("<p>⟦⟦Das Foto⟧ ist⟧ zu groß</p>") == ["text: '⟦⟦Das Foto⟧ ist⟧ zu groß'"]


# Values for the routes' parameters: (parameter, example maker). A new page with a parameter
# not named here fails the check until it gets one, so no page goes unchecked.
def examples(app: Flask, admin: FlaskClient) -> dict[str, list[str]]:  # noqa: F811
    from sqlalchemy import select

    from bot.db import get_db
    from bot.models import Contact

    receive(admin)
    with get_db(app).session() as session:
        contact = session.scalar(select(Contact.id))
    values: dict[str, list[str]] = {"contact_id": [str(contact)]}
    for hook in EXAMPLE_HOOKS:
        values.update(hook(app, admin))
    return values


def broadcast_example(app: Flask, admin: FlaskClient) -> dict[str, list[str]]:  # noqa: F811
    """A broadcast sent to the opted-in contacts, one of whom read it and one who is outside
    the 24-hour window (skipped): its page shows the funnel, a run and its recipients."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from bot import broadcasts
    from bot.contacts.audiences import parse_audience
    from bot.db import get_db
    from bot.models import Contact, Message
    from tests.test_admin import NOW

    receive(admin, wa_id="4917600000009", name="Berta", at=NOW - timedelta(days=2))
    with get_db(app).session() as session:
        session.execute(update(Contact).values(opted_in=True))
        content = broadcasts.Content(text="Hallo {{ contact.name }}")
        created = broadcasts.create(
            session, content, parse_audience("all"), timezone="Europe/Berlin", now=NOW
        )
        broadcast_id = created.id
        run_id = broadcasts.start_run(session, broadcast_id, NOW, NOW)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: NOW)
    with get_db(app).session() as session:
        first = session.scalar(select(Message).where(Message.status == "queued"))
        assert first is not None
        first.status = "read"
    return {"broadcast_id": [str(broadcast_id)]}


def media_example(app: Flask, admin: FlaskClient) -> dict[str, list[str]]:  # noqa: F811
    """Files of every kind, each state, a location and contact cards in the conversation the
    check opens; the media route (a file, not a page) gets a photo."""
    from tests.media_rows import every_kind
    from tests.test_admin import NOW

    ids = every_kind(app, NOW)
    return {"attachment_id": [str(ids["photo_file"])]}


def team_example(app: Flask, admin: FlaskClient) -> dict[str, list[str]]:  # noqa: F811
    """An open invitation (its page) and an audit log with an entry of every kind, a settings
    change among them (shown as a diff)."""
    from bot import audit, invitations, users
    from bot.db import get_db
    from tests.test_admin import NOW

    with get_db(app).session() as session:
        invitation_id, token = invitations.create(
            session, users.Role.STAFF, may_broadcast=False, by=None, now=NOW
        )
        for action in audit.Action:
            audit.record(
                session,
                audit.Actor(None, "anna" if action != audit.Action.OTHER else None),
                action,
                NOW,
                subject="contact:1" if action.value.startswith("contact") else "user:anna",
                before="a: 1\nb: 2\n" if action == audit.Action.SETTINGS_CHANGED else "x",
                after="a: 1\nb: 3\n",
            )
    return {"token": [token], "invitation_id": [str(invitation_id)]}


def template_example(app: Flask, admin: FlaskClient) -> dict[str, list[str]]:  # noqa: F811
    """The demo templates (a picture header, named variables, a URL button, a paused one),
    one of them rejected with Meta's reason and moved from utility: the list and a page."""
    from sqlalchemy import select

    from bot.db import get_db
    from bot.message_templates.demo import seed_demo_templates
    from bot.models import MessageTemplate
    from tests.test_admin import NOW

    with get_db(app).session() as session:
        seed_demo_templates(session, NOW)
        row = session.scalars(select(MessageTemplate).order_by(MessageTemplate.id)).first()
        assert row is not None
        row.status, row.reason, row.previous_category = "rejected", "INVALID_FORMAT", "utility"
        row.synced_at = NOW
        return {"template_id": [str(row.id)]}


def webhook_example(app: Flask, admin: FlaskClient) -> dict[str, list[str]]:  # noqa: F811
    """A webhook switched off after failing (its notice shown), with a delivery of each state."""
    from bot.db import get_db
    from bot.notices import NoticeKind, raise_notice
    from bot.webhooks_out import store
    from tests.test_admin import NOW

    with get_db(app).session() as session:
        endpoint, _secret = store.create_endpoint(
            session, "https://shop.example/hook", ["message.received"], by=None, now=NOW
        )
        for _ in range(3):
            store.ping(session, endpoint, NOW)
        first, second, _third = store.recent(session, endpoint.id)
        first.status, first.last_status, first.attempts = "sent", 200, 1
        second.status, second.last_error, second.attempts = "failed", "HTTP 500", 2
        endpoint.last_attempt_at, endpoint.last_error = NOW, "HTTP 500"
        endpoint.disabled_at, endpoint.disabled_reason = NOW, "no success for 3 days"
        raise_notice(session, NoticeKind.WEBHOOK_DISABLED, {"url": endpoint.url}, NOW)
        return {"endpoint_id": [str(endpoint.id)]}


# Areas with pages of their own add a function here that makes their example data.
EXAMPLE_HOOKS: list[Any] = [
    broadcast_example,
    media_example,
    team_example,
    template_example,
    webhook_example,
]


def admin_pages(app: Flask, values: dict[str, list[str]]) -> list[str]:
    paths = []
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/") or "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint == "admin.static" or rule.rule.endswith(".json"):
            continue
        if rule.endpoint in NOT_PAGES:
            continue
        if not rule.arguments:
            paths.append(rule.rule)
            continue
        unknown = [a for a in rule.arguments if a not in values]
        if unknown:
            missing.append(f"{rule.rule}: no example for {unknown}")
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{argument}>", values[argument][0], path)
        paths.append(path)
    assert not missing, "\n".join(missing)
    return paths


# GET routes that answer with data or a file, not a page.
NOT_PAGES = {"admin.logout", "admin.login"}


@pytest.mark.parametrize("locale", ["de_DE", "en_GB"])
def test_every_admin_page_says_only_translated_texts(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    locale: str,
) -> None:
    from bot.db import get_db
    from bot.settings.stored import load_settings, save_settings
    from bot.settings.writer import dump_settings

    values = examples(app, admin)
    with get_db(app).session() as session:
        settings = load_settings(session)
        assert settings is not None
        save_settings(session, dump_settings(settings).replace(settings.locale, locale, 1))
    app.config[i18n.PSEUDO] = True
    problems = []
    pages = admin_pages(app, values)
    for path in pages:
        response = admin.get(path, follow_redirects=True)
        kind = response.mimetype
        if kind != "text/html":
            continue
        assert response.status_code == 200, path
        problems += [f"{path} {found}" for found in unmarked(response.get_data(as_text=True))]
    assert not problems, "texts that are not translated:\n" + "\n".join(problems)


def test_login_and_error_pages_say_only_translated_texts(app: Flask, client: FlaskClient) -> None:
    app.config[i18n.PSEUDO] = True
    answers = [client.get(path) for path in ("/admin/login", "/admin/no-such-page")]
    answers.append(client.post("/admin/login", data={"name": "x"}))  # no CSRF token
    assert [answer.status_code for answer in answers] == [200, 404, 400]
    for answer in answers:
        html = answer.get_data(as_text=True)
        assert i18n.PSEUDO_OPEN in html
        assert not unmarked(html), answer.request.path


def test_catalogue_paths_exist() -> None:
    assert Path(i18n.TRANSLATIONS, "de").is_dir()
