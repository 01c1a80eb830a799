"""What a broadcast sends: a Jinja text or an approved template with Jinja parameters, checked
when it is created and rendered for one contact after another."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import replies
from bot.message_templates import model
from bot.settings import BusinessSettings
from bot.whatsapp.payloads import (
    HEADER_MEDIA_KINDS,
    body_parameters,
    header_media,
    media_payload,
    template_payload,
    text_payload,
)


class BroadcastKind(enum.StrEnum):
    """What a broadcast sends; stored, and each message's Cloud API type."""

    TEXT = "text"
    TEMPLATE = "template"


class BroadcastError(ValueError):
    """A broadcast cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class Media:
    """A stored file a broadcast sends: a text's image (the text its caption), or a template's
    media header (image, video or document). Uploaded to Meta once for all recipients."""

    file_id: int
    sha256: str
    kind: str  # a bot.media.kinds.MediaKind
    filename: str | None = None  # a document's name as the customer sees it


@dataclass(frozen=True)
class Content:
    """What is sent: a Jinja text, or an approved template with Jinja body parameters; either
    with a file (`media`)."""

    text: str | None = None
    template: str | None = None
    language: str | None = None
    params: tuple[str, ...] = ()
    media: Media | None = None
    # The template as stored (synced from Meta): when known, the values are checked against
    # it and sent with its parameter names. Not stored with the broadcast: looked up anew.
    stored: model.Template | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> BroadcastKind:
        return BroadcastKind.TEXT if self.text is not None else BroadcastKind.TEMPLATE

    def check(self, settings: BusinessSettings | None = None, now: datetime | None = None) -> None:
        """Raise BroadcastError unless exactly one form is given and every source compiles;
        with the settings, also unless each renders within the bounds for sample contacts."""
        if (self.text is None) == (self.template is None):
            raise BroadcastError("give either --text or --wa-template")
        if self.template is not None and not (self.language or "").strip():
            raise BroadcastError("--wa-template needs --language (e.g. de or en_US)")
        if self.text is not None and self.params:
            raise BroadcastError("--param goes with --wa-template, not with --text")
        if self.text is not None and not self.text.strip():
            raise BroadcastError("--text is empty")
        if self.media is not None:
            if self.text is not None and self.media.kind != "image":
                raise BroadcastError("a --text broadcast carries an image (JPEG or PNG) only")
            if self.template is not None and self.media.kind not in HEADER_MEDIA_KINDS:
                raise BroadcastError(
                    "a template's header carries an image, a video or a document, "
                    f"not {self.media.kind}"
                )
        sources = [("--text", self.text)] if self.text is not None else []
        sources += [(f"--param {i}", p) for i, p in enumerate(self.params, start=1)]
        for what, source in sources:
            try:
                replies.compile_check(source or "")
            except Exception as exc:  # TemplateSyntaxError and its kin
                raise BroadcastError(f"{what} is not a valid template: {exc}") from exc
        if settings is not None and now is not None:
            _check_bounds(self, settings, now)

    def check_stored(
        self, settings: BusinessSettings, now: datetime, name: str | None, wa_id: str | None
    ) -> None:
        """Raise BroadcastError unless the parameters, rendered for a sample contact (the
        first recipient), fit the stored template: their number, none empty, the media
        header. A value empty only for some contacts fails on their messages instead."""
        if self.stored is None:
            return
        renderer = Renderer(self, settings, now)
        values = [renderer.render(p, name or _SAMPLE_NAMES[0], wa_id) for p in self.params]
        try:
            model.check_values(self.stored, values, media=self.media is not None)
        except model.TemplateMismatch as exc:
            raise BroadcastError(str(exc)) from exc


@dataclass(frozen=True)
class Renderer:
    """Renders one broadcast for one contact after another; the context is built once."""

    content: Content
    settings: BusinessSettings
    now: datetime
    _base: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base = replies.build_context(
            self.settings, now=self.now, contact_name=None, wa_id=None, message_text=None
        )
        object.__setattr__(self, "_base", replies.formatting(self.settings, base))

    def render(self, source: str, name: str | None, wa_id: str | None) -> str:
        variables = {
            **self._base,
            "contact": replies.Contact(name=name or "", wa_id=wa_id or ""),
        }
        return replies.render_source(source, variables)

    def payload(
        self, recipient: str, name: str | None, wa_id: str | None
    ) -> tuple[dict[str, Any], str | None]:
        """The message for one contact and its text; ValueError (with the reason) if the
        template fails or renders an empty text or parameter, which Meta would refuse."""
        c = self.content
        try:
            if c.text is not None:
                text = self.render(c.text, name, wa_id)
                if not text:
                    raise ValueError("the text rendered empty")
                if c.media is not None:
                    return media_payload(
                        recipient, c.media.kind, file=c.media.sha256, caption=text
                    ), text
                return text_payload(recipient, text), text
            values = [self.render(p, name, wa_id) for p in c.params]
            assert c.template is not None and c.language is not None
            header = None
            if c.media is not None:
                filename = c.media.filename if c.media.kind == "document" else None
                header = header_media(c.media.kind, file=c.media.sha256, filename=filename)
            if c.stored is not None:
                # The one check (bot.message_templates): a contact whose values do not fit
                # fails here with the reason, not at Meta with 132000.
                model.check_values(c.stored, values, media=header is not None)
                components = model.components(c.stored, values, header)
            else:
                components = body_parameters(values)
                if header is not None:
                    components = [header, *components]
            return template_payload(recipient, c.template, c.language, components), None
        except ValueError:
            raise
        except Exception as exc:  # a sandbox violation or a runtime error in the template
            raise ValueError(f"template failed: {type(exc).__name__}: {exc}") from exc


_SAMPLE_NAMES = ("Anna", "Anna-Lena Maria " * 8, "")


def _check_bounds(content: Content, settings: BusinessSettings, now: datetime) -> None:
    """Raise BroadcastError for a text or parameter that goes over the bounds of a render for
    sample contacts, before it is sent to a whole audience; a failure that depends on the
    contact (an empty name) is recorded on that contact's message when the run sends."""
    renderer = Renderer(content, settings, now)
    sources = [("--text", content.text)] if content.text is not None else []
    sources += [(f"--param {i}", p) for i, p in enumerate(content.params, start=1)]
    for what, source in sources:
        for name in _SAMPLE_NAMES:
            try:
                renderer.render(source or "", name, "491700000000")
            except replies.TemplateLimitError as exc:
                raise BroadcastError(f"{what} goes over the bounds of a message: {exc}") from None
            except Exception:  # noqa: S110 - any other failure is the contact's, see above
                pass
