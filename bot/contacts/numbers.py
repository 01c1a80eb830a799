"""Phone numbers as the shop types them and as WhatsApp knows them: parsed and validated with
`phonenumbers`, kept as the wa_id (digits with the country code, no `+`), shown in the
international format. Pure.

A national number (`0151 …`) is read in the business's country (`business_region`); a number
written with `+` or `00` in any country.
"""

from __future__ import annotations

import enum
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from bot.settings.values import BusinessSettings

# The region when the settings name none: Tresen's first shops are German.
DEFAULT_REGION = "DE"
# What people put between the digits of a phone number, and what a search may hold.
_SEPARATORS = re.compile(r"[\s\-./()\u00a0\u2009\u202f]+")
_TYPED = re.compile(r"^\+?[\d\s\-./()\u00a0\u2009\u202f]+$")


class Problem(enum.StrEnum):
    """Why a text is not a phone number, for a message in the reader's language."""

    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    NO_COUNTRY = "no_country"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID = "invalid"


class NumberError(ValueError):
    """A text that is no valid phone number; `problem` says why, `text` is what was typed."""

    def __init__(self, problem: Problem, text: str) -> None:
        self.problem = problem
        self.text = text
        super().__init__(_ENGLISH[problem].format(text=text))


_ENGLISH = {
    Problem.EMPTY: "no phone number",
    Problem.NOT_A_NUMBER: "{text!r} is not a phone number",
    Problem.NO_COUNTRY: "{text!r} has no country code (write it as +49… or 0049…)",
    Problem.TOO_SHORT: "{text!r} is too short for a phone number (a digit missing?)",
    Problem.TOO_LONG: "{text!r} is too long for a phone number (a digit too many?)",
    Problem.INVALID: "{text!r} is not a valid phone number",
}


def business_region(locale: str | None, holiday_country: str | None = None) -> str:
    """The country a national number is read in: the public holidays' country if the settings
    name one, else the locale's territory (`de_DE` → `DE`), else DEFAULT_REGION."""
    if holiday_country:
        return holiday_country.upper()
    territory = re.split(r"[_-]", locale or "")[1:]
    if territory and len(territory[0]) == 2 and territory[0].isalpha():
        return territory[0].upper()
    return DEFAULT_REGION


def settings_region(settings: BusinessSettings | None) -> str:
    """The business's region (see business_region); DEFAULT_REGION before any settings."""
    if settings is None:
        return DEFAULT_REGION
    return business_region(settings.locale, settings.hours.holiday_country)


def to_wa_id(text: str, region: str | None = DEFAULT_REGION) -> str:
    """The wa_id of a typed number: `+49 151 …`, `0049 151 …`, `4915…` (a wa_id as it is), or
    `0151 …` read in `region` (None: a number must have its country code).

    Raises NumberError when it is no valid number.
    """
    raw = text.strip()
    if not raw:
        raise NumberError(Problem.EMPTY, raw)
    compact = _SEPARATORS.sub("", raw)
    if not _TYPED.match(raw) or not compact.lstrip("+").isdigit() or not compact.isascii():
        raise NumberError(Problem.NOT_A_NUMBER, raw)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+"):
        if not compact.startswith("0"):
            compact = "+" + compact  # digits with the country code, as WhatsApp writes them
        elif region is None:
            raise NumberError(Problem.NO_COUNTRY, raw)
    try:
        number = phonenumbers.parse(compact, None if compact.startswith("+") else region)
    except NumberParseException as exc:
        problem = Problem.TOO_SHORT if "short" in str(exc).lower() else Problem.INVALID
        raise NumberError(problem, raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise NumberError(_why_invalid(number), raw)
    return f"{number.country_code}{number.national_number}"


def _why_invalid(number: phonenumbers.PhoneNumber) -> Problem:
    """Too short or too long when a digit more or less would make a valid number (the usual
    typing slip), or when the length alone rules it out; else just invalid."""
    national = str(number.national_number)
    if _valid(number.country_code, national + "0"):
        return Problem.TOO_SHORT
    if len(national) > 1 and _valid(number.country_code, national[:-1]):
        return Problem.TOO_LONG
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == ValidationResult.TOO_SHORT:
        return Problem.TOO_SHORT
    if reason == ValidationResult.TOO_LONG:
        return Problem.TOO_LONG
    return Problem.INVALID


def _valid(country_code: int | None, national: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(f"+{country_code}{national}"))
    except NumberParseException:
        return False


def wa_id_or_digits(text: str, region: str | None = DEFAULT_REGION) -> str:
    """A typed number as its wa_id; plain digits that are no valid number as they are (an id
    WhatsApp gave, or a test number). Raises NumberError for anything else."""
    try:
        return to_wa_id(text, region)
    except NumberError:
        if text.strip().isascii() and text.strip().isdigit():
            return text.strip()
        raise


def display(wa_id: str | None) -> str:
    """A wa_id as people read it: `+49 151 12345678`; `+` and the digits when it is no valid
    number; "" for none."""
    if not wa_id:
        return ""
    try:
        number = phonenumbers.parse("+" + wa_id, None)
    except NumberParseException:
        return "+" + wa_id
    if not phonenumbers.is_valid_number(number):
        return "+" + wa_id
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def search_digits(text: str, region: str | None = DEFAULT_REGION) -> str | None:
    """The digits to look for in wa_ids when a search looks like (part of) a number: the whole
    wa_id of a valid number, else the typed digits without a leading `+`, `00` or `0`. None
    when the search is no number (a name or a label)."""
    raw = text.strip()
    compact = _SEPARATORS.sub("", raw)
    digits = compact.lstrip("+")
    if not _TYPED.match(raw) or not digits.isascii() or not digits.isdigit() or len(digits) < 3:
        return None
    try:
        return to_wa_id(raw, region)
    except NumberError:
        return digits.lstrip("0") or None
