"""DATA read in bulk (relay/smtp/data.py) means what aiosmtpd's line-by-line DATA means, byte for byte.

The oracle is a stock aiosmtpd 1.4.6 server on loopback, sent the same wire bytes over a real socket. Our reader
is driven through a real asyncio.StreamReader fed in many different chunkings (every two-way split, one byte at a
time), because the terminator, a CRLF or a stuffed dot can straddle the chunks the socket delivers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from relay.service import Relay
from relay.smtp.data import SPOOL_AT, BulkTurns, Data, Outcome, read_data
from relay.smtp.limits import ConnectionLimits, Ticket
from relay.smtp.server import LARGE_AT_ONCE, RelaySession
from relay.store.schema import messages
from tests.support import (
    MENTEE,
    Layout,
    OneTurn,
    Sink,
    acli,
    acreate_pair,
    eventually,
    rows,
    send,
    simple_message,
)

LINE_LIMIT = SMTP.line_length_limit
NEXT_COMMAND = b"NOOP\r\n"

# (name, wire bytes after the 354, up to and including the lone dot)
STREAMS = [
    ("empty message", b".\r\n"),
    ("one line", b"hello\r\n.\r\n"),
    ("dot-stuffed lines", b"Subject: x\r\n\r\n..leading dot\r\n...two\r\nmid.dle\r\n.\r\n"),
    ("a line of only a dot, stuffed", b"a\r\n..\r\nb\r\n.\r\n"),
    ("stuffed first line", b"..first\r\nsecond\r\n.\r\n"),
    ("sentences ending in dots", b"One.\r\nTwo.\r\n\r\nThree.\r\n.\r\n"),
    ("smuggling: bare LF dot bare LF", b"a\r\n\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<v@y>\r\n.\r\n"),
    ("smuggling: bare LF dot CRLF", b"a\n.\r\nMAIL FROM:<evil@x.example>\r\n.\r\n"),
    ("smuggling: CRLF dot bare LF", b"a\r\n.\nDATA\r\nb\r\n.\r\n"),
    ("smuggling: bare CR dot CRLF", b"a\r.\r\nb\r\n.\r\n"),
    ("smuggling: CRLF dot bare CR", b"a\r\n.\rb\r\n.\r\n"),
    ("bare CRs and LFs kept", b"a\rb\nc\r\r\n\n\r\n.\r\n"),
    ("line at the line limit", b"x" * (LINE_LIMIT - 2) + b"\r\n.\r\n"),
    ("line one byte over the line limit", b"x" * (LINE_LIMIT - 1) + b"\r\nafter\r\n.\r\n"),
    ("long line then more", b"y" * 5000 + b"\r\nz\r\n.\r\n"),
    ("8-bit and UTF-8", "Subject: caf\u00e9\r\n\r\n\u00fcber \u2603\r\n".encode() + b"\xff\xfe\r\n.\r\n"),
]


class Recorder:
    def __init__(self) -> None:
        self.content: bytes | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.content = bytes(envelope.original_content or b"")
        return "250 stored"


async def aiosmtpd_reads(wire: bytes, size_limit: int) -> Data:
    """What stock aiosmtpd makes of `wire` after its 354, and that it then answers the next command."""
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(recorder, hostname="oracle.test", decode_data=False, enable_SMTPUTF8=True,
                     data_size_limit=size_limit), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reply(reader)
        for command in (b"EHLO client.test\r\n", b"MAIL FROM:<a@client.test>\r\n", b"RCPT TO:<b@oracle.test>\r\n"):
            writer.write(command)
            assert (await reply(reader)).startswith(b"250")
        writer.write(b"DATA\r\n")
        assert (await reply(reader)).startswith(b"354")
        writer.write(wire + NEXT_COMMAND)
        code = (await reply(reader))[:3]
        assert (await reply(reader)).startswith(b"250")  # the NOOP after the lone dot is a command again
    finally:
        writer.close()
        server.close()
    outcome = {b"250": Outcome.NOMINAL, b"552": Outcome.TOO_MUCH, b"500": Outcome.TOO_LONG}[code]
    return Data(outcome, recorder.content if outcome is Outcome.NOMINAL else b"")


async def reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def bulk_reads(pieces: list[bytes], size_limit: int, turns: BulkTurns | None = None,
                     spool_at: int = SPOOL_AT) -> tuple[Data, bytes]:
    """Our reader over a real StreamReader fed `pieces` one by one; returns its result (a spooled message read
    back from its file) and what it left."""
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    reading = asyncio.ensure_future(read_data(reader, size_limit, LINE_LIMIT, turns, spool_at))
    for piece in pieces:
        reader.feed_data(piece)
        await OneTurn()  # the reader takes what came before the next piece does
    data = await asyncio.wait_for(reading, 10)
    reader.feed_eof()
    if data.spool is not None:
        data = Data(data.outcome, data.spool.read())
    return data, await reader.read()


def chunkings(wire: bytes) -> list[list[bytes]]:
    whole = wire + NEXT_COMMAND
    splits = [[whole[:cut], whole[cut:]] for cut in range(1, len(whole))]
    return [[whole], [bytes([b]) for b in whole], *splits]


@pytest.mark.parametrize(("name", "wire"), STREAMS, ids=[name for name, _ in STREAMS])
async def test_bulk_data_reads_what_aiosmtpd_reads_in_every_chunking(name: str, wire: bytes) -> None:
    expected = await aiosmtpd_reads(wire, size_limit=1_000_000)
    for pieces in chunkings(wire)[:300]:
        data, left = await bulk_reads(pieces, size_limit=1_000_000)
        assert data == expected, (name, pieces)
        assert left == NEXT_COMMAND, (name, pieces)  # nothing after the lone dot was taken as message bytes


async def test_smuggled_end_of_data_stays_inside_the_message() -> None:
    wire = b"Subject: hi\r\n\r\nbody\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<v@y.example>\r\nDATA\r\nfake\r\n.\r\n"
    data, left = await bulk_reads([wire + NEXT_COMMAND], size_limit=1_000_000)
    assert data.outcome is Outcome.NOMINAL
    assert b"MAIL FROM:<evil@x.example>" in data.content and data.content.endswith(b"fake\r\n")
    assert left == NEXT_COMMAND


@pytest.mark.parametrize("over", [0, 1])
async def test_size_limit_counts_what_aiosmtpd_counts(over: int) -> None:
    wire = b"Subject: x\r\n\r\n..a\r\n" + b"b" * 70 + b"\r\n.\r\n"
    counted = len(wire) - 3  # the stream bytes before the lone dot, stuffing dots included
    limit = counted - over
    expected = await aiosmtpd_reads(wire, size_limit=limit)
    assert expected.outcome is (Outcome.TOO_MUCH if over else Outcome.NOMINAL)
    for pieces in chunkings(wire)[:120]:
        data, left = await bulk_reads(pieces, size_limit=limit)
        assert data == expected and left == NEXT_COMMAND


async def _archived(layout: Layout) -> list[bytes]:
    return [bytes(row.raw) for row in await rows(layout, select(messages.c.raw).order_by(messages.c.id))]


@pytest.mark.parametrize("over", [0, 1])
async def test_relay_accepts_a_message_exactly_at_the_size_limit_and_refuses_one_byte_more(
        relay: Relay, layout: Layout, sink: Sink, over: int) -> None:
    pair = await acreate_pair(layout)
    limit = 2 * 1024 * 1024  # tests/support.py's max_message_size
    head = simple_message(MENTEE["email"], pair["mentor_alias"], "big", "start\n.dotted line\n")
    head = head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as it goes on the wire
    line = b"y" * 76 + b"\r\n"
    stuffing = head.count(b"\r\n.")  # aiosmtplib adds one dot per such line, and the limit counts it
    filler = limit + over - len(head) - stuffing
    raw = head + line * (filler // len(line)) + b"z" * (filler % len(line) - 2) + b"\r\n"
    assert len(raw) + stuffing == limit + over
    code, text = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
    if over:
        assert code == 552, text
        assert await _archived(layout) == []
    else:
        assert code == 250, text
        assert await _archived(layout) == [raw]  # byte-exact, the dot unstuffed
        assert len(await sink.wait_for(1)) == 1


async def test_a_large_message_is_chained_with_digests_hashed_off_the_loop_and_verifies(
        relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    raw = simple_message(MENTEE["email"], pair["mentor_alias"], "large", "start\n" + "word " * 60_000 + "\n")
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    code, text = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
    assert code == 250, text
    assert len(await sink.wait_for(1)) == 1
    assert await _archived(layout) == [raw]
    verified = await acli(layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def random_stream(rng: random.Random) -> bytes:
    """Many lines of the kinds a long message has (base64, text with dots, bare CRs and LFs), some near the line
    limit; a stuffed dot may start any line. Ends with the lone dot."""
    lines = []
    over = [1, 2] if rng.random() < 0.5 else []  # half the streams have lines just over the limit
    for _ in range(rng.randrange(20, 400)):
        kind = rng.random()
        if kind < 0.5:
            line = b"QUJD" * 19  # a base64 line
        elif kind < 0.8:
            line = rng.choice([b"Hello.", b"..", b".x", b"a.\r", b"\nb", b"c\rd", b""]) * rng.randrange(1, 30)
        elif kind < 0.9:
            line = b"z" * (LINE_LIMIT - 2 + rng.choice([-600, -1, 0, 0, *over]))  # at, under or over the limit
        else:
            line = b"+/" * rng.randrange(1, 40)
        lines.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(lines) + b"\r\n.\r\n"


async def test_long_streams_in_random_chunks_read_as_aiosmtpd_reads_them() -> None:
    """Long streams cut where the socket might cut them: the line-length check (which proves most chunks short
    without splitting them into lines) and the dot-unstuffing (decided chunk by chunk) give aiosmtpd's answer:
    the same 250 content, or the same 500 for a line over the limit."""
    rng = random.Random(1303)
    outcomes = set()
    for _ in range(40):
        wire = random_stream(rng)
        expected = await aiosmtpd_reads(wire, size_limit=10_000_000)
        outcomes.add(expected.outcome)
        whole = wire + NEXT_COMMAND
        for _ in range(4):
            cuts = sorted(rng.sample(range(1, len(whole)), rng.randrange(1, 12)))
            pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
            data, left = await bulk_reads(pieces, size_limit=10_000_000)
            assert data == expected and left == NEXT_COMMAND, cuts
    assert outcomes == {Outcome.NOMINAL, Outcome.TOO_LONG}  # both answers were put to the test


async def test_large_transfers_share_the_loop_a_few_chunks_per_turn() -> None:
    """BulkTurns: however many large transfers arrive at once, at most `per_turn` of their chunks are read in one
    turn of the event loop, so a turn stays short for everything else (a commit's steps, other sessions'
    replies); and every transfer still gets its turns (none waits for the others to finish)."""
    loop = asyncio.get_running_loop()
    turn = 0
    ticking = True

    def tick() -> None:  # one call per turn of the loop: a callback scheduled now runs in the next turn
        nonlocal turn
        turn += 1
        if ticking:
            loop.call_soon(tick)

    tick()
    turns = BulkTurns(per_turn=2)
    taken: list[tuple[int, int]] = []  # (turn, transfer)

    async def transfer(number: int) -> None:
        for _ in range(20):
            await turns.take()
            taken.append((turn, number))

    await asyncio.wait_for(asyncio.gather(*(transfer(n) for n in range(8))), 10)
    ticking = False
    per_turn = collections.Counter(t for t, _ in taken)
    assert len(taken) == 160 and max(per_turn.values()) <= 2
    first_turn = {n: min(t for t, m in taken if m == n) for n in range(8)}
    last_turn = {n: max(t for t, m in taken if m == n) for n in range(8)}
    assert max(first_turn.values()) < min(last_turn.values())  # all eight were under way at once


async def test_random_streams_read_with_bulk_turns_read_the_same() -> None:
    rng = random.Random(1304)
    for _ in range(10):
        wire = random_stream(rng)
        expected = await aiosmtpd_reads(wire, size_limit=10_000_000)
        whole = wire + NEXT_COMMAND
        pieces = [whole[i:i + 700] for i in range(0, len(whole), 700)]
        data, left = await bulk_reads(pieces, size_limit=10_000_000, turns=BulkTurns(per_turn=1))
        assert data == expected and left == NEXT_COMMAND


def spool_files() -> int:
    """Temporary files this process holds open (a spool file has no name once open: "... (deleted)")."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, gone already
            continue
        found += target.startswith(tempfile.gettempdir()) and target.endswith("(deleted)")
    return found


