"""The OpenAPI 3.1 description of the console's JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

_REASON = {"type": "object", "properties": {"rule": {"type": "string"}, "kind": {"type": "string"},
                                             "match": {"type": "string"}, "action": {"type": "string"}}}
_MEMBER = {"type": "object", "properties": {"handle": {"type": "string"}, "role": {"type": "string"}}}
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
        "edit": {"type": "integer", "description": "one item: the newest moderator's edit (0: none); an edit "
                                                    "clears the approvals given before it"},
        "conversation": {"type": "object", "description": "the pair, group or community, members by handle only",
                         "properties": {"kind": {"type": "string", "enum": ["pair", "group", "community"]},
                                        "id": {"type": "integer"}, "name": {"type": ["string", "null"]},
                                        "members": {"type": "array", "items": _MEMBER}}},
        "sender": _MEMBER,
        "recipient": {"anyOf": [_MEMBER, {"type": "null"}],
                      "description": "the partner, or the one member of a private word; null: the whole group"},
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


_FIELD_ERRORS = {"description": "the request names bad values: one entry per field",
                 "content": {"application/json": {"schema": {"type": "object", "properties": {"errors": {
                     "type": "array", "items": {"type": "object", "properties": {
                         "field": {"type": ["string", "null"]}, "message": {"type": "string"}}}}}}}}}
_FORBIDDEN = {"description": "the token's role may not do this (viewer: read-only), or not in this program"}
_ENROL_FIELDS = ("mentor_email", "mentor_name", "mentor_handle", "mentee_email", "mentee_name", "mentee_handle",
                 "mentor_timezone", "mentee_timezone", "mentor_language", "mentee_language", "end_date", "policy",
                 "mentor_nickname", "mentee_nickname")
_ENROL = {"type": "object", "required": ["program", *_ENROL_FIELDS[:6]], "additionalProperties": False,
          "properties": {"program": {"type": "string"}, **{name: {"type": "string"} for name in _ENROL_FIELDS}},
          "description": "the columns of `pair import`; nicknames: several separated by ';'; end_date YYYY-MM-DD, "
                         "not in the past; languages BCP 47 (en, es, fr, ar, ru, ...)"}
_ALIASES = {"type": "object", "properties": {"id": {"type": "integer"}, "mentor_alias": {"type": "string"},
                                            "mentee_alias": {"type": "string"}}}
_EVENT = {"type": "object", "properties": {
    "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "kind": {"type": "string"},
    "actor": {"type": "string"}, "pair_id": {"type": ["integer", "null"]}, "program": {"type": ["string", "null"]},
    "message_id": {"type": ["string", "null"]}, "detail": {"type": "object"}}}
_PAIR_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}, **_ERRORS}


_PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
    {"name": "after", "in": "query", "schema": {"type": "string"},
     "description": "where the page starts: take the whole next URL from the Link header (rel=next)"},
]


def _paged(schema: dict[str, Any], what: str) -> dict[str, Any]:
    found = _ok(schema, what)
    found["200"]["headers"] = {
        "X-Total-Count": {"schema": {"type": "integer"}, "description": "items over every page"},
        "Link": {"schema": {"type": "string"}, "description": '<URL of the next page>; rel="next", while more'},
    }
    found["400"] = {"description": "a cursor or limit this relay did not write"}
    return found


DESCRIPTION: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mentor-relay review console API", "version": "1",
             "description": "Held mail, pairs and their record of the programs on the token's account; "
                            "enrolment for a program's own platform."},
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                 "description": "mentor-relay moderator token --username U"}}},
    "security": [{"token": []}],
    "paths": {
        "/api/held": {"get": {
            "summary": "Held messages, urgent first, then oldest first; a page at a time",
            "parameters": [{"name": "program", "in": "query", "schema": {"type": "string"}},
                           {"name": "state", "in": "query",
                            "schema": {"type": "string", "enum": ["held", "released", "rejected", "all"]}},
                           *_PAGING],
            "responses": _paged({"type": "array", "items": _HELD}, "one page of the hold queue")}},
        "/api/held/{id}": {"get": {
            "summary": "One held message: reasons, text, attachments, and the copy as it would be delivered",
            "parameters": _ID, "responses": _ok(_HELD, "the held message")}},
        "/api/held/{id}/release": {"post": {
            "summary": "Release (delivered once, however often it is called)", "parameters": _ID,
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"edit": {
                    "type": "integer", "minimum": 0,
                    "description": "the `edit` of the item as read (GET /api/held/{id}): when a moderator edited it "
                                   "since, nothing is done (409)"}}}}}},
            "responses": {**_ok(_OUTCOME, "what happened"),
                          "409": {"description": "edited since the `edit` given: read it again"}}}},
        "/api/held/{id}/reject": {"post": {
            "summary": "Reject; the sender is told the reason", "parameters": _ID,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
            "responses": {**_ok(_OUTCOME, "what happened"), "400": {"description": "no reason given"}}}},
        "/api/pairs": {"get": {
            "summary": "Pairs with their health at a glance, by id; a page at a time",
            "parameters": [{"name": "program", "in": "query", "schema": {"type": "string"}}, *_PAGING],
            "responses": _paged({"type": "array", "items": _PAIR}, "one page of pairs")},
            "post": {
            "summary": "Enrol a pair (coordinators and admins; the program must be one of the token's)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ENROL}}},
            "responses": {"201": {"description": "enrolled; both are welcomed",
                                  "content": {"application/json": {"schema": _ALIASES}}},
                          "400": {"description": "not a JSON object"}, "401": _ERRORS["401"],
                          "403": _FORBIDDEN, "422": _FIELD_ERRORS}}},
        "/api/pairs/{id}/close": {"post": {
            "summary": "Close a pair: both members get a farewell (with the reason, if given), the coordinator is "
                       "told, later mail to its aliases gets a short note; a closed pair: changed false, nothing sent",
            "parameters": _PAIR_ID,
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reason": {"type": "string", "maxLength": 1000}}}}}},
            "responses": {**_ok({"type": "object", "properties": {"id": {"type": "integer"},
                                 "status": {"type": "string"}, "changed": {"type": "boolean"}}}, "closed"),
                          "403": _FORBIDDEN, "422": _FIELD_ERRORS}}},
        "/api/pairs/{id}/away": {"post": {
            "summary": "Mark a member away until a date, or back; both members are told", "parameters": _PAIR_ID,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["role"], "properties": {
                    "role": {"type": "string", "enum": ["mentor", "mentee"]},
                    "until": {"type": "string", "format": "date"}, "back": {"type": "boolean"}}}}}},
            "responses": {**_ok({"type": "object", "properties": {
                "id": {"type": "integer"}, "role": {"type": "string"},
                "away_until": {"type": ["string", "null"], "format": "date"}}}, "done"),
                "403": _FORBIDDEN, "409": {"description": "the pair is closed"}, "422": _FIELD_ERRORS}}},
        "/api/events": {"get": {
            "summary": "The record of the token's programs, oldest first; page with since=<next>",
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "string"},
                 "description": "an event id (events after it) or an ISO 8601 time (events at or after it)"},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                            "default": 100}}],
            "responses": _ok({"type": "object", "properties": {
                "events": {"type": "array", "items": _EVENT},
                "next": {"type": ["integer", "null"], "description": "pass as since for the next page"}}},
                "events")}},
        "/api/pairs/{id}": {"get": {
            "summary": "One pair's health and its message timeline",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": _ok(_PAIR, "the pair")}},
    },
}
