"""DKIM: keys made by the real CLI, outbound mail signed as relay.test and verified by dkimpy against the
record the CLI printed (through a stub resolver, never real DNS), dns-records, and bad keys."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from collections.abc import Callable

import dkim
import pytest
from dkim.util import parse_tag_value
from sqlalchemy import select

from relay.config import load_settings
from relay.dkim import signer_from_settings
from relay.service import Relay
from relay.store.schema import outbound
from tests.support import (
    MENTEE,
    Layout,
    Received,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    cli,
    eventually,
    rows,
    send,
    simple_message,
)

SELECTOR = "s2025"


def keygen(layout: Layout, *args: str) -> dict[str, str]:
    result = cli(layout, "dkim", "keygen", "--selector", SELECTOR, *args, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


async def akeygen(layout: Layout, *args: str) -> dict[str, str]:
    """`keygen` from a coroutine: the command in a thread of its own, the test's loop left free."""
    return await asyncio.to_thread(keygen, layout, *args)


def printed_txt(output: str, name: str) -> str:
    """The value of the zone-file TXT line for `name` in `output`, its quoted pieces joined as DNS does."""
    [line] = [line for line in output.splitlines() if line.strip().startswith(f"{name}. IN TXT ")]
    return "".join(re.findall(r'"([^"]*)"', line))


def resolver(name: str, value: str) -> Callable[..., bytes | None]:
    """A stand-in for DNS that knows one TXT record."""

    def lookup(query: bytes, timeout: int = 5) -> bytes | None:
        return value.encode("ascii") if query.decode("ascii").rstrip(".") == name else None

    return lookup


def use_key(layout: Layout, private_key: str = f"dkim/{SELECTOR}.pem") -> None:
    layout.overrides["dkim"] = {"selector": SELECTOR, "private_key": private_key}
    layout.write()


def signature_tags(raw: bytes) -> dict[bytes, bytes]:
    [value] = [v for k, v in dkim.rfc822_parse(raw)[0] if k.lower() == b"dkim-signature"]
    return parse_tag_value(re.sub(rb"\r?\n", b"", value))


async def relay_delivers(layout: Layout, sink: Sink, subject: str, count: int = 1) -> Received:
    pair = await acreate_pair(layout)
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        message = simple_message(MENTEE["email"], pair["mentor_alias"], subject, "See you on Tuesday.\nMaple\n")
        code, text = await send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"])
        assert code == 250, text
        received = await sink.wait_for(count, timeout=20)
    finally:
        await relay.stop()
    return received[-1]


# --- keygen ---------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_and_prints_the_record(layout: Layout) -> None:
    result = cli(layout, "dkim", "keygen", "--selector", SELECTOR)
    assert result.returncode == 0, result.stderr
    key = layout.root / "dkim" / f"{SELECTOR}.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    value = printed_txt(result.stdout, f"{SELECTOR}._domainkey.relay.test")
    assert value.startswith("v=DKIM1; k=rsa; p=MII")
    assert f"selector: {SELECTOR}" in result.stdout and f"private_key: dkim/{SELECTOR}.pem" in result.stdout


def test_keygen_json_and_custom_path(layout: Layout) -> None:
    out = layout.root / "keys" / "ed.pem"
    data = keygen(layout, "--algorithm", "ed25519", "--out", str(out))
    assert set(data) == {"selector", "private_key", "record_name", "record_value"}
    assert data["selector"] == SELECTOR and data["private_key"] == str(out)
    assert data["record_name"] == f"{SELECTOR}._domainkey.relay.test"
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", data["record_value"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_keygen_never_overwrites_a_key(layout: Layout) -> None:
    first = keygen(layout)
    key = layout.root / "dkim" / f"{SELECTOR}.pem"
    before = key.read_bytes()
    result = cli(layout, "dkim", "keygen", "--selector", SELECTOR, "--algorithm", "ed25519")
    assert result.returncode == 1 and result.stdout == ""
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert key.read_bytes() == before and first["private_key"] == str(key)
    bad = cli(layout, "dkim", "keygen", "--selector", "no spaces")
    assert bad.returncode == 1 and "selector" in bad.stderr


# --- signing on the way out ------------------------------------------------------------------------


