"""How the console shows the record: an event's kind in words, and its details as labelled fields
instead of the stored JSON.

Real addresses (any address not on the relay's own domain) and IP addresses are shown only to roles that
may see them (relay.console.roles.ADDRESSES_SEE); to others they read "(hidden)", and so does a message's text
or subject stored in an event (a stranger's refused message, with whatever contact details it gives), phone-like
numbers in a finding's match too. File paths show their last
part only, except to admins. `visible_detail` does both, for /audit and for `GET /api/events` alike (the
patterns: relay.hiding). Hand-written because the wording is the console's own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from relay.console.accounts import Moderator
from relay.console.roles import ACCOUNTS_MANAGE, ADDRESSES_SEE
from relay.hiding import hide_value

KINDS = {
    "accepted": "received", "decision": "decision", "delivered": "delivered", "deferred": "delivery deferred",
    "delivery_failed": "delivery failed", "released": "released", "rejected": "rejected",
    "approval": "approved (waits for another moderator)", "edited": "edited by a moderator",
    "escalated": "escalated to the coordinator", "held_digest": "moderators sent a digest",
    "held_reminder": "moderators reminded", "held_escalated": "coordinator told (not reviewed in time)",
    "login": "logged in", "logout": "logged out", "login_locked": "login locked",
    "password_changed": "password changed", "sessions_revoked": "sessions ended", "account_added": "account added",
    "account_disabled": "account disabled", "account_enabled": "account enabled", "token_issued": "API token issued",
    "token_revoked": "API token revoked", "approvals_cleared": "approvals cleared (the text was edited)",
    "pair_created": "pair enrolled", "pair_closed": "pair closed", "pair.ended": "pair ended",
    "group.ended": "group ended", "mentor_left": "a mentor left the group (erased)",
    "pair.paused": "pair paused", "pair.resumed": "pair resumed", "away.set": "marked away",
    "away.cleared": "back from away", "refused": "refused", "duplicate": "duplicate ignored", "welcome": "welcomed",
    "urgent_alert": "URGENT: safeguarding lead and moderators told",
    "urgent_followup": "URGENT: lead and coordinator told again (nobody acted in time)",
    "escalated_to_lead": "escalated to the safeguarding lead", "rejection_reported": "rejection reported to moderators",
    "rejection_digest": "rejections reported to moderators",
    "stranger_alert_folded": "stranger alert not sent (the conversation's alerts this hour were sent)",
    "copies.withheld": "copies not sent (the conversation closed or ended first)",
}

LABELS = {
    "outbound_id": "outbound entry", "response": "server reply", "sender_role": "sender", "remote": "client address",
    "address": "client address", "reasons": "reasons", "release_requires": "needs", "approvals": "approved by",
    "edit_id": "edit", "characters": "characters", "retry_at": "next try", "trusted_browser": "known browser",
    "sessions_ended": "sessions ended", "message_ids": "messages", "handles": "handles", "until": "until",
}


@dataclass(frozen=True)
class Field:
    label: str
    value: str


def kind_text(kind: str, detail: dict[str, Any] | None = None) -> str:
    """The event in a few words: "released", "decision: hold", "nudge: first"."""
    if kind == "decision" and detail and detail.get("decision"):
        return f"decision: {detail['decision']}"
    if kind in KINDS:
        return KINDS[kind]
    return kind.replace("_", " ").replace(".", ": ")


def visible_detail(detail: Any, user: Moderator, domain: str) -> Any:
    """An event's detail (parsed JSON) as this user may read it, at any depth: without ADDRESSES_SEE, real
    addresses and IP addresses (and the whole value of a client-address key or a text key: relay.hiding) read
    "(hidden)"; without
    ACCOUNTS_MANAGE, a file path reads as its last part. The same shape, keys and other values."""
    if not user.may(ADDRESSES_SEE):
        detail = hide_value(detail, domain)
    if not user.may(ACCOUNTS_MANAGE):
        detail = _short_paths(detail)
    return detail


def fields(detail: dict[str, Any], user: Moderator, domain: str) -> list[Field]:
    """The event's details as (label, readable value), hiding what this user may not see."""
    out = []
    for key, value in sorted(visible_detail(detail, user, domain).items()):
        if value is None or value == [] or value == {}:
            continue
        out.append(Field(LABELS.get(key, key.replace("_", " ")), _text(key, value)))
    return out


def _short_paths(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("/") and value.count("/") > 1 and " " not in value:
            return PurePath(value).name
        return value
    if isinstance(value, list):
        return [_short_paths(item) for item in value]
    if isinstance(value, dict):
        return {key: _short_paths(item) for key, item in value.items()}
    return value


def _text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')}: {_text(k, v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "; ".join(_reason(v) if key == "reasons" and isinstance(v, dict) else _text(key, v) for v in value)
    return str(value)


def _reason(reason: dict[str, Any]) -> str:
    """A moderation finding: `rule (kind): "match"`; a decision's reason without a rule shows its fields."""
    rule = reason.get("rule")
    if rule is None:
        return _text("", {k: v for k, v in reason.items() if k not in ("start", "end")})
    kind = reason.get("kind")
    match = reason.get("match")
    return f"{rule}{f' ({kind})' if kind and kind != rule else ''}" + (f': "{match}"' if match else "")
