"""The fake Graph API's template creation (see tests/fakegraph.py): what Meta checks when a
template is submitted to ``POST /{version}/{waba-id}/message_templates``, answered in Meta's
error shape (`error_user_title`, `error_user_msg`, `error_subcode`), and the Resumable Upload
API a media header's sample goes through (``POST /{version}/{app-id}/uploads``, then
``POST /{version}/upload:…`` with ``file_offset: 0``)."""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

TEMPLATES_PATH = re.compile(r"/(?P<version>v[0-9.]+)/(?P<waba>[0-9]+)/message_templates/?")
APP_UPLOADS_PATH = re.compile(r"/(?P<version>v[0-9.]+)/(?P<app>[0-9]+)/uploads/?(?:\?.*)?")
UPLOAD_SESSION_PATH = re.compile(r"/(?P<version>v[0-9.]+)/(?P<session>upload:[^/?]+)/?")

_NAME = re.compile(r"[a-z0-9_]{1,512}")
_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def matches(path: str) -> bool:
    return any(p.fullmatch(path) for p in (TEMPLATES_PATH, APP_UPLOADS_PATH, UPLOAD_SESSION_PATH))


def meta_error(
    code: int, title: str, message: str, subcode: int | None = None, status: int = 400
) -> tuple[int, dict[str, Any]]:
    """A Graph API error for a template, shaped as Meta sends it."""
    error: dict[str, Any] = {
        "message": "Invalid parameter",
        "type": "OAuthException",
        "code": code,
        "is_transient": False,
        "error_user_title": title,
        "error_user_msg": message,
        "fbtrace_id": "AFakeTrace" + uuid.uuid4().hex[:12],
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}


