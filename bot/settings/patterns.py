"""The check of a keyword rule's regular expression: it must compile, and must not nest
repetitions in the shape that makes a backtracking search take exponential time."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import regex
from yaml.nodes import Node

from bot.settings.reading import SettingsError, line_of

# Python's own parser of its regular expressions, behind re.compile (typeshed has no stub).
_re_parser: Any = importlib.import_module("re._parser")
_REPEATS = frozenset({_re_parser.MAX_REPEAT, _re_parser.MIN_REPEAT})


def check_pattern(pattern: str, node: Node) -> None:
    try:
        tree = _re_parser.parse(pattern)
        regex.compile(pattern)  # the engine the rules search with
        nested = _nested_repetition(tree, inside=False)
    except (re.error, regex.error) as exc:
        raise SettingsError(
            f"invalid regular expression '{pattern}': {exc}", line_of(node)
        ) from None
    except RecursionError:
        # Python's parser and compiler recurse once per group.
        raise SettingsError(
            f"pattern '{pattern[:40]}…' nests its groups too deeply: use fewer parentheses",
            line_of(node),
        ) from None
    if nested:
        raise SettingsError(
            f"pattern '{pattern}' repeats something that itself repeats, as in (a+)+, which "
            "can take hours on some texts: write it without the nested repetition "
            "(a+ instead of (a+)+)",
            line_of(node),
        )


def _nested_repetition(tree: Any, *, inside: bool) -> bool:
    r"""Whether a variable repetition (+, *, {2,5}) sits inside another repetition whose parts
    nothing separates: the shape, as in (a+)+ or (\w+\s?)*, that makes a backtracking search
    take exponential time on a text that almost matches. A fixed character or class in the
    outer part, as in (,\d+)*, or a single optional part (x?) is fine. A heuristic: the
    rules' time budget bounds the rarer slow shapes it lets through, such as (a|aa)+."""
    for op, arg in tree:
        if op in _REPEATS:
            low, high, sub = arg
            if inside and high > 1 and high != low:
                return True
            if _nested_repetition(sub, inside=(inside or high > 1) and not _separated(sub)):
                return True
            continue
        for part in _subtrees(arg):
            if _nested_repetition(part, inside=inside):
                return True
    return False


def _separated(tree: Any) -> bool:
    # A character or class that every repetition of `tree` must match once.
    for op, arg in tree:
        if op in (_re_parser.LITERAL, _re_parser.IN):
            return True
        if op is _re_parser.SUBPATTERN and _separated(arg[-1]):
            return True
    return False


def _subtrees(arg: Any) -> Iterator[Any]:
    # Groups, alternatives, lookarounds and conditionals keep their parts in SubPatterns.
    if isinstance(arg, _re_parser.SubPattern):
        yield arg
    elif isinstance(arg, tuple | list):
        for item in arg:
            yield from _subtrees(item)
