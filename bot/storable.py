"""Values as every supported database stores them: text without the characters PostgreSQL
refuses, strings within their column, integers within theirs.

Pure. SQLite takes what PostgreSQL refuses (NUL, lone surrogates, over-long strings), so a
value that works in tests on one may be an error on the other; here both get the same.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = [
    "cleaned",
    "clipped",
    "finite_float",
    "for_log",
    "int32",
    "json_value",
    "may_need_cleaning",
    "no_constant",
]

INT32: Final = range(-(2**31), 2**31)

# NUL: PostgreSQL text, varchar and json refuse it. Lone surrogates (U+D800..U+DFFF): no UTF-8
# encoding exists for them, so neither driver can send them. JSON's \u escapes can carry both.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT: Final = "\ufffd"

# How either can reach a decoded JSON body: the escapes \u0000 and \udXXX, raw surrogate bytes
# (json.loads decodes bytes with surrogatepass), and NUL bytes of a UTF-16 or UTF-32 body. A
# surrogate pair (an emoji) matches too: a false alarm that only costs the walk.
_ALARM = re.compile(rb"\x00|\\u0000|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def cleaned(text: str) -> str:
    """`text` with each character no database can store replaced by U+FFFD, so that it
    still shows that something was there."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def clipped(text: str | None, limit: int) -> str | None:
    """Cleaned and at most `limit` characters: over-long text ends in "…"."""
    if text is None:
        return None
    text = cleaned(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Enough of a skipped event's JSON in the log to see what it was and to replay it by hand.
LOGGED_JSON: Final = 10_000


def for_log(value: Any) -> str:
    """What could not be stored, as JSON text for the log line that keeps it, cut if long."""
    return json.dumps(value, ensure_ascii=False, default=str)[:LOGGED_JSON]


def int32(value: int | None) -> int | None:
    """`value` if a 32-bit integer column holds it, else None (the caller keeps it as text)."""
    return value if value is not None and value in INT32 else None


def may_need_cleaning(body: bytes) -> bool:
    """Whether the decoded JSON of `body` may hold strings `json_value` would change; False
    for nearly every real notification, which then skips the walk."""
    return _ALARM.search(body) is not None


def json_value(value: Any) -> Any:
    """A decoded JSON value with every string in it (keys too) cleaned."""
    if isinstance(value, str):
        return cleaned(value)
    if isinstance(value, dict):
        return {cleaned(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


def finite_float(literal: str) -> float | str:
    """json.loads' parse_float: the number, or the literal's text for one too large for a
    float (1e999 would be infinity, which JSON cannot write back and PostgreSQL refuses)."""
    number = float(literal)
    return number if math.isfinite(number) else literal


def no_constant(name: str) -> Any:
    """json.loads' parse_constant: NaN and Infinity are not JSON, though Python reads them."""
    raise ValueError(f"{name} is not JSON")
