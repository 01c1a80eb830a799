"""Outgoing webhooks: the shop's own systems told of events (a message received, a message's
status, a contact opting in or out) by signed POSTs to URLs the owner registered.

events: the event kinds, the body and its signature (pure). guard: which addresses may be
sent to (pure, but for the name lookup). store: endpoints, and deliveries queued in the
transaction of the event that caused them. deliverer: the loop that claims and sends them.
"""