async def test_random_streams_spooled_to_a_file_read_the_same() -> None:
    """A message past the spool threshold waits in a temporary file, not in memory: read back, it is what
    aiosmtpd reads (unstuffed dots included), and its file is closed once read."""
    rng = random.Random(1305)
    files = spool_files()
    spooled = stuffed = 0
    for _ in range(20):
        wire = random_stream(rng)
        expected = await aiosmtpd_reads(wire, size_limit=10_000_000)
        whole = wire + NEXT_COMMAND
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        for piece in [whole[i:i + 4096] for i in range(0, len(whole), 4096)]:
            reader.feed_data(piece)
        data = await asyncio.wait_for(read_data(reader, 10_000_000, LINE_LIMIT, spool_at=2048), 10)
        if data.spool is not None:
            spooled += 1
            stuffed += data.spool.stuffed
            assert data.content == b"" and spool_files() == files + 1
            data = Data(data.outcome, data.spool.read())
        assert data == expected
        assert spool_files() == files
    assert spooled >= 8 and stuffed >= 4  # the others have a line too long (500)


class Held:
    """An aiosmtpd handler that holds each large message until let go, and counts how many it holds at once."""

    def __init__(self) -> None:
        self.holding = 0
        self.most = 0
        self.received: list[bytes] = []
        self.go = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = bytes(envelope.original_content or b"")
        if len(content) >= SPOOL_AT:
            self.holding += 1
            self.most = max(self.most, self.holding)
            try:
                await self.go.wait()
            finally:
                self.holding -= 1
        self.received.append(content)
        return "250 taken"


