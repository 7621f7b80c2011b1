"""What the sweeps need to know about each active pair's (or group's) conversation, read in a few queries.

A mentee's message waits when it was passed on to the mentor (it has a relayed outbound entry: held
mail waits only once released, and from then: its `delivered_at` is when its relayed copy was queued, at
intake or at the release) and the mentor has written nothing since. A mentor's message counts as writing
whatever became of it (held or not); automatic replies count for nothing. In a group, a mentee's message
waits when it went to the whole group or privately to a mentor (a private word to another mentee does
not; `recipient_id` names the mentor of a private one), and any mentor writing ends the wait.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.inbound.program import ADDRESSES
from relay.store.schema import members, messages, outbound

NOT_WRITING = ("autoreply", *ADDRESSES)  # mail to away@ and the other program addresses is not to the partner


@dataclass(frozen=True)
class Waiting:
    """A mentee's message the mentor has not answered."""

    message_id: str
    received_at: datetime  # when the mentee wrote it (the relay took it in)
    subject: str  # as the mentor received it (after the identity scrub)
    sender_id: int | None = None  # the mentee who wrote it (a group has several)
    delivered_at: datetime | None = None  # when it was passed on to the mentor (a held one: its release)
    recipient_id: int | None = None  # in a group, the mentor it was written to privately; None: the group

    @property
    def passed_on_at(self) -> datetime:
        """When the mentor could first read it: the wait for their answer starts then."""
        return self.delivered_at or self.received_at


@dataclass
class Activity:
    last_message_at: datetime | None = None  # either way, automatic replies aside
    waiting: list[Waiting] = field(default_factory=list)  # the first passed on first

    @property
    def first_waiting(self) -> Waiting | None:
        return self.waiting[0] if self.waiting else None


_SUBJECT = re.compile(rb"^subject:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# A one-line field of printable ASCII: the stdlib reads it as the text itself (no encoded word: no "=?")
_PLAIN_SUBJECT = re.compile(rb"subject:[ \t]*([\x20-\x7e]*)", re.IGNORECASE)


def _subject(raw: bytes) -> str:
    """The first Subject field of `raw`, decoded by the stdlib parser. Only that field (with its folded lines)
    is handed to the parser: a sweep reads one per waiting message, and parsing the whole header block for
    it was a tenth of a sweep's time. A one-line field of printable ASCII without an encoded word is its own
    text, read without the parser (the parser on that field alone was still a fifth of an hourly sweep)."""
    end = _END_OF_HEADERS.search(raw)
    found = _SUBJECT.search(raw, 0, end.start() + 1 if end else len(raw))
    if found is None:
        return "(no subject)"
    plain = _PLAIN_SUBJECT.fullmatch(found.group(0))
    if plain is not None and b"=?" not in plain.group(1):  # most subjects: as the parser would read them
        return plain.group(1).decode("ascii") or "(no subject)"
    headers = BytesHeaderParser(policy=default_policy).parsebytes(found.group(0))
    return str(headers.get("Subject") or "(no subject)")


async def read_activity(connection: AsyncConnection, pair_ids: list[int]) -> dict[int, Activity]:
    found: dict[int, Activity] = {pair_id: Activity() for pair_id in pair_ids}
    if not pair_ids:
        return found
    sender = members.alias("sender")
    writing = and_(messages.c.pair_id.in_(pair_ids), messages.c.decision.not_in(NOT_WRITING))
    last = select(messages.c.pair_id, func.max(messages.c.received_at)).where(writing).group_by(messages.c.pair_id)
    for pair_id, at in (await connection.execute(last)).all():
        found[pair_id].last_message_at = at
    mentor_last = (
        select(messages.c.pair_id, func.max(messages.c.received_at).label("at"))
        .select_from(messages.join(sender, sender.c.id == messages.c.sender_id))
        .where(writing, sender.c.role == "mentor").group_by(messages.c.pair_id).subquery()
    )
    recipient = members.alias("recipient")
    waiting = (
        select(messages.c.pair_id, messages.c.id, messages.c.received_at, messages.c.sender_id,
               messages.c.recipient_id, outbound.c.created_at, outbound.c.raw)
        .select_from(
            messages.join(sender, sender.c.id == messages.c.sender_id)
            .join(outbound, and_(outbound.c.message_id == messages.c.id, outbound.c.kind == "relay"))
            .outerjoin(recipient, recipient.c.id == messages.c.recipient_id)
            .outerjoin(mentor_last, mentor_last.c.pair_id == messages.c.pair_id))
        .where(messages.c.pair_id.in_(pair_ids), sender.c.role == "mentee",
               messages.c.recipient_id.is_(None) | (recipient.c.role == "mentor"),
               (mentor_last.c.at.is_(None)) | (messages.c.received_at > mentor_last.c.at))
        .order_by(messages.c.pair_id, messages.c.received_at, messages.c.id)
    )
    seen: dict[str, tuple[int, Waiting]] = {}
    for row in (await connection.execute(waiting)).all():
        earlier = seen.get(row.id)
        if earlier is None:
            seen[row.id] = (row.pair_id, Waiting(row.id, row.received_at, _subject(row.raw), row.sender_id,
                                                 row.created_at, row.recipient_id))
        elif row.created_at < earlier[1].passed_on_at:  # a group message has one relayed copy per recipient
            seen[row.id] = (row.pair_id, replace(earlier[1], delivered_at=row.created_at))
    for pair_id, item in seen.values():
        found[pair_id].waiting.append(item)
    for activity in found.values():  # a message released late waits after those passed on before it
        activity.waiting.sort(key=lambda item: (item.passed_on_at, item.received_at, item.message_id))
    return found
