"""Submitting a new message template to Meta: ``POST /{version}/{waba-id}/message_templates``,
and the Resumable Upload API that turns a media header's sample file into the
`header_handle` the template's example needs (``POST /{version}/{app-id}/uploads``, then
``POST /{version}/{upload-session-id}`` with the bytes).

Errors: `GraphRefused` carries Meta's error answer (read it with
`bot.message_templates.submission.read_refusal`); `GraphUnreachable` means no answer came.
"""

from __future__ import annotations

from typing import Any

import requests

from bot.config import Config

__all__ = ["GraphRefused", "GraphUnreachable", "TemplateCreator"]

TIMEOUT = (3.05, 30.0)
UPLOAD_TIMEOUT = (3.05, 120.0)


class GraphRefused(Exception):
    """Meta answered with an error: its HTTP status and JSON body (None if not JSON)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"Graph API refused with HTTP {status}")
        self.status = status
        self.body = body


class GraphUnreachable(Exception):
    """No answer from Meta (connection refused, timeout)."""


class TemplateCreator:
    """The account's template edge and the app's uploads, for one configuration."""

    def __init__(self, config: Config, session: requests.Session | None = None) -> None:
        if not (config.whatsapp_token and config.business_account_id):
            raise ValueError("WHATSAPP_TOKEN and WHATSAPP_BUSINESS_ACCOUNT_ID are needed")
        self._base = f"{config.graph_api_url}/{config.graph_api_version}"
        self._token = config.whatsapp_token
        self._account = config.business_account_id
        self._app_id = config.app_id
        self._session = session or requests.Session()

    @property
    def can_upload(self) -> bool:
        return self._app_id is not None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Meta's answer to the new template (`id`, `status`, `category`)."""
        return self._post(
            f"{self._base}/{self._account}/message_templates",
            json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        )

    def upload_sample(self, data: bytes, content_type: str, filename: str) -> str:
        """The handle (`h`) of `data` uploaded through the Resumable Upload API."""
        if self._app_id is None:
            raise ValueError("WHATSAPP_APP_ID is needed to upload a sample file")
        session = self._post(
            f"{self._base}/{self._app_id}/uploads",
            params={
                "file_name": filename,
                "file_length": str(len(data)),
                "file_type": content_type,
            },
            headers={"Authorization": f"Bearer {self._token}"},
        )
        session_id = str(session.get("id") or "")
        if not session_id:
            raise GraphRefused(200, session)
        answer = self._post(
            f"{self._base}/{session_id}",
            data=data,
            # The upload step takes the token as "OAuth", not "Bearer" (Meta's documentation).
            headers={"Authorization": f"OAuth {self._token}", "file_offset": "0"},
            timeout=UPLOAD_TIMEOUT,
        )
        handle = str(answer.get("h") or "")
        if not handle:
            raise GraphRefused(200, answer)
        return handle

    def _post(
        self, url: str, *, timeout: tuple[float, float] = TIMEOUT, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = self._session.post(url, timeout=timeout, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise GraphUnreachable(type(exc).__name__) from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not 200 <= response.status_code < 300 or not isinstance(answer, dict):
            raise GraphRefused(response.status_code, answer)
        return answer
