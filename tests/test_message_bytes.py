"""Message bytes are stored compressed and read back byte-exact (issue 14: a message's bytes once).

The store keeps messages.raw (as received) and outbound.raw (as delivered) through relay.store.rawbytes;
what the relay delivers, exports and verifies must be the very bytes it received and queued.
"""

from __future__ import annotations

import mailbox
import os
import zlib

import sqlalchemy as sa
from sqlalchemy import select

from relay.service import Relay
from relay.store import rawbytes
from relay.store.schema import messages, outbound
from tests.support import MENTEE, Layout, Sink, acli, acli_json, acreate_pair, eventually, rows, send, simple_message


def test_every_stored_form_reads_back_byte_exact() -> None:
    text = b"Subject: hello\r\n\r\n" + b"We talked about the essay again and again.\r\n" * 40
    noise = os.urandom(4000)  # incompressible: kept as is
    for value in (b"", text, noise, b"\x00starts with a NUL", b"\x00z" + zlib.compress(b"lookalike"),
                  b"x" * rawbytes.COMPRESS_MAX, b"\x00" + b"y" * rawbytes.COMPRESS_MAX):
        assert rawbytes.decode(rawbytes.encode(value)) == value
    assert len(rawbytes.encode(text)) < len(text) / 4
    assert rawbytes.encode(noise) == noise  # no copy, no tag
    assert rawbytes.encode(b"") == b""  # a purged body stays empty (the archive's tombstone)


async def test_accepted_mail_is_stored_compressed_and_delivered_verified_exported_as_received(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    body = "\n".join(f"Line {n}: the reading list for week {n % 7} and the notes on chapter {n % 5}."
                     for n in range(40))
    raw = simple_message(MENTEE["email"], pair["mentor_alias"], "Reading list", body)
    code, text = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
    assert code == 250, text
    (arrived,) = await sink.wait_for(1, timeout=20)
    await eventually(lambda: rows(layout, select(outbound.c.id).where(outbound.c.state == "sent")), timeout=20)

    (message,) = await rows(layout, select(messages.c.id, messages.c.raw, messages.c.size))
    wire = raw.replace(b"\n", b"\r\n")  # SMTP carries CRLF line ends
    assert message.raw == wire and message.size == len(wire)  # read through the store: as received
    (queued,) = await rows(layout, select(outbound.c.raw))
    # The smarthost got the queued bytes (after a DKIM header; the wire's line ends are CRLF).
    assert arrived.raw.endswith(queued.raw.replace(b"\n", b"\r\n"))

    # What the database file holds: tagged zlib data, several times smaller than the message.
    plain = sa.table("messages", sa.column("id"), sa.column("raw", sa.LargeBinary))
    plain_out = sa.table("outbound", sa.column("raw", sa.LargeBinary))
    (stored,) = await rows(layout, select(plain.c.raw))
    (stored_out,) = await rows(layout, select(plain_out.c.raw))
    for value in (bytes(stored.raw), bytes(stored_out.raw)):
        assert value.startswith(rawbytes.COMPRESSED)
        assert len(value) < len(wire) / 2
    assert zlib.decompress(bytes(stored.raw)[2:]) == wire

    verdict = await acli_json(layout, "archive", "verify", "--json")
    assert verdict["ok"] and verdict["entries"] >= 6, verdict
    mbox = layout.root / "pair.mbox"
    await acli(layout, "archive", "export", "--pair", str(pair["id"]), "-o", str(mbox))
    exported = [bytes(m.as_bytes()) for m in mailbox.mbox(str(mbox))]
    assert any(b"the reading list for week 3" in m for m in exported)
