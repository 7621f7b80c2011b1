"""Who a held message is between, by handle: its sender, whom it was written to (the partner, one member
privately, or the whole group), and the conversation with its members' handles and roles. Shared by the
console's queue and held page, the JSON API and `held list | show`, so that a pair's item and a group's
or community's item read alike everywhere.

Only handles and roles leave this module: real names and addresses stay in the store, exactly as the
console's held page of a pair shows them (a pair page shows addresses to the roles allowed; the hold
queue never does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store import held as held_store
from relay.store.conversations import Conversation, Member, conversations_by_id
from relay.store.pairs import Pair


@dataclass(frozen=True)
class Parties:
    conversation: Conversation
    sender: Member
    recipient: Member | None  # the partner, the one member of a private word; None: the whole group

    @property
    def group_name(self) -> str | None:
        """The group's (or community's) name; None for a pair."""
        if not self.conversation.is_group:
            return None
        return self.conversation.name or str(self.conversation.id)

    @property
    def members(self) -> tuple[Member, ...]:
        """The conversation's current members (a community member who left the program is not one)."""
        return tuple(m for m in self.conversation.members if m.left_at is None)

    @property
    def to_text(self) -> str:
        """Whom the message was written to, in words: "Oak", "the group Robotics"."""
        if self.recipient is not None:
            return self.recipient.handle
        return f"the group {self.group_name}"

    def as_json(self) -> dict[str, Any]:
        """The fields `held list --json`, `held show --json` and the API add to a held item."""
        conversation = self.conversation
        return {
            "conversation": {"kind": conversation.kind, "id": conversation.id, "name": self.group_name,
                             "status": conversation.status,
                             "members": [{"handle": m.handle, "role": m.role} for m in self.members]},
            "sender": {"handle": self.sender.handle, "role": self.sender.role},
            "recipient": (None if self.recipient is None
                          else {"handle": self.recipient.handle, "role": self.recipient.role}),
        }


def parties(conversation: Conversation, sender_id: int, recipient_id: int | None) -> Parties:
    sender = conversation.member_by_id(sender_id)
    assert sender is not None, f"held message's sender {sender_id} is not in conversation {conversation.id}"
    recipient = conversation.member_by_id(recipient_id) if recipient_id is not None else None
    if recipient is None and isinstance(conversation, Pair):
        recipient = conversation.partner_of(sender)
    return Parties(conversation, sender, recipient)


async def parties_of(connection: AsyncConnection, items: list[dict[str, Any]]) -> dict[str, Parties]:
    """Each held item's parties, by message id (each conversation is read once)."""
    ids = sorted({item["pair_id"] for item in items})
    conversations = {c.id: c for c in await conversations_by_id(connection, ids)}  # one query, not one per item
    found = {}
    for item in items:
        conversation = conversations[item["pair_id"]]
        found[item["message_id"]] = parties(conversation, item["sender_id"], item["recipient_id"])
    return found


async def summaries(connection: AsyncConnection, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Held items as `held list --json` and the API show them: the stored fields and their parties."""
    found = await parties_of(connection, items)
    return [{**held_store.summary(item), **found[item["message_id"]].as_json()} for item in items]
