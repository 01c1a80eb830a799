"""Writing settings back out as YAML in the import form, laid out as people write it by hand."""

from __future__ import annotations

from typing import Any

import yaml

from bot.hours import Interval, format_interval
from bot.settings.values import DAYS, BroadcastHours, BusinessSettings, KeywordRule


class _Flow(list[Any]):
    """A list written in flow style: ["09:00-12:30", "14:00-18:00"]."""


class _FlowMap(dict[str, Any]):
    """A mapping written in flow style: {from: 2026-12-24, to: 2026-12-26}."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Never &id001 anchors: the file is for people to read and edit.
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them.
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_flow(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _represent_flow_map(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
    return node


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowMap, _represent_flow_map)


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def _intervals_out(intervals: tuple[Interval, ...]) -> _Flow:
    return _Flow(format_interval(iv) for iv in intervals)


def dump_settings(s: BusinessSettings) -> str:
    """The settings as YAML in the import form; parse_settings(dump_settings(s)) == s."""
    h = s.hours
    doc: dict[str, Any] = {
        "business": {"name": s.name, "timezone": s.timezone, "locale": s.locale},
        "hours": {day: _intervals_out(h.weekly[i]) for i, day in enumerate(DAYS)},
    }
    if h.holiday_country:
        holiday = _FlowMap(country=h.holiday_country)
        if h.holiday_subdivision:
            holiday["subdivision"] = h.holiday_subdivision
        doc["public_holidays"] = holiday
    if h.closures:
        doc["closures"] = [
            _FlowMap({"from": c.start, "to": c.end, **({"reason": c.reason} if c.reason else {})})
            for c in h.closures
        ]
    if h.special_days:
        doc["special_hours"] = [
            _FlowMap(date=sd.day, hours=_intervals_out(sd.intervals)) for sd in h.special_days
        ]
    reply: dict[str, Any] = {
        "optout": _FlowMap(stop=_Flow(s.optout_stop), start=_Flow(s.optout_start)),
        "keywords": [_keyword_out(k) for k in s.keywords],
    }
    if s.away is not None:
        # once_per_closure always written: its default depends on whether a cooldown is given.
        away = _FlowMap(template=s.away.template, once_per_closure=s.away.once_per_closure)
        if s.away.cooldown_hours is not None:
            away["cooldown_hours"] = _num(s.away.cooldown_hours)
        reply["away"] = away
    if s.greeting is not None:
        reply["greeting"] = _FlowMap(
            template=s.greeting.template, after_inactive_days=_num(s.greeting.after_inactive_days)
        )
    if s.follow_up is not None:
        follow_up = _FlowMap(template=s.follow_up.template, language=s.follow_up.language)
        if s.follow_up.params:
            follow_up["params"] = _Flow(s.follow_up.params)
        reply["follow_up"] = follow_up
    reply["stale_after_minutes"] = s.stale_after_minutes
    reply["human_pause_minutes"] = s.human_pause_minutes
    doc["replies"] = reply
    kept = _FlowMap(
        (key, value)
        for key, value in (
            ("messages_days", s.retention.messages_days),
            ("media_days", s.retention.media_days),
        )
        if value is not None
    )
    if kept:
        doc["retention"] = kept
    doc["inbox"] = _FlowMap(
        read_receipts=s.inbox.read_receipts, typing_indicator=s.inbox.typing_indicator
    )
    if s.broadcasts != BroadcastHours():
        until = s.broadcasts.send_until
        doc["broadcasts"] = _FlowMap(
            send_from=s.broadcasts.send_from.strftime("%H:%M"),
            send_until="24:00" if until is None else until.strftime("%H:%M"),
            on_closed_holidays=s.broadcasts.on_closed_holidays,
        )
    if s.templates:
        doc["templates"] = dict(s.templates)
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )


def _keyword_out(rule: KeywordRule) -> _FlowMap:
    out = _FlowMap()
    if rule.pattern is not None:
        out["pattern"] = rule.pattern
    else:
        out["match"] = _Flow(rule.match)
    out["template"] = rule.template
    if rule.when != "always":
        out["when"] = rule.when
    if rule.file is not None:
        out["file"] = _FlowMap(name=rule.file.name, sha256=rule.file.sha256)
    return out
