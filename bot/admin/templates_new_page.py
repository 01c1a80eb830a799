"""The admin's "new template" page (owners): write a WhatsApp template with named variables,
their examples, an optional header, footer and buttons; checked here first
(bot.message_templates.submission), then submitted to Meta for review and kept as a pending
template. In console mode (no WHATSAPP_TOKEN) it is kept as a demo template instead; with a
token but no WHATSAPP_BUSINESS_ACCOUNT_ID the page says what is missing."""

from __future__ import annotations

import enum
import json
from dataclasses import replace
from typing import Any

from babel import Locale, UnknownLocaleError
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext, lazy_gettext
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import ACCESS, SCRIPT_TEXTS, UPLOAD_ENDPOINTS, Access, bp, log_change, now
from bot.config import Config
from bot.db import get_db
from bot.i18n import language_of
from bot.message_templates.model import TemplateCategory, TemplateStatus
from bot.message_templates.store import find
from bot.message_templates.submission import (
    BUTTON_TEXT_MAX,
    BUTTONS_MAX,
    FOOTER_MAX,
    HEADER_TEXT_MAX,
    MEDIA_CHOICES,
    NAME_MAX,
    SAMPLE_MAX_BYTES,
    SAMPLE_TYPES,
    VARIABLE_NAME,
    ButtonDraft,
    ButtonKind,
    Draft,
    Finding,
    HeaderChoice,
    MetaRefusal,
    Problem,
    Refusal,
    problems,
    read_refusal,
    request_body,
    stored_status,
    suggest_name,
    wanted_examples,
)
from bot.models import MessageTemplate
from bot.whatsapp.template_creation import GraphRefused, GraphUnreachable, TemplateCreator

ACCESS["admin.templates_new"] = Access.OWNER
ACCESS["admin.templates_create"] = Access.OWNER
UPLOAD_ENDPOINTS.add("admin.templates_create")

SCRIPT_TEXTS["template_example"] = lazy_gettext("Example for %(variable)s")
SCRIPT_TEXTS["template_name_suggestion"] = lazy_gettext("WhatsApp takes this name: %(name)s")
SCRIPT_TEXTS["template_use_name"] = lazy_gettext("Use this name")
SCRIPT_TEXTS["template_no_variables"] = lazy_gettext(
    "No variables yet: write one like {{vorname}} in the text, and a field for its example "
    "appears here."
)

# Meta's locale codes a German shop is likely to write in, in this order in the list.
LANGUAGES = (
    "de",
    "en",
    "en_US",
    "en_GB",
    "fr",
    "it",
    "es",
    "nl",
    "tr",
    "pl",
    "pt_PT",
    "ru",
    "uk",
    "ar",
    "el",
    "hr",
    "cs",
    "da",
    "sv",
)


class Mode(enum.StrEnum):
    """What submitting does, from the configuration."""

    LIVE = "live"  # sent to Meta for review
    DEMO = "demo"  # console mode: kept here as a demo template, nothing is sent
    NO_ACCOUNT = "no_account"  # a token but no WHATSAPP_BUSINESS_ACCOUNT_ID: cannot submit


def _config() -> Config:
    config: Config = current_app.config["TRESEN"]
    return config


def _mode() -> Mode:
    config = _config()
    if config.console_mode:
        return Mode.DEMO
    return Mode.LIVE if config.business_account_id else Mode.NO_ACCOUNT


def _can_upload(mode: Mode) -> bool:
    return mode == Mode.DEMO or _config().app_id is not None


def _language_name(code: str, page_lang: str) -> str:
    try:
        return Locale.parse(code).get_display_name(page_lang) or code
    except (UnknownLocaleError, ValueError):
        return code


def _languages() -> list[dict[str, str]]:
    page_lang = str(get_locale() or "de")
    return [{"code": c, "name": _language_name(c, page_lang)} for c in LANGUAGES]


