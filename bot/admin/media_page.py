"""`/admin/media/<id>`: a message's stored file, for logged-in users only (the admin blueprint's
guard), streamed from the media store, with the headers bot.media.serve chooses."""

from __future__ import annotations

from flask import abort, request, send_file
from sqlalchemy import select
from werkzeug.wrappers import Response

from bot.admin.blueprint import bp
from bot.db import get_db
from bot.media import serve
from bot.media.store import MissingFile, get_media_store
from bot.models import Attachment, AttachmentState, MediaFile


@bp.get("/media/<int:attachment_id>")
def media(attachment_id: int) -> Response:
    with get_db().session() as session:
        row = session.execute(
            select(Attachment.filename, MediaFile.sha256, MediaFile.size, MediaFile.content_type)
            .join(MediaFile, Attachment.file_id == MediaFile.id)
            .where(Attachment.id == attachment_id, Attachment.state == AttachmentState.STORED)
        ).first()
    if row is None:
        abort(404)
    filename, sha256, size, content_type = row
    try:
        stream = get_media_store().open(sha256)
    except MissingFile:
        abort(404)
    inline = serve.is_inline(content_type)
    # Streamed: send_file wraps the open file and reads it in blocks as the answer goes out.
    response = send_file(
        stream, mimetype="application/octet-stream", conditional=False, etag=False, max_age=None
    )
    # Set as a header, so Werkzeug adds no charset of its own guessing to a text type.
    response.headers["Content-Type"] = serve.response_type(content_type)
    response.content_length = size
    name = serve.download_name(filename, content_type, attachment_id)
    response.headers["Content-Disposition"] = serve.content_disposition(name, inline=inline)
    response.headers["Content-Security-Policy"] = serve.file_policy(content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Kept only by the owner's browser, and asked again each time (a 304 while unchanged), so
    # a file erased or a user logged out is not served from the cache.
    response.headers["Cache-Control"] = "private, no-cache"
    # The key is the content's hash: the ETag is known without reading a byte. Ranges let a
    # player seek in audio and video (a store that cannot seek skips the bytes before).
    response.set_etag(sha256)
    return response.make_conditional(request, accept_ranges=True, complete_length=size)
