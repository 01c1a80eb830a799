"""Reply templates: the default texts in German and English, the Babel filters, the sandbox
and the fallback when a template fails."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime
from textwrap import dedent
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest

from bot.placeholders import from_jinja
from bot.replies import (
    Business,
    Contact,
    Message,
    build_context,
    compile_check,
    default_source,
    render,
    template_problem,
)
from bot.settings import BusinessSettings, parse_settings

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")

SHOP = parse_settings(
    dedent(
        """\
        business: {name: Blumen Müller, timezone: Europe/Berlin, locale: de_DE}
        hours:
          mon: ["09:00-18:00"]
          tue: ["09:00-12:30", "14:00-18:00"]
          fri: ["09:00-18:00", "22:00-02:00"]
          sat: ["10:00-14:00"]
        """
    )
)
EN_SHOP = replace(SHOP, locale="en_US")

SATURDAY_EVENING = datetime(2026, 11, 28, 19, 0, tzinfo=BERLIN)  # closed until Monday 09:00
MONDAY_MORNING = datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)  # open until 18:00
FRIDAY_NIGHT = datetime(2026, 11, 27, 23, 0, tzinfo=BERLIN)  # open until Saturday 02:00


def ctx(
    settings: BusinessSettings = SHOP,
    now: datetime = SATURDAY_EVENING,
    name: str | None = "Anna",
) -> dict[str, Any]:
    return build_context(
        settings, now=now, contact_name=name, wa_id="4915112345678", message_text="Hi"
    )


def test_context_holds_the_contract_variables() -> None:
    c = build_context(
        SHOP, now=SATURDAY_EVENING.astimezone(UTC), contact_name=None, wa_id=None, message_text=None
    )
    assert c["contact"] == Contact(name="", wa_id="")
    assert c["message"] == Message(text="")
    assert c["business"] == Business(name="Blumen Müller", locale="de_DE", timezone="Europe/Berlin")
    assert c["now"] == SATURDAY_EVENING
    assert c["now"].tzinfo == BERLIN
    assert c["is_open"] is False
    assert c["next_open"] == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    assert c["next_close"] is None
    assert c["hours"] == [
        "Montag: 09:00–18:00",
        "Dienstag: 09:00–12:30, 14:00–18:00",
        "Mittwoch: geschlossen",
        "Donnerstag: geschlossen",
        "Freitag: 09:00–18:00, 22:00–02:00",
        "Samstag: 10:00–14:00",
        "Sonntag: geschlossen",
    ]
    assert (c["stop_word"], c["start_word"]) == ("STOP", "START")

    open_now = ctx(now=MONDAY_MORNING)
    assert open_now["is_open"] is True
    assert open_now["next_open"] is None
    assert open_now["next_close"] == datetime(2026, 11, 30, 18, 0, tzinfo=BERLIN)


DEFAULTS = [
    (
        SHOP,
        "away",
        SATURDAY_EVENING,
        "Hallo Anna, danke für Ihre Nachricht! Blumen Müller hat gerade geschlossen.\n"
        "Ab Montag, 30. November, 9 Uhr sind wir wieder für Sie da und melden uns dann.",
    ),
    (
        EN_SHOP,
        "away",
        SATURDAY_EVENING,
        "Hi Anna, thanks for your message! Blumen Müller is closed right now.\n"
        "We are back on Monday, November 30, 9 AM and will get back to you then.",
    ),
    (
        SHOP,
        "greeting",
        MONDAY_MORNING,
        "Hallo Anna, schön, dass Sie sich bei Blumen Müller melden! Wie können wir Ihnen helfen?",
    ),
    (
        EN_SHOP,
        "greeting",
        MONDAY_MORNING,
        "Hi Anna, thanks for getting in touch with Blumen Müller! How can we help you?",
    ),
    (
        SHOP,
        "hours",
        SATURDAY_EVENING,
        "Unsere Öffnungszeiten:\nMontag: 09:00–18:00\nDienstag: 09:00–12:30, 14:00–18:00\n"
        "Mittwoch: geschlossen\nDonnerstag: geschlossen\nFreitag: 09:00–18:00, 22:00–02:00\n"
        "Samstag: 10:00–14:00\nSonntag: geschlossen\n"
        "Gerade haben wir geschlossen. Wieder geöffnet ab Montag, 30. November, 9 Uhr.",
    ),
    (
        SHOP,
        "hours",
        MONDAY_MORNING,
        "Unsere Öffnungszeiten:\nMontag: 09:00–18:00\nDienstag: 09:00–12:30, 14:00–18:00\n"
        "Mittwoch: geschlossen\nDonnerstag: geschlossen\nFreitag: 09:00–18:00, 22:00–02:00\n"
        "Samstag: 10:00–14:00\nSonntag: geschlossen\nGerade haben wir geöffnet, bis 18:00 Uhr.",
    ),
    (
        EN_SHOP,
        "hours",
        FRIDAY_NIGHT,
        "Our opening hours:\nMonday: 09:00–18:00\nTuesday: 09:00–12:30, 14:00–18:00\n"
        "Wednesday: closed\nThursday: closed\nFriday: 09:00–18:00, 22:00–02:00\n"
        "Saturday: 10:00–14:00\nSunday: closed\nWe are open now, until Saturday, 2:00 AM.",
    ),
    (
        SHOP,
        "optout",
        MONDAY_MORNING,
        "Alles klar, Sie sind abgemeldet: Blumen Müller schickt Ihnen keine Angebote und "
        "Neuigkeiten mehr. Wenn Sie es sich anders überlegen, schreiben Sie einfach „START“.",
    ),
    (
        EN_SHOP,
        "optout",
        MONDAY_MORNING,
        "Done, you are unsubscribed: Blumen Müller will not send you offers and news any more. "
        'If you change your mind, just send "START".',
    ),
    (
        SHOP,
        "optin",
        MONDAY_MORNING,
        "Schön, dass Sie dabei sind! Ab jetzt schickt Ihnen Blumen Müller Angebote und "
        "Neuigkeiten per WhatsApp. Abmelden können Sie sich jederzeit mit „STOP“.",
    ),
    (
        EN_SHOP,
        "optin",
        MONDAY_MORNING,
        "Great to have you! From now on Blumen Müller will send you offers and news on WhatsApp. "
        'You can unsubscribe at any time by sending "STOP".',
    ),
]


@pytest.mark.parametrize(
    ("settings", "name", "now", "expected"),
    [pytest.param(*d, id=f"{d[0].locale}-{d[1]}-{d[2]:%a}") for d in DEFAULTS],
)
def test_default_templates(
    settings: BusinessSettings, name: str, now: datetime, expected: str
) -> None:
    assert render(settings, name, ctx(settings, now)) == expected


def test_away_without_a_name() -> None:
    assert render(SHOP, "away", ctx(SHOP, name=None)) == (
        "Hallo, danke für Ihre Nachricht! Blumen Müller hat gerade geschlossen.\n"
        "Ab Montag, 30. November, 9 Uhr sind wir wieder für Sie da und melden uns dann."
    )


def test_the_default_away_text_is_plain_text_with_placeholders() -> None:
    # So that the settings page opens it in the plain editor, with its placeholder buttons
    # (a shop that never opens again gets "Ab  sind wir …": its owner writes a text for that).
    for lang in ("de", "en"):
        source = default_source(lang, "away")
        assert source is not None and from_jinja(source, lang) is not None


def test_optout_without_start_words_does_not_promise_one() -> None:
    no_start = replace(SHOP, optout_start=())
    assert render(no_start, "optout", ctx(no_start)) == (
        "Alles klar, Sie sind abgemeldet: Blumen Müller schickt Ihnen keine Angebote und "
        "Neuigkeiten mehr."
    )


def test_other_locales_get_english_texts_with_their_own_dates() -> None:
    french = replace(SHOP, locale="fr_FR")
    assert render(french, "away", ctx(french)) == (
        "Hi Anna, thanks for your message! Blumen Müller is closed right now.\n"
        "We are back on lundi 30 novembre, 9\u202fAM and will get back to you then."
    )


def custom(source: str, settings: BusinessSettings = SHOP) -> BusinessSettings:
    return replace(settings, templates={"away": source})


FILTERS = [
    (SHOP, "{{ next_open | format_datetime }}", "30.11.2026, 09:00:00"),
    (EN_SHOP, "{{ next_open | format_datetime }}", "Nov 30, 2026, 9:00:00\u202fAM"),
    (SHOP, "{{ next_open | format_datetime('EEEE, HH:mm') }}", "Montag, 09:00"),
    (EN_SHOP, "{{ next_open | format_datetime('EEEE, HH:mm') }}", "Monday, 09:00"),
    (SHOP, "{{ now | format_date }}", "28.11.2026"),
    (EN_SHOP, "{{ now | format_date('full') }}", "Saturday, November 28, 2026"),
    (SHOP, "{{ now | format_time }}", "19:00:00"),
    (SHOP, "{{ now | format_time('short') }}", "19:00"),
    (SHOP, "[{{ next_close | format_datetime }}{{ next_close | format_date }}]", "[]"),
    (SHOP, "[{{ next_close | format_time }}{{ nothing | format_time }}]", "[]"),
    (SHOP, "[{{ next_close }}]", "[]"),
    (SHOP, "{% if not is_open %}zu{% endif %}, {{ hours | length }} Tage", "zu, 7 Tage"),
    (SHOP, "{{ contact.name }} {{ contact.wa_id }}: {{ message.text }}", "Anna 4915112345678: Hi"),
]


@pytest.mark.parametrize(("settings", "source", "expected"), FILTERS)
def test_filters_and_variables(settings: BusinessSettings, source: str, expected: str) -> None:
    s = custom(source, settings)
    assert render(s, "away", ctx(s)) == expected


def test_dates_are_shown_in_the_business_time_zone() -> None:
    # 23:30 UTC on Saturday is already Sunday 00:30 in Berlin.
    s = custom("{{ now | format_date }} {{ now | format_time('HH:mm') }}")
    now = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert render(s, "away", ctx(s, now)) == "29.11.2026 00:30"


def test_settings_templates_override_the_defaults_and_add_new_ones() -> None:
    s = replace(
        SHOP, templates={"away": "Zu bis {{ next_open | format_time('H') }} Uhr.", "x": "X"}
    )
    assert render(s, "away", ctx(s)) == "Zu bis 9 Uhr."
    assert render(s, "x", ctx(s)) == "X"
    assert render(s, "greeting", ctx(s)).startswith("Hallo Anna, schön")


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__.os.environ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self }}",
    "{{ config }}",
    "{{ request }}",
    "{{ config.items() }}",
    "{{ namespace }}{{ dict }}{{ range }}",
    "{{ now.astimezone }}",
    "{{ now.tzinfo }}",
    "{{ contact }}",
    "{% for x in hours %}{{ loop }}{% endfor %}",
    "{{ hours.append('x') }}{{ hours }}",
    "{{ 'a' * 100000000 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ ((10 ** 100) ** 100) ** 100 }}",
    "{{ range(10 ** 9) | list }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ message.text.__class__.__mro__ }}",
    "{{ '{0.__class__}'.format(contact) }}",
]
FORBIDDEN = ["class", "subclasses", "module", "globals", "builtins", "os.", "environ", "<", "0x"]


@pytest.mark.parametrize("source", SANDBOX_ESCAPES)
def test_sandbox_exposes_nothing_of_the_server(
    source: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = custom("Hallo {{ contact.name }}. " + source)
    with caplog.at_level(logging.WARNING):
        out = render(s, "away", ctx(s))
    for word in FORBIDDEN:
        assert word not in out
    # Either the default text replaced the failing template, or the escape printed nothing.
    assert out in (render(SHOP, "away", ctx(SHOP)), "Hallo Anna.")


@pytest.mark.parametrize(
    "source",
    [
        "{{ 1/0 }}",
        "{{ contact.name.foo() }}",
        "{{ missing.attribute }}",
        "{{ now | format_datetime('xxx', 'too', 'many') }}",
        "{{ 'text' | format_date }}",
        "   ",
        "{{ next_close }}",  # renders nothing while closed: an empty message cannot be sent
    ],
)
def test_a_failing_template_falls_back_to_the_default(
    source: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = custom(source)
    with caplog.at_level(logging.WARNING, logger="bot.replies"):
        out = render(s, "away", ctx(s))
    assert out == render(SHOP, "away", ctx(SHOP))
    assert "reply template 'away' (custom) failed" in caplog.text


def test_without_a_default_a_failing_template_gives_a_fixed_text() -> None:
    s = replace(SHOP, templates={"notdienst": "{{ 1/0 }}"})
    assert render(s, "notdienst", ctx(s)) == (
        "Danke für Ihre Nachricht! Wir melden uns so bald wie möglich."
    )
    assert render(EN_SHOP, "no-such-template", ctx(EN_SHOP)) == (
        "Thanks for your message! We will get back to you as soon as we can."
    )
    assert render(SHOP, "../../etc/passwd", ctx(SHOP)) == (
        "Danke für Ihre Nachricht! Wir melden uns so bald wie möglich."
    )


def test_a_template_that_does_not_compile_at_render_time_falls_back() -> None:
    s = custom("{% if %}")
    assert render(s, "away", ctx(s)) == render(SHOP, "away", ctx(SHOP))


@pytest.mark.parametrize("source", ["{{ x }", "{% if x %}", "{{ x | no_such_filter }}"])
def test_compile_check_raises_syntax_errors(source: str) -> None:
    with pytest.raises(jinja2.TemplateSyntaxError):
        compile_check(source)


def test_compile_check_accepts_valid_templates() -> None:
    compile_check(
        "Hallo {{ contact.name }}{% if next_open %}, ab {{ next_open | format_time }}{% endif %}"
    )


# Each of these ran for minutes or built gigabytes at full size; here the sizes are small
# enough for any code to finish, yet over the bounds, so they must fall back.
OVERSIZED = [
    pytest.param("{% for i in range(300) %}{% for j in range(300) %}x{% endfor %}{% endfor %}",
                 id="nested-range"),
    pytest.param("{{ 'x'.center(20000) }}", id="center"),
    pytest.param("{{ 'x'.ljust(20000) }}", id="ljust"),
    pytest.param("{{ 'x'.rjust(20000) }}", id="rjust"),
    pytest.param("{{ '1'.zfill(20000) }}", id="zfill"),
    pytest.param("{{ 'x' | center(20000) }}", id="center-filter"),
    pytest.param("{{ '%020000d' % 1 }}", id="percent-width"),
    pytest.param("{{ '%.20000f' % 1.0 }}", id="percent-precision"),
    pytest.param("{{ '%*d' % (20000, 1) }}", id="percent-star"),
    pytest.param("{{ '%020000d' | format(1) }}", id="format-filter"),
    pytest.param("{{ '{:>20000}'.format('x') }}", id="str-format-width"),
    pytest.param("{{ '{:{}}'.format(1, 20000) }}", id="str-format-nested-width"),
    pytest.param("{{ '{0}{0}{0}{0}'.format('y' * 3000) }}", id="str-format-repeats"),
    pytest.param("{{ '{!s}'.format(['x' * 100] * 200) | length }}", id="str-format-conversion"),
    pytest.param("{{ ('x' * 200).replace('x', 'y' * 200) }}", id="replace"),
    pytest.param("{{ ('x' * 200) | replace('x', 'y' * 200) }}", id="replace-filter"),
    pytest.param("{{ ('-' * 200).join(['y' * 200] * 200) }}", id="join"),
    pytest.param("{{ (['y' * 200] * 200) | join('-') }}", id="join-filter"),
    pytest.param("{{ ('x ' * 2000) | wordwrap(1, wrapstring='y' * 20) }}", id="wordwrap"),
    pytest.param("{{ ('x\n' * 2000) | indent('y' * 20) }}", id="indent"),
    pytest.param("{{ ('\t' * 200).expandtabs(200) }}", id="expandtabs"),
    pytest.param("{{ ('x'.encode() * 20000) | length }}", id="bytes-repeat"),
    pytest.param("{{ ('x' * 100).encode().replace('x'.encode(), ('y' * 200).encode()) | length }}",
                 id="bytes-replace"),
    pytest.param("{% set ns = namespace(n=10 ** 100) %}{% for i in range(8) %}"
                 "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n % 7 }}", id="big-int"),
    pytest.param("{% set ns = namespace(s=message.text) %}{% for i in range(14) %}"
                 "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}", id="concat"),
    pytest.param("{% set ns = namespace(s=message.text) %}{% for i in range(14) %}"
                 "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}", id="plus"),
    pytest.param("{{ ([[1] * 100] * 1000) | sum(start=[]) | length }}", id="sum-lists"),
    pytest.param("{{ [1] | batch(20000, 0) | list | last | length }}", id="batch"),
    pytest.param("{% set a = [1] * 10000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
                 "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ c | string | length }}",
                 id="nested-list-literals"),
    pytest.param("{{ ([[1] * 2000] * 2000) | string | length }}", id="nested-list-repeat"),
    pytest.param("{{ dict.fromkeys(range(1000), [1] * 1000) | string | length }}",
                 id="fromkeys"),
    pytest.param("{{ [[1, 2], [3]] | tojson(3000) | length }}", id="tojson-indent"),
    pytest.param("{{ 'x' * 4000 }} {{ 'y' * 4000 }}", id="longer-than-whatsapp-takes"),
    pytest.param("{% macro d(n) %}{% if n %}{{ d(n - 1) }}{{ d(n - 1) }}{% endif %}"
                 "{% endmacro %}{{ d(20) }}x", id="macro-recursion"),
    pytest.param("{% for a in 'x' * 2000 %}{% for b in 'x' * 2000 %}{% endfor %}{% endfor %}x",
                 id="long-loop"),
    pytest.param("{% for a in 'x' * 2000 %}{% for b in 'x' * 2000 if b == 'y' %}{% endfor %}"
                 "{% endfor %}x", id="long-loop-skipping-every-item"),
    pytest.param("{% for n in [17] recursive %}{% if n %}{{ loop([n - 1, n - 1]) }}{% endif %}"
                 "{% endfor %}x", id="recursive-loop"),
    pytest.param("{% macro twice() %}{{ caller() }}{{ caller() }}{% endmacro %}"
                 "{% macro deep(n) %}{% if n %}{% call twice() %}{{ deep(n - 1) }}{% endcall %}"
                 "{% endif %}{% endmacro %}{{ deep(19) }}x", id="call-block-recursion"),
]  # fmt: skip


@pytest.mark.parametrize("source", OVERSIZED)
def test_a_template_over_the_bounds_stops_quickly_and_falls_back(
    source: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = custom(source)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.replies"):
        out = render(s, "away", ctx(s))
    assert time.monotonic() - started < 2
    assert out == render(SHOP, "away", ctx(SHOP))
    assert "TemplateLimitError" in caplog.text


@pytest.mark.parametrize(
    "source",
    [
        "{{ '%r' % contact }}",
        "{{ '%r %s' % (contact.name.upper, contact) }}",
        "{{ '{!r}'.format(contact) }}{{ '{!a}'.format(message) }}",
        "{{ '{}'.format(contact.name.upper) }}",
        "{{ contact | string }}{{ contact.name.upper | string }}",
        "{{ '' ~ contact ~ now.astimezone }}",
        "{{ contact | pprint }}{{ [contact] | join }}{{ contact | upper }}",
        "{{ 'x' | replace('x', contact) }}{{ '%s' | format(business) }}",
        "{{ hours | groupby('0') | first }}{{ namespace | string }}",
    ],
)
def test_no_repr_or_memory_address_reaches_the_text(source: str) -> None:
    s = custom("Hallo {{ contact.name }}. " + source)
    out = render(s, "away", ctx(s))
    for word in ["Contact", "Message", "Business", "built-in", "method", "class", "0x", "<"]:
        assert word not in out
    assert out.startswith("Hallo Anna.")


def test_repr_conversions_write_plain_text() -> None:
    s = custom("{{ '%r' % contact.name }}, {{ '{!r:>6}'.format(contact.name) }}!")
    assert render(s, "away", ctx(s)) == "Anna,   Anna!"


def test_ordinary_templates_keep_working_within_the_bounds() -> None:
    s = custom(
        "{{ 'Hallo %s, noch %d Tage' % (contact.name, 3) }} {{ '{:>5}|{}'.format(7, 'a') }} "
        "{{ hours[:2] | join(', ') }} {{ range(4) | sum }} [{{ 'ab' | center(6) }}] "
        "{{ contact.name.upper() }} {{ message.text | replace('i', 'ey') | wordwrap(20) }}"
        "{% for i in range(3) %}{% for j in range(3) %}{{ i * j }}{% endfor %}{% endfor %}"
    )
    assert render(s, "away", ctx(s)) == (
        "Hallo Anna, noch 3 Tage     7|a Montag: 09:00–18:00, Dienstag: 09:00–12:30, "
        "14:00–18:00 6 [  ab  ] ANNA Hey000012024"
    )


def test_a_reply_of_exactly_the_whatsapp_limit_is_sent() -> None:
    s = custom("  {{ 'x' * 4096 }}\n\n")
    assert render(s, "away", ctx(s)) == "x" * 4096


def test_template_problem_names_the_sample_it_failed_for() -> None:
    # Quoting the customer back is a reply; quoting them back five times is not.
    assert template_problem(custom("Sie schrieben: {{ message.text }}"), "away") is None
    echo = custom("Sie schrieben: {{ message.text * 5 }}")
    assert template_problem(echo, "away") == (
        "fails for a 128-character name and a 1,000-character message: "
        "the text has 5,015 characters; WhatsApp takes at most 4,096"
    )
    assert template_problem(custom("Hallo {{ contact.name }}"), "away") is None
    assert template_problem(custom("{{ 1 / 0 if is_open else 'zu' }}"), "away") == (
        "fails while open, for Anna writing 'Hallo': division by zero"
    )