@contextlib.asynccontextmanager
async def relay_sessions(handler: Held, large_messages: asyncio.Semaphore | None = None
                         ) -> AsyncIterator[tuple[int, ConnectionLimits]]:
    """A loopback server of RelaySessions (as SmtpServer makes them) around `handler`: its port and its limits."""
    limits = ConnectionLimits(100, 0, 0)

    def session() -> RelaySession:
        ticket = limits.admit("127.0.0.1")
        assert isinstance(ticket, Ticket)
        return RelaySession(handler, ticket, 60.0, 60.0, BulkTurns(), large_messages,  # type: ignore[arg-type]
                            hostname="relay.test", decode_data=False, data_size_limit=10_000_000)

    server = await asyncio.get_running_loop().create_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], limits
    finally:
        server.close()


async def after_354(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to `port` that has said EHLO, MAIL, RCPT and DATA, and been told 354."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    for command in (b"EHLO client.test\r\n", b"MAIL FROM:<a@client.test>\r\n", b"RCPT TO:<b@relay.test>\r\n",
                    b"DATA\r\n"):
        writer.write(command)
        assert (await reply(reader))[:1] in (b"2", b"3")
    return reader, writer


async def smtp_data(port: int, wire: bytes, *, leave: bool = False) -> bytes:
    """One SMTP transaction with DATA `wire` (dot-stuffed, without its end); the reply code, or b"" when the
    client leaves (`leave`) as soon as its DATA is written, without waiting for the reply."""
    reader, writer = await after_354(port)
    try:
        writer.write(wire + b".\r\n")
        await writer.drain()
        return b"" if leave else (await reply(reader))[:3]
    finally:
        writer.close()