async def test_outbound_mail_is_signed_and_verifies_against_the_printed_record(layout: Layout, sink: Sink) -> None:
    printed = await acli(layout, "dkim", "keygen", "--selector", SELECTOR)
    assert printed.returncode == 0, printed.stderr
    name = f"{SELECTOR}._domainkey.relay.test"
    record = printed_txt(printed.stdout, name)
    use_key(layout)
    received = await relay_delivers(layout, sink, "Signed on the way out")
    raw = received.raw
    tags = signature_tags(raw)
    assert (tags[b"d"], tags[b"s"], tags[b"a"], tags[b"c"]) == (b"relay.test", SELECTOR.encode(), b"rsa-sha256",
                                                                b"relaxed/relaxed")
    signed = {h.strip().lower() for h in tags[b"h"].split(b":")}
    assert {b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"} <= signed
    assert dkim.verify(raw, dnsfunc=resolver(name, record)) is True

    tampered_body = raw.replace(b"See you on Tuesday", b"See you on Friday")
    assert tampered_body != raw and dkim.verify(tampered_body, dnsfunc=resolver(name, record)) is False
    tampered_subject = raw.replace(b"Subject: Signed on", b"Subject: Signed in")
    assert tampered_subject != raw and dkim.verify(tampered_subject, dnsfunc=resolver(name, record)) is False

    stored = await rows(layout, select(outbound.c.raw))
    assert len(stored) == 1 and b"DKIM-Signature" not in stored[0][0]  # the queue keeps it unsigned


async def test_ed25519_signature_verifies(layout: Layout, sink: Sink) -> None:
    data = await akeygen(layout, "--algorithm", "ed25519")
    use_key(layout)
    raw = (await relay_delivers(layout, sink, "Ed25519")).raw
    assert signature_tags(raw)[b"a"] == b"ed25519-sha256"
    assert dkim.verify(raw, dnsfunc=resolver(data["record_name"], data["record_value"])) is True
    other = await akeygen(layout, "--algorithm", "ed25519", "--out", str(layout.root / "other.pem"))
    assert dkim.verify(raw, dnsfunc=resolver(data["record_name"], other["record_value"])) is False


async def test_a_retry_is_signed_afresh_once(layout: Layout, sink: Sink) -> None:
    data = await akeygen(layout)
    use_key(layout)
    sink.handler.scripted = ["451 4.7.1 greylisted, come back later"]
    raw = (await relay_delivers(layout, sink, "Greylisted")).raw
    assert raw.count(b"DKIM-Signature:") == 1
    assert dkim.verify(raw, dnsfunc=resolver(data["record_name"], data["record_value"])) is True


async def test_a_signing_failure_is_retried_not_lost(layout: Layout, sink: Sink) -> None:
    data = await akeygen(layout)
    use_key(layout)
    settings = load_settings(layout.config)
    signer = signer_from_settings(settings)
    assert signer is not None
    failures = ["key store briefly unavailable"]

    async def sign_after_one_failure(raw: bytes) -> bytes:  # the worker's injected signing step, failing once
        if failures:
            raise RuntimeError(failures.pop())
        return signer.sign(raw)

    pair = await acreate_pair(layout)
    relay = Relay(settings)
    relay.worker.sign = sign_after_one_failure
    await relay.start()
    try:
        message = simple_message(MENTEE["email"], pair["mentor_alias"], "Retried", "hello")
        assert (await send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"]))[0] == 250
        [received] = await sink.wait_for(1, timeout=20)
    finally:
        await relay.stop()
    assert dkim.verify(received.raw, dnsfunc=resolver(data["record_name"], data["record_value"])) is True
    deferred = await acli_json(layout, "events", "list", "--kind", "deferred", "--json")
    assert [e["detail"]["error"] for e in deferred] == [
        "DKIM signing failed: RuntimeError: key store briefly unavailable"]
    sent = await eventually(lambda: acli_json(layout, "queue", "list", "--state", "sent", "--json"))
    assert sent[0]["attempts"] == 2


# --- DNS records and errors ------------------------------------------------------------------------


def test_dns_records_match_the_configured_key(layout: Layout) -> None:
    unsigned = cli(layout, "dns-records")
    assert unsigned.returncode == 0, unsigned.stderr
    assert "no key configured" in unsigned.stdout and "dkim keygen" in unsigned.stdout
    data = keygen(layout)
    use_key(layout)
    result = cli(layout, "dns-records")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "relay.test. IN MX 10 relay.test." in lines
    assert 'relay.test. IN TXT "v=spf1 mx -all"' in lines
    assert printed_txt(result.stdout, data["record_name"]) == data["record_value"]
    assert ('_dmarc.relay.test. IN TXT "v=DMARC1; p=quarantine; adkim=s; aspf=s; '
            'rua=mailto:coordinator@school.example"') in lines
    assert 'relay.test._report._dmarc.school.example. IN TXT "v=DMARC1"' in lines
    assert any(line.startswith("; PTR: ") and "hosting provider" in line for line in lines)
    as_json = json.loads(cli(layout, "dns-records", "--json").stdout)
    assert [r["kind"] for r in as_json] == ["MX", "SPF", "DKIM", "DMARC", "DMARC", "PTR"]
    assert as_json[2]["name"] == data["record_name"] and as_json[2]["value"] == data["record_value"]


@pytest.mark.parametrize(
    ("key_file", "content", "message"),
    [
        ("dkim/missing.pem", None, "cannot read"),
        ("dkim/garbage.pem", "not a key\n", "is not a PEM private key"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "serve", "dns-records"])
def test_a_bad_key_is_a_clear_error(layout: Layout, key_file: str, content: str | None, message: str,
                                    command: str) -> None:
    if content is not None:
        (layout.root / key_file).parent.mkdir(parents=True, exist_ok=True)
        (layout.root / key_file).write_text(content)
    use_key(layout, key_file)
    result = cli(layout, command, timeout=30)
    assert result.returncode == 1
    assert re.match(rf"{re.escape(str(layout.config))}:\d+: dkim.private_key: .*{message}", result.stderr)
    assert "Traceback" not in result.stderr


def test_selector_without_key_is_a_clear_error(layout: Layout) -> None:
    layout.overrides["dkim"] = {"selector": SELECTOR}
    layout.write()
    result = cli(layout, "check-config")
    assert result.returncode == 1 and "dkim.private_key: not set" in result.stderr
