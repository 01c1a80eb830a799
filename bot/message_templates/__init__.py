"""WhatsApp message templates: what they say and need (`model`, pure), the account's templates
kept in the database and synced from Meta, Meta's notices about them, submitting new ones, and
the check every edge runs before a template message is queued."""