def _categories() -> list[dict[str, Any]]:
    return [
        {
            "value": TemplateCategory.MARKETING.value,
            "label": gettext("Marketing messages"),
            "hint": gettext(
                "Offers, news and invitations. Every delivered message costs a fee, and "
                "WhatsApp limits how many marketing messages a customer gets."
            ),
        },
        {
            "value": TemplateCategory.UTILITY.value,
            "label": gettext("Service messages (utility)"),
            "hint": gettext(
                "About something the customer asked for, like an order, an appointment or "
                "a repair. Cheaper, and free while the customer's 24-hour window is open."
            ),
        },
        {
            "value": TemplateCategory.AUTHENTICATION.value,
            "label": gettext("Login codes (authentication)"),
            "hint": gettext(
                "One-time codes for logging in. WhatsApp fixes their wording, so they are "
                "made in WhatsApp Manager, not here."
            ),
        },
    ]


# -- the form --------------------------------------------------------------------------------


def _text(name: str) -> str:
    return (request.form.get(name) or "").strip()


def _button_rows() -> list[dict[str, Any]]:
    """The button rows as typed (all BUTTONS_MAX of them, empty ones included)."""
    rows = []
    for i in range(BUTTONS_MAX):
        rows.append(
            {
                "kind": _text(f"button-{i}-kind"),
                "text": _text(f"button-{i}-text"),
                "url": _text(f"button-{i}-url"),
                "dynamic": bool(request.form.get(f"button-{i}-dynamic")),
                "example": _text(f"button-{i}-example"),
                "phone": _text(f"button-{i}-phone").replace(" ", ""),
            }
        )
    return rows


def _buttons(rows: list[dict[str, Any]]) -> tuple[tuple[ButtonDraft, ...], list[int]]:
    """The buttons of the rows with a kind chosen, and each one's row number."""
    buttons, where = [], []
    for index, row in enumerate(rows):
        try:
            kind = ButtonKind(row["kind"])
        except ValueError:
            continue
        buttons.append(
            ButtonDraft(
                kind,
                row["text"],
                url=row["url"],
                dynamic=row["dynamic"],
                url_example=row["example"],
                phone=row["phone"],
            )
        )
        where.append(index)
    return tuple(buttons), where


def _draft(handle: str | None = None) -> tuple[Draft, list[int]]:
    try:
        category = TemplateCategory(_text("category"))
    except ValueError:
        category = TemplateCategory.UTILITY
    try:
        header = HeaderChoice(_text("header"))
    except ValueError:
        header = HeaderChoice.NONE
    buttons, where = _buttons(_button_rows())
    examples = {
        key[len("example-") :]: value.strip()
        for key, value in request.form.items()
        if key.startswith("example-")
    }
    language = _text("language")
    draft = Draft(
        name=_text("name"),
        language=language if language in LANGUAGES else "",
        category=category,
        body=(request.form.get("body") or "").strip(),
        examples=examples,
        header=header,
        header_text=_text("header_text") if header == HeaderChoice.TEXT else "",
        header_handle=handle,
        footer=_text("footer"),
        buttons=buttons,
    )
    return draft, where


