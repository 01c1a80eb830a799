"""A pattern or template that ran over its bound gets a tight bound for a while, so that a
customer repeating the text that sets it off costs next to nothing."""

from __future__ import annotations

import logging

import pytest

import bot.replies
import bot.rules
from bot.replies import render_source
from bot.rules import keyword_hits
from bot.sandbox import TemplateLimitError
from bot.settings import KeywordRule
from bot.strain import MAX_KEYS, Strain


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_that_overran_gets_the_tight_bound_until_it_cooled_off() -> None:
    clock = Clock()
    strain = Strain(tight=0.01, cool_off=600, clock=clock)
    assert strain.budget("(a+)+$", 0.05) == 0.05
    strain.overran("(a+)+$")
    assert strain.budget("(a+)+$", 0.05) == 0.01
    assert strain.budget("other", 0.05) == 0.05
    assert strain.budget("(a+)+$", 0.005) == 0.005  # never more than the normal bound
    clock.now += 599
    assert strain.budget("(a+)+$", 0.05) == 0.01
    clock.now += 1
    assert strain.budget("(a+)+$", 0.05) == 0.05


def test_the_memory_stays_small() -> None:
    strain = Strain(tight=0.01)
    for n in range(MAX_KEYS * 3):
        strain.overran(n)
    assert len(strain._until) <= MAX_KEYS


RUNAWAY = (
    "{% macro twice(n) %}{% if n %}{{ twice(n - 1) }}{{ twice(n - 1) }}{% endif %}"
    "{% endmacro %}{{ twice(30) }}Hallo"
)


def test_a_template_that_ran_too_long_is_held_to_the_tight_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strain = Strain(tight=0.005, clock=Clock())
    monkeypatch.setattr(bot.replies, "_strained", strain)
    with pytest.raises(TemplateLimitError):
        render_source(RUNAWAY, {})
    assert strain.budget(RUNAWAY, 0.05) == 0.005
    # An ordinary template keeps its full bound, and a strained one still renders what fits.
    assert strain.budget("Hallo {{ name }}", 0.05) == 0.05
    assert render_source("Hallo {{ name }}", {"name": "Anna"}) == "Hallo Anna"


def test_a_pattern_that_ran_out_of_time_is_held_to_the_tight_bound(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    strain = Strain(tight=0.002, clock=Clock())
    monkeypatch.setattr(bot.rules, "_strained", strain)
    evil = KeywordRule(match=(), pattern="(a+)+$", template="hours")
    words = KeywordRule(match=("tulpen",), pattern=None, template="tulips")
    with caplog.at_level(logging.WARNING):
        assert keyword_hits((evil, words), "a" * 4000 + "!").found == frozenset()
    assert strain.budget("(a+)+$", 0.05) == 0.002
    # The pattern still matches what it can match quickly, and the other rules are untouched.
    assert keyword_hits((evil, words), "aaa Tulpen").found == frozenset({1})
    assert keyword_hits((evil, words), "aaaa").found == frozenset({0})