@dataclass
class TemplateDesk:
    """The templates submitted to the fake, by (name, language), and its upload sessions."""

    created: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    being_deleted: set[str] = field(default_factory=set)
    uploads: dict[str, bytes] = field(default_factory=dict)
    handles: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, path: str, headers: Mapping[str, str], raw: bytes, payload: Any
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if TEMPLATES_PATH.fullmatch(path):
                return self._create(payload)
            if APP_UPLOADS_PATH.fullmatch(path):
                return self._open_upload(path)
            return self._upload(path, headers, raw)

    # -- POST /{waba}/message_templates ---------------------------------------------------

    def _create(self, payload: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(payload, dict):
            return meta_error(100, "Invalid parameter", "The request needs a JSON body.")
        name = str(payload.get("name") or "")
        language = str(payload.get("language") or "")
        category = str(payload.get("category") or "").upper()
        if not _NAME.fullmatch(name):
            return meta_error(
                100,
                "Invalid template name",
                "The template name can only contain lowercase letters, numbers and underscores.",
            )
        if category not in ("MARKETING", "UTILITY", "AUTHENTICATION"):
            return meta_error(100, "Invalid parameter", "Param category must be one of {…}.")
        if name in self.being_deleted:
            return meta_error(
                100,
                "Message template language is being deleted",
                f"New {language} content can't be added while the existing {language} content"
                " is being deleted. Try again in 4 weeks or consider creating a new message"
                " template.",
                2388023,
            )
        if (name, language) in self.created:
            return meta_error(
                100,
                "Content in This Language Already Exists",
                f"There is already {language} content for this template. You can create a new"
                " template and try again.",
                2388024,
            )
        problem = self._components_problem(payload)
        if problem is not None:
            return problem
        template_id = str(10**15 + next(self._ids))
        self.created[(name, language)] = {**payload, "id": template_id, "status": "PENDING"}
        return 200, {"id": template_id, "status": "PENDING", "category": category}

    def _components_problem(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        named = str(payload.get("parameter_format") or "").lower() == "named"
        components = payload.get("components")
        if not isinstance(components, list):
            return meta_error(100, "Invalid parameter", "components is required.")
        bodies = [c for c in components if isinstance(c, dict) and c.get("type") == "BODY"]
        if len(bodies) != 1 or not str(bodies[0].get("text") or "").strip():
            return meta_error(100, "Invalid parameter", "A template needs one body.")
        for component in components:
            kind = component.get("type")
            text = str(component.get("text") or "")
            example = component.get("example") or {}
            if kind == "BODY":
                found = self._text_problem(text, example, "body_text", named)
                if found is not None:
                    return found
            elif kind == "HEADER" and component.get("format") == "TEXT":
                if len(text) > 60:
                    return meta_error(
                        100,
                        "Character limit exceeded",
                        "The header can have at most 60 characters.",
                        2388040,
                    )
                found = self._examples_problem(text, example, "header_text", named)
                if found is not None:
                    return found
            elif kind == "HEADER":
                handles = example.get("header_handle") or []
                if not handles or handles[0] not in self.handles:
                    return meta_error(
                        100,
                        "Message header format is incorrect",
                        "A media header needs a sample file uploaded with the Resumable"
                        " Upload API (header_handle).",
                        2388047,
                    )
            elif kind == "FOOTER" and (len(text) > 60 or "{{" in text):
                return meta_error(
                    100,
                    "Message footer format is incorrect",
                    "The footer can have at most 60 characters and no variables.",
                    2388073,
                )
        return None

    def _text_problem(
        self, text: str, example: Mapping[str, Any], kind: str, named: bool
    ) -> tuple[int, dict[str, Any]] | None:
        if len(text) > 1024:
            return meta_error(
                100,
                "Character limit exceeded",
                "The body can have at most 1024 characters.",
                2388040,
            )
        keys = _VARIABLE.findall(text)
        edge = text.strip(" \n.,;:!?")
        if keys and (edge.startswith("{{") or edge.endswith("}}")):
            return meta_error(
                100,
                "Leading or trailing parameters not allowed",
                "Variables can't be at the start or end of the template.",
                2388299,
            )
        words = len(re.findall(r"\w+", _VARIABLE.sub(" ", text)))
        if keys and words < 2 * len(keys) + 1:
            return meta_error(
                100,
                "Parameters words ratio exceeds limit",
                "This template has too many variables for its length. Reduce the number of"
                " variables or increase the message length.",
                2388293,
            )
        return self._examples_problem(text, example, kind, named)

    @staticmethod
    def _examples_problem(
        text: str, example: Mapping[str, Any], kind: str, named: bool
    ) -> tuple[int, dict[str, Any]] | None:
        keys = list(dict.fromkeys(_VARIABLE.findall(text)))
        if not keys:
            return None
        if named:
            bad = [k for k in keys if not re.fullmatch(r"[a-z_][a-z0-9_]*", k)]
            if bad:
                return meta_error(
                    100,
                    "Invalid parameter name",
                    f"Parameter names can only contain lowercase letters, numbers and"
                    f" underscores: {bad[0]}",
                )
            pairs = example.get(f"{kind}_named_params") or []
            given = {p.get("param_name"): p.get("example") for p in pairs if isinstance(p, dict)}
            missing = [k for k in keys if not given.get(k)]
        else:
            values = example.get(kind) or []
            first = values[0] if values and isinstance(values[0], list) else values
            missing = keys[len(first) :]
        if missing:
            return meta_error(
                100,
                "Missing sample values",
                f"Add a sample for each variable: {missing[0]} has none.",
            )
        return None

    # -- the Resumable Upload API ---------------------------------------------------------

    def _open_upload(self, path: str) -> tuple[int, dict[str, Any]]:
        query = parse_qs(urlsplit(path).query)
        if not query.get("file_length") or not query.get("file_type"):
            return meta_error(100, "Invalid parameter", "file_length and file_type are required.")
        session = f"upload:{uuid.uuid4().hex}"
        self.uploads[session] = b""
        return 200, {"id": session}

    def _upload(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        match = UPLOAD_SESSION_PATH.fullmatch(path)
        assert match is not None
        lowered = {k.lower(): v for k, v in headers.items()}
        if not lowered.get("authorization", "").startswith("OAuth "):
            return meta_error(190, "Invalid OAuth access token", "Use OAuth <token>.", status=401)
        if match["session"] not in self.uploads or lowered.get("file_offset") != "0":
            return meta_error(100, "Invalid parameter", "Unknown upload session or offset.")
        self.uploads[match["session"]] = raw
        handle = f"4::{uuid.uuid4().hex}"
        self.handles.add(handle)
        return 200, {"h": handle}
