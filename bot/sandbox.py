"""Jinja's immutable sandbox, bounded: no reply template can run for long, build huge texts or
print a Python object's repr.

Python cannot interrupt an operation running in C, so every operation whose time or result
grows with an argument (a width, a repeat count, a replacement, a join, a big number) is checked
before it runs. Repetition, the only other way to spend time, comes from loops, macros and
blocks: the compiled template counts each of their steps and looks at the thread's processor
time on each.
"""

from __future__ import annotations

import operator
import re
import threading
import time as clock
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from functools import update_wrapper
from typing import Any

from jinja2 import nodes, pass_context, pass_environment
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Environment
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError

MAX_REPLY = 4096  # WhatsApp's limit for the body of a text message
MAX_TEXT = 10_000  # any text a template builds on the way, and its whole output before strip
MAX_SEQUENCE = 10_000  # items in a list a template builds
# Items in a list with those of the lists inside it, each time it is referenced again: nested
# lists that repeat one another make comparing or sorting them walk through all of them.
MAX_WEIGHT = 100_000
MAX_WIDTH = MAX_REPLY  # a field width or precision: anything wider cannot be part of a reply
MAX_EXPONENT = 100
MAX_INT_BITS = 10_000  # about 3,000 digits
MAX_RANGE_ITEMS = 10_000  # all range() calls of one render together, so nested loops multiply
MAX_WORK = 1_000_000  # characters built or printed by one render, all operations together
MAX_STEPS = 200_000  # loop items taken and macro, call and block runs, in one render
# Processor time of the rendering thread, not time on the clock: other threads of a busy web
# process must not use a render's budget up, and a render holds the interpreter lock while it
# runs, so every other thread of the process waits for it. Real replies take well under 1 ms.
MAX_SECONDS = 0.05


class TemplateLimitError(SecurityError):
    """A template went over one of the bounds of a render; the message says which."""


@dataclass
class _Budget:
    deadline: float
    seconds: float
    steps: int = 0
    range_items: int = 0
    work: int = 0
    exceeded: str | None = None


_local = threading.local()


def _budget() -> _Budget | None:
    found: _Budget | None = getattr(_local, "budget", None)
    return found


def _over(budget: _Budget, reason: str) -> TemplateLimitError:
    # Kept on the budget too, so that a limit is reported even if something between the
    # template and the render swallowed the exception.
    budget.exceeded = reason
    return TemplateLimitError(reason)


@contextmanager
def bounded(seconds: float = MAX_SECONDS) -> Iterator[None]:
    """Run one render within the budgets of steps, time, numbers counted and text built."""
    budget = _Budget(deadline=clock.thread_time() + seconds, seconds=seconds)
    outer = _budget()
    _local.budget = budget
    try:
        yield
    finally:
        _local.budget = outer
    if budget.exceeded is not None:
        raise TemplateLimitError(budget.exceeded)


def _step() -> None:
    budget = _budget()
    if budget is None:
        return
    budget.steps += 1
    if budget.steps > MAX_STEPS:
        raise _over(budget, f"the template takes more than {MAX_STEPS:,} steps")
    if clock.thread_time() > budget.deadline:
        raise _over(budget, f"the template takes longer than {budget.seconds * 1000:.0f} ms")


def _counted(items: Any) -> Iterator[Any]:
    for item in items:
        _step()
        yield item


def _charge(n: int) -> None:
    budget = _budget()
    if budget is not None:
        budget.work += n
        if budget.work > MAX_WORK:
            raise _over(budget, f"the template builds more than {MAX_WORK:,} characters")


def _check_length(n: object, what: str, limit: int = MAX_TEXT, unit: str = "characters") -> None:
    # Only ints are checked: anything else makes the operation itself raise a TypeError.
    if isinstance(n, int) and n > limit:
        raise TemplateLimitError(f"{what} would build {n:,} {unit} (at most {limit:,})")


def _unit(value: object) -> str:
    return "characters" if isinstance(value, str | bytes) else "items"


def _weight(value: Any, seen: dict[int, int] | None = None) -> int:
    """How many items a structure holds, counting each time a list is referenced again: what
    comparing, sorting or printing it walks through. Each distinct list is looked at once."""
    if not isinstance(value, list | tuple | dict):
        return 0
    seen = {} if seen is None else seen
    key = id(value)
    if key not in seen:
        seen[key] = 0  # a list cannot hold itself here, but stay finite if one did
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        seen[key] = len(items) + sum(_weight(item, seen) for item in items)
    return seen[key]


