"""The smarthost gets each outbound message exactly as aiosmtplib's own `sendmail` would have sent it, although
the relay puts it in wire form with bulk bytes operations (relay/delivery/transports.py `wire_form`).

Both go to real aiosmtpd servers on loopback; what each server received is compared byte for byte.
"""

from __future__ import annotations

import aiosmtplib
import pytest

from relay.config import DeliveryConfig
from relay.delivery.transports import PermanentFailure, SmtpTransport
from tests.support import Sink

BODIES = [
    ("plain CRLF", b"Subject: a\r\n\r\nhello\r\n"),
    ("dot lines", b"Subject: a\r\n\r\n.hidden\r\n.\r\n..two\r\nend.\r\n"),
    ("starts with a dot", b".odd: header\r\n\r\nbody\r\n"),
    ("bare LF and CR", b"Subject: a\n\nline\nother\rthird\r\n.\nlast"),
    ("no final line ending", b"Subject: a\r\n\r\nno newline at the end"),
    ("8-bit", "Subject: caf\u00e9\r\n\r\n\u00fcber\r\n".encode()),
]


@pytest.mark.parametrize(("name", "raw"), BODIES, ids=[name for name, _ in BODIES])
async def test_the_smarthost_receives_what_aiosmtplib_sendmail_sends(name: str, raw: bytes) -> None:
    ours, theirs = await Sink().start(), await Sink().start()
    transport = SmtpTransport(DeliveryConfig(transport="smtp", host="127.0.0.1", port=ours.port), "relay.test")
    try:
        reply = await transport.send("bounce@relay.test", "someone@example.org", raw)
        assert "sink stored it" in reply
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=theirs.port, timeout=10)
        await client.connect()
        options = ["BODY=8BITMIME"] if not raw.isascii() else []
        await client.sendmail("bounce@relay.test", ["someone@example.org"], raw, mail_options=options)
        await client.quit()
        got, expected = (await ours.wait_for(1))[0], (await theirs.wait_for(1))[0]
        assert got.raw == expected.raw, name
        assert (got.mail_from, got.rcpt_tos) == ("bounce@relay.test", ["someone@example.org"])
    finally:
        await transport.close()
        await ours.stop()
        await theirs.stop()


async def test_a_refused_data_is_a_permanent_failure_and_the_next_message_goes_through() -> None:
    sink = await Sink().start()
    sink.handler.scripted.append("554 5.7.1 not today")
    transport = SmtpTransport(DeliveryConfig(transport="smtp", host="127.0.0.1", port=sink.port), "relay.test")
    try:
        with pytest.raises(PermanentFailure, match=r"554 5\.7\.1 not today"):
            await transport.send("bounce@relay.test", "someone@example.org", b"Subject: a\r\n\r\nx\r\n")
        await transport.send("bounce@relay.test", "someone@example.org", b"Subject: b\r\n\r\ny\r\n")
        assert [r.message["Subject"] for r in await sink.wait_for(1)] == ["b"]
    finally:
        await transport.close()
        await sink.stop()
