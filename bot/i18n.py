"""The admin's languages: Flask-Babel with catalogues read from `translations/<lang>/*.po`.

English is the source language: every text is written in English in the code and templates,
and `translations/de/` holds its German. One catalogue file per admin area, so areas are
translated side by side; they are merged and compiled in memory when first needed, so no
compiled file is ever out of date or committed.

The language is the logged-in user's choice, else the business's (`business.locale`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, current_app
from flask_babel import Babel, Domain, get_locale

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = ("de", "en")
# Every German text is German; the rest of the world reads English.
FALLBACK = "en"
# Tests set this: every translated text then comes out between these marks, so a page can be
# checked for words that never went through a catalogue.
PSEUDO = "TRESEN_PSEUDO_TRANSLATIONS"
PSEUDO_OPEN, PSEUDO_CLOSE = "\u27e6", "\u27e7"


def language_of(locale: str | None) -> str:
    """The admin language for a locale such as `de_AT`: German for de*, else English."""
    return "de" if (locale or "").lower().startswith("de") else FALLBACK


def catalogue_files(lang: str) -> list[Path]:
    return sorted((TRANSLATIONS / lang).glob("*.po"))


def read_catalogue(lang: str) -> Catalog:
    """All of a language's catalogue files as one catalogue."""
    merged = Catalog(locale=lang, domain="messages")
    for path in catalogue_files(lang):
        with path.open("rb") as fp:
            part = read_po(fp, locale=lang)
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


@lru_cache(maxsize=8)
def _compiled(lang: str, stamp: tuple[tuple[str, float], ...]) -> Translations:
    buffer = io.BytesIO()
    # Fuzzy entries are guesses nobody checked: they stay out, as with msgfmt.
    write_mo(buffer, read_catalogue(lang), use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain="messages")


def translations_for(lang: str) -> NullTranslations:
    if lang == FALLBACK:
        return NullTranslations()
    stamp = tuple((p.name, p.stat().st_mtime) for p in catalogue_files(lang))
    return _compiled(lang, stamp)


class PseudoTranslations(NullTranslations):
    """Wraps every translated text in ⟦…⟧ (see PSEUDO)."""

    def __init__(self, inner: NullTranslations) -> None:
        super().__init__()
        self.inner = inner

    def _mark(self, text: str) -> str:
        return f"{PSEUDO_OPEN}{text}{PSEUDO_CLOSE}"

    def gettext(self, message: str) -> str:
        return self._mark(self.inner.gettext(message))

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self._mark(self.inner.ngettext(msgid1, msgid2, n))

    def pgettext(self, context: str, message: str) -> str:
        return self._mark(str(self.inner.pgettext(context, message)))

    def npgettext(self, context: str, singular: str, plural: str, num: int) -> str:
        return self._mark(self.inner.npgettext(context, singular, plural, num))

    ugettext = gettext
    ungettext = ngettext
    upgettext = pgettext
    unpgettext = npgettext


class CatalogueDomain(Domain):
    """The one domain of the app, reading our catalogue files (see the module's docstring)."""

    def get_translations(self) -> NullTranslations:
        locale = get_locale()
        translations = translations_for(locale.language if locale else FALLBACK)
        if current_app.config.get(PSEUDO):
            return PseudoTranslations(translations)
        return translations


class CatalogueBabel(Babel):
    # Flask-Babel makes a new domain (with an empty cache) for every request; ours is one.
    _domain = CatalogueDomain()

    @property
    def domain_instance(self) -> Domain:
        return self._domain


LocaleChooser = Callable[[], str | None]


def init_app(app: Flask, choose: LocaleChooser, timezone: Callable[[], str | None]) -> None:
    """Flask-Babel for `app`: `choose` names the request's locale (e.g. "de_DE"), `timezone`
    the business's time zone."""

    def locale_selector() -> str:
        return language_of(choose())

    CatalogueBabel(app, locale_selector=locale_selector, timezone_selector=timezone)
    app.jinja_env.globals["html_lang"] = page_language


def page_language() -> str:
    """The request's admin language, "de" or "en" (also the `<html lang>` value)."""
    locale: Locale | None = get_locale()
    return locale.language if locale else FALLBACK
