"""The deployment files agree with each other and with the configuration the app reads."""

from __future__ import annotations

import gc
import json
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_procfile_has_release_web_and_worker() -> None:
    assert procfile() == {
        "release": "flask --app app db upgrade",
        "web": "gunicorn --config gunicorn.conf.py app:app",
        "worker": "flask --app app worker",
    }


def test_app_json_describes_the_heroku_app() -> None:
    manifest = json.loads((ROOT / "app.json").read_text())
    assert {"plan": "heroku-postgresql"} in manifest["addons"]
    assert set(manifest["formation"]) == set(procfile()) - {"release"}
    env = manifest["env"]
    for name in ("WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_APP_SECRET",
                 "WHATSAPP_VERIFY_TOKEN", "SECRET_KEY", "SEND_RATE"):  # fmt: skip
        assert env[name]["description"]
    assert env["SECRET_KEY"]["generator"] == "secret"


def test_python_version_matches_the_project() -> None:
    assert (ROOT / ".python-version").read_text().strip() == "3.11"


def gunicorn_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("WEB_CONCURRENCY", "WEB_THREADS", "WEB_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_processes_take_their_share_of_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = gunicorn_settings(monkeypatch)
    assert (settings["workers"], settings["threads"], settings["worker_class"]) == (2, 4, "gthread")
    assert settings["worker_connections"] == 16
    assert gunicorn_settings(monkeypatch, WEB_THREADS="8")["worker_connections"] == 32
    assert gunicorn_settings(monkeypatch, WEB_CONNECTIONS="100")["worker_connections"] == 100


def test_a_gunicorn_process_ready_to_serve_has_its_start_up_frozen(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gunicorn_settings(monkeypatch)
    worker = SimpleNamespace(wsgi=app, cfg=SimpleNamespace(threads=4))
    gc.unfreeze()
    try:
        settings["post_worker_init"](worker)
        assert gc.get_freeze_count() > 10_000  # the modules and the app, not a handful
    finally:
        gc.unfreeze()
