"""WhatsApp's media kinds and the limits that go with them: pure data and checks.

Meta's "supported media types" table gives what the Cloud API accepts for sending: the types
and the largest size of each kind. What customers send us is limited separately: WhatsApp
itself delivers up to 100 MB, and a shop's server need not keep more.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "INLINE_TYPES",
    "RECEIVE_LIMITS",
    "SEND_TYPES",
    "Failure",
    "MediaKind",
    "SendLimit",
    "base_type",
    "kind_of",
    "send_problem",
]

KB: Final = 1024
MB: Final = 1024 * KB


class MediaKind(enum.StrEnum):
    """A media message's kind, as the Cloud API names it (the message's `type`)."""

    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"


class Failure(enum.StrEnum):
    """Why a customer's media was not kept; stored as its value (Attachment.failure)."""

    NOT_FOUND = "not_found"  # Meta no longer has it (404, or its media id expired)
    TOO_LARGE = "too_large"  # over RECEIVE_LIMITS: refused, nothing kept
    CHECKSUM = "checksum"  # the bytes never matched the sha256 WhatsApp gave
    UNREACHABLE = "unreachable"  # Meta did not answer for longer than we kept trying
    REFUSED = "refused"  # Meta refused the request (token, permission): see the details
    CONSOLE = "console"  # console mode without a Graph API to fetch from
    EXPIRED = "expired"  # kept, then deleted once older than retention.media_days


@dataclass(frozen=True)
class SendLimit:
    """What Meta accepts for one kind: content types and the largest file."""

    types: frozenset[str]
    max_bytes: int


# Meta's supported media types (Cloud API reference, "Supported media types"). OGG audio is
# accepted with the Opus codec only; an animated sticker may be 500 KB, a static one 100 KB.
SEND_TYPES: Final[dict[MediaKind, SendLimit]] = {
    MediaKind.IMAGE: SendLimit(frozenset({"image/jpeg", "image/png"}), 5 * MB),
    MediaKind.AUDIO: SendLimit(
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MB
    ),
    MediaKind.VIDEO: SendLimit(frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
    MediaKind.DOCUMENT: SendLimit(
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
    ),
    MediaKind.STICKER: SendLimit(frozenset({"image/webp"}), 500 * KB),
}

# The largest file of each kind we fetch from a customer's message; a larger one is refused
# and recorded, and the message is shown without it.
RECEIVE_LIMITS: Final[dict[MediaKind, int]] = {
    MediaKind.IMAGE: 16 * MB,
    MediaKind.AUDIO: 16 * MB,
    MediaKind.VIDEO: 100 * MB,
    MediaKind.DOCUMENT: 100 * MB,
    MediaKind.STICKER: 1 * MB,
}

# Content types a browser may show inside our pages. Anything else (an SVG, HTML, a PDF) is
# served only as a download, so a file a customer sent can never run in our origin.
INLINE_TYPES: Final = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/opus",
        "audio/wav",
        "audio/webm",
        "video/mp4",
        "video/3gpp",
        "video/webm",
        "video/ogg",
    }
)


def base_type(content_type: str | None) -> str:
    """The content type without parameters, lowercase: "audio/ogg; codecs=opus" -> "audio/ogg"."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def kind_of(content_type: str | None) -> MediaKind:
    """The kind a file of this type is sent as: images and video as themselves, audio as
    audio, WebP as a sticker, everything else as a document."""
    value = base_type(content_type)
    for kind in (MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO, MediaKind.STICKER):
        if value in SEND_TYPES[kind].types:
            return kind
    return MediaKind.DOCUMENT


def send_problem(kind: MediaKind, content_type: str | None, size: int) -> str | None:
    """Why Meta would refuse this file as `kind`, in English for logs and tests; None if fine.

    The admin shows its own translated words for the same two cases (type, size)."""
    limit = SEND_TYPES[kind]
    value = base_type(content_type)
    if value not in limit.types:
        return f"{value or 'unknown type'} cannot be sent as {kind}"
    if size > limit.max_bytes:
        return f"{kind} is {size} bytes, WhatsApp takes at most {limit.max_bytes}"
    return None
