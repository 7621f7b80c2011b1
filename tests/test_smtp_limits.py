"""The SMTP listener's transport-level defences: STARTTLS, connection limits, per-IP limits and timeouts.

A real relay runs in-process on 127.0.0.1; clients are raw asyncio streams (or aiosmtplib for STARTTLS), so
what is counted is exactly what a client sees on the wire. Per-IP limits are tested with the loopback
exemption turned off and with a clock the test moves, so the one-minute window passes without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import trustme

from relay.config import ConfigError, load_settings
from relay.service import Relay
from relay.smtp.limits import TOO_MANY, ConnectionLimits, Monotonic, Ticket, client_key
from relay.store.events import record
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acreate_pair,
    eventually,
    free_port,
    simple_message,
)

WAIT = 10.0  # seconds: the bound on every single network wait below

Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Starter = Callable[..., Awaitable[tuple[Relay, Layout]]]


class Ticker:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def start(tmp_path: Path, sink: Sink) -> AsyncIterator[Starter]:
    """Start a relay whose `smtp` section has the given overrides (optionally on a test clock)."""
    started: list[Relay] = []

    async def start_relay(smtp: dict[str, Any], clock: Monotonic | None = None) -> tuple[Relay, Layout]:
        layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=sink.port, overrides={"smtp": smtp})
        layout.write()
        settings = load_settings(layout.config)
        relay = Relay(settings) if clock is None else Relay(settings, monotonic=clock)
        await relay.start()
        started.append(relay)
        return relay, layout

    yield start_relay
    for relay in started:
        await relay.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[trustme.CA, dict[str, str]]:
    """A private CA and a certificate for 127.0.0.1 issued by it, as the smtp.tls_cert/tls_key files."""
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "relay.crt", tmp_path / "relay.key"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key_file))
    return authority, {"tls_cert": str(cert_file), "tls_key": str(key_file)}


async def connect(port: int, source: str | None = None) -> tuple[bytes, Client]:
    """Open a raw connection (from the loopback address `source` if given) and read the server's first line
    (the greeting, or a refusal)."""
    local = (source, 0) if source else None
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=local), WAIT)
    first = await asyncio.wait_for(reader.readline(), WAIT)
    return first, (reader, writer)


async def reply(reader: asyncio.StreamReader) -> bytes:
    """Read one (possibly multi-line) SMTP reply; returns its last line."""
    for _ in range(50):
        line = await asyncio.wait_for(reader.readline(), WAIT)
        if line[3:4] != b"-":
            return line
    raise AssertionError("a reply of more than 50 lines")


async def command(client: Client, text: str) -> bytes:
    reader, writer = client
    writer.write(text.encode() + b"\r\n")
    return await reply(reader)


async def close(client: Client) -> None:
    writer = client[1]
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):  # reset by the other side: closed all the same
        await asyncio.wait_for(writer.wait_closed(), WAIT)


async def greet(port: int) -> bytes:
    """Connect, read the first line, say QUIT if greeted, and close."""
    first, client = await connect(port)
    if first.startswith(b"220"):
        assert (await command(client, "QUIT")).startswith(b"221")
    await close(client)
    return first


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "relay.smtp" and r.getMessage().startswith("refusing SMTP connections")]


async def test_starttls_upgrades_and_the_message_is_delivered(
    start: Starter, sink: Sink, certificate: tuple[trustme.CA, dict[str, str]]
) -> None:
    authority, files = certificate
    relay, layout = await start(files)
    pair = await acreate_pair(layout)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)  # verifies that the relay shows the configured certificate for 127.0.0.1
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=layout.smtp_port, start_tls=False, timeout=WAIT)
    await client.connect()
    try:
        await client.ehlo()
        assert client.supports_extension("starttls")
        await client.starttls(tls_context=trusting)
        assert client.get_transport_info("cipher") is not None
        assert not client.supports_extension("starttls")  # the EHLO after the upgrade, inside TLS
        raw = simple_message(MENTEE["email"], pair["mentor_alias"], "over TLS", "Hello through an encrypted channel.")
        refused, response = await client.sendmail(MENTEE["email"], [pair["mentor_alias"]], raw)
        assert refused == {} and "queued as" in response
    finally:
        await client.quit()
    received = await sink.wait_for(1)
    assert received[0].rcpt_tos == [MENTOR["email"]]
    body = received[0].message.get_body(("plain",))
    assert body is not None and "encrypted channel" in body.get_content()
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)


STALL_TIMEOUT = 3.0  # seconds: the command timeout of the stalled-handshake test


async def test_a_stalled_tls_handshake_keeps_no_place_once_the_client_leaves(
    start: Starter, certificate: tuple[trustme.CA, dict[str, str]]
) -> None:
    # 3 s, not 1 s: on a loaded CI machine a second between EHLO's reply and STARTTLS has been seen, and the
    # session was cut before the handshake this test is about
    relay, layout = await start({**certificate[1], "command_timeout": f"{STALL_TIMEOUT:.0f}s"})
    first, client = await connect(layout.smtp_port)
    assert first.startswith(b"220")
    assert (await command(client, "EHLO client.example")).startswith(b"250")
    assert (await command(client, "STARTTLS")).startswith(b"220")
    # The client never starts the handshake. Past command_timeout the server neither writes plain text into
    # the TLS channel nor loses track of the session (asyncio's handshake timeout governs the handshake).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client[0].read(1), STALL_TIMEOUT + 0.5)
    assert relay.smtp.limits.open == 1
    await close(client)
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)
    assert await greet(layout.smtp_port) == b"220 relay.test mentor-relay\r\n"


async def test_max_connections_holds_under_200_concurrent_connections(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.smtp")
    relay, layout = await start({"max_connections": 50})  # loopback is exempt from the per-IP limits by default
    results = await asyncio.gather(*(connect(layout.smtp_port) for _ in range(200)))
    try:
        firsts = [first for first, _ in results]
        assert sum(first.startswith(b"220 ") for first in firsts) == 50
        refusals = [first for first in firsts if not first.startswith(b"220 ")]
        assert refusals == [b"421 4.7.0 Too many connections, try again later\r\n"] * 150
        for first, (reader, _) in results:  # a refused client is disconnected, never left hanging
            if first.startswith(b"421"):
                assert await asyncio.wait_for(reader.read(), WAIT) == b""
        lines = refusal_lines(caplog)
        assert len(lines) == 1 and "max_connections reached" in lines[0]  # 150 refusals, one log line
    finally:
        await asyncio.gather(*(close(client) for _, client in results))
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)
    assert (await greet(layout.smtp_port)).startswith(b"220 ")


async def test_connections_per_ip_are_limited_and_places_come_back(start: Starter) -> None:
    relay, layout = await start({"max_connections_per_ip": 3, "per_ip_limits_exempt": []})
    held = [await connect(layout.smtp_port) for _ in range(3)]
    assert all(first.startswith(b"220 ") for first, _ in held)
    assert await greet(layout.smtp_port) == b"421 4.7.0 Too many connections from your address, try again later\r\n"
    await close(held.pop()[1])
    await eventually(lambda: relay.smtp.limits.open == 2, timeout=WAIT)
    assert (await greet(layout.smtp_port)).startswith(b"220 ")
    for _, client in held:
        await close(client)
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)


async def test_connections_per_ip_per_minute_refuse_then_recover(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.smtp")
    clock = Ticker()
    _, layout = await start({"connections_per_ip_per_minute": 5, "per_ip_limits_exempt": []}, clock)
    for _ in range(5):
        assert (await greet(layout.smtp_port)).startswith(b"220 ")
    too_fast = b"421 4.7.0 Too many connections from your address in the last minute, try again later\r\n"
    assert await greet(layout.smtp_port) == too_fast
    assert await greet(layout.smtp_port) == too_fast
    clock.now += 59  # still inside the minute of the first five
    assert await greet(layout.smtp_port) == too_fast
    clock.now += 2
    assert (await greet(layout.smtp_port)).startswith(b"220 ")
    lines = refusal_lines(caplog)
    assert len(lines) == 1 and "connections_per_ip_per_minute reached" in lines[0]
    clock.now += 61  # a later burst gets its line, counting the refusals that were not logged
    for _ in range(5):
        await greet(layout.smtp_port)
    assert await greet(layout.smtp_port) == too_fast
    assert "2 more refused since the last such line" in refusal_lines(caplog)[1]


async def test_an_idle_client_is_told_and_disconnected(start: Starter) -> None:
    relay, layout = await start({"command_timeout": "1s"})
    first, (reader, writer) = await connect(layout.smtp_port)
    assert first.startswith(b"220 ")
    loop = asyncio.get_running_loop()
    began = loop.time()
    rest = await asyncio.wait_for(reader.read(), 3)  # until the server closes: within ~3 s
    assert rest == b"421 4.4.2 Timeout exceeded, closing connection\r\n"
    assert loop.time() - began > 0.5  # the idle time, not an immediate close
    writer.close()
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)


async def test_a_slow_transfer_is_cut_at_data_timeout_not_command_timeout(start: Starter) -> None:
    relay, layout = await start({"command_timeout": "1s", "data_timeout": "3s"})
    pair = await acreate_pair(layout)
    first, client = await connect(layout.smtp_port)
    assert first.startswith(b"220 ")
    assert (await command(client, "EHLO client.example")).startswith(b"250")
    assert (await command(client, f"MAIL FROM:<{MENTEE['email']}>")).startswith(b"250")
    assert (await command(client, f"RCPT TO:<{pair['mentor_alias']}>")).startswith(b"250")
    assert (await command(client, "DATA")).startswith(b"354")
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def dribble() -> None:  # a line every 0.25 s: progress does not extend the transfer's time
        for n in range(40):
            client[1].write(f"X-Slow-{n}: still sending\r\n".encode())
            await client[1].drain()
            await asyncio.sleep(0.25)

    dribbler = asyncio.create_task(dribble())
    try:
        rest = await asyncio.wait_for(client[0].read(), 6)
    finally:
        dribbler.cancel()
        await asyncio.gather(dribbler, return_exceptions=True)
    elapsed = loop.time() - began
    assert rest == b"421 4.4.2 Timeout exceeded, closing connection\r\n"
    assert 2.5 < elapsed < 5.5, elapsed
    await close(client)
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)


async def test_refused_recipients_are_capped_per_session_and_each_is_recorded(start: Starter, sink: Sink) -> None:
    _relay, layout = await start({"max_refused_recipients": 3})
    pair = await acreate_pair(layout)
    first, client = await connect(layout.smtp_port)
    assert first.startswith(b"220 ")
    assert (await command(client, "EHLO harvester.example")).startswith(b"250")
    assert (await command(client, "MAIL FROM:<harvester@spam.example>")).startswith(b"250")
    for n in range(3):  # a directory harvest: guessed aliases
        assert (await command(client, f"RCPT TO:<guess{n}@{DOMAIN}>")).startswith(b"550 ")
    # The next RCPT, even to a real alias, ends the session.
    assert (await command(client, f"RCPT TO:<{pair['mentor_alias']}>")) == (
        b"421 4.7.0 Too many refused recipients (3) in this session; closing connection.\r\n")
    assert await asyncio.wait_for(client[0].read(), WAIT) == b""  # closed by the server
    await close(client)

    # Another session is not affected: the enrolled mentee's message goes through.
    raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", pair["mentor_alias"], "Hello", "Plain words.")
    code, text = await send_raw(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
    assert code == 250, text
    await sink.handler.wait_for(1, timeout=WAIT)

    async def recorded() -> list[dict[str, Any]] | None:
        events = json.loads((await acli(layout, "events", "list", "--kind", "refused", "--json")).stdout)
        return events if len(events) >= 4 else None

    events = await eventually(recorded, timeout=WAIT, interval=0.2)
    reasons = sorted(str(event.get("detail", event).get("reason")) for event in events)
    assert reasons.count("too_many_refused_recipients") == 1, events
    assert len(events) == 4, events


async def send_raw(port: int, raw: bytes, mail_from: str, rcpt: str) -> tuple[int, str]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=WAIT)
    await client.connect()
    try:
        _errors, text = await client.sendmail(mail_from, [rcpt], raw)
        return 250, text
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    finally:
        with contextlib.suppress(Exception):
            await client.quit()


async def test_a_client_that_never_speaks_is_cut_at_greeting_timeout(start: Starter) -> None:
    relay, layout = await start({"greeting_timeout": "1s", "command_timeout": "30s"})
    first, (reader, writer) = await connect(layout.smtp_port)
    assert first.startswith(b"220 ")
    loop = asyncio.get_running_loop()
    began = loop.time()
    rest = await asyncio.wait_for(reader.read(), 4)  # cut after ~1 s, far before command_timeout
    assert rest == b"421 4.4.2 Timeout exceeded, closing connection\r\n"
    assert loop.time() - began > 0.5
    writer.close()

    # A client that has spoken gets command_timeout: still served after more than greeting_timeout of quiet.
    # The quiet is measured by a silent connection opened just after its EHLO, cut at its greeting timeout.
    first, client = await connect(layout.smtp_port)
    assert (await command(client, "EHLO client.example")).startswith(b"250")
    silent_first, (silent, silent_writer) = await connect(layout.smtp_port)
    assert silent_first.startswith(b"220 ")
    assert await asyncio.wait_for(silent.read(), 4) == b"421 4.4.2 Timeout exceeded, closing connection\r\n"
    silent_writer.close()
    assert (await command(client, "NOOP")).startswith(b"250")
    await close(client)
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)


async def test_idle_connections_from_one_address_cannot_shut_out_other_senders(start: Starter, sink: Sink) -> None:
    # Only 127.0.0.1 is exempt: 127.0.0.2 and 127.0.0.3 (loopback too) are held to the per-address cap.
    relay, layout = await start({"max_connections": 6, "max_connections_per_ip": 3, "greeting_timeout": "1s",
                                 "per_ip_limits_exempt": ["127.0.0.1/32"]})
    pair = await acreate_pair(layout)
    idle = [await connect(layout.smtp_port, "127.0.0.2") for _ in range(3)]
    assert all(first.startswith(b"220 ") for first, _ in idle)
    refused, extra = await connect(layout.smtp_port, "127.0.0.2")
    assert refused == b"421 4.7.0 Too many connections from your address, try again later\r\n"
    await close(extra)

    # A sender from another address still gets in and is served.
    first, client = await connect(layout.smtp_port, "127.0.0.3")
    assert first.startswith(b"220 ")
    assert (await command(client, "EHLO sender.example")).startswith(b"250")
    assert (await command(client, f"MAIL FROM:<{MENTEE['email']}>")).startswith(b"250")
    assert (await command(client, f"RCPT TO:<{pair['mentor_alias']}>")).startswith(b"250")
    await close(client)

    # The idle ones are cut at greeting_timeout, and their places come back.
    for _, (reader, _writer) in idle:
        assert await asyncio.wait_for(reader.read(), 4) == b"421 4.4.2 Timeout exceeded, closing connection\r\n"
    for _, connection in idle:
        await close(connection)
    await eventually(lambda: relay.smtp.limits.open == 0, timeout=WAIT)
    again, connection = await connect(layout.smtp_port, "127.0.0.2")
    assert again.startswith(b"220 ")
    await close(connection)


async def test_tls_files_and_timeouts_are_checked_in_the_config(tmp_path: Path) -> None:
    for smtp, expected in (
        ({"tls_cert": str(tmp_path / "relay.crt")}, "tls_cert and tls_key go together"),
        ({"command_timeout": "0s"}, "smtp.command_timeout: Value error, a timeout must be longer than zero"),
        ({"greeting_timeout": "0s"}, "smtp.greeting_timeout: Value error, a timeout must be longer than zero"),
        ({"per_ip_limits_exempt": ["10.0.0.300/8"]}, "smtp.per_ip_limits_exempt.0"),
        ({"max_connections": 0}, "smtp.max_connections"),
    ):
        layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None, overrides={"smtp": smtp})
        layout.write()
        with pytest.raises(ConfigError) as raised:
            load_settings(layout.config)
        assert any(message.startswith(f"{layout.config}:") and expected in message
                   for message in raised.value.messages), raised.value.messages


def test_client_addresses_are_counted_by_ipv4_address_and_ipv6_prefix() -> None:
    loopback = [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    assert client_key("192.0.2.7", loopback) == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7", loopback) == "192.0.2.7"
    assert client_key("2001:db8:1:2::1", loopback) == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff::9", loopback) == "2001:db8:1:2::/64"
    assert client_key("127.0.0.1", loopback) is None and client_key("::1", loopback) is None
    assert client_key("::ffff:127.0.0.1", loopback) is None
    assert client_key(None, loopback) is None


def test_a_ticket_gives_its_place_back_once() -> None:
    limits = ConnectionLimits(max_connections=2, max_per_client=0, per_client_per_minute=0)
    first, second = limits.admit("192.0.2.1"), limits.admit("192.0.2.2")
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert limits.admit("192.0.2.3") is TOO_MANY
    first.release()
    first.release()  # a session may report its end twice (a failed STARTTLS does)
    assert limits.open == 1
    assert isinstance(limits.admit("192.0.2.3"), Ticket)
    assert limits.admit("192.0.2.4") is TOO_MANY


async def test_mail_and_rcpt_paths_are_parsed_as_aiosmtpd_parses_them_every_time(start: Starter, sink: Sink) -> None:
    """The relay parses each distinct path once and remembers it (relay/smtp/paths.py): a malformed address
    is refused every time it is sent, and a well-formed one in another spelling still reaches its alias."""
    _relay, layout = await start({})
    pair = await acreate_pair(layout)
    first, client = await connect(layout.smtp_port)
    assert first.startswith(b"220 ")
    assert (await command(client, "EHLO client.example")).startswith(b"250")
    for _ in range(2):  # the second time the parse is remembered: the same refusal
        assert (await command(client, "MAIL FROM:<not an address@>")).startswith(b"553 ")
    assert (await command(client, f"MAIL FROM:< {MENTEE['email']} >")).startswith(b"250")
    for _ in range(2):
        assert (await command(client, "RCPT TO:<@@>")).startswith(b"553 ")
    local, _, domain = pair["mentor_alias"].partition("@")
    assert (await command(client, f'RCPT TO:<"{local}"@{domain}>')).startswith(b"250")
    assert (await command(client, "RSET")).startswith(b"250")
    await close(client)


def test_the_remembered_parse_answers_as_aiosmtpd_for_every_kind_of_path() -> None:
    """aiosmtpd's own _getaddr is the oracle, with and without a limit on the local part's length."""
    from types import SimpleNamespace

    from aiosmtpd.smtp import SMTP

    from relay.smtp.server import RelaySession

    paths = ["", "<>", "<a@b.example>", "a@b.example", " <a@b.example> SIZE=100", "<a@b.example> BODY=8BITMIME",
             '<"quoted local"@b.example>', "<a(comment)@b.example>", "<@route.example:a@b.example>",
             "<not an address@>", "<@@>", "<a@b.example", "a b@c.example", "<" + "x" * 80 + "@b.example>",
             "<ünï@b.example>", "<a@[127.0.0.1]>"]
    for limit in (0, 64):
        for path in paths * 2:  # the second round is answered from what was remembered
            session = SimpleNamespace(local_part_limit=limit)
            assert RelaySession._getaddr(session, path) == SMTP._getaddr(session, path), (limit, path)  # type: ignore[arg-type]


async def test_an_envelope_address_that_is_not_utf8_is_refused_for_good_and_every_listing_still_works(
        start: Starter, sink: Sink) -> None:
    """Bytes that are not UTF-8 in MAIL FROM or RCPT TO get a permanent 553 (not 451: the sending server
    would retry the same bytes for days). A stranger's message whose From: carries such bytes is refused
    and recorded, and the record lists as text; so does any record that kept such bytes (read from SMTP
    with surrogate escapes, a page that showed it failed with 500 for good)."""
    relay, layout = await start({})
    pair = await acreate_pair(layout)
    _, client = await connect(layout.smtp_port)
    reader, writer = client
    assert (await command(client, "EHLO sender.example")).startswith(b"250")
    writer.write(b"MAIL FROM:<s\xe9@sender.example>\r\n")
    assert (await reply(reader)).startswith(b"553 5.1.7")
    assert (await command(client, "MAIL FROM:<stranger@sender.example>")).startswith(b"250")
    for rcpt in (b"a@\xff.example", b"o\xe9k@" + DOMAIN.encode()):
        writer.write(b"RCPT TO:<" + rcpt + b">\r\n")
        assert (await reply(reader)).startswith(b"553 5.1.3")
    assert (await command(client, f"RCPT TO:<{pair['mentor_alias']}>")).startswith(b"250")
    assert (await command(client, "DATA")).startswith(b"354")
    writer.write(b"From: Str\xe4nger <str\xe4nger@sender.example>\r\nTo: " + pair["mentor_alias"].encode()
                 + b"\r\nSubject: hi\r\n\r\nHello.\r\n.\r\n")
    assert (await reply(reader)).startswith(b"550 ")
    await close(client)

    async with relay.engine.begin() as connection:
        await record(connection, "refused", datetime.now(UTC), rcpt="a@\udcff.example", reason="unknown_alias")
    listed = await acli(layout, "events", "list", "--kind", "refused")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    events = json.loads((await acli(layout, "events", "list", "--kind", "refused", "--json")).stdout)
    assert "a@\\udcff.example" in {event["detail"].get("rcpt") for event in events}  # shown, as an escape
    assert sorted(event["detail"]["reason"] for event in events) == ["stranger", "unknown_alias"], events
    # the From: header's raw 8-bit bytes are read in a legacy charset, as a member's would be (0xE4 is "ä")
    assert {event["detail"].get("header_from") for event in events} == {"str\u00e4nger@sender.example", None}
    assert sink.handler.received == []
