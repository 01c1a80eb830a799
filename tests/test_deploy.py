"""The deployment files agree with each other and with the configuration the app reads."""

from __future__ import annotations

import json
from pathlib import Path

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
