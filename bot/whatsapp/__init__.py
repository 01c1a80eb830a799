"""WhatsApp Cloud API: the webhook's signature and events in; payloads, the Graph client and its
errors out."""