def finding_text(finding: Finding) -> str:
    """A finding in the page's language, as a shop owner would say it."""
    v = dict(finding.values)
    messages = {
        Problem.NAME_EMPTY: lambda: gettext(
            "Give the template a name, for example wir_sind_zurueck."
        ),
        Problem.NAME_CHARACTERS: lambda: gettext(
            "A template name may only have lowercase letters, digits and underscores, "
            "for example %(suggestion)s.",
            suggestion=v["suggestion"],
        ),
        Problem.NAME_TOO_LONG: lambda: gettext(
            "The name is too long: at most %(max)d characters.", max=v["max"]
        ),
        Problem.NAME_TAKEN: lambda: gettext(
            "There is already a template with this name in this language. Choose another name."
        ),
        Problem.LANGUAGE: lambda: gettext("Choose the language the template is written in."),
        Problem.AUTHENTICATION: lambda: gettext(
            "Templates for one-time codes have a wording WhatsApp fixes: make them in "
            "WhatsApp Manager. Choose Marketing or Service here."
        ),
        Problem.BODY_EMPTY: lambda: gettext("Write the text of the message."),
        Problem.BODY_TOO_LONG: lambda: gettext(
            "The text is %(length)d characters long; WhatsApp takes at most %(max)d.",
            length=v["length"],
            max=v["max"],
        ),
        Problem.VARIABLE_NAME: lambda: gettext(
            "The variable {{%(name)s}} cannot be used: a variable's name has only lowercase "
            "letters, digits and underscores and starts with a letter, like {{%(suggestion)s}}.",
            name=v["name"],
            suggestion=v["suggestion"] or "vorname",
        ),
        Problem.VARIABLE_AT_START: lambda: gettext(
            "The text must not begin with a variable: put a few words before it, "
            "like “Hallo {{vorname}}, …”."
        ),
        Problem.VARIABLE_AT_END: lambda: gettext(
            "The text must not end with a variable: add a few words after the last one."
        ),
        Problem.VARIABLES_ADJACENT: lambda: gettext(
            "Two variables stand side by side: put at least a word between them."
        ),
        Problem.TOO_MANY_VARIABLES: lambda: gettext(
            "Too many variables for so short a text: with %(count)d variables, write at "
            "least %(words)d words of your own.",
            count=v["count"],
            words=v["words"],
        ),
        Problem.ONLY_VARIABLES: lambda: gettext(
            "The text has only variables: write the message around them."
        ),
        Problem.EXAMPLE_MISSING: lambda: gettext(
            "WhatsApp wants an example for {{%(name)s}}, for example a typical value.",
            name=v["name"],
        ),
        Problem.EXAMPLE_TOO_LONG: lambda: gettext(
            "The example is too long: at most %(max)d characters.", max=v["max"]
        ),
        Problem.HEADER_EMPTY: lambda: gettext("Write the heading, or choose no heading."),
        Problem.HEADER_TOO_LONG: lambda: gettext(
            "The heading is too long: at most %(max)d characters.", max=v["max"]
        ),
        Problem.HEADER_VARIABLES: lambda: gettext("A heading may have one variable at most."),
        Problem.HEADER_FILE_MISSING: lambda: gettext(
            "Choose a sample file: WhatsApp reviews the template with it."
        ),
        Problem.FOOTER_TOO_LONG: lambda: gettext(
            "The footer is too long: at most %(max)d characters.", max=v["max"]
        ),
        Problem.FOOTER_VARIABLE: lambda: gettext("The footer cannot have variables."),
        Problem.TOO_MANY_BUTTONS: lambda: gettext(
            "At most %(max)d buttons in one template.", max=v["max"]
        ),
        Problem.TOO_MANY_URL_BUTTONS: lambda: gettext(
            "At most %(max)d link buttons in one template.", max=v["max"]
        ),
        Problem.TOO_MANY_PHONE_BUTTONS: lambda: gettext("Only one button may call a phone number."),
        Problem.BUTTON_TEXT_EMPTY: lambda: gettext("Write the button's label."),
        Problem.BUTTON_TEXT_TOO_LONG: lambda: gettext(
            "The label is too long: at most %(max)d characters.", max=v["max"]
        ),
        Problem.BUTTON_TEXT_TWICE: lambda: gettext("Two buttons have the same label."),
        Problem.URL_INVALID: lambda: gettext(
            "Give the link as a full web address, like https://www.example.de/shop."
        ),
        Problem.URL_TOO_LONG: lambda: gettext(
            "The link is too long: at most %(max)d characters.", max=v["max"]
        ),
        Problem.URL_EXAMPLE_MISSING: lambda: gettext(
            "Give an example of the link's ending, like an order number."
        ),
        Problem.PHONE_INVALID: lambda: gettext(
            "Give the phone number with the country code, like +49 89 1234567."
        ),
    }
    return str(messages[finding.problem]())


