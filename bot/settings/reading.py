"""Reading the YAML of a settings file as a node tree, so that every value keeps its line:
typed readers of the nodes, and SettingsError, which names the line of the offending value."""

from __future__ import annotations

import math
import re
from datetime import date

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.hours import Interval, parse_interval

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A UTF-16 surrogate pair (how JSON writes an emoji: "\\ud83d\\ude00"), or half of one alone.
_SURROGATES = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")


class SettingsError(ValueError):
    """An invalid settings file: the line (1-based, if known) and the reason."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason, line)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def pairs_of(node: Node, where: str, allowed: tuple[str, ...]) -> list[tuple[str, Node, Node]]:
    """The (key, key node, value node) pairs of a mapping; unknown or repeated keys are errors."""
    if not isinstance(node, MappingNode):
        raise SettingsError(f"{where} must be a mapping of {', '.join(allowed)}", line_of(node))
    seen: set[str] = set()
    out: list[tuple[str, Node, Node]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise SettingsError(f"{where}: a key must be a plain name", line_of(key_node))
        # The raw text, so that YAML 1.1 does not turn keys such as `on` into booleans.
        key = str(key_node.value)
        if key not in allowed:
            raise SettingsError(
                f"unknown key '{key}' in {where} (expected {', '.join(allowed)})", line_of(key_node)
            )
        if key in seen:
            raise SettingsError(f"duplicate key '{key}' in {where}", line_of(key_node))
        seen.add(key)
        out.append((key, key_node, value_node))
    return out


def text_of(node: Node, what: str, *, blank_ok: bool = False) -> str:
    # The raw scalar text: `NO` stays the country code, `on` a word, `2026` a name.
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        raise SettingsError(f"{what} must be a text", line_of(node))
    value = str(node.value)
    if not blank_ok and not value.strip():
        raise SettingsError(f"{what} must not be empty", line_of(node))
    return value


def texts_of(node: Node, what: str) -> tuple[str, ...]:
    """A list of texts; a single text counts as a list of one, nothing as an empty list."""
    if is_null(node):
        return ()
    if isinstance(node, ScalarNode):
        return (text_of(node, what),)
    if not isinstance(node, SequenceNode):
        raise SettingsError(f"{what} must be a list", line_of(node))
    return tuple(text_of(item, what) for item in node.value)


def number_of(node: Node, what: str) -> float:
    if isinstance(node, ScalarNode) and node.tag not in (_NULL, _BOOL):
        try:
            value = float(str(node.value).replace("_", ""))
        except ValueError:
            pass
        else:
            if not math.isfinite(value):
                raise SettingsError(f"{what} must be a finite number", line_of(node))
            if value < 0:
                raise SettingsError(f"{what} must not be negative, got {node.value}", line_of(node))
            return value
    raise SettingsError(f"{what} must be a number", line_of(node))


def whole_number_of(node: Node, what: str) -> int:
    if isinstance(node, ScalarNode) and node.tag not in (_NULL, _BOOL):
        text = str(node.value).replace("_", "").strip()
        try:
            value = int(text)
        except ValueError:
            pass
        else:
            if value < 0:
                raise SettingsError(f"{what} must not be negative, got {node.value}", line_of(node))
            return value
    raise SettingsError(f"{what} must be a whole number, got {_shown(node)}", line_of(node))


def _shown(node: Node) -> str:
    if is_null(node):
        return "nothing"
    return f"'{node.value}'" if isinstance(node, ScalarNode) else "a list or mapping"


def date_of(node: Node, what: str) -> date:
    # Plain 2026-12-24 is a YAML 1.1 timestamp and '2026-12-24' a string: both read the same.
    value = text_of(node, what)
    if _DATE_RE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise SettingsError(f"invalid date '{value}' for {what} (expected YYYY-MM-DD)", line_of(node))


def items_of(node: Node, what: str) -> list[Node]:
    if is_null(node):
        return []
    if not isinstance(node, SequenceNode):
        raise SettingsError(f"{what} must be a list", line_of(node))
    return list(node.value)


def intervals_of(node: Node, what: str) -> tuple[Interval, ...]:
    if is_null(node):
        return ()
    items = [node] if isinstance(node, ScalarNode) else items_of(node, what)
    out = []
    for item in items:
        value = text_of(item, f"an interval of {what}")
        try:
            out.append(parse_interval(value.strip()))
        except ValueError as exc:
            raise SettingsError(
                f"invalid interval '{value}' for {what}: {exc}", line_of(item)
            ) from None
    return tuple(out)


def flag_of(node: Node, what: str) -> bool:
    """true or false (YAML's yes/no and on/off too)."""
    switch = switch_of(node) if not is_null(node) else None
    if switch is None:
        raise SettingsError(f"{what} must be true or false, got {_shown(node)}", line_of(node))
    return switch


def switch_of(node: Node) -> bool | None:
    """`away: off` / `away: ~` turn a rule off and `away: on` turns it on with its defaults."""
    if is_null(node):
        return False
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return str(node.value).lower() in ("yes", "true", "on", "y")
    return None


def _joined(text: str, *, lenient: bool = False) -> str:
    """The text with each surrogate pair joined into its character; ValueError names the first
    lone surrogate, or with `lenient` it becomes U+FFFD. YAML's "\\ud83d" escapes give
    surrogates, which no database, page or message can carry: the pairs are what JSON and
    JavaScript write for an emoji."""
    for match in _SURROGATES.finditer(text):
        if len(match.group()) == 1 and not lenient:
            raise ValueError(
                f"\\u{ord(match.group()):04x} is half of a character (a lone surrogate), not "
                "valid Unicode: write the character itself, e.g. 😀, or as \\U0001F600"
            )
    return _SURROGATES.sub(
        lambda m: m.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"),
        text,
    )


def _unicode(node: Node, seen: set[int], lenient: bool) -> None:
    """Join or refuse the surrogates of every scalar under `node` (keys too), by its line."""
    if id(node) in seen:  # an alias is the same node again
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        if isinstance(node.value, str) and _SURROGATES.search(node.value):
            try:
                node.value = _joined(node.value, lenient=lenient)
            except ValueError as exc:
                raise SettingsError(str(exc), line_of(node)) from None
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            _unicode(key, seen, lenient)
            _unicode(value, seen, lenient)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _unicode(item, seen, lenient)


def compose(text: str, *, stored: bool = False) -> Node | None:
    """The node tree of a settings file, None if it holds nothing; SettingsError names the line
    of invalid YAML. With `stored`, a lone surrogate reads as U+FFFD (see parse_settings)."""
    # Surrogates as characters are refused by the YAML reader; as escapes, by _unicode.
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or "invalid YAML"
        if exc.context and exc.context.startswith("while"):
            if exc.context_mark is not None:
                # "while parsing a flow sequence": where the unfinished thing started
                reason += f" ({exc.context} from line {exc.context_mark.line + 1})"
        elif exc.context:
            # "expected a single document in the stream" + "but found another document"
            reason = f"{exc.context} {reason}"
        raise SettingsError(
            f"invalid YAML: {reason}", mark.line + 1 if mark is not None else None
        ) from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or str(exc)
        raise SettingsError(f"invalid YAML: {reason}", line) from None
    if root is not None:
        _unicode(root, set(), stored)
    return root
