"""The API's errors: one exception with an HTTP status, a stable code a shop system can branch
on, and a message for the person reading its log. Answered as
`{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

import enum
from typing import Any


class Code(enum.StrEnum):
    UNAUTHORIZED = "unauthorized"  # no key, an unknown one or a revoked one (401)
    FORBIDDEN = "forbidden"  # the key lacks the scope (403)
    NOT_FOUND = "not_found"  # 404
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    CONFLICT = "idempotency_conflict"  # an Idempotency-Key used with another body (409)
    INVALID = "invalid_request"  # not JSON, or the wrong shape (422)
    INVALID_NUMBER = "invalid_number"  # 422
    OUTSIDE_WINDOW = "outside_window"  # a text more than 24 hours after the customer wrote (422)
    TEMPLATE_MISMATCH = "template_mismatch"  # refused by the template check (422)
    RATE_LIMITED = "rate_limited"  # 429, with Retry-After
    INTERNAL = "internal_error"  # 500


STATUS: dict[Code, int] = {
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.CONFLICT: 409,
    Code.INVALID: 422,
    Code.INVALID_NUMBER: 422,
    Code.OUTSIDE_WINDOW: 422,
    Code.TEMPLATE_MISMATCH: 422,
    Code.RATE_LIMITED: 429,
    Code.INTERNAL: 500,
}


class ApiError(Exception):
    def __init__(
        self, code: Code, message: str, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": str(self.code), "message": self.message}
        error.update(self.details)
        return {"error": error}
