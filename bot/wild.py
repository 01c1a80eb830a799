"""A checked accessor for untrusted JSON: each read names its path; a wrong shape is a PayloadError.

Example: ``Wild(doc)["entry"].as_list()[0]["id"].as_str()`` returns the string, or raises
``PayloadError("entry[0].id: expected a string")``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PayloadError", "Wild"]


class PayloadError(ValueError):
    """Valid JSON of the wrong shape; `path` says where (e.g. ``entry[0].changes[1].field``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path or 'document'}: {problem}")


class Wild:
    """One JSON value and the path it was read at.

    Reading a key or converting to a Python type either succeeds with the checked type or
    raises PayloadError naming the path. Optional keys (``get``, ``opt_*``) treat JSON
    ``null`` like a missing key: Meta omits what it has nothing to say about, and a null
    carries no more information than an absence.
    """

    __slots__ = ("path", "value")

    def __init__(self, value: object, path: str = "") -> None:
        self.value = value
        self.path = path

    def __repr__(self) -> str:
        return f"Wild({self.path or 'document'})"

    # -- navigation ---------------------------------------------------------------

    def _child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _object(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise PayloadError(self.path, "expected an object")
        return self.value

    def __getitem__(self, key: str) -> Wild:
        """The value under a required key of this object."""
        obj = self._object()
        if key not in obj:
            raise PayloadError(self._child(key), "missing")
        return Wild(obj[key], self._child(key))

    def get(self, key: str) -> Wild | None:
        """The value under an optional key of this object; None when missing or null."""
        value = self._object().get(key)
        return None if value is None else Wild(value, self._child(key))

    def __contains__(self, key: str) -> bool:
        return key in self._object()

    # -- conversions --------------------------------------------------------------

    def as_object(self) -> dict[str, Any]:
        """The underlying dict (for keeping the raw JSON), after checking it is one."""
        return self._object()

    def as_list(self) -> list[Wild]:
        if not isinstance(self.value, list):
            raise PayloadError(self.path, "expected a list")
        return [Wild(item, f"{self.path}[{i}]") for i, item in enumerate(self.value)]

    def as_str(self) -> str:
        if not isinstance(self.value, str):
            raise PayloadError(self.path, "expected a string")
        return self.value

    def as_bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise PayloadError(self.path, "expected true or false")
        return self.value

    def as_int(self) -> int:
        # bool is an int subclass in Python, but `true` is not a number in JSON.
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise PayloadError(self.path, "expected an integer")
        return self.value

    def as_float(self) -> float:
        """A finite number (integer or decimal) as a float."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PayloadError(self.path, "expected a number")
        try:
            number = float(value)
        except OverflowError:
            raise PayloadError(self.path, "number out of range") from None
        if not math.isfinite(number):
            raise PayloadError(self.path, "expected a finite number")
        return number

    # -- optional keys, converted -------------------------------------------------

    def opt_str(self, key: str) -> str | None:
        child = self.get(key)
        return None if child is None else child.as_str()

    def opt_bool(self, key: str) -> bool | None:
        child = self.get(key)
        return None if child is None else child.as_bool()

    def opt_list(self, key: str) -> list[Wild]:
        """The items of an optional list; an empty list when the key is missing."""
        child = self.get(key)
        return [] if child is None else child.as_list()
