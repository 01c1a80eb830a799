"""The OpenAPI 3.1 document of /api/v1/, served at /api/v1/openapi.json. Written by hand beside
the routes; tests/test_api.py checks that both name the same routes and that the answers the
tests get fit these schemas."""

from __future__ import annotations

from typing import Any

from bot.api.errors import Code
from bot.api.scopes import Scope

VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        401: "No key, an unknown key or a revoked one (`unauthorized`).",
        403: "The key lacks the scope (`forbidden`).",
        404: "No such contact or message (`not_found`).",
        409: "The Idempotency-Key was used with another body (`idempotency_conflict`).",
        422: "The request cannot be done; `code` says why.",
        429: "Too many requests with this key (`rate_limited`); see Retry-After.",
    }
    out: dict[str, Any] = {}
    for status in (401, 403, 429, *statuses):
        out[str(status)] = _json(_ref("Error"), words[status])
        if status == 429:
            out["429"]["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
    return out


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": "integer", "minimum": 1}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": _ID}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": [str(c) for c in Code]},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "SendRequest": {
        "type": "object",
        "description": "Either `to` or `contact_id`, and either `text` or `template`.",
        "properties": {
            "to": {"type": "string", "examples": ["+49 151 12345678"]},
            "contact_id": _ID,
            "text": {
                "type": "string",
                "description": "Only within 24 hours after the customer last wrote.",
            },
            "template": {
                "type": "object",
                "required": ["name", "language"],
                "properties": {
                    "name": {"type": "string"},
                    "language": {"type": "string", "examples": ["de"]},
                    "params": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "SendAccepted": {
        "type": "object",
        "required": ["id", "status", "contact_id"],
        "properties": {"id": _ID, "status": {"type": "string"}, "contact_id": _ID},
    },
    "Message": {
        "type": "object",
        "required": ["id", "contact_id", "direction", "type", "status", "created_at"],
        "properties": {
            "id": _ID,
            "contact_id": _ID,
            "direction": {"type": "string", "enum": ["in", "out"]},
            "type": {"type": "string"},
            "text": {"type": ["string", "null"]},
            "status": {
                "type": "string",
                "description": "out: queued, sending, sent, delivered, read or failed; "
                "in: received or revoked",
            },
            "created_at": {"type": "string", "format": "date-time"},
            "sent_at": _NULLABLE_TIME,
            "delivered_at": _NULLABLE_TIME,
            "read_at": _NULLABLE_TIME,
            "failed_at": _NULLABLE_TIME,
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "code": {"type": ["integer", "null"]},
                            "reason": {"type": ["string", "null"]},
                        },
                    },
                ]
            },
        },
    },
    "Contact": {
        "type": "object",
        "required": ["id", "wa_id", "name", "labels", "opted_in"],
        "properties": {
            "id": _ID,
            "wa_id": {"type": ["string", "null"], "examples": ["4915112345678"]},
            "number": {"type": ["string", "null"], "examples": ["+49 151 12345678"]},
            "name": {"type": ["string", "null"]},
            "labels": {"type": "array", "items": {"type": "string"}},
            "opted_in": {"type": "boolean", "description": "gets broadcasts"},
            "last_inbound_at": _NULLABLE_TIME,
        },
    },
    "ContactPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "description": "empty: the customer's WhatsApp name"},
            "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "opted_in": {"type": "boolean"},
        },
    },
    "ContactList": {
        "type": "object",
        "required": ["contacts"],
        "properties": {"contacts": {"type": "array", "items": _ref("Contact")}},
    },
    "Conversation": {
        "type": "object",
        "required": ["messages", "next_before"],
        "properties": {
            "messages": {"type": "array", "items": _ref("Message")},
            "next_before": {
                "type": ["integer", "null"],
                "description": "pass as `before` for older messages; null: no more",
            },
        },
    },
}


def _secured(scope: Scope, operation: dict[str, Any]) -> dict[str, Any]:
    return {**operation, "security": [{"apiKey": []}], "x-scope": str(scope)}


def document() -> dict[str, Any]:
    contact_id = _path_id("contact_id", "the contact's id")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tresen API for shop systems",
            "version": VERSION,
            "description": "Send WhatsApp messages and keep contacts in step from a shop's "
            "own systems. API keys are made by an owner under /admin/api-keys; each has "
            "scopes: send, contacts, messages. Errors: "
            '`{"error": {"code": "...", "message": "..."}}`.',
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/messages": {
                "post": _secured(
                    Scope.SEND,
                    {
                        "operationId": "sendMessage",
                        "summary": "Send a text (within the 24-hour window) or a template; "
                        "a new number becomes a contact",
                        "parameters": [
                            {
                                "name": "Idempotency-Key",
                                "in": "header",
                                "required": False,
                                "description": "the same key and body within 24 hours give "
                                "the first answer again and send nothing more",
                                "schema": {"type": "string", "maxLength": 255},
                            }
                        ],
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": _ref("SendRequest")}},
                        },
                        "responses": {
                            "202": _json(_ref("SendAccepted"), "Queued for sending."),
                            **_errors(404, 409, 422),
                        },
                    },
                )
            },
            "/messages/{message_id}": {
                "get": _secured(
                    Scope.MESSAGES,
                    {
                        "operationId": "getMessage",
                        "summary": "A message's status, times and error",
                        "parameters": [_path_id("message_id", "the message's id")],
                        "responses": {
                            "200": _json(_ref("Message"), "The message."),
                            **_errors(404),
                        },
                    },
                )
            },
            "/contacts": {
                "get": _secured(
                    Scope.CONTACTS,
                    {
                        "operationId": "findContacts",
                        "summary": "Look up a contact by phone number",
                        "parameters": [
                            {
                                "name": "wa_id",
                                "in": "query",
                                "required": True,
                                "description": "the number, as +49…, 0049… or digits",
                                "schema": {"type": "string"},
                            }
                        ],
                        "responses": {
                            "200": _json(_ref("ContactList"), "None or one contact."),
                            **_errors(422),
                        },
                    },
                )
            },
            "/contacts/{contact_id}": {
                "get": _secured(
                    Scope.CONTACTS,
                    {
                        "operationId": "getContact",
                        "summary": "A contact",
                        "parameters": [contact_id],
                        "responses": {
                            "200": _json(_ref("Contact"), "The contact."),
                            **_errors(404),
                        },
                    },
                ),
                "patch": _secured(
                    Scope.CONTACTS,
                    {
                        "operationId": "updateContact",
                        "summary": "Change name, labels or opt-in (kept in the consent record)",
                        "parameters": [contact_id],
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": _ref("ContactPatch")}},
                        },
                        "responses": {
                            "200": _json(_ref("Contact"), "The contact as changed."),
                            **_errors(404, 422),
                        },
                    },
                ),
            },
            "/contacts/{contact_id}/messages": {
                "get": _secured(
                    Scope.MESSAGES,
                    {
                        "operationId": "getConversation",
                        "summary": "The contact's messages, newest first",
                        "parameters": [
                            contact_id,
                            {
                                "name": "before",
                                "in": "query",
                                "required": False,
                                "description": "only messages older than this message id",
                                "schema": _ID,
                            },
                            {
                                "name": "limit",
                                "in": "query",
                                "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                            },
                        ],
                        "responses": {
                            "200": _json(_ref("Conversation"), "A page of the conversation."),
                            **_errors(404, 422),
                        },
                    },
                )
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document (no key needed)",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document."}},
                }
            },
        },
    }
