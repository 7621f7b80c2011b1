"""The hold queue in the store: holding, listing, approving, releasing, rejecting, sweep marks.

State changes are conditional updates (WHERE state = 'held'), so a message released twice, by two
moderators at once or by the console and the CLI, is queued for delivery exactly once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal_column, null, or_, select, true, union_all, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ColumnElement

from relay.store import keyset
from relay.store.schema import events, held, members, messages, outbound, pairs


def hold_values(
    *, message_id: str, pair_id: int, program_id: str, policy: str, now: datetime, reasons: list[dict[str, Any]],
    release_requires: int, notified: bool, severity: str = "normal", rejected: str | None = None,
    staff_subject: str | None = None,
) -> dict[str, Any]:
    """A new row of the queue: held, or (`rejected`: the policy's reason) an automatic rejection, recorded
    in the queue's history as decided by the relay with nobody's approval."""
    return {
        "message_id": message_id, "pair_id": pair_id, "program_id": program_id, "policy": policy,
        "state": "held" if rejected is None else "rejected", "held_at": now,
        "reasons": json.dumps(reasons, ensure_ascii=False), "release_requires": release_requires,
        "approvals": "[]", "decided_at": None if rejected is None else now,
        "decided_by": None if rejected is None else "relay", "reject_reason": rejected,
        "notified_at": now if notified else None, "reminded_at": None, "escalated_at": None,
        "severity": severity, "automatic": 0 if rejected is None else 1, "staff_subject": staff_subject,
    }


def _row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["reasons"] = json.loads(data["reasons"])
    data["approvals"] = json.loads(data["approvals"])
    return data


async def list_held(
    connection: AsyncConnection, *, state: str | None = "held", program_id: str | None = None,
    automatic: bool | None = None, conditions: tuple[ColumnElement[bool], ...] = (),
) -> list[dict[str, Any]]:
    """Queue rows, oldest first; `automatic` True: only automatic rejections, False: none of them;
    `conditions` on the queue's columns narrow them further."""
    query = (
        select(held, messages.c.subject, messages.c.sender_id, messages.c.recipient_id)
        .join(messages, messages.c.id == held.c.message_id)
        .order_by(held.c.held_at, held.c.message_id)
        .where(*conditions)
    )
    if state is not None:
        query = query.where(held.c.state == state)
    if program_id is not None:
        query = query.where(held.c.program_id == program_id)
    if automatic is not None:
        query = query.where(held.c.automatic == int(automatic))
    return [_row(row) for row in (await connection.execute(query)).all()]


async def urgent_not_followed_up(connection: AsyncConnection, held_by: datetime) -> list[dict[str, Any]]:
    """Urgent items still held, held at `held_by` or before, that no moderator escalated and that have had no
    follow-up yet (list_held's rows, oldest first): the safeguarding sweep's candidates, read every minute,
    so the database leaves out the rest of the queue (an approval still rules one out: acted_on)."""
    return await list_held(connection, state="held", conditions=(
        held.c.severity == "urgent", held.c.urgent_followup_at.is_(None), held.c.escalated_by.is_(None),
        held.c.held_at <= held_by))


PROGRAM_MAIL = ("help", "concern")  # decisions of mail to program addresses whose urgent copies go to the lead
STRANGER_ALERT = "stranger_alert"  # the event of an UNVERIFIED SENDER alert (relay/inbound/strangers.py)


async def urgent_notices_not_delivered(connection: AsyncConnection, since: datetime,
                                       late: datetime) -> list[Any]:
    """The mail that may tell a lead of an urgent sign and did not arrive: failed or bounced, or still retried
    after `late`; made at `since` or after. Three kinds: the mail about urgent items (queued in the commit that
    held them: relay/safeguarding/holding.py; `address` None), the staff copies of mail to help@ and concern@
    (queued with the message, which is never held: relay/inbound/program/help.py; `address` the message's
    decision, "help" or "concern"), of which only urgent_program_mail tells the urgent ones, and the notices
    about a conversation that no message is behind (`message_id` None), among them the UNVERIFIED SENDER alerts
    about a stranger's refused mail (relay/inbound/strangers.py), which only stranger_alerts tells. Rows of
    outbound (id, message_id, rcpt, state, last_error) with the conversation's pair_id and program_id and the
    policy (None: the program's), oldest first, found through the queue's (state, created_at) index: few rows
    are ever in those states."""
    columns = (outbound.c.id, outbound.c.message_id, outbound.c.rcpt, outbound.c.state, outbound.c.last_error,
               outbound.c.created_at)
    not_arrived = and_(outbound.c.kind == "notice", outbound.c.created_at >= since,
                       or_(outbound.c.state.in_(("failed", "bounced")),
                           and_(outbound.c.state == "queued", outbound.c.attempts > 0, outbound.c.created_at <= late)))
    alerts = (select(*columns, held.c.pair_id, held.c.program_id, held.c.policy,
                     cast(null(), String(16)).label("address"))
              .join(held, held.c.message_id == outbound.c.message_id)
              .where(not_arrived, held.c.severity == "urgent"))
    to_staff = (select(*columns, messages.c.pair_id, pairs.c.program_id, pairs.c.policy,
                       messages.c.decision.label("address"))
                .join(messages, messages.c.id == outbound.c.message_id).join(pairs, pairs.c.id == messages.c.pair_id)
                .where(not_arrived, messages.c.decision.in_(PROGRAM_MAIL)))
    about_conversation = (select(*columns, outbound.c.pair_id, pairs.c.program_id, pairs.c.policy,
                                 cast(null(), String(16)).label("address"))
                          .join(pairs, pairs.c.id == outbound.c.pair_id)
                          .where(not_arrived, outbound.c.message_id.is_(None)))
    found = union_all(alerts, to_staff, about_conversation).subquery()
    return list((await connection.execute(select(found).order_by(found.c.created_at, found.c.id))).all())


async def stranger_alerts(connection: AsyncConnection, pair_ids: list[int],
                          since: datetime) -> dict[str, tuple[int, dict[str, Any]]]:
    """The UNVERIFIED SENDER alerts of these conversations made at `since` or after, by the outbound ids each
    event names (`outbound_ids`): outbound id -> (the event's id, its detail). Read through the events' (pair_id,
    kind) index: a conversation has few of them, whatever the number of strangers' alerts in the store."""
    if not pair_ids:
        return {}
    rows = await connection.execute(select(events.c.id, events.c.detail).where(
        events.c.pair_id.in_(pair_ids), events.c.kind == STRANGER_ALERT, events.c.at >= since))
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for event_id, text in rows:
        detail = json.loads(text)
        for outbound_id in detail.get("outbound_ids") or []:
            found[str(outbound_id)] = (int(event_id), detail)
    return found


async def urgent_program_mail(connection: AsyncConnection, message_ids: list[str]) -> dict[str, list[str]]:
    """Which of these messages to help@ or concern@ went to the lead as urgent (a concern, or a sign of harm
    found in it), as the event written with its copies says (relay/inbound/program/help.py): message id ->
    the kinds of the signs found (none for a concern without one)."""
    if not message_ids:
        return {}
    rows = await connection.execute(select(events.c.message_id, events.c.detail)
                                    .where(events.c.message_id.in_(message_ids), events.c.kind.in_(PROGRAM_MAIL)))
    found: dict[str, list[str]] = {}
    for message_id, detail in rows:
        told = json.loads(detail)
        if told.get("urgent"):
            found[message_id] = list(told.get("signs") or [])
    return found


async def undelivered_reported(connection: AsyncConnection, message_ids: list[str], kind: str,
                               pair_ids: list[int] | None = None) -> set[str]:
    """The outbound ids already reported as undelivered (events of `kind` about these messages; and, for alerts
    that have no message, such as a stranger's, of `kind` in these conversations, through (pair_id, kind))."""
    found: set[str] = set()
    if message_ids:
        rows = await connection.execute(select(events.c.detail).where(events.c.message_id.in_(message_ids),
                                                                      events.c.kind == kind))
        found |= {json.loads(detail).get("outbound_id") for (detail,) in rows}
    if pair_ids:
        rows = await connection.execute(select(events.c.detail).where(events.c.pair_id.in_(pair_ids),
                                                                      events.c.kind == kind))
        found |= {json.loads(detail).get("outbound_id") for (detail,) in rows}
    return found


async def rejections_not_reported(connection: AsyncConnection) -> list[dict[str, Any]]:
    """Automatic rejections not yet reported to the moderators (list_held's rows, oldest first)."""
    return await list_held(connection, state="rejected", automatic=True, conditions=(held.c.notified_at.is_(None),))


async def list_held_page(
    connection: AsyncConnection, *, state: str | None = "held", program_id: str | None = None, limit: int = 500,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `list_held` (oldest first: held_at, message_id) after the cursor `after` (keyset:
    relay/store/keyset.py), in one indexed query. Returns the rows and the next page's cursor (None on the
    last page); a cursor this relay did not write raises keyset.BadCursor."""
    order = [held.c.held_at, held.c.message_id]
    query = (select(held, messages.c.subject, messages.c.sender_id, messages.c.recipient_id)
             .join(messages, messages.c.id == held.c.message_id).order_by(*order).limit(limit + 1))
    query = _filtered(query, state=state, programs=None, program_id=program_id, reason=None)
    if after is not None:
        query = query.where(keyset.after(order, keyset.decode(after, (datetime, str))))
    found = [_row(row) for row in (await connection.execute(query)).all()]
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], keyset.encode([last["held_at"], last["message_id"]])


def _filtered(query: Any, *, state: str | None, programs: list[str] | None, program_id: str | None,
              reason: str | None) -> Any:
    if state is not None:
        query = query.where(held.c.state == state)
    if programs is not None:
        query = query.where(held.c.program_id.in_(programs))
    if program_id is not None:
        query = query.where(held.c.program_id == program_id)
    if reason is not None:  # the reasons column is JSON written by json.dumps: each finding names its "rule"
        pattern = '"rule": ' + json.dumps(reason, ensure_ascii=False)
        pattern = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(held.c.reasons.like(f"%{pattern}%", escape="\\"))
    return query


QUEUE_RANK = case((held.c.severity == "urgent", 0), else_=1)  # urgent items first (relay.console.urgent)


async def held_page(connection: AsyncConnection, *, state: str | None = "held", programs: list[str] | None = None,
                    program_id: str | None = None, reason: str | None = None, limit: int = 50,
                    after: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the queue in its order (urgent first, then oldest first), with the sender's and the
    recipient's handles, in one query; filters in SQL (`programs`: the ones the reader may see, None: all).
    The page is chosen from the queue's own rows first (sorted there), and only its rows are joined to
    their messages and members: a queue of many thousands costs a sort of small rows, not a read of every
    held message. Returns the rows and the cursor of the next page (None on the last page)."""
    order = [QUEUE_RANK, held.c.held_at, held.c.message_id]
    chosen = _filtered(select(held.c.message_id, QUEUE_RANK.label("rank")).order_by(*order).limit(limit + 1),
                       state=state, programs=programs, program_id=program_id, reason=reason)
    if after is not None:
        chosen = chosen.where(keyset.after(order, keyset.decode(after, (int, datetime, str))))
    page_rows = chosen.subquery("page")
    sender, recipient = members.alias("sender"), members.alias("recipient")
    query = (
        select(held, messages.c.subject, messages.c.sender_id, messages.c.recipient_id,
               sender.c.handle.label("sender_handle"), recipient.c.handle.label("recipient_handle"),
               page_rows.c.rank)
        .select_from(page_rows)
        .join(held, held.c.message_id == page_rows.c.message_id)
        .join(messages, messages.c.id == held.c.message_id)
        .join(sender, sender.c.id == messages.c.sender_id)
        .outerjoin(recipient, recipient.c.id == messages.c.recipient_id)
        .order_by(page_rows.c.rank, held.c.held_at, held.c.message_id)
    )
    found = [_row(row) for row in (await connection.execute(query)).all()]
    more = len(found) > limit
    found = found[:limit]
    cursor = keyset.encode([found[-1]["rank"], found[-1]["held_at"], found[-1]["message_id"]]) if more else None
    return found, cursor


async def count_held(connection: AsyncConnection, *, state: str | None = "held", programs: list[str] | None = None,
                     program_id: str | None = None, reason: str | None = None) -> int:
    query = _filtered(select(func.count()).select_from(held), state=state, programs=programs,
                      program_id=program_id, reason=reason)
    return int((await connection.execute(query)).scalar_one())


async def recent_decisions(connection: AsyncConnection, *, programs: list[str] | None = None,
                           program_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Decided items (released, rejected, automatic rejections), newest first, `limit` of them (chosen
    from the queue's own rows, then joined to their messages, as in held_page)."""
    newest = [func.coalesce(held.c.decided_at, held.c.held_at).desc(), held.c.message_id.desc()]
    chosen = _filtered(select(held.c.message_id).where(held.c.state != "held").order_by(*newest).limit(limit),
                       state=None, programs=programs, program_id=program_id, reason=None).subquery("chosen")
    query = (select(held, messages.c.subject, messages.c.sender_id, messages.c.recipient_id)
             .select_from(chosen)
             .join(held, held.c.message_id == chosen.c.message_id)
             .join(messages, messages.c.id == held.c.message_id)
             .order_by(*newest))
    return [_row(row) for row in (await connection.execute(query)).all()]


async def held_reasons(connection: AsyncConnection, *, programs: list[str] | None = None) -> list[str]:
    """The rules that hold mail waiting in the queue, each once (for the console's filter): one query that
    reads each waiting row's findings in the database (SQLite's json_each, PostgreSQL's
    jsonb_array_elements) and returns the distinct rule names, not every row's reasons."""
    rule: ColumnElement[Any]
    if connection.dialect.name == "postgresql":
        finding = func.jsonb_array_elements(cast(held.c.reasons, JSONB)).table_valued("value").alias("finding")
        rule = finding.c.value.op("->>")(literal_column("'rule'"))
    else:
        finding = func.json_each(held.c.reasons).table_valued("value").alias("finding")
        rule = func.json_extract(finding.c.value, literal_column("'$.rule'"))
    query = _filtered(select(rule.label("rule")).select_from(held).join(finding, true()).distinct(),
                      state="held", programs=programs, program_id=None, reason=None)
    return sorted(str(name) for name in (await connection.execute(query)).scalars() if name is not None)


async def held_groups(connection: AsyncConnection) -> list[tuple[str, str]]:
    """(program, policy) of the mail waiting in the queue (state held), each once."""
    query = select(held.c.program_id, held.c.policy).where(held.c.state == "held").distinct()
    return [(row.program_id, row.policy) for row in (await connection.execute(query)).all()]


async def due_for(connection: AsyncConnection, program_id: str, policy: str, column: str, held_before: datetime,
                  *, limit: int, after: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
    """Held rows of (program, policy) still without the sweep mark `column`, held before `held_before`,
    oldest first, `limit` at a time after the keyset cursor `after` (held_at, message_id)."""
    mark_column = getattr(held.c, column)
    query = (
        select(held, messages.c.subject, messages.c.sender_id, messages.c.recipient_id)
        .join(messages, messages.c.id == held.c.message_id)
        .where(held.c.state == "held", held.c.program_id == program_id, held.c.policy == policy,
               mark_column.is_(None), held.c.held_at < held_before)
        .order_by(held.c.held_at, held.c.message_id).limit(limit)
    )
    if after is not None:
        at, message_id = after
        query = query.where((held.c.held_at > at) | ((held.c.held_at == at) & (held.c.message_id > message_id)))
    return [_row(row) for row in (await connection.execute(query)).all()]


async def get_held(connection: AsyncConnection, message_id: str) -> dict[str, Any] | None:
    query = (
        select(held, messages.c.subject, messages.c.sender_id, messages.c.recipient_id)
        .join(messages, messages.c.id == held.c.message_id)
        .where(held.c.message_id == message_id)
    )
    row = (await connection.execute(query)).first()
    return None if row is None else _row(row)


async def add_approval(connection: AsyncConnection, item: dict[str, Any], moderator: str,
                       *, from_cli: bool = False) -> list[str]:
    """Record `moderator`'s release; returns the approvals now standing (each moderator counts once).
    `from_cli`: the approval came from the command line (the one the CLI may give; see relay.safeguarding)."""
    approvals = list(dict.fromkeys([*item["approvals"], moderator]))
    values: dict[str, Any] = {"approvals": json.dumps(approvals, ensure_ascii=False)}
    if from_cli:
        values["cli_approval"] = moderator
    await connection.execute(
        update(held).where(held.c.message_id == item["message_id"], held.c.state == "held").values(values)
    )
    return approvals


async def mark_escalated(connection: AsyncConnection, message_id: str, moderator: str, now: datetime) -> None:
    """A moderator escalated the item: it shows as escalated, and counts as acted upon."""
    await connection.execute(
        update(held).where(held.c.message_id == message_id, held.c.state == "held")
        .values(escalated_by=moderator, escalated_at=now)
    )


async def close_hold(
    connection: AsyncConnection, message_id: str, state: str, moderator: str, now: datetime,
    reason: str | None = None,
) -> bool:
    """held -> released | rejected; False when someone else decided first (nothing to do then)."""
    result = await connection.execute(
        update(held).where(held.c.message_id == message_id, held.c.state == "held")
        .values(state=state, decided_at=now, decided_by=moderator, reject_reason=reason)
    )
    return bool(result.rowcount)


async def mark(connection: AsyncConnection, message_ids: list[str], column: str, now: datetime,
               state: str = "held") -> list[str]:
    """Set a sweep mark (notified_at, reminded_at, escalated_at, urgent_followup_at) where still unset, on rows
    in `state`; returns those marked now."""
    marked = []
    for message_id in message_ids:
        result = await connection.execute(
            update(held).where(held.c.message_id == message_id, held.c.state == state,
                               getattr(held.c, column).is_(None))
            .values({column: now})
        )
        if result.rowcount:
            marked.append(message_id)
    return marked


def summary(item: dict[str, Any]) -> dict[str, Any]:
    """A held item as the CLI's --json and the console's API show it (the same fields in both)."""
    return {
        "id": item["message_id"], "pair_id": item["pair_id"], "program": item["program_id"],
        "policy": item["policy"], "state": item["state"], "subject": item["subject"], "held_at": item["held_at"],
        "reasons": [{k: r.get(k) for k in ("rule", "kind", "match", "action")} for r in item["reasons"]],
        "release_requires": item["release_requires"], "approvals": item["approvals"],
        "decided_at": item["decided_at"], "decided_by": item["decided_by"], "reject_reason": item["reject_reason"],
        "severity": item["severity"], "automatic": bool(item["automatic"]), "escalated_by": item["escalated_by"],
    }
