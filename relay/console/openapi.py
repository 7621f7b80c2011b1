"""The OpenAPI 3.1 description of the console's JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

_REASON = {"type": "object", "properties": {"rule": {"type": "string"}, "kind": {"type": "string"},
                                             "match": {"type": "string"}, "action": {"type": "string"}}}
_HELD = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "pair_id": {"type": "integer"}, "program": {"type": "string"},
        "policy": {"type": "string"}, "state": {"type": "string", "enum": ["held", "released", "rejected"]},
        "subject": {"type": ["string", "null"]}, "held_at": {"type": "string", "format": "date-time"},
        "reasons": {"type": "array", "items": _REASON}, "release_requires": {"type": "integer"},
        "approvals": {"type": "array", "items": {"type": "string"}},
        "decided_at": {"type": ["string", "null"], "format": "date-time"},
        "decided_by": {"type": ["string", "null"]}, "reject_reason": {"type": ["string", "null"]},
        "severity": {"type": "string", "enum": ["urgent", "normal"],
                     "description": "urgent: a possible safeguarding concern, held for a person"},
        "automatic": {"type": "boolean", "description": "rejected by the policy, with nobody's review"},
        "escalated_by": {"type": ["string", "null"], "description": "the moderator who escalated it"},
    },
}
_PAIR = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "program": {"type": "string"}, "status": {"type": "string"},
        "mentor_handle": {"type": "string"}, "mentee_handle": {"type": "string"},
        "last_message_at": {"type": ["string", "null"], "format": "date-time"},
        "waiting_mentee_messages": {"type": "integer", "description": "mentee messages since the mentor last wrote"},
        "waiting_since": {"type": ["string", "null"], "format": "date-time"},
        "waiting_seconds": {"type": ["integer", "null"]},
        "nudges_sent": {"type": "integer"}, "held": {"type": "integer"},
    },
}
_OUTCOME = {"type": "object", "properties": {
    "id": {"type": "string"},
    "status": {"type": "string", "enum": ["released", "approved", "rejected", "already-released",
                                          "already-rejected"]},
    "approvals": {"type": "array", "items": {"type": "string"}}, "needed": {"type": "integer"}}}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_ERRORS = {"401": {"description": "no or unknown API token"},
           "404": {"description": "no such item in the moderator's programs"}}


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}, **_ERRORS}


DESCRIPTION: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mentor-relay review console API", "version": "1",
             "description": "Held mail and pairs of the programs the token's moderator reviews."},
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                 "description": "mentor-relay moderator token --username U"}}},
    "security": [{"token": []}],
    "paths": {
        "/api/held": {"get": {
            "summary": "Held messages, oldest first",
            "parameters": [{"name": "program", "in": "query", "schema": {"type": "string"}},
                           {"name": "state", "in": "query",
                            "schema": {"type": "string", "enum": ["held", "released", "rejected", "all"]}}],
            "responses": _ok({"type": "array", "items": _HELD}, "the hold queue")}},
        "/api/held/{id}": {"get": {
            "summary": "One held message: reasons, text, attachments, and the copy as it would be delivered",
            "parameters": _ID, "responses": _ok(_HELD, "the held message")}},
        "/api/held/{id}/release": {"post": {
            "summary": "Release (delivered once, however often it is called)", "parameters": _ID,
            "responses": _ok(_OUTCOME, "what happened")}},
        "/api/held/{id}/reject": {"post": {
            "summary": "Reject; the sender is told the reason", "parameters": _ID,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
            "responses": {**_ok(_OUTCOME, "what happened"), "400": {"description": "no reason given"}}}},
        "/api/pairs": {"get": {
            "summary": "Pairs with their health at a glance",
            "parameters": [{"name": "program", "in": "query", "schema": {"type": "string"}}],
            "responses": _ok({"type": "array", "items": _PAIR}, "pairs")}},
        "/api/pairs/{id}": {"get": {
            "summary": "One pair's health and its message timeline",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": _ok(_PAIR, "the pair")}},
    },
}
