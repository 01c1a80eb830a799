"""The instance folder, the secret key and the SQLite database are their owner's only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot import create_app
from bot.config import ConfigError
from bot.db import get_db
from bot.private_files import create_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask-022", "umask-002", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The umask of a usual (or a careless) server account, restored afterwards."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def test_the_embedded_default_keeps_its_files_for_their_owner(tmp_path: Path, umask: int) -> None:
    instance = tmp_path / "instance"
    app = create_app({}, instance_path=instance)
    database = get_db(app)
    database.upgrade()
    with database.session() as session:  # a write, so that SQLite has its -wal and -shm files
        session.execute(text("CREATE TABLE scratch (x INTEGER)"))
    try:
        files = {p.name: mode(p) for p in instance.iterdir()}
        assert {"secret_key", "tresen.db", "tresen.db-wal", "tresen.db-shm"} <= set(files)
        assert mode(instance) == 0o700
        assert files == dict.fromkeys(files, 0o600)
    finally:
        database.dispose()


def test_a_database_file_elsewhere_is_made_for_its_owner(tmp_path: Path, umask: int) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'shop.db'}"
    app = create_app({"DATABASE_URL": url}, instance_path=tmp_path / "instance")
    get_db(app).upgrade()
    get_db(app).dispose()
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "shop.db") == 0o600


def test_files_an_older_version_left_readable_are_tightened_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    instance = tmp_path / "instance"
    first = create_app({}, instance_path=instance)
    get_db(first).upgrade()
    key = first.config["SECRET_KEY"]
    get_db(first).dispose()
    instance.chmod(0o755)
    for name in ("secret_key", "tresen.db"):
        (instance / name).chmod(0o644)
    (instance / "tresen.db-journal").write_bytes(b"")
    (instance / "tresen.db-journal").chmod(0o664)

    again = create_app({}, instance_path=instance)
    get_db(again).dispose()

    assert again.config["SECRET_KEY"] == key
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600
    assert mode(instance / "tresen.db") == 0o600
    assert mode(instance / "tresen.db-journal") == 0o600
    assert f"{instance / 'tresen.db'} was readable by other users (mode 0644)" in caplog.text
    assert f"{instance / 'secret_key'} was readable by other users (mode 0644)" in caplog.text


def test_of_two_processes_creating_the_key_at_once_one_wins_whole(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    assert create_file(path, b"first")
    assert not create_file(path, b"second")
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary left behind


def test_a_database_that_cannot_be_created_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    url = f"sqlite:///{tmp_path / 'a-file' / 'shop.db'}"
    with pytest.raises(ConfigError, match=r"the SQLite database .*shop\.db cannot be created"):
        create_app({"DATABASE_URL": url}, instance_path=tmp_path / "instance")
