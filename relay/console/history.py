"""A pair's or a held message's history in words: who did what, and for each mail that went out, to
whom — "notice to the sender (Maple)", "sent to the partner (Oak)", "alert to the moderators" — instead
of the record's bare "delivered", which read as if the held message itself had gone out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relay.config import ConfigError
from relay.console.event_view import kind_text
from relay.hiding import hide_text
from relay.moderation.policy import PolicyBook
from relay.store.conversations import Conversation
from relay.store.outbound import recipients
from relay.store.pairs import Member, Pair

_OUTBOUND_KINDS = {"delivered": "", "deferred": "delayed: ", "delivery_failed": "failed: "}


@dataclass(frozen=True)
class Line:
    at: datetime
    what: str
    actor: str
    note: str | None


async def history(connection: AsyncConnection, events: list[dict[str, Any]], pair: Conversation, *,
                  coordinator: str | None, moderators: list[str], sender: Member | None = None,
                  lead: str | None = None, hidden_for: str | None = None) -> list[Line]:
    """The events in words. `pair`: the conversation (a pair, a group or a community). `sender`: the author
    of the held message these events are about (then the members are "the sender" and "the partner", or
    "a member" of a group); None for a pair's history (then they are named). `hidden_for`: the relay's
    domain when the reader may not see real addresses (no ADDRESSES_SEE): then a note (a reason or a note
    someone wrote) has real and IP addresses "(hidden)", as on /audit."""
    wanted = [e["detail"]["outbound_id"] for e in events
              if e["kind"] in _OUTBOUND_KINDS and isinstance(e["detail"].get("outbound_id"), str)]
    entries = await recipients(connection, wanted)
    lines = []
    for event in events:
        kind, detail = event["kind"], event["detail"]
        what = kind_text(kind, detail)
        note = detail.get("reason") or detail.get("note") or None
        if note is not None and hidden_for is not None:
            note = hide_text(str(note), hidden_for)
        if kind in _OUTBOUND_KINDS:
            entry = entries.get(str(detail.get("outbound_id")))
            what = _OUTBOUND_KINDS[kind] + (_whom(entry, pair, sender, coordinator, moderators, lead) if entry
                                            else "a mail")
            note = None
        elif kind == "accepted":
            role = str(detail.get("sender_role", ""))
            author = sender or (pair.member(role) if isinstance(pair, Pair) and role in ("mentor", "mentee")
                                else None)
            what = f"received from the {role or 'sender'}" + (f" ({author.handle})" if author else "")
        lines.append(Line(event["at"], what, event["actor"], note))
    return lines


def _whom(entry: tuple[str, str], pair: Conversation, sender: Member | None, coordinator: str | None,
          moderators: list[str], lead: str | None = None) -> str:
    kind, rcpt = entry
    address = rcpt.casefold()
    member = next((m for m in pair.members if address in (m.email_key, m.email.casefold())), None)
    if member is not None:
        if sender is None:
            who = f"{member.handle} ({member.role})"
        elif member.id == sender.id:
            who = f"the sender ({member.handle})"
        else:
            who = f"{'a member' if pair.is_group else 'the partner'} ({member.handle})"
        return f"sent to {who}" if kind == "relay" else f"notice to {who}"
    if lead is not None and address == lead.casefold():
        return "URGENT alert to the safeguarding lead"
    if coordinator is not None and address == coordinator.casefold():
        return "notice to the coordinator"
    if address in {m.casefold() for m in moderators}:
        return "alert to the moderators"
    return "notice to another address"


def policy_moderators(policies: PolicyBook, name: str) -> list[str]:
    """The addresses a policy alerts about held mail (to name them in a history)."""
    try:
        return list(policies.get(name).moderators.notify)
    except ConfigError:  # the policy file went away since: the history still shows, less precisely
        return []