async def test_large_messages_are_worked_on_a_few_at_a_time_and_small_ones_pass_them() -> None:
    """Spooled messages wait in their files for a turn: at most LARGE_AT_ONCE reach the handler at once, a small
    message is answered meanwhile, every large one then gets its 250 with its exact bytes, and the file of a
    client that left while its message waited is closed, its message never handled."""
    handler = Held()
    files = spool_files()
    async with relay_sessions(handler, asyncio.Semaphore(LARGE_AT_ONCE)) as (port, limits):
        larges = [b"Subject: %d\r\n\r\n" % n + (b"x" * 74 + b"\r\n") * 16_000 for n in range(5)]
        sending = [asyncio.ensure_future(smtp_data(port, wire)) for wire in larges[:4]]
        await eventually(lambda: handler.holding == LARGE_AT_ONCE and spool_files() == files + 2)
        assert await asyncio.wait_for(smtp_data(port, b"Subject: small\r\n\r\nhi\r\n"), 10) == b"250"
        assert await asyncio.wait_for(smtp_data(port, larges[4], leave=True), 10) == b""
        await eventually(lambda: limits.open == 4 and spool_files() == files + 2)  # the one who left: closed
        assert handler.holding == LARGE_AT_ONCE and not any(s.done() for s in sending)
        handler.go.set()
        codes = await asyncio.wait_for(asyncio.gather(*sending), 30)
        assert codes == [b"250"] * 4 and handler.most == LARGE_AT_ONCE
        assert sorted(handler.received[1:]) == sorted(larges[:4])  # the small one first; not the one who left
        await eventually(lambda: spool_files() == files)


