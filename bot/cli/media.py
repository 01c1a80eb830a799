"""`flask --app app media …`: where media files go, and whether that store works."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup

from bot import logs
from bot.media.store import LocalStore, MediaStore, StoreUnavailable, get_media_store

media_cli = AppGroup("media", help="Where customers' photos and documents are kept.")


def describe(store: MediaStore) -> str:
    """Where a store keeps its files, in words for an operator (no key, no secret)."""
    if isinstance(store, LocalStore):
        return f"the folder {store.folder} (readable by its owner only)"
    from bot.media.s3 import S3Store

    if isinstance(store, S3Store):
        location = store.location
        return f"the bucket {location.bucket!r} of the S3-compatible store at {location.describe()}"
    return repr(store)


@media_cli.command("check")
def check_command() -> None:
    """Write, read back and delete a test file in the configured MEDIA_STORE."""
    logs.for_command()
    try:
        store = get_media_store(current_app)
        click.echo(f"Media go to {describe(store)}.")
        # Random bytes: a key no real file can have, so deleting it deletes nothing else.
        data = b"tresen media check " + os.urandom(32)
        stored = store.put([data])
        with store.open(stored.sha256) as file:
            back = file.read()
        listed = store.exists(stored.sha256)
        store.delete(stored.sha256)
        gone = not store.exists(stored.sha256)
    except StoreUnavailable as exc:
        raise click.ClickException(f"the media store does not work: {exc}") from None
    if back != data or not listed or not gone:
        problems = [
            what
            for what, bad in (
                ("the bytes read back differ", back != data),
                ("the file was not found after writing it", not listed),
                ("the file is still there after deleting it", not gone),
            )
            if bad
        ]
        raise click.ClickException(f"the media store does not work: {'; '.join(problems)}")
    click.echo(f"Wrote, read back and deleted a test file of {len(data)} bytes: it works.")
