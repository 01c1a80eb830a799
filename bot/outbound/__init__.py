"""Outbound side: the outbox, its dispatcher (sending through a channel), rate limit, backoff."""