def refusal_text(refusal: MetaRefusal) -> str:
    """Meta's refusal as a shop owner understands it; Meta's own words where we know none."""
    texts = {
        Refusal.NAME_BEING_DELETED: lambda: gettext(
            "WhatsApp still blocks this name in this language because a template of that "
            "name was deleted recently (for about four weeks). Choose another name."
        ),
        Refusal.NAME_EXISTS: lambda: gettext(
            "WhatsApp already has a template with this name in this language. Choose "
            "another name, or another language."
        ),
        Refusal.TOO_MANY_TEMPLATES: lambda: gettext(
            "Your WhatsApp account has as many templates as it may have. Delete ones you no "
            "longer use in WhatsApp Manager, then try again."
        ),
        Refusal.TOO_LONG: lambda: gettext("A part of the template is too long for WhatsApp."),
        Refusal.HEADER_FORMAT: lambda: gettext(
            "WhatsApp does not accept the heading as it is: check its text or sample file."
        ),
        Refusal.BODY_FORMAT: lambda: gettext(
            "WhatsApp does not accept the text as it is: check the variables and line breaks."
        ),
        Refusal.FOOTER_FORMAT: lambda: gettext(
            "WhatsApp does not accept the footer: at most 60 characters and no variables."
        ),
        Refusal.TOO_MANY_VARIABLES: lambda: gettext(
            "WhatsApp finds too many variables for so short a text: write more words of "
            "your own, or use fewer variables."
        ),
        Refusal.VARIABLE_AT_EDGE: lambda: gettext(
            "WhatsApp does not accept a variable at the very beginning or end of the text: "
            "put a few words before and after."
        ),
        Refusal.ACCESS: lambda: gettext(
            "WhatsApp did not accept Tresen's access: check WHATSAPP_TOKEN and that it may "
            "manage the account's templates."
        ),
        Refusal.BUSY: lambda: gettext(
            "WhatsApp is busy right now. Please try again in a few minutes."
        ),
        Refusal.UNREACHABLE: lambda: gettext(
            "WhatsApp could not be reached. Nothing was submitted; please try again."
        ),
        Refusal.UNKNOWN: lambda: gettext(
            "WhatsApp gave a reason Tresen does not know yet: see its own words below."
        ),
    }
    return str(texts[refusal.kind]())


# -- the page --------------------------------------------------------------------------------


