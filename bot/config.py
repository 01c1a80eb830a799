"""The process configuration: one typed, immutable object read once from the environment."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from bot import private_files
from bot.media.s3url import S3UrlError, parse_s3_url
from bot.webhooks_out.guard import NOTHING_ALLOWED, Allowed, parse_allowed

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_API_VERSION = "v24.0"


class ConfigError(SystemExit):
    """A missing or contradictory setting; str() is one line naming the variable and the fix.

    A SystemExit so that every way of starting (python app.py, flask commands, gunicorn)
    stops with just this line on stderr instead of a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"tresen: configuration error: {message}")
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Config:
    database_url: str
    whatsapp_token: str | None
    phone_number_id: str | None
    app_secret: str | None
    verify_token: str | None
    graph_api_url: str
    graph_api_version: str
    secret_key: str
    port: int
    send_rate: float
    instance_path: Path
    # MEDIA_STORE: a folder (default `instance/media`) or an S3-compatible URL (bot.media.store)
    media_store: str = ""
    # LIVE_STREAMS: event streams (the admin's push channel) one web process keeps open at
    # once; None: half its request threads (bot.admin.live)
    live_streams: int | None = None
    # WHATSAPP_BUSINESS_ACCOUNT_ID: the account whose message templates are synced and
    # submitted; None: templates are not synced (bot.message_templates.sync)
    business_account_id: str | None = None
    # WHATSAPP_APP_ID: the Meta app's id, needed only to upload a media header's sample file
    # for a new template (Meta's Resumable Upload API lives on the app)
    app_id: str | None = None
    # API_RATE: requests per second one API key may make to /api/v1/, in each web process
    # (bot.api.ratelimit); a burst of twice as many is let through after a quiet moment
    api_rate: float = 10.0
    # WEBHOOKS_ALLOW_PRIVATE: networks and host names outgoing webhooks may reach although
    # they are not public (bot.webhooks_out.guard); none by default
    webhooks_allow_private: Allowed = NOTHING_ALLOWED

    @property
    def console_mode(self) -> bool:
        """No token: replies are logged and stored, nothing is sent to Meta."""
        return self.whatsapp_token is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def read_environ(cwd: Path | None = None) -> dict[str, str]:
    """The process environment over the values of a `.env` file in the working directory."""
    dotenv = dotenv_values((cwd or Path.cwd()) / ".env")
    merged = {k: v for k, v in dotenv.items() if v is not None}
    merged.update(os.environ)
    return merged


def load(environ: Mapping[str, str], instance_path: Path) -> Config:
    """Build the configuration, or raise ConfigError naming the first bad variable."""

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    token = get("WHATSAPP_TOKEN")
    phone_number_id = get("WHATSAPP_PHONE_NUMBER_ID")
    app_secret = get("WHATSAPP_APP_SECRET")
    verify_token = get("WHATSAPP_VERIFY_TOKEN")
    if token is not None:
        for name, value in (
            ("WHATSAPP_PHONE_NUMBER_ID", phone_number_id),
            ("WHATSAPP_APP_SECRET", app_secret),
            ("WHATSAPP_VERIFY_TOKEN", verify_token),
        ):
            if value is None:
                raise ConfigError(f"{name} is required when WHATSAPP_TOKEN is set")
    if phone_number_id is not None and not phone_number_id.isdigit():
        raise ConfigError(
            f"WHATSAPP_PHONE_NUMBER_ID must be the numeric phone number id, got {phone_number_id!r}"
        )

    graph_api_url = (get("GRAPH_API_URL") or DEFAULT_GRAPH_API_URL).rstrip("/")
    if not graph_api_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"GRAPH_API_URL must start with http:// or https://, got {graph_api_url!r}"
        )
    graph_api_version = get("GRAPH_API_VERSION") or DEFAULT_GRAPH_API_VERSION
    if not (graph_api_version.startswith("v") and _is_version(graph_api_version[1:])):
        raise ConfigError(f"GRAPH_API_VERSION must look like v24.0, got {graph_api_version!r}")

    business_account_id = _numeric_id("WHATSAPP_BUSINESS_ACCOUNT_ID", get)
    app_id = _numeric_id("WHATSAPP_APP_ID", get)

    port = _port(get("PORT"))
    send_rate = _positive_rate("SEND_RATE", get("SEND_RATE"), 80.0, "messages")
    database_url = _database_url(get("DATABASE_URL"), instance_path)

    secret_key = get("SECRET_KEY")
    if secret_key is None:
        if token is not None:
            raise ConfigError("SECRET_KEY is required when WHATSAPP_TOKEN is set")
        secret_key = _kept_secret_key(instance_path)

    return Config(
        database_url=database_url,
        whatsapp_token=token,
        phone_number_id=phone_number_id,
        app_secret=app_secret,
        verify_token=verify_token,
        graph_api_url=graph_api_url,
        graph_api_version=graph_api_version,
        secret_key=secret_key,
        port=port,
        send_rate=send_rate,
        instance_path=instance_path,
        media_store=_media_store(get("MEDIA_STORE"), instance_path),
        live_streams=_live_streams(get("LIVE_STREAMS")),
        business_account_id=business_account_id,
        app_id=app_id,
        api_rate=_positive_rate("API_RATE", get("API_RATE"), 10.0, "requests"),
        webhooks_allow_private=_allowed(get("WEBHOOKS_ALLOW_PRIVATE")),
    )


