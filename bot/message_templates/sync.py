"""The account's templates fetched from Meta and kept in the database.

`fetch_templates` reads every page of the WhatsApp Business Account's `message_templates`
edge (``GET {GRAPH_API_URL}/{version}/{WABA_ID}/message_templates``, Graph cursor paging);
`store_templates` upserts them by name and language (origin synced) and marks those Meta no
longer lists as deleted, keeping the row: broadcasts name a template by name and language.
`sync` is what the CLI, the admin's button and the scheduler's daily run call: it never
raises for Meta's or the network's failures, it returns a `SyncResult` saying why.
In console mode there is no account to ask: `sync` seeds the demo templates instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import requests
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.config import Config
from bot.db import Database
from bot.message_templates.demo import seed_demo_templates
from bot.message_templates.model import TemplateStatus, parse_template
from bot.models import MessageTemplate
from bot.whatsapp.errors import classify

__all__ = [
    "DailySync",
    "Listing",
    "SyncError",
    "SyncResult",
    "fetch_templates",
    "store_templates",
    "sync",
]

log = logging.getLogger("tresen.templates")

# What the list asks for of each template (WhatsAppMessageTemplate node fields).
FIELDS: Final = (
    "id,name,language,category,previous_category,status,quality_score,parameter_format,"
    "components,rejected_reason"
)
PAGE_SIZE: Final = 100
# A cursor that never ends (a misbehaving proxy) must not keep the scheduler busy forever:
# 100 pages of 100 are far more than the templates an account may have.
MAX_PAGES: Final = 100
# The admin's button waits for it: short enough to answer within a page load.
TIMEOUT: Final = (3.05, 10.0)


class SyncError(Exception):
    """The list could not be fetched; str() says why (Meta's message, or the network's)."""


@dataclass(frozen=True)
class Listing:
    templates: list[dict[str, Any]]
    pages: int


@dataclass(frozen=True)
class Stored:
    added: int = 0
    updated: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class SyncResult:
    """What a sync did, for the CLI, the admin and the log. `error` is set when it failed
    (nothing was changed then); `demo` when console mode seeded demo templates instead."""

    templates: int = 0
    pages: int = 0
    stored: Stored = field(default_factory=Stored)
    error: str | None = None
    demo: bool = False
    configured: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None and self.configured

    def summary(self) -> str:
        """One line in English (the CLI's output and the log's)."""
        if not self.configured:
            return "templates are not synced: WHATSAPP_BUSINESS_ACCOUNT_ID is not set"
        if self.error is not None:
            return f"template sync failed: {self.error}"
        if self.demo:
            return f"console mode: {self.templates} demo templates ({self.stored.added} added)"
        pages = "1 page" if self.pages == 1 else f"{self.pages} pages"
        return (
            f"synced {self.templates} templates ({pages}): {self.stored.added} new, "
            f"{self.stored.updated} updated, {self.stored.deleted} no longer listed"
        )


def fetch_templates(
    base_url: str,
    version: str,
    account_id: str,
    token: str,
    *,
    http: requests.Session | None = None,
    page_size: int | None = None,
) -> Listing:
    """Every template of the account, all pages; SyncError when any page fails.

    The next page is asked for with the `after` cursor on our own URL, not by following
    `paging.next` as given, so the token only ever goes to GRAPH_API_URL."""
    url = f"{base_url.rstrip('/')}/{version}/{account_id}/message_templates"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    session = http or requests.Session()
    templates: list[dict[str, Any]] = []
    page_size = page_size or PAGE_SIZE
    params: dict[str, str | int] = {"fields": FIELDS, "limit": page_size}
    pages = 0
    seen: set[str] = set()
    try:
        while True:
            pages += 1
            answer = _page(session, url, headers, params, token)
            data = answer.get("data")
            if not isinstance(data, list):
                raise SyncError("the answer has no list of templates (no `data`)")
            templates += [item for item in data if isinstance(item, dict)]
            after = _next_cursor(answer)
            if after is None:
                return Listing(templates, pages)
            if after in seen or pages >= MAX_PAGES:
                raise SyncError(f"the list does not end after {pages} pages")
            seen.add(after)
            params = {"fields": FIELDS, "limit": page_size, "after": after}
    finally:
        if http is None:
            session.close()


def _page(
    session: requests.Session,
    url: str,
    headers: Mapping[str, str],
    params: Mapping[str, str | int],
    token: str,
) -> dict[str, Any]:
    def scrub(text: str) -> str:
        return text.replace(token, "[token]")

    try:
        response = session.get(
            url, headers=dict(headers), params=dict(params), timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise SyncError(f"the Graph API cannot be reached: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        error = classify(response.status_code, response.content)
        code = f" (code {error.code})" if error.code is not None else ""
        details = f" {error.details}" if error.details else ""
        raise SyncError(scrub(f"HTTP {response.status_code}{code}: {error.message}{details}")[:300])
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise SyncError(f"HTTP {response.status_code}: the answer is not a JSON object")
    return answer


def _next_cursor(answer: Mapping[str, Any]) -> str | None:
    """Graph cursor paging: another page exists when `paging.next` is given; its cursor is
    `paging.cursors.after`."""
    paging = answer.get("paging")
    if not isinstance(paging, Mapping) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, Mapping) else None
    return str(after) if after else None


def _lower(value: object) -> str | None:
    return str(value).lower() if value else None


def _row_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """A listed template as column values, read through `parse_template` (so an unknown
    category or status reads as the model reads it)."""
    template = parse_template(item)
    components = item.get("components")
    reason = item.get("rejected_reason")
    return {
        "meta_id": str(item["id"]) if item.get("id") else None,
        "category": template.category.value,
        "status": template.status.value,
        "quality": template.quality.value if template.quality else None,
        "parameter_format": template.parameter_format.value,
        "components": list(components) if isinstance(components, list) else [],
        # Meta says "NONE" for a template that was not rejected.
        "reason": str(reason) if reason and str(reason).upper() != "NONE" else None,
        "previous_category": _lower(item.get("previous_category")),
    }


def store_templates(session: Session, listed: Iterable[Mapping[str, Any]], now: datetime) -> Stored:
    """Upsert the listed templates by name and language; every stored one Meta no longer
    lists (and not changed since `now`, e.g. submitted while the list was read) is marked
    deleted."""
    rows = {(row.name, row.language): row for row in session.scalars(select(MessageTemplate))}
    listed_keys: set[tuple[str, str]] = set()
    added = updated = deleted = 0
    for item in listed:
        name, language = str(item.get("name") or ""), str(item.get("language") or "")
        if not name or not language or (name, language) in listed_keys:
            continue
        listed_keys.add((name, language))
        values = _row_values(item)
        row = rows.get((name, language))
        if row is None:
            row = MessageTemplate(name=name, language=language, **values)
            row.origin = "synced"
            row.synced_at = row.updated_at = now
            session.add(row)
            added += 1
            continue
        if values["previous_category"] is None:
            values.pop("previous_category")  # learnt from a webhook; the list may not say
        if values["reason"] is None and values["status"] != TemplateStatus.APPROVED:
            values.pop("reason")  # why it was paused, from the webhook
        changed = row.origin != "synced" or any(
            getattr(row, column) != value for column, value in values.items()
        )
        for column, value in values.items():
            setattr(row, column, value)
        row.origin = "synced"
        row.synced_at = now
        if changed:
            row.updated_at = now
            updated += 1
    for name_language, row in rows.items():
        if name_language in listed_keys or row.status == TemplateStatus.DELETED:
            continue
        if row.updated_at is not None and row.updated_at > now:
            continue
        row.status = TemplateStatus.DELETED.value
        row.updated_at = now
        deleted += 1
    session.flush()
    return Stored(added, updated, deleted)


def sync(
    database: Database, config: Config, now: datetime, *, http: requests.Session | None = None
) -> SyncResult:
    """Fetch and store the account's templates (console mode: seed the demo ones). Never
    raises for Meta's answers or the network: the result says what went wrong, and it is
    logged."""
    if config.console_mode:
        with database.session() as session:
            added = seed_demo_templates(session, now)
            count = len(list(session.scalars(select(MessageTemplate.id))))
        if added:
            log.info("console mode: %d demo templates added", added)
        return SyncResult(templates=count, stored=Stored(added=added), demo=True)
    if config.business_account_id is None:
        return SyncResult(configured=False)
    assert config.whatsapp_token is not None  # not console mode
    try:
        listing = fetch_templates(
            config.graph_api_url,
            config.graph_api_version,
            config.business_account_id,
            config.whatsapp_token,
            http=http,
        )
    except SyncError as exc:
        result = SyncResult(error=str(exc))
        log.warning("%s", result.summary())
        return result
    try:
        with database.session() as session:
            stored = store_templates(session, listing.templates, now)
    except IntegrityError:
        # The admin's button and the daily run at once added the same new template; the
        # other one's rows stand.
        result = SyncResult(error="another fetch stored the templates at the same time")
        log.warning("%s", result.summary())
        return result
    result = SyncResult(templates=len(listing.templates), pages=listing.pages, stored=stored)
    log.info("%s", result.summary())
    return result


class DailySync:
    """The scheduler leader's template sync: at its first pass (so on every start) and then
    once a day; after a failure again an hour later, not at every tick."""

    EVERY: Final = timedelta(hours=24)
    RETRY: Final = timedelta(hours=1)

    def __init__(self, run: Callable[[datetime], SyncResult]) -> None:
        self.run = run
        self.next_at: datetime | None = None

    @staticmethod
    def wanted(config: Config) -> bool:
        """Whether there is anything to sync: an account id, or console mode's demo."""
        return config.console_mode or config.business_account_id is not None

    @classmethod
    def for_config(cls, database: Database, config: Config) -> DailySync | None:
        """None when there is nothing to sync (see `wanted`)."""
        if not cls.wanted(config):
            return None
        return cls(lambda now: sync(database, config, now))

    def __call__(self, now: datetime) -> SyncResult | None:
        if self.next_at is not None and now < self.next_at:
            return None
        try:
            result = self.run(now)
        except Exception:
            # A database error belongs to the scheduler's own handling; try again later.
            self.next_at = now + self.RETRY
            raise
        self.next_at = now + (self.EVERY if result.ok else self.RETRY)
        return result