def _page(
    draft: Draft | None,
    where: list[int],
    findings: list[Finding],
    *,
    refusal: MetaRefusal | None = None,
    extra: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    mode = _mode()
    rows = _button_rows() if draft is not None else [{} for _ in range(BUTTONS_MAX)]
    errors: dict[str, list[str]] = {}
    for finding in findings:
        key = finding.where
        if key.startswith("button:"):
            key = f"button:{where[int(key.split(':')[1])]}"
        errors.setdefault(key, []).append(finding_text(finding))
    for key, text in (extra or {}).items():
        errors.setdefault(key, []).append(text)
    from bot.admin import business  # the package imports this page first

    settings = business()
    default_language = language_of(settings.locale if settings else "de")
    values = {
        "name": draft.name if draft else "",
        "language": (draft.language if draft else "") or default_language,
        "category": draft.category.value if draft else TemplateCategory.UTILITY.value,
        "body": draft.body if draft else "",
        "header": draft.header.value if draft else HeaderChoice.NONE.value,
        "header_text": _text("header_text") if draft else "",
        "footer": draft.footer if draft else "",
        "examples": dict(draft.examples) if draft else {},
    }
    wanted = [k for k in wanted_examples(draft) if VARIABLE_NAME.fullmatch(k)] if draft else []
    used_rows = max((i for i, r in enumerate(rows) if r.get("kind")), default=-1) + 1
    return (
        render_template(
            "admin/templates_new.html",
            mode=mode,
            can_upload=_can_upload(mode),
            values=values,
            examples=wanted,
            rows=rows,
            visible_rows=max(used_rows + 1, 1),
            errors=errors,
            refusal=refusal,
            refusal_text=refusal_text(refusal) if refusal else None,
            languages=_languages(),
            categories=_categories(),
            name_suggestion=suggest_name(draft.name) if draft and draft.name else "",
            limits={
                "name": NAME_MAX,
                "header": HEADER_TEXT_MAX,
                "footer": FOOTER_MAX,
                "button": BUTTON_TEXT_MAX,
            },
            sample_types={k.value: ",".join(v) for k, v in SAMPLE_TYPES.items()},
            list_url=_list_url(),
        ),
        status,
    )


def _list_url() -> str | None:
    # The template list is its own page (admin.templates); link back when it is there.
    if "admin.templates" in current_app.view_functions:
        return url_for("admin.templates")
    return None


@bp.get("/templates/new")
def templates_new() -> tuple[str, int]:
    return _page(None, [], [])


def _sample(draft: Draft) -> tuple[FileStorage | None, Finding | None]:
    """The media header's sample file from the form, or the finding why it cannot be used."""
    if draft.header not in MEDIA_CHOICES:
        return None, None
    upload = request.files.get("header_file")
    if upload is None or not upload.filename:
        return None, Finding("header_file", Problem.HEADER_FILE_MISSING)
    if upload.mimetype not in SAMPLE_TYPES[draft.header]:
        return None, Finding("header_file", Problem.HEADER_FILE_MISSING, {"type": True})
    return upload, None


def _sample_text(finding: Finding) -> str:
    if finding.values.get("type"):
        return gettext(
            "This kind of file does not fit: choose a JPEG or PNG photo, an MP4 video or a PDF."
        )
    if finding.values.get("size"):
        return gettext("The file is too large for a template's sample.")
    return finding_text(finding)


@bp.post("/templates/new")
def templates_create() -> Any:
    mode = _mode()
    draft, where = _draft()
    sample, sample_problem = _sample(draft)
    # The sample's handle comes only after the upload; until then a placeholder keeps the
    # draft's own check of it quiet.
    checked = draft if draft.header not in MEDIA_CHOICES else _with_handle(draft, "pending")
    with get_db().session() as session:
        taken = bool(
            checked.name and checked.language and find(session, checked.name, checked.language)
        )
    findings = problems(checked, taken=taken)
    extra: dict[str, str] = {}
    if sample_problem is not None:
        extra["header_file"] = _sample_text(sample_problem)
    elif draft.header in MEDIA_CHOICES and not _can_upload(mode):
        extra["header_file"] = gettext(
            "A photo, video or document heading needs WHATSAPP_APP_ID (your Meta app’s id) "
            "to upload its sample."
        )
    data = sample.read() if sample is not None else b""
    if sample is not None and len(data) > SAMPLE_MAX_BYTES[draft.header]:
        extra["header_file"] = _sample_text(
            Finding("header_file", Problem.HEADER_FILE_MISSING, {"size": True})
        )
    if mode == Mode.NO_ACCOUNT or findings or extra:
        return _page(draft, where, findings, extra=extra, status=422)
    if mode == Mode.DEMO:
        handle = f"demo:{sample.filename}" if sample is not None else None
        return _store(_with_handle(draft, handle), {}, mode)
    creator = TemplateCreator(_config())
    try:
        handle = None
        if sample is not None:
            handle = creator.upload_sample(data, sample.mimetype, sample.filename or "sample")
        ready = _with_handle(draft, handle)
        answer = creator.create(request_body(ready))
    except GraphRefused as exc:
        refusal = read_refusal(exc.body)
        return _page(draft, where, [], refusal=refusal, status=422)
    except GraphUnreachable:
        refusal = MetaRefusal(Refusal.UNREACHABLE, None, None)
        return _page(draft, where, [], refusal=refusal, status=503)
    return _store(ready, answer, mode)


def _with_handle(draft: Draft, handle: str | None) -> Draft:
    return replace(draft, header_handle=handle)


def _store(draft: Draft, answer: dict[str, Any], mode: Mode) -> Response:
    body = request_body(draft)
    status = stored_status(answer) if mode == Mode.LIVE else TemplateStatus.APPROVED.value
    category = str(answer.get("category") or draft.category).lower()
    at = now()
    try:
        with get_db().session() as session:
            session.add(
                MessageTemplate(
                    meta_id=str(answer["id"]) if answer.get("id") else None,
                    name=draft.name,
                    language=draft.language,
                    category=category,
                    status=status,
                    parameter_format="named",
                    components=body["components"],
                    origin="submitted" if mode == Mode.LIVE else "demo",
                    updated_at=at,
                )
            )
            log_change(
                session,
                audit.Action.TEMPLATE_SUBMITTED,
                subject=f"template:{draft.name}:{draft.language}",
                after=json.dumps(body, ensure_ascii=False, indent=1),
            )
    except IntegrityError:
        # Synced from Meta in the meantime: the list shows it already.
        audit.nothing_changed()
    if mode == Mode.LIVE:
        flash(
            gettext(
                "The template %(name)s (%(language)s) was sent to WhatsApp for review. Its "
                "status: %(status)s. WhatsApp usually decides within minutes, at most in a "
                "day.",
                name=draft.name,
                language=draft.language,
                status=status,
            )
        )
    else:
        flash(
            gettext(
                "Console mode: the template %(name)s (%(language)s) was kept here as a demo "
                "and nothing was sent to WhatsApp.",
                name=draft.name,
                language=draft.language,
            )
        )
    return redirect(_list_url() or url_for("admin.templates_new"))