async def test_a_large_message_that_cannot_be_spooled_is_refused_for_now_and_the_session_goes_on(
        relay: Relay, layout: Layout, sink: Sink, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No room for a large message's temporary file (here: TMPDIR is gone): 452, a temporary refusal the client
    retries, nothing archived; the rest of its DATA is still read, so the session's next message is taken."""
    pair = await acreate_pair(layout)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    large = simple_message(MENTEE["email"], pair["mentor_alias"], "large", "start\n" + "word " * 300_000 + "\n")
    small = simple_message(MENTEE["email"], pair["mentor_alias"], "small", "hello\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", layout.smtp_port)
    try:
        await reply(reader)
        replies = []
        for raw in (large, small):
            for command in (b"EHLO client.test\r\n", f"MAIL FROM:<{MENTEE['email']}>\r\n".encode(),
                            f"RCPT TO:<{pair['mentor_alias']}>\r\n".encode(), b"DATA\r\n"):
                writer.write(command)
                assert (await reply(reader))[:1] in (b"2", b"3")
            wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\r\n.", b"\r\n..")
            writer.write(wire + b".\r\n")
            replies.append(await reply(reader))
    finally:
        writer.close()
    assert replies[0].startswith(b"452 4.3.1"), replies
    assert replies[1].startswith(b"250"), replies
    archived = await _archived(layout)
    assert len(archived) == 1 and b"Subject: small" in archived[0]
    assert len(await sink.wait_for(1)) == 1


async def test_a_client_that_leaves_in_the_middle_of_a_large_data_leaves_no_file_open() -> None:
    """A client gone after 1.5 MB of DATA without its end: the message was being spooled; its file is closed and
    nothing reaches the handler."""
    handler = Held()
    files = spool_files()
    async with relay_sessions(handler) as (port, limits):
        _, writer = await after_354(port)
        writer.write((b"x" * 74 + b"\r\n") * 20_000)  # 1.5 MB: spooled, and no end
        await writer.drain()
        await eventually(lambda: spool_files() == files + 1)
        writer.close()
        await eventually(lambda: limits.open == 0 and spool_files() == files)
        assert handler.received == []
