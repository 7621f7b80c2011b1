"""A moderator's edit of a held message (the console's "Redact and release"), before it may go.

The edited text is read again by the policy's rules, as the partner would receive it (built by the code that
delivers it: relay.holdqueue.actions.preview_copy). The edit is refused, with the findings, and nothing is
saved, when that reading finds
- anything the policy would redact or reject (an edit is where such things are taken out: an edited copy is
  delivered as edited, without the redactions recorded at hold time),
- anything urgent (a safeguarding sign never leaves on one moderator's click), or
- anything the policy holds that the message was not held for (the approvals judged other words).
Findings of the message as a whole (first messages, rate, "every message is reviewed", attachments, which an
edit does not deliver) are the hold's own and are not read again.

Otherwise the edit is saved as a new record linked to the original (which stays as received), and the
approvals given so far are cleared, with an event naming them: they judged the text before the edit. The
edit then needs the hold's full count of approvals (`release_requires`), each given after it: the editor's
own release is the first. A release that says which edit it was shown (the console's form and the API's
`edit`) is refused when the message was edited since (relay.holdqueue.actions.release, `seen_edit`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.anonymize.message import parse
from relay.config import Settings
from relay.console.message_view import edited_message
from relay.holdqueue.actions import Offload, ReviewError, Stopped, in_thread, load_any, preview_copy, stopped
from relay.moderation import Decision, Reason, decide
from relay.moderation.inspection import inspect_message
from relay.moderation.policy import Policy, PolicyBook
from relay.store import events
from relay.store.conversations import Conversation
from relay.store.database import transaction
from relay.store.edits import latest_edit_id, save_edit
from relay.store.pairs import Pair
from relay.store.schema import held


class EditRefused(ReviewError):
    """The edited text has what the policy does not let go with an edit; worded for the moderator."""


async def save(settings: Settings, engine: AsyncEngine, now: datetime, message_id: str, moderator: str, text: str,
               offload: Offload = in_thread, policies: PolicyBook | None = None) -> tuple[str, int]:
    """Read the edit with the policy's rules, then save it and clear the approvals. Returns ("saved", the
    edit's id), or ("already-released" | "already-rejected", 0) when the message is no longer held. Raises
    EditRefused."""
    async with engine.connect() as connection:  # the reading is CPU work: no write lock meanwhile
        item, row, conversation = await load_any(connection, message_id)
        if item["state"] != "held":
            return f"already-{item['state']}", 0
        _refuse_stopped(conversation)
        raw = await asyncio.to_thread(edited_message, row.raw, text)
        _, copy = await preview_copy(settings, connection, item, row, conversation, now, offload, proposed=raw)
    policy = (policies or PolicyBook(settings.policies_dir)).get(item["policy"])
    if copy is not None:
        context = _context(settings, conversation, row)
        decision = await asyncio.to_thread(_decide, policy, copy, context)
        refused = not_letting_go(decision, item["reasons"])
        if refused:
            raise EditRefused("The edit is not saved: the policy's rules found in the edited text "
                              + "; ".join(_describe(r) for r in refused)
                              + ". Take it out and try again, or release or reject the message as it came.")
    async with transaction(engine) as connection:
        item, row, conversation = await load_any(connection, message_id)
        if item["state"] != "held":
            return f"already-{item['state']}", 0
        _refuse_stopped(conversation)
        edit_id = await save_edit(connection, message_id, raw, moderator, now)
        await events.record(connection, "edited", now, actor=moderator, pair_id=item["pair_id"],
                            message_id=message_id, edit_id=edit_id, characters=len(text))
        await clear_approvals(connection, item, now, moderator, edit_id)
    return "saved", edit_id


def _refuse_stopped(conversation: Conversation) -> None:
    """No edit is saved for a release that could not be made: the conversation is paused, closed or ended."""
    refused = stopped(conversation)
    if refused is not None:
        raise Stopped(refused)


async def clear_approvals(connection: AsyncConnection, item: dict[str, Any], now: datetime, moderator: str,
                          edit_id: int) -> None:
    """An edit clears the approvals given before it (the command line's one included); an event names them."""
    if not item["approvals"] and not item.get("cli_approval"):
        return
    await connection.execute(update(held).where(held.c.message_id == item["message_id"], held.c.state == "held")
                             .values(approvals="[]", cli_approval=None))
    await events.record(connection, "approvals_cleared", now, actor=moderator, pair_id=item["pair_id"],
                        message_id=item["message_id"], cleared=item["approvals"], edit_id=edit_id,
                        needed=item["release_requires"])


async def current_edit(connection: AsyncConnection, message_id: str) -> int:
    """The id of the newest edit of the message, 0 when none: what a release form says it was shown."""
    return await latest_edit_id(connection, message_id) or 0


def _decide(policy: Policy, copy: bytes, context: dict[str, Any]) -> Decision:
    return decide(policy, inspect_message(parse(copy), **context))


def not_letting_go(decision: Decision, held_for: list[dict[str, Any]]) -> list[Reason]:
    """The findings in the edited text that an edit may not take past the moderators (see the module)."""
    known = {(r.get("rule"), r.get("kind"), str(r.get("match") or "").casefold()) for r in held_for
             if r.get("action") == "hold" and r.get("severity", "normal") != "urgent"}
    refused = []
    for reason in decision.reasons:
        finding = reason.finding
        if finding.start < 0:
            continue  # about the message as a whole, not its words
        key = (finding.rule, finding.kind, finding.match.casefold())
        if reason.severity == "urgent" or reason.action in ("redact", "reject") or (
                reason.action == "hold" and key not in known):
            refused.append(reason)
    return refused


def _describe(reason: Reason) -> str:
    finding = reason.finding
    what = "urgent: " if reason.severity == "urgent" else ""
    return f"{what}{finding.rule} ({finding.kind}) \u201c{finding.match}\u201d, which it would {reason.action}"


def _context(settings: Settings, conversation: Conversation, row: Any) -> dict[str, Any]:
    """What the rules know besides the text, as intake gives it (relay.inbound.partner and .group); the
    pair's history is left out (it is the hold's, not the edit's)."""
    domain = settings.relay.domain
    program = settings.programs.get(conversation.program_id)
    sender = conversation.member_by_id(row.sender_id)
    assert sender is not None
    common = {"sender_role": sender.role, "sender_email": sender.email, "sender_name": sender.name,
              "sender_nicknames": sender.nicknames, "sender_other_emails": sender.other_emails,
              "region": program.region if program else "US", "domain": domain}
    if isinstance(conversation, Pair):
        recipient = conversation.partner_of(sender)
        return {**common, "recipient_email": recipient.email, "recipient_name": recipient.name,
                "recipient_nicknames": recipient.nicknames, "recipient_other_emails": recipient.other_emails,
                "aliases": (sender.alias_address(domain), recipient.alias_address(domain))}
    others = [m for m in conversation.members if m.id != sender.id]
    return {**common, "recipient_email": "", "recipient_name": "",
            "other_members": tuple((email, m.name, tuple(m.nicknames)) for m in others
                                   for email in (m.email, *m.other_emails)),
            "aliases": (*(m.alias_address(domain) for m in conversation.members),
                        conversation.alias_address(domain) or "")}
