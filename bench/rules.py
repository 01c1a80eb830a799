"""Rule choice plus reply rendering per inbound message, as the inbound processor does it.

Run: ``python -m bench.rules [--quick]``. Goal: median under 5 ms per message.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.common import arguments, print_environment, print_table, summarize
from bot.autoreply import reply_for
from bot.rules import History, Inbound
from bot.settings import DEMO_SETTINGS, BusinessSettings, parse_settings

GOAL_MS = 5.0

# Thirty keyword rules for a bike shop: words and phrases (German and English), regular
# expressions, rules for open or closed hours only; each with its own template.
_WORD_RULES = [
    ("öffnungszeiten, geöffnet, hours, opening hours", "always"),
    ("adresse, anfahrt, address, wo seid ihr", "always"),
    ("parken, parkplatz, parking", "always"),
    ("preis, preise, kosten, price, prices", "always"),
    ("inspektion, wartung, service, check", "open"),
    ("reparatur, platten, schlauch, repair, flat tyre", "open"),
    ("termin, termine, appointment", "always"),
    ("probefahrt, test ride", "open"),
    ("leasing, jobrad, dienstrad", "always"),
    ("e-bike, ebike, pedelec", "always"),
    ("akku, batterie, battery, laden", "always"),
    ("gutschein, geschenk, voucher, gift card", "always"),
    ("rechnung, invoice, quittung", "always"),
    ("garantie, gewährleistung, warranty", "always"),
    ("versand, lieferung, shipping, delivery", "always"),
    ("rückgabe, umtausch, return", "always"),
    ("kinderrad, laufrad, kids bike", "always"),
    ("helm, helme, helmet", "always"),
    ("miete, mieten, verleih, rental, rent", "closed"),
    ("notfall, dringend, urgent, emergency", "closed"),
    ("jobs, bewerbung, ausbildung, job", "always"),
    ("danke, vielen dank, thanks, thank you", "always"),
]
_PATTERN_RULES = [
    (r"(?i)bestellung\s*#?\d+", "open"),
    (r"(?i)auftrag\s*(nr\.?|nummer)?\s*\d{4,}", "always"),
    (r"(?i)\b(rahmen)?nummer\s*[A-Z]{2}\d{6,}", "always"),
    (r"(?i)\b\d{1,2}[.:]\d{2}\s*uhr\b", "always"),
    (r"(?i)\bkva\b|kostenvoranschlag", "always"),
    (r"https?://\S+", "always"),
    (r"(?i)\b(gr(ö|oe)ße|rahmenh(ö|oe)he)\s*\d+", "always"),
    (r"(?i)\b(abholen|abholung)\b.*\b(heute|morgen)\b", "open"),
]


def thirty_rules_yaml() -> str:
    """A settings file with 30 keyword rules, each with a template of its own."""
    lines = [
        "business: {name: Radhaus Sonnenschein, timezone: Europe/Berlin, locale: de_DE}",
        "hours:",
        '  mon: ["10:00-13:00", "14:00-18:30"]',
        '  tue: ["10:00-13:00", "14:00-18:30"]',
        '  wed: ["10:00-13:00"]',
        '  thu: ["10:00-13:00", "14:00-20:00"]',
        '  fri: ["10:00-18:30", "22:00-02:00"]',
        '  sat: ["09:00-14:00"]',
        "public_holidays: {country: DE, subdivision: BY}",
        "closures:",
        "  - {from: 2026-12-24, to: 2026-12-26, reason: Weihnachten}",
        "  - {from: 2026-08-10, to: 2026-08-21, reason: Betriebsurlaub}",
        "special_hours:",
        '  - {date: 2026-12-31, hours: ["10:00-12:00"]}',
        "replies:",
        '  optout: {stop: ["STOP", "ABMELDEN", "ABBESTELLEN"], start: ["START", "ANMELDEN"]}',
        "  keywords:",
    ]
    templates = []
    for i, (words, when) in enumerate(_WORD_RULES):
        match = ", ".join(f'"{w.strip()}"' for w in words.split(","))
        lines.append(f"    - {{match: [{match}], template: k{i}, when: {when}}}")
        templates.append(
            f'  k{i}: "Hallo {{{{ contact.name }}}}, zu „{words.split(",")[0]}“: '
            "{% if is_open %}wir sind bis {{ next_close | format_time('HH:mm') }} Uhr da."
            "{% else %}ab {{ next_open | format_datetime('EEEE, HH:mm') }} Uhr wieder.{% endif %}\""
        )
    for j, (pattern, when) in enumerate(_PATTERN_RULES, start=len(_WORD_RULES)):
        escaped = pattern.replace("\\", "\\\\")
        lines.append(f'    - {{pattern: "{escaped}", template: k{j}, when: {when}}}')
        templates.append(
            f'  k{j}: "Danke, {{{{ contact.name }}}}! Wir sehen uns „{{{{ message.text | truncate(40) }}}}“ '
            'an und melden uns am {{ now | format_date }}."'
        )
    lines += [
        "  away: {template: away, cooldown_hours: 12}",
        "  greeting: {template: greeting, after_inactive_days: 14}",
        "templates:",
        *templates,
        '  away: "{{ contact.name }}, gerade ist niemand da. Ab {{ next_open | format_datetime }}'
        ' wieder.{% for line in hours %} {{ line }}{% endfor %}"',
    ]
    return "\n".join(lines) + "\n"


# --- the message mix ----------------------------------------------------------------------

# (text, kind) — None for media without a caption.
MESSAGES: list[tuple[str | None, str]] = [
    # keywords
    ("Wie sind eure Öffnungszeiten?", "text"),
    ("ÖFFNUNGSZEITEN", "text"),
    ("what are your opening hours please", "text"),
    ("Hallo, meine Bestellung #48213 ist noch nicht da", "text"),
    ("Wo finde ich eure Adresse? Komme mit dem Auto, gibt es Parkplätze?", "text"),
    ("Ich bräuchte einen Termin für die Inspektion von meinem E-Bike", "text"),
    ("Habe einen Platten, könnt ihr heute noch reparieren?", "text"),
    ("Vielen Dank!!", "text"),
    ("Kann ich das Rad morgen um 10:30 Uhr abholen?", "text"),
    ("Auftrag Nr. 123456 – Kostenvoranschlag bitte", "text"),
    # opt-out and opt-in
    ("STOP", "text"),
    ("stop!", "text"),
    ("Abmelden 🙏", "text"),
    ("START", "text"),
    # plain texts: away or greeting
    ("Hallo, habt ihr noch rote Rosen?", "text"),
    ("Guten Morgen! Ich wollte fragen, ob das Geschenk schon fertig ist.", "text"),
    ("ok", "text"),
    ("👍👍", "text"),
    (
        "Guten Tag, ich habe letzte Woche bei Ihnen etwas gekauft und wollte fragen, ob man "
        "das noch umtauschen kann, weil es leider nicht passt. Die Farbe ist auch nicht ganz "
        "die, die ich mir vorgestellt hatte, aber das wäre nicht so schlimm. Können Sie mir "
        "sagen, wie das abläuft und ob ich den Kassenbon mitbringen muss? Vielen Dank im "
        "Voraus und schöne Grüße aus Schwabing",
        "text",
    ),
    ("Is anyone there? I would like to order something for tomorrow.", "text"),
    (None, "image"),
    ("Foto von dem Rad, das ich meine", "image"),
    (None, "audio"),
    (None, "location"),
    # never answered
    ("❤️", "reaction"),
]

_BERLIN_UTC_OFFSET = {"CET": timedelta(hours=1), "CEST": timedelta(hours=2)}


def _local(text: str, zone: str) -> datetime:
    """A Berlin wall time as an aware UTC instant (the zone's offset given, to stay exact)."""
    naive = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return naive - _BERLIN_UTC_OFFSET[zone]


# Arrival instants: open and closed hours, a holiday, Christmas, New Year's Eve, and both
# daylight-saving weekends (Europe/Berlin: 29 March and 25 October 2026).
INSTANTS: dict[str, datetime] = {
    "Tue 11:15 (open)": _local("2026-03-10T11:15", "CET"),
    "Tue 21:30 (closed)": _local("2026-03-10T21:30", "CET"),
    "Sun 11:00 (closed)": _local("2026-03-15T11:00", "CET"),
    "Sat 28 Mar 12:00 (DST weekend)": _local("2026-03-28T12:00", "CET"),
    "Sun 29 Mar 03:30 (after the spring gap)": _local("2026-03-29T03:30", "CEST"),
    "Mon 30 Mar 09:30 (after DST)": _local("2026-03-30T09:30", "CEST"),
    "Thu 14 May 10:00 (Ascension)": _local("2026-05-14T10:00", "CEST"),
    "Sun 25 Oct 02:30 (first, CEST)": _local("2026-10-25T02:30", "CEST"),
    "Sun 25 Oct 02:30 (repeat, CET)": _local("2026-10-25T02:30", "CET"),
    "Thu 24 Dec 10:00 (closure)": _local("2026-12-24T10:00", "CET"),
    "Thu 31 Dec 11:00 (special hours)": _local("2026-12-31T11:00", "CET"),
    "Fri 23:30 (past midnight)": _local("2026-03-13T23:30", "CET"),
}


@dataclass(frozen=True)
class Case:
    text: str | None
    kind: str
    now: datetime
    history: History


def cases(n: int, seed: int = 20260310) -> list[Case]:
    """`n` arrivals: messages, instants (with up to ±20 min of jitter) and histories mixed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text, kind = rng.choice(MESSAGES)
        now = rng.choice(list(INSTANTS.values())) + timedelta(seconds=rng.randint(-1200, 1200))
        roll = rng.random()
        if roll < 0.3:
            history = History(last_inbound_at=None, last_away_at=None)  # a new contact
        elif roll < 0.6:
            history = History(now - timedelta(days=30), now - timedelta(days=30))
        elif roll < 0.8:
            history = History(now - timedelta(minutes=5), None)
        else:
            history = History(now - timedelta(minutes=5), now - timedelta(hours=2))
        out.append(Case(text, kind, now, history))
    return out


def reply_once(settings: BusinessSettings, case: Case) -> tuple[str | None, str | None]:
    """What the inbound processor works out for one message: the rule and the rendered text."""
    reply = reply_for(
        settings,
        Inbound(case.text, case.kind, case.now),
        case.history,
        case.now,
        contact_name="Anna Huber",
        wa_id="4915112345678",
    )
    return (reply.decision.rule, reply.text) if reply is not None else (None, None)


def measure(settings: BusinessSettings, batch: Sequence[Case]) -> tuple[list[float], Counter[str]]:
    timings = []
    rules: Counter[str] = Counter()
    for case in batch:
        started = time.perf_counter_ns()
        rule, _text = reply_once(settings, case)
        timings.append((time.perf_counter_ns() - started) / 1e6)
        rules[rule or "none"] += 1
    return timings, rules


def run(quick: bool = False) -> list[list[object]]:
    n = 300 if quick else 5000
    batch = cases(n)
    rows: list[list[object]] = []
    for label, source in (
        ("demo settings", DEMO_SETTINGS),
        ("30 keyword rules", thirty_rules_yaml()),
    ):
        settings = parse_settings(source)
        # The first message of a process compiles templates and builds holiday tables.
        cold_start = time.perf_counter_ns()
        reply_once(settings, batch[0])
        cold = (time.perf_counter_ns() - cold_start) / 1e6
        measure(settings, cases(200, seed=1))  # warm-up, as in a running web process
        timings, rules = measure(settings, batch)
        s = summarize(timings)
        mix = ", ".join(f"{k} {v}" for k, v in sorted(rules.items()))
        rows.append([label, s.count, s.p50, s.p99, s.mean, s.max, cold, mix])
    print_table(
        "rules: choose + build_context + render per message (ms)",
        ["settings", "messages", "median", "p99", "mean", "max", "first", "replies"],
        rows,
        notes=[
            f"goal: median under {GOAL_MS:g} ms; "
            + ("met" if all(float(r[2]) < GOAL_MS for r in rows) else "MISSED"),  # type: ignore[arg-type]
            f"{len(MESSAGES)} kinds of message at {len(INSTANTS)} instants (±20 min), "
            "new, returning and recently answered contacts; 'first' is the cold first message",
        ],
    )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments("Rule choice plus rendering per message.", argv, databases=False)
    print_environment()
    run(quick=args.quick)


if __name__ == "__main__":
    main()
