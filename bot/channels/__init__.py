"""Channels: what the dispatcher sends through, the errors a send can end in, and console mode.

Each messaging service (WhatsApp in `bot.whatsapp`) supplies a `transport.Transport`; the
dispatcher knows only that interface and `errors`.
"""