def _check_weight(value: Any, what: str) -> Any:
    weight = _weight(value)
    if weight > MAX_WEIGHT:
        raise TemplateLimitError(f"{what} would hold {weight:,} items (at most {MAX_WEIGHT:,})")
    return value


# --- plain values and their text ---------------------------------------------------------------

_PLAIN = (str, int, float, Decimal, date, time, timedelta)


def safe_value(value: object) -> Any:
    """Plain data as it is, lists, tuples and dicts rebuilt of plain data; anything else
    (objects, functions, classes, none, undefined) becomes "", so that neither a repr nor a
    memory address can reach a contact."""
    if isinstance(value, _PLAIN):
        return value
    _check_weight(value, "a value")  # rebuilding copies every reference to an inner list
    return _safe(value, 0)


def _safe(value: object, depth: int) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if depth < 3:
        if isinstance(value, list):
            return [_safe(item, depth + 1) for item in value]
        if isinstance(value, tuple):  # a named tuple prints its class name: a plain one does not
            return tuple(_safe(item, depth + 1) for item in value)
        if isinstance(value, dict):
            return {_safe(k, depth + 1): _safe(v, depth + 1) for k, v in value.items()}
    return ""


def _size(value: Any, nested: bool = False) -> int:
    """At least len(str(value)) for a safe_value, found without building the text."""
    if isinstance(value, str):
        # Inside a list, str() shows each text's repr: at most 10 characters per character.
        return 10 * len(value) + 2 if nested else len(value)
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 24
    if isinstance(value, list | tuple):
        return 2 + sum(_size(item, True) + 2 for item in value)
    if isinstance(value, dict):
        return 2 + sum(_size(k, True) + _size(v, True) + 4 for k, v in value.items())
    return len(str(value))  # dates, times, decimals: short


def _bounded(value: object, what: str) -> Any:
    safe = safe_value(value)
    _check_length(_size(safe), what)
    return safe


def text_of(value: object, what: str = "a value") -> str:
    """The text of a value as a reply may show it: checked for size, never a repr."""
    text = str(_bounded(value, what))
    _charge(len(text))
    return text


# --- '%' and str.format ------------------------------------------------------------------------

_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?"
    r"[hlL]?(?P<conversion>.?)",
    re.DOTALL,
)


def _number(digits: str | None, what: str) -> int:
    if not digits:
        return 0
    if digits == "*":
        raise TemplateLimitError(f"{what}: a width or precision taken from the values ('*')")
    if len(digits) > 5 or int(digits) > MAX_WIDTH:
        raise TemplateLimitError(f"{what}: a width or precision over {MAX_WIDTH:,}")
    return int(digits)


def _formatted_size(value: Any) -> int:
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return len(f"{value:.0f}") + 24  # '%f' writes every digit of a large float
    return _size(value)


def percent(template: str, values: Any) -> str:
    """`template % values`, checked: no huge widths, no result over MAX_TEXT, and `%r` / `%a`
    write the plain text as `%s` does rather than a Python repr."""
    values = safe_value(values)
    total = len(template)
    position = 0
    for m in _PERCENT.finditer(template):
        if m["conversion"] == "%":
            continue
        total += _number(m["width"], "'%' formatting")
        total += _number(m["precision"], "'%' formatting")
        if m["key"] is not None and isinstance(values, dict):
            value = values.get(m["key"], "")
        elif isinstance(values, tuple):
            value = values[position] if position < len(values) else ""
        else:
            value = values
        position += 1
        total += _formatted_size(value)
    _check_length(total, "'%' formatting")
    plain = _PERCENT.sub(
        lambda m: m[0][:-1] + "s" if m["conversion"] in ("r", "a") else m[0], template
    )
    text: str = plain % values
    _charge(len(text))
    return text


_SPEC_NUMBER = re.compile(r"\d+")