def _numeric_id(name: str, get: Callable[[str], str | None]) -> str | None:
    value = get(name)
    if value is not None and not value.isdigit():
        raise ConfigError(
            f"{name} must be the numeric id from Meta's WhatsApp Manager, got {value!r}"
        )
    return value


def _is_version(text: str) -> bool:
    major, _, minor = text.partition(".")
    return major.isdigit() and (minor == "" or minor.isdigit())


def _port(value: str | None) -> int:
    if value is None:
        return 5000
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"PORT must be a whole number from 1 to 65535, got {value!r}")
    return int(value)


def _positive_rate(name: str, value: str | None, default: float, unit: str) -> float:
    """A rate from the environment: a positive number per second, at most 100,000."""
    if value is None:
        return default
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 100_000 or rate != rate:
        raise ConfigError(f"{name} must be a positive number of {unit} per second, got {value!r}")
    return rate


def _allowed(value: str | None) -> Allowed:
    try:
        return parse_allowed(value)
    except ValueError as exc:
        raise ConfigError(
            f"WEBHOOKS_ALLOW_PRIVATE must be a comma list of networks and host names: {exc}"
        ) from exc


def _live_streams(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) > 1000:
        raise ConfigError(
            f"LIVE_STREAMS must be a whole number from 0 (pages only poll) to 1000, got {value!r}"
        )
    return int(value)


def _database_url(value: str | None, instance_path: Path) -> str:
    if value is None:
        try:
            private_files.make_folder(instance_path)
        except OSError as exc:
            raise ConfigError(
                f"DATABASE_URL is not set and {instance_path} cannot be made: {exc}"
            ) from exc
        return f"sqlite:///{instance_path / 'tresen.db'}"
    # Heroku still hands out the old scheme; SQLAlchemy 2 no longer accepts it.
    if value.startswith("postgres://"):
        value = "postgresql://" + value[len("postgres://") :]
    if value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value[len("postgresql://") :]
    if not value.startswith(("sqlite:", "postgresql+psycopg:")):
        raise ConfigError(
            "DATABASE_URL must be a postgres:// or postgresql:// URL or a sqlite:/// path, "
            f"got one starting {value.split(':', 1)[0]!r}"
        )
    return value


def _media_store(value: str | None, instance_path: Path) -> str:
    if value is None:
        return str(instance_path / "media")
    if value.startswith("s3://"):
        try:
            parse_s3_url(value)  # checked whole now, not at the first picture
        except S3UrlError as exc:
            raise ConfigError(f"MEDIA_STORE {exc}") from None
        return value
    if "://" in value:
        raise ConfigError(
            "MEDIA_STORE must be a folder path or an s3://KEY:SECRET@host:port/bucket URL, "
            f"got one starting {value.split(':', 1)[0]!r}"
        )
    return value


def _kept_secret_key(instance_path: Path) -> str:
    """Console mode only: a random key kept in instance/ so logins survive a restart."""
    path = instance_path / "secret_key"
    try:
        private_files.make_folder(instance_path)
        if not private_files.create_file(path, secrets.token_hex(32).encode()):
            private_files.tighten(path)  # kept by an older version, readable by all
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"SECRET_KEY is not set and {path} cannot be written: {exc}") from exc
