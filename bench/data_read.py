"""DATA reading cost on the event loop: aiosmtpd's line-by-line DATA against the relay's bulk DATA.

One process, one event loop; a client thread (smtplib) sends the same large message to a stock aiosmtpd
session and to the relay's RelaySession (relay/smtp/server.py, bulk DATA from relay/smtp/data.py), both with
a handler that only answers 250. Printed: CPU seconds of the event-loop thread per message (time.thread_time,
so other processes on a shared machine change wall time but hardly this figure), and the ratio. Like `serve`,
the bench has glibc mmap every block of 256 KB or more (relay/memory.py), which makes each such copy cost page
faults.

Usage: .venv/bin/python bench/data_read.py [--mb 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import smtplib
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay import memory
from relay.smtp.limits import ConnectionLimits, Ticket
from relay.smtp.server import RelaySession


class Answer:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return f"250 got {len(envelope.original_content or b'')} bytes"


def message(megabytes: int) -> bytes:
    blob = base64.encodebytes(os.urandom(megabytes * 750_000)).replace(b"\n", b"\r\n")
    return (b"From: a@client.test\r\nTo: b@relay.test\r\nSubject: draft\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + blob)


def send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
        client.sendmail("a@client.test", ["b@relay.test"], raw)


async def loop_cpu_per_message(make: Any, raw: bytes, rounds: int) -> float:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await asyncio.to_thread(send, port, raw)  # warm-up
        start = time.thread_time()
        for _ in range(rounds):
            await asyncio.to_thread(send, port, raw)
        return (time.thread_time() - start) / rounds
    finally:
        server.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    memory.return_large_blocks()  # as `serve` runs: every block of 256 KB or more is mmapped
    raw = message(args.mb)
    options = {"hostname": "bench.test", "decode_data": False, "enable_SMTPUTF8": True,
               "data_size_limit": 2 * len(raw)}
    limits = ConnectionLimits(100, 0, 0)

    def relay_session() -> RelaySession:
        ticket = limits.admit("127.0.0.1")
        assert isinstance(ticket, Ticket)
        return RelaySession(Answer(), ticket, 300.0, 300.0, **options)  # type: ignore[arg-type]

    stock = await loop_cpu_per_message(lambda: SMTP(Answer(), **options), raw, args.rounds)
    bulk = await loop_cpu_per_message(relay_session, raw, args.rounds)
    lines = raw.count(b"\n")
    print(f"message: {len(raw) / 1e6:.1f} MB, {lines} lines, {args.rounds} rounds each")
    print(f"aiosmtpd line-by-line DATA: {stock * 1000:.1f} ms of event-loop CPU per message")
    print(f"relay bulk DATA:            {bulk * 1000:.1f} ms of event-loop CPU per message")
    print(f"bulk/line-by-line loop CPU ratio: {bulk / stock:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
