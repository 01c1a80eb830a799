"""The configuration: defaults, Heroku's URL form, and one clear line for each bad variable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load
from bot.media.s3url import S3Location, parse_s3_url
from tests.processes import run

FULL = {
    "WHATSAPP_TOKEN": "EAAG-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_APP_SECRET": "app-secret",
    "WHATSAPP_VERIFY_TOKEN": "verify-me",
    "SECRET_KEY": "k" * 32,
}


def test_defaults_are_console_mode_on_sqlite(tmp_path: Path) -> None:
    config = load({}, tmp_path)
    assert config.console_mode
    assert config.database_url == f"sqlite:///{tmp_path / 'tresen.db'}"
    assert config.port == 5000
    assert config.send_rate == 80
    assert config.graph_api_url == "https://graph.facebook.com"
    assert config.graph_api_version.startswith("v")


def test_console_mode_keeps_a_generated_secret_key(tmp_path: Path) -> None:
    first = load({}, tmp_path).secret_key
    assert len(first) >= 32
    assert load({}, tmp_path).secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/shop", "postgresql+psycopg://u:p@db:5432/shop"),
        ("postgresql://u@db/shop", "postgresql+psycopg://u@db/shop"),
        ("postgresql+psycopg://u@db/shop", "postgresql+psycopg://u@db/shop"),
        ("sqlite:////var/lib/tresen.db", "sqlite:////var/lib/tresen.db"),
    ],
)
def test_database_url_forms(tmp_path: Path, url: str, expected: str) -> None:
    assert load({"DATABASE_URL": url}, tmp_path).database_url == expected


def test_full_configuration_is_live_mode(tmp_path: Path) -> None:
    config = load(FULL, tmp_path)
    assert not config.console_mode
    assert config.phone_number_id == "106540352242922"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**FULL, "WHATSAPP_PHONE_NUMBER_ID": ""}, "WHATSAPP_PHONE_NUMBER_ID"),
        ({**FULL, "WHATSAPP_APP_SECRET": ""}, "WHATSAPP_APP_SECRET"),
        ({**FULL, "WHATSAPP_VERIFY_TOKEN": ""}, "WHATSAPP_VERIFY_TOKEN"),
        ({**FULL, "SECRET_KEY": ""}, "SECRET_KEY"),
        ({**FULL, "WHATSAPP_PHONE_NUMBER_ID": "my-phone"}, "WHATSAPP_PHONE_NUMBER_ID"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"SEND_RATE": "0"}, "SEND_RATE"),
        ({"SEND_RATE": "fast"}, "SEND_RATE"),
        ({"SEND_RATE": "nan"}, "SEND_RATE"),
        ({"API_RATE": "0"}, "API_RATE"),
        ({"API_RATE": "many"}, "API_RATE"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"GRAPH_API_URL": "graph.facebook.com"}, "GRAPH_API_URL"),
        ({"GRAPH_API_VERSION": "23"}, "GRAPH_API_VERSION"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(env, tmp_path)
    message = str(caught.value)
    assert message.startswith(named)
    assert "\n" not in message


@pytest.mark.parametrize(
    "command", [["python", "app.py"], ["flask", "--app", "app", "db", "upgrade"]]
)
def test_a_missing_variable_stops_the_start_with_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        "WHATSAPP_TOKEN": "EAAG-token",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_VERIFY_TOKEN": "verify-me",
        "SECRET_KEY": "k" * 32,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    if command[0] == "python":
        command = [sys.executable, *command[1:]]
    done = run(command, env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "tresen: configuration error: WHATSAPP_APP_SECRET is required when WHATSAPP_TOKEN is set"
    ]


def test_media_store_defaults_to_a_folder_in_instance(tmp_path: Path) -> None:
    assert load({}, tmp_path).media_store == str(tmp_path / "media")
    assert load({"MEDIA_STORE": "/srv/media"}, tmp_path).media_store == "/srv/media"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "s3://AKIA:se%2Fcr%2Bet@s3.example.eu/shop-media",
            S3Location("s3.example.eu", "AKIA", "se/cr+et", "shop-media"),
        ),
        (
            "s3://minio:minio123@127.0.0.1:9000/media?secure=false",
            S3Location("127.0.0.1:9000", "minio", "minio123", "media", secure=False),
        ),
        (
            "s3://k:s@fsn1.your-objectstorage.com/shared.bucket/tresen/media/"
            "?region=eu-central&secure=true",
            S3Location(
                "fsn1.your-objectstorage.com",
                "k",
                "s",
                "shared.bucket",
                prefix="tresen/media/",
                region="eu-central",
            ),
        ),
        ("s3://k:s@[::1]:9000/media", S3Location("[::1]:9000", "k", "s", "media")),
    ],
)
def test_media_store_s3_urls(tmp_path: Path, url: str, expected: S3Location) -> None:
    assert load({"MEDIA_STORE": url}, tmp_path).media_store == url
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "s3://host:9000/media",  # no credentials
        "s3://KEY@host:9000/media",
        "s3://:t0ps3cr3t@host:9000/media",
        "s3://KEY:@host:9000/media",
        "s3://KEY:t0ps3cr3t@host:9000",  # no bucket
        "s3://KEY:t0ps3cr3t@host:9000/",
        "s3://KEY:t0ps3cr3t@/media",  # no host
        "s3://KEY:t0ps3cr3t@host:90000/media",  # bad ports
        "s3://KEY:t0ps3cr3t@host:http/media",
        "s3://KEY:t0ps3cr3t@host:/media",
        "s3://KEY:t0ps3cr3t@host:0/media",
        "s3://KEY:t0ps3cr3t@host/Media_Files",  # not a bucket name
        "s3://KEY:t0ps3cr3t@host/media/a b",  # not a prefix
        "s3://KEY:t0ps3cr3t@host/media?secure=nah",
        "s3://KEY:t0ps3cr3t@host/media?region=Frankfurt am Main",
        "s3://KEY:t0ps3cr3t@host/media?ssl=false",  # unknown query keys
        "s3://KEY:t0ps3cr3t@host/media?secure=false&secure=true",
        "s3://KEY:t0p?s3cr3t@host/media",  # an unencoded ? in the secret
        "s3://KEY:t0p#s3cr3t@host/media",
        "s3://KEY:t0ps3cr3t@[::1/media",
        "http://KEY:t0ps3cr3t@host/media",
    ],
)
def test_bad_media_store_urls_name_the_variable_not_the_secret(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"MEDIA_STORE": url}, tmp_path)
    message = str(caught.value)
    assert message.startswith("MEDIA_STORE ")
    assert "\n" not in message
    assert "s3cr3t" not in message and "t0p" not in message


def test_a_bad_media_store_stops_the_start_with_one_line(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "MEDIA_STORE": "s3://KEY:topsecret@objects.example.eu:9000?secure=false",
    }
    done = run(["flask", "--app", "app", "db", "upgrade"], env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "tresen: configuration error: MEDIA_STORE needs a bucket: s3://KEY:SECRET@host:port/bucket"
    ]
