"""Outbound side: Graph API client, error classes and backoff for the WhatsApp Cloud API."""
