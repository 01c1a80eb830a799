"""`flask --app app media check`: where media go, and whether the store works."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner

from bot.db import get_db
from bot.media.store import get_media_store
from tests.conftest import build_app
from tests.processes import free_port


def test_check_on_the_default_folder(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["media", "check"])
    assert result.exit_code == 0, result.output
    folder = Path(app.instance_path) / "media"
    assert f"Media go to the folder {folder} (readable by its owner only)." in result.output
    assert "it works" in result.output
    assert list(get_media_store(app).keys()) == []  # the test file is gone again


def test_check_on_an_s3_store(s3_app: Flask, s3_server: str) -> None:
    result = s3_app.test_cli_runner().invoke(args=["media", "check"])
    assert result.exit_code == 0, result.output
    assert f"S3-compatible store at http://{s3_server}/tresen-" in result.output
    assert "it works" in result.output
    assert "s3cret" not in result.output
    assert list(get_media_store(s3_app).keys()) == []


def test_check_says_when_the_store_does_not_answer(database_url: str, tmp_path: Path) -> None:
    url = f"s3://key:s3cret@127.0.0.1:{free_port()}/media?secure=false"
    app = build_app(database_url, tmp_path, MEDIA_STORE=url)
    try:
        result = app.test_cli_runner().invoke(args=["media", "check"])
    finally:
        get_db(app).dispose()
    assert result.exit_code == 1
    assert "Error: the media store does not work: " in result.output
    assert "s3cret" not in result.output
