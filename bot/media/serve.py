"""How a stored file is handed to a browser: inline or as a download, under which name, with
which headers. Pure: the admin's media route (bot.admin.media_page) applies it.

A file a customer sent is untrusted. Only plain image, audio and video types (INLINE_TYPES)
may show inside our pages; anything else (an SVG, HTML, a PDF) is sent as a download, and
every file answer carries a sandboxing Content-Security-Policy and `nosniff`, so whatever the
bytes are, they never run as a page of our origin.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import quote

from bot.media.kinds import INLINE_TYPES, base_type

__all__ = [
    "DOWNLOAD_CSP",
    "INLINE_CSP",
    "content_disposition",
    "download_name",
    "file_policy",
    "is_inline",
    "response_type",
]

# The policy of a file's own answer, opened on its own in a tab: a sandboxed document that
# runs no script and loads nothing from anywhere; framing it is refused. A picture, a voice
# note or a video keeps our origin in its sandbox, as the browser's viewer loads the file
# again (with CORS) to play it; with no script allowed there is nothing that origin could do.
DOWNLOAD_CSP: Final = "sandbox; default-src 'none'; frame-ancestors 'none'"
INLINE_CSP: Final = (
    "sandbox allow-same-origin; default-src 'none'; img-src 'self'; media-src 'self'; "
    "style-src 'unsafe-inline'; frame-ancestors 'none'"
)

# Extensions for the names of files that came without one (photos, voice notes): our own
# table, as the system's MIME table differs between machines (audio/ogg is .oga on Debian).
EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/wav": ".wav",
    "audio/webm": ".weba",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "video/webm": ".webm",
    "video/ogg": ".ogv",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}

_TOKEN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CODECS = re.compile(r"^codecs=\"?[a-z0-9., ]+\"?$", re.IGNORECASE)
# RFC 5987 attr-char: what may stand unescaped in `filename*=UTF-8''…`.
_ATTR_CHARS: Final = "!#$&+-.^_`|~"
# What may stand in the plain `filename="…"`: no quote, backslash, control or separator.
_PLAIN_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()\[\]+,=@-]")
NAME_MAX: Final = 120


def is_inline(content_type: str | None) -> bool:
    """Whether a browser may show this type inside our pages (an image, audio or video)."""
    return base_type(content_type) in INLINE_TYPES


def response_type(content_type: str | None) -> str:
    """The Content-Type of the answer: the stored type, without anything a header must not
    carry. Only a `codecs` parameter is kept (audio/ogg; codecs=opus); a type that is not a
    well-formed `type/subtype` is sent as bytes of no particular type."""
    value = base_type(content_type)
    if not _TOKEN.match(value):
        return "application/octet-stream"
    for param in (content_type or "").split(";")[1:]:
        param = param.strip()
        if _CODECS.match(param):
            return f"{value}; {param}"
    return value


def _clean(name: str) -> str:
    """A customer's file name without folders, control characters or surrounding dots."""
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(" " if unicodedata.category(c).startswith(("C", "Z")) else c for c in name)
    name = " ".join(name.split()).strip(" .")
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: NAME_MAX - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:NAME_MAX].rstrip()
    return name


def file_policy(content_type: str | None) -> str:
    """The Content-Security-Policy of a file's answer (see INLINE_CSP and DOWNLOAD_CSP)."""
    return INLINE_CSP if is_inline(content_type) else DOWNLOAD_CSP


def download_name(filename: str | None, content_type: str | None, attachment_id: int) -> str:
    """The name a saved file gets: the customer's (cleaned), or `whatsapp-<id>.<ext>`."""
    name = _clean(filename or "")
    if name:
        return name
    return f"whatsapp-{attachment_id}{EXTENSIONS.get(base_type(content_type), '')}"


def content_disposition(name: str, *, inline: bool) -> str:
    """The Content-Disposition header: `inline` or `attachment`, an ASCII `filename` every
    browser reads, and the real name as RFC 5987's `filename*` when it is not plain ASCII."""
    kind = "inline" if inline else "attachment"
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = " ".join(_PLAIN_UNSAFE.sub("_", plain).split()).rstrip(" .")
    if not plain.strip("._ ") or plain.startswith("."):
        # Nothing of the name is ASCII ("Фото.jpg"): a word for it, with its extension.
        plain = "download" + (plain if plain.startswith(".") else "")
    header = f'{kind}; filename="{plain}"'
    if plain != name:
        header += f"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"
    return header