class _Formatter(SandboxedFormatter):
    """str.format in the sandbox, with widths checked and `!r` / `!a` written like `!s`."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.built = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("s", "r", "a"):  # the text, size-checked before it is built
            return text_of(value, "str.format")
        return super().convert_field(safe_value(value), conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        for digits in _SPEC_NUMBER.findall(format_spec):
            _number(digits, "str.format")
        value = _bounded(value, "str.format")
        text = super().format_field(value, format_spec)
        self.built += len(text)
        _check_length(self.built, "str.format")
        return text


# --- calls of methods -------------------------------------------------------------------------


def _replaced_size(s: Any, old: Any, new: Any, count: Any) -> int:
    texts = isinstance(s, str) and isinstance(old, str) and isinstance(new, str)
    if not texts and not (
        isinstance(s, bytes) and isinstance(old, bytes) and isinstance(new, bytes)
    ):
        return 0  # wrong types: the call itself raises
    matches = len(s) + 1 if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        matches = min(matches, count)
    return len(s) + matches * max(len(new) - len(old), 0)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _checked_call(
    obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    """Check a method call whose cost grows with its arguments; the arguments to call with."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes):
        what = f"{name}()"
        if name in ("center", "ljust", "rjust", "zfill"):
            _check_length(_arg(args, kwargs, 0, "width", 0), what)
        elif name == "expandtabs":
            tabsize = _arg(args, kwargs, 0, "tabsize", 8)
            if isinstance(tabsize, int):
                tab = "\t" if isinstance(owner, str) else b"\t"
                _check_length(len(owner) + owner.count(tab) * tabsize, what)  # type: ignore[arg-type]
        elif name == "replace":
            size = _replaced_size(
                owner, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
                _arg(args, kwargs, 2, "count", -1),
            )  # fmt: skip
            _check_length(size, what)
        elif name == "join" and args:
            items = list(args[0])
            if len(items) > MAX_SEQUENCE:
                raise TemplateLimitError(f"{what} of more than {MAX_SEQUENCE:,} items")
            lengths = sum(len(item) for item in items if isinstance(item, str | bytes))
            _check_length(lengths + len(owner) * max(len(items) - 1, 0), what)
            args = (items, *args[1:])
        elif name in ("translate", "maketrans"):
            raise TemplateLimitError(f"{what} is not available in reply templates")
    elif name == "fromkeys" and args:
        keys = list(args[0])
        _check_length(len(keys) * (1 + _weight(_arg(args, kwargs, 1, "value", None))),
                      "fromkeys()", MAX_WEIGHT, "items")  # fmt: skip
        args = (keys, *args[1:])
    elif isinstance(owner, int) and name == "to_bytes":
        _check_length(_arg(args, kwargs, 0, "length", 1), "to_bytes()")
    return obj, args


# --- the environment --------------------------------------------------------------------------


# Filters the compiled template calls for its steps; a template cannot name them itself.
_STEP = "sandbox:step"
_COUNTED = "sandbox:counted"


def _hidden_filter(name: str, value: nodes.Node, lineno: int) -> nodes.Filter:
    return nodes.Filter(value, name, [], [], None, None, lineno=lineno)


def _with_steps(tree: nodes.Template) -> nodes.Template:
    """Counts every item a loop takes, and every run of a macro, block or recursive loop."""
    for loop in tree.find_all(nodes.For):
        loop.iter = _hidden_filter(_COUNTED, loop.iter, loop.lineno)
        if loop.recursive:  # loop(...) runs the body again with items not counted above
            loop.body.insert(0, _step_node(loop.lineno))
    for node in tree.find_all((nodes.Macro, nodes.CallBlock, nodes.Block)):
        body: list[nodes.Node] = node.body  # type: ignore[attr-defined]  # all three have one
        body.insert(0, _step_node(node.lineno))
    return tree


def _step_node(lineno: int) -> nodes.Stmt:
    return nodes.ExprStmt(_hidden_filter(_STEP, nodes.Const(None), lineno), lineno=lineno)


@pass_context
def _step_filter(context: Context, value: None) -> None:
    # pass_context keeps Jinja from running it once at compile time instead of at each step.
    _step()


@pass_context
def _counted_filter(context: Context, items: Any) -> Iterator[Any]:
    return _counted(items)


