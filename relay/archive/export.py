"""Getting a pair's (or a group's) conversation out of the archive: mbox or a zip of .eml files.

By default the export holds what the participants saw: the anonymised copies the relay delivered
(kind "relay", state "sent"), both directions, in the order they were delivered. Notices are left out
(they are addressed to real addresses). `original=True` gives the messages as received instead
(byte-exact, real addresses included: for admins). Purged messages (retention) have no body left and
are left out. Files are written to a temporary name and renamed, so a failed export leaves no
half-written file, and they are created readable by their owner only (0600): an export holds real
addresses (`--original`), or at least the words of minors.

mbox files are mboxrd: each message starts with a "From " line, its line endings are LF, and every line
of the message that matches `>*From ` gets one more ">" in front; a reader removes one ">" from each
line matching `>+From `, so a line such as ">From here" or "From here" in a body comes back exactly as it
was delivered (the older mboxo quoting, Python's mailbox writer's, cannot tell a quoted line from one
that began with ">"). Python's `mailbox.mbox` reads these files (it leaves the quoting in place).
"""

from __future__ import annotations

import email
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable
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


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_SENDER = re.compile(r"[^\x21-\x7e]")  # the From_ line's sender is one word of printable ASCII


def mboxrd_entry(raw: bytes, sender: str, at: datetime) -> bytes:
    """One message as an mboxrd entry: the From_ line, the message with LF line endings and its ">*From "
    lines quoted, and the blank line that ends the entry."""
    body = raw.replace(b"\r\n", b"\n")
    if not body.endswith(b"\n"):
        body += b"\n"
    envelope = _SENDER.sub("", sender) or "MAILER-DAEMON"
    stamp = time.asctime(at.utctimetuple())
    return b"From " + envelope.encode("ascii") + b" " + stamp.encode("ascii") + b"\n" + \
        _FROM_LINE.sub(rb">\1", body) + b"\n"


def mboxrd_unquote(body: bytes) -> bytes:
    """A message read from an mboxrd file (without its From_ line) as it was before quoting."""
    return _QUOTED_FROM.sub(rb"\1", body)


def mbox_bytes(items: list[Exported]) -> bytes:
    """`items` as an mboxrd file's bytes."""
    return b"".join(mboxrd_entry(item.raw, item.sender, item.at) for item in items)


def _write_mbox(items: list[Exported], handle: int) -> None:
    with os.fdopen(handle, "wb") as out:
        for item in items:
            out.write(mboxrd_entry(item.raw, item.sender, item.at))
        out.flush()
        os.fsync(out.fileno())


def _write_zip(items: list[Exported], handle: int) -> None:
    with os.fdopen(handle, "wb") as out:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for number, item in enumerate(items, start=1):
                archive.writestr(f"{number:04d}-{item.id}.eml", item.raw)
        out.flush()
        os.fsync(out.fileno())


def write_private(target: Path, fill: Callable[[int], None]) -> None:
    """Create `target` readable by its owner only (0600), as a whole: `fill(fd)` writes (and closes) a
    temporary file in the same folder, which then replaces `target`; a failure leaves nothing behind."""
    target = target.resolve()
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # mode 0600
    try:
        os.fchmod(handle, 0o600)
        fill(handle)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write(items: list[Exported], target: Path, fmt: str = "mbox") -> None:
    """Write `items` to `target` (0600, as a whole); fmt is mbox (mboxrd) or eml-zip."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    write_private(target, lambda handle: (_write_mbox if fmt == "mbox" else _write_zip)(items, handle))


async def conversation_mbox(engine: AsyncEngine, pair_id: int) -> bytes:
    """One participant's own conversation, anonymised, as an mbox file's bytes: the copies delivered
    both ways in the pair (what each participant sent, as the partner received it, and the replies)."""
    return mbox_bytes(await conversation(engine, pair_id))


def attach_conversation(message: EmailMessage, mbox: bytes, pair_id: int) -> None:
    """Attach a conversation (from `conversation_mbox`) to a farewell mail, as application/mbox."""
    message.add_attachment(mbox, maintype="application", subtype="mbox",
                           filename=f"conversation-pair-{pair_id}.mbox")
