"""Broadcasts: messages to an audience, once or by cron. `content` is what is sent, `runs` the
stored broadcasts and their occurrences' recipients, `cron` when they are due, `scheduler` and
`leader` the one scheduler of a deployment. The operations callers need are named here."""

from bot.broadcasts.content import BroadcastError, BroadcastKind, Content, Media, Renderer
from bot.broadcasts.runs import (
    BATCH_SIZE,
    OUTSIDE_WINDOW,
    STATUSES,
    BroadcastStatus,
    Funnel,
    Reach,
    RunStatus,
    cancel,
    content_of,
    create,
    funnel,
    funnels,
    reach,
    start_run,
    unfinished_runs,
    write_batch,
    write_run,
)

__all__ = [
    "BATCH_SIZE",
    "OUTSIDE_WINDOW",
    "STATUSES",
    "BroadcastError",
    "BroadcastKind",
    "BroadcastStatus",
    "Content",
    "Funnel",
    "Media",
    "Reach",
    "Renderer",
    "RunStatus",
    "cancel",
    "content_of",
    "create",
    "funnel",
    "funnels",
    "reach",
    "start_run",
    "unfinished_runs",
    "write_batch",
    "write_run",
]
