"""A held message's history in words: who did what, and for each mail that went out, to whom —
"notice to the sender (Maple)", "sent to the partner (Oak)", "alert to the moderators" — instead of
the record's bare "delivered", which read as if the held message itself had gone out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relay.console.event_view import kind_text
from relay.store.outbound import recipients
from relay.store.pairs import Member, Pair

_OUTBOUND_KINDS = {"delivered": "", "deferred": "delayed: ", "delivery_failed": "failed: "}


@dataclass(frozen=True)
class Line:
    at: datetime
    what: str
    actor: str
    note: str | None


async def held_history(connection: AsyncConnection, events: list[dict[str, Any]], pair: Pair, sender: Member,
                       coordinator: str | None, moderators: list[str]) -> list[Line]:
    wanted = [e["detail"]["outbound_id"] for e in events
              if e["kind"] in _OUTBOUND_KINDS and isinstance(e["detail"].get("outbound_id"), str)]
    entries = await recipients(connection, wanted)
    partner = pair.partner_of(sender)
    lines = []
    for event in events:
        kind, detail = event["kind"], event["detail"]
        what = kind_text(kind, detail)
        note = detail.get("reason") or detail.get("note") or None
        if kind in _OUTBOUND_KINDS:
            entry = entries.get(str(detail.get("outbound_id")))
            what = _OUTBOUND_KINDS[kind] + (_whom(entry, sender, partner, coordinator, moderators) if entry
                                            else "a mail")
            note = None
        elif kind == "accepted":
            what = f"received from the {detail.get('sender_role', 'sender')} ({sender.handle})"
        lines.append(Line(event["at"], what, event["actor"], note))
    return lines


def _whom(entry: tuple[str, str], sender: Member, partner: Member, coordinator: str | None,
          moderators: list[str]) -> str:
    kind, rcpt = entry
    address = rcpt.casefold()
    if kind == "relay":
        return f"sent to the partner ({partner.handle})"
    if address == sender.email_key or address == sender.email.casefold():
        return f"notice to the sender ({sender.handle})"
    if address == partner.email_key or address == partner.email.casefold():
        return f"notice to the partner ({partner.handle})"
    if coordinator is not None and address == coordinator.casefold():
        return "notice to the coordinator"
    if address in {m.casefold() for m in moderators}:
        return "alert to the moderators"
    return "notice to another address"