class _CodeGenerator(CodeGenerator):
    """Compiles `a ~ b` into a checked join (Jinja's own is a plain str join), and list, tuple
    and dict literals into checked ones: `[a, a, a]` of a nested `a` multiplies its items."""

    def _checked(self, visit: Callable[..., None], node: nodes.Expr, frame: Frame) -> None:
        if getattr(node, "ctx", "load") != "load":  # a, b = ...: a target, not a value
            visit(self, node, frame)
            return
        self.write("environment.checked_literal(")
        visit(self, node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._checked(CodeGenerator.visit_Tuple, node, frame)

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(CodeGenerator.visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(CodeGenerator.visit_Dict, node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (no attribute starting with _, no changing lists or dicts) with every
    operation that could build a huge result checked before it runs."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _with_steps(super()._parse(source, name, filename))

    def checked_literal(self, value: Any) -> Any:
        return _check_weight(value, "a list")

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        values = [safe_value(part) for part in parts]
        _check_length(sum(_size(v) for v in values), "'~'")
        return text_of("".join(str(v) for v in values))

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise TemplateLimitError("exponent too large")
            if ints and left.bit_length() * right > MAX_INT_BITS:
                raise TemplateLimitError("number too large")
            return operator.pow(left, right)
        if operator_ == "*":
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimitError("number too large")
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int):
                    _check_length(len(seq) * count, "'*'", MAX_SEQUENCE, _unit(seq))
                    _charge(len(seq) * max(count, 0))
                    if isinstance(seq, list | tuple) and count > 1:
                        _check_length(_weight(seq) * count, "'*'", MAX_WEIGHT, "items")
            return operator.mul(left, right)
        if operator_ == "+":
            if ints and max(left.bit_length(), right.bit_length()) >= MAX_INT_BITS:
                raise TemplateLimitError("number too large")
            if isinstance(left, str | bytes | list | tuple) and isinstance(
                right, str | bytes | list | tuple
            ):
                _check_length(len(left) + len(right), "'+'", MAX_SEQUENCE, _unit(left))
                _charge(len(left) + len(right))
                if not isinstance(left, str | bytes):
                    _check_length(_weight(left) + _weight(right), "'+'", MAX_WEIGHT, "items")
            return operator.add(left, right)
        if operator_ == "%" and isinstance(left, str):
            return percent(left, right)
        return super().call_binop(context, operator_, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, types.MethodType | types.BuiltinMethodType):
            return None
        if value.__name__ not in ("format", "format_map") or not isinstance(value.__self__, str):
            return None
        source: str = value.__self__
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            text = str(_Formatter(self).vformat(source, args, kwargs))
            _charge(len(text))
            return text

        return update_wrapper(wrapper, value)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        obj, args = _checked_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)


def bounded_range(*args: int) -> range:
    """range(), with all ranges of one render counted together: nested loops multiply."""
    try:
        found = range(*args)
        items = len(found)
    except OverflowError:
        items = MAX_RANGE_ITEMS + 1
    budget = _budget()
    if budget is not None:
        budget.range_items += items
        items = budget.range_items
    if items > MAX_RANGE_ITEMS:
        reason = f"the template counts more than {MAX_RANGE_ITEMS:,} numbers"
        raise TemplateLimitError(reason) if budget is None else _over(budget, reason)
    return found


def finalize(value: object) -> str:
    """What `{{ ... }}` prints: plain data only, counted against the render's budget."""
    return text_of(value, "{{ }}")


# --- filters ----------------------------------------------------------------------------------


def _guard(
    f: Callable[..., Any], check: Callable[..., None] | None = None, *, text: bool = True
) -> Callable[..., Any]:
    """Filter `f` with `check` run first and, for a `text` filter, its input made plain and
    size-checked."""
    pass_arg = getattr(f, "jinja_pass_arg", None)
    if pass_arg is None:

        def plain(value: Any, *args: Any, **kwargs: Any) -> Any:
            if text:
                value = _bounded(value, "a filter")
            if check is not None:
                check(value, *args, **kwargs)
            return f(value, *args, **kwargs)

        return update_wrapper(plain, f)

    def passing(first: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if text:
            value = _bounded(value, "a filter")
        if check is not None:
            check(value, *args, **kwargs)
        return f(first, value, *args, **kwargs)

    wrapped = update_wrapper(passing, f)
    wrapped.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapped


def _center(value: Any, width: Any = 80) -> None:
    _check_length(width, "center")


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    if isinstance(width, int):
        _check_length(width, "indent", MAX_WIDTH)
    prefix = len(width) if isinstance(width, str) else width
    if isinstance(prefix, int):
        _check_length(len(str(s)) + prefix * (str(s).count("\n") + 1), "indent")


def _tojson(value: Any, indent: Any = None) -> None:
    # Every line of the output is indented once per level: a wide indent multiplies it.
    width = len(indent) if isinstance(indent, str) else indent
    if isinstance(width, int) and width > 8:
        raise TemplateLimitError("tojson indents by at most 8")


def _wordwrap(s: Any, width: Any = 79, break_long: bool = True, wrapstring: Any = None, *_: Any) -> None:  # fmt: skip
    text = str(s)
    if isinstance(width, int) and width > 0:
        lines = len(text) // width + len(text.split()) + 1
        _check_length(len(text) + lines * len(str(wrapstring or "\n")), "wordwrap")


def _parts(what: str) -> Callable[..., None]:
    def check(value: Any, count: Any, fill_with: Any = None) -> None:
        if isinstance(count, int) and count > MAX_SEQUENCE:
            raise TemplateLimitError(f"{what} into more than {MAX_SEQUENCE:,} parts")
        if isinstance(count, int) and fill_with is not None:
            _check_length(count * (1 + _weight(fill_with)), what, MAX_WEIGHT, "items")

    return check


def _replace(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    s, old, new = text_of(s), text_of(old), text_of(new)
    n = -1 if count is None else count
    _check_length(_replaced_size(s, old, new, n), "replace")
    return text_of(s.replace(old, new, n))


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise TypeError("format takes either positional or keyword arguments, not both")
    return percent(text_of(value), kwargs or args)


def _items(env: Environment, value: Any, attribute: str | int | None) -> list[Any]:
    items = list(value)
    if len(items) > MAX_SEQUENCE:
        raise TemplateLimitError(f"more than {MAX_SEQUENCE:,} items")
    if attribute is not None:
        getter = make_attrgetter(env, attribute)
        items = [getter(item) for item in items]
    return items


@pass_environment
def _join(env: Environment, value: Any, d: Any = "", attribute: str | int | None = None) -> str:
    values = [safe_value(item) for item in _items(env, value, attribute)]
    separator = text_of(d)
    total = sum(_size(v) for v in values) + len(separator) * max(len(values) - 1, 0)
    _check_length(total, "join")
    return text_of(separator.join(str(v) for v in values))


@pass_environment
def _sum(env: Environment, value: Any, attribute: str | int | None = None, start: Any = 0) -> Any:
    items = [*_items(env, value, attribute), start]
    # Adding lists or texts would copy them over and over; numbers are all a reply needs.
    if not all(isinstance(n, int | float | Decimal) for n in items):
        raise TemplateLimitError("sum adds numbers only")
    if any(isinstance(n, int) and n.bit_length() > MAX_INT_BITS for n in items):
        raise TemplateLimitError("number too large")
    return sum(items[:-1], start)


# Filters that turn their input into text: made plain and size-checked first.
_TEXT_FILTERS = (
    "capitalize", "e", "escape", "forceescape", "lower", "pprint", "safe", "striptags",
    "title", "trim", "truncate", "upper", "urlencode", "urlize", "wordcount", "xmlattr",
)  # fmt: skip
_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "tojson": _tojson,
}
_COUNTS = ("batch", "slice")


def make_env() -> BoundedSandbox:
    env = BoundedSandbox(autoescape=False, trim_blocks=True, lstrip_blocks=True, finalize=finalize)
    # Only the documented values are visible: drop lipsum, cycler and joiner.
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    env.globals["range"] = bounded_range
    env.filters[_STEP] = _step_filter
    env.filters[_COUNTED] = _counted_filter
    for name in _TEXT_FILTERS:
        env.filters[name] = _guard(env.filters[name])
    for name, check in _CHECKS.items():
        env.filters[name] = _guard(env.filters[name], check)
    for name in _COUNTS:
        env.filters[name] = _guard(env.filters[name], _parts(name), text=False)
    env.filters["string"] = text_of
    env.filters["replace"] = _replace
    env.filters["format"] = _format
    env.filters["join"] = _join
    env.filters["sum"] = _sum
    return env
