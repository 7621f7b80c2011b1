"""Getting a pair's (or a group's) conversation out of the archive: mbox or a zip of .eml files.

By default the export holds what the participants saw: the anonymised copies the relay delivered
(kind "relay", state "sent"), both directions, in the order they were delivered. Notices are left out
(they are addressed to real addresses). `original=True` gives the messages as received instead
(byte-exact, real addresses included: for admins). Purged messages (retention) have no body left and
are left out. Files are written to a temporary name and renamed, so a failed export leaves no
half-written file. mbox files are written by Python's mailbox module (mboxrd-style From quoting).
"""

from __future__ import annotations

import email
import mailbox
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.store.schema import messages, outbound

FORMATS = ("mbox", "eml-zip")


@dataclass(frozen=True)
class Exported:
    id: str  # the outbound entry (copies) or the message (originals)
    sender: str  # the envelope sender for the mbox From_ line
    at: datetime
    raw: bytes


async def delivered_copies(connection: AsyncConnection, pair_id: int) -> list[Exported]:
    """The anonymised copies delivered in the pair (or group), in the order they were delivered. A group
    message has one copy per recipient, differing only in its thread ids: the first delivered stands for all."""
    when = func.coalesce(outbound.c.sent_at, outbound.c.created_at)
    query = (select(outbound.c.id, outbound.c.message_id, outbound.c.mail_from, outbound.c.raw, outbound.c.sent_at,
                    outbound.c.created_at)
             .where(outbound.c.pair_id == pair_id, outbound.c.kind == "relay", outbound.c.state == "sent",
                    func.length(outbound.c.raw) > 0)
             .order_by(when, outbound.c.created_at, outbound.c.id))
    found = []
    seen: set[str] = set()
    for row in (await connection.execute(query)).all():
        if row.message_id is not None and row.message_id in seen:
            continue
        seen.add(row.message_id)
        sender = parseaddr(str(email.message_from_bytes(row.raw).get("From", "")))[1] or row.mail_from
        found.append(Exported(row.id, sender, row.sent_at or row.created_at, bytes(row.raw)))
    return found


async def originals(connection: AsyncConnection, pair_id: int) -> list[Exported]:
    """The pair's messages as received (byte-exact), in the order they arrived."""
    query = (select(messages.c.id, messages.c.envelope_from, messages.c.received_at, messages.c.raw)
             .where(messages.c.pair_id == pair_id, func.length(messages.c.raw) > 0)
             .order_by(messages.c.received_at, messages.c.id))
    return [Exported(row.id, row.envelope_from or "MAILER-DAEMON", row.received_at, bytes(row.raw))
            for row in (await connection.execute(query)).all()]


async def conversation(engine: AsyncEngine, pair_id: int, *, original: bool = False) -> list[Exported]:
    async with engine.connect() as connection:
        return await (originals(connection, pair_id) if original else delivered_copies(connection, pair_id))


def _write_mbox(items: list[Exported], path: Path) -> None:
    box = mailbox.mbox(str(path), create=True)
    try:
        box.lock()
        for item in items:
            message = mailbox.mboxMessage(item.raw)
            message.set_from(item.sender or "MAILER-DAEMON", item.at.timetuple())
            box.add(message)
        box.flush()
    finally:
        box.unlock()
        box.close()


def _write_zip(items: list[Exported], path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for number, item in enumerate(items, start=1):
            archive.writestr(f"{number:04d}-{item.id}.eml", item.raw)


def write(items: list[Exported], target: Path, fmt: str = "mbox") -> None:
    """Write `items` to `target` as a whole (temporary file, then rename); fmt is mbox or eml-zip."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    target = target.resolve()
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    os.unlink(temporary)  # mailbox creates the file itself
    try:
        (_write_mbox if fmt == "mbox" else _write_zip)(items, Path(temporary))
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def mbox_bytes(items: list[Exported]) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "conversation.mbox"
        _write_mbox(items, path)
        return path.read_bytes()


async def conversation_mbox(engine: AsyncEngine, pair_id: int) -> bytes:
    """One participant's own conversation, anonymised, as an mbox file's bytes: the copies delivered
    both ways in the pair (what each participant sent, as the partner received it, and the replies)."""
    return mbox_bytes(await conversation(engine, pair_id))


def attach_conversation(message: EmailMessage, mbox: bytes, pair_id: int) -> None:
    """Attach a conversation (from `conversation_mbox`) to a farewell mail, as application/mbox."""
    message.add_attachment(mbox, maintype="application", subtype="mbox",
                           filename=f"conversation-pair-{pair_id}.mbox")
