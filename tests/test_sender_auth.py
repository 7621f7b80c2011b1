"""Inbound sender authentication: mail claiming an enrolled address must come from that address's domain.

Three outcomes: pass, fail (a check ran and failed, or the envelope sender is elsewhere and nothing aligned
passed: only this is "spoofing") and unverified (nothing to check: no records, DNS down, a front MTA that
did not look). prefer holds a failure and only notes unverified mail; require refuses a failure and holds
unverified mail. DNS comes from the tests' own server on loopback (tests/dnsserver.py). Each test enrols a
mentee on a domain of its own, publishes (or not) that domain's DKIM key, SPF and DMARC records, and sends
as the mentee from 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy

import dkim
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from relay.config import load_settings
from relay.service import Relay
from tests.dnsserver import ZONE
from tests.support import (
    DOMAIN,
    MENTOR,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    cli,
    eventually,
    nothing_queued,
    send,
    simple_message,
)

SELECTOR = "s2026"


@dataclass
class Scene:
    layout: Layout
    sink: Sink
    domain: str
    pair: dict  # type: ignore[type-arg]
    relay: Relay | None = None

    @property
    def mentee(self) -> str:
        return f"sam@{self.domain}"

    async def send(self, raw: bytes, mail_from: str | None = None) -> tuple[int, str]:
        return await send(self.layout.smtp_port, raw, mail_from or self.mentee, self.pair["mentor_alias"])

    def message(self, body: str = "Hello Oak, here is my essay plan.", **headers: str) -> bytes:
        return simple_message(f"Sam <{self.mentee}>", self.pair["mentor_alias"], "Essay plan", body, **headers)

    async def events(self, kind: str) -> list[dict]:  # type: ignore[type-arg]
        return list(await acli_json(self.layout, "events", "list", "--kind", kind, "--json"))

    async def held(self) -> list[dict]:  # type: ignore[type-arg]
        return list(await acli_json(self.layout, "held", "list", "--json"))

    async def auth_reasons(self) -> list[tuple[str, str]]:
        [decision] = await self.events("decision")
        return [(r["kind"], r["action"]) for r in decision["detail"]["reasons"] if r.get("rule") == "sender_auth"]

    async def spoofing_anywhere(self) -> bool:
        """The word on the record: events, the hold queue, the report."""
        everything = (await acli(self.layout, "events", "list", "--json")).stdout + json.dumps(await self.held())
        report = await acli_json(self.layout, "report", "--program", "stem", "--json")
        return "spoofing" in everything or report["attempts"]["spoofing"] > 0


def _key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


PRIVATE_KEY, PUBLIC_KEY = _key()


def publish_dkim(domain: str) -> None:
    ZONE.txt(f"{SELECTOR}._domainkey.{domain}", f"v=DKIM1; k=rsa; p={PUBLIC_KEY}")


def sign(raw: bytes, domain: str) -> bytes:
    signature = dkim.sign(raw, SELECTOR.encode(), domain.encode(), PRIVATE_KEY,
                          include_headers=[b"from", b"to", b"subject", b"message-id"])
    return signature + raw


@pytest.fixture
def domain(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"school{abs(hash(request.node.nodeid)) % 10**8}.example"
    yield name
    ZONE.forget(name)
    ZONE.forget("attacker.example")


def _policy(layout: Layout, mode: str) -> None:
    (layout.root / "policies" / "adult-professional.yaml").write_text(
        yaml.safe_dump({"name": "adult-professional", "sender_auth": mode}))


async def _scene(layout: Layout, sink: Sink, domain: str, mode: str, **sender_auth: object) -> AsyncIterator[Scene]:
    if sender_auth:
        layout.overrides["sender_auth"] = sender_auth
        layout.write()
    _policy(layout, mode)
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout, MENTOR, {"email": f"sam@{domain}", "name": "Sam Rivera", "handle": "Maple"})
        yield Scene(layout, sink, domain, pair, relay)
    finally:
        await relay.stop()


@pytest.fixture
async def require(layout: Layout, sink: Sink, domain: str) -> AsyncIterator[Scene]:
    async for scene in _scene(layout, sink, domain, "require"):
        yield scene


@pytest.fixture
async def prefer(layout: Layout, sink: Sink, domain: str) -> AsyncIterator[Scene]:
    async for scene in _scene(layout, sink, domain, "prefer"):
        yield scene


async def test_dkim_signed_mail_from_the_enrolled_domain_is_delivered_under_require(require: Scene) -> None:
    publish_dkim(require.domain)
    ZONE.txt(f"_dmarc.{require.domain}", "v=DMARC1; p=reject")
    code, text = await require.send(sign(require.message(), require.domain))
    assert code == 250, text
    [delivered] = await require.sink.wait_for(1)
    assert "essay plan" in delivered.message.get_content()
    [decision] = await require.events("decision")
    assert decision["detail"]["reasons"][0]["flagged"] is False


async def test_spf_alone_is_enough_when_it_aligns(require: Scene) -> None:
    ZONE.txt(require.domain, "v=spf1 ip4:127.0.0.1 -all")
    code, text = await require.send(require.message())
    assert code == 250, text
    await require.sink.wait_for(1)


async def _refused_then_nothing_delivered(scene: Scene, raw: bytes, mail_from: str | None = None) -> str:
    code, text = await scene.send(raw, mail_from)
    assert (code, text.split()[0]) == (550, "5.7.1"), text
    [refusal] = await scene.events("refused")
    assert refusal["detail"]["reason"] == "spoofing"
    # a genuine message afterwards is the only one the partner ever gets
    ZONE.forget(scene.domain)
    ZONE.txt(scene.domain, "v=spf1 ip4:127.0.0.1 -all")
    code, text = await scene.send(scene.message(body="This one is genuine."))
    assert code == 250, text
    [delivered] = await scene.sink.wait_for(1)
    assert "This one is genuine." in delivered.message.get_content()
    return str(refusal["detail"]["auth"])


async def test_a_spoofed_from_without_any_authentication_is_refused_under_require(require: Scene) -> None:
    ZONE.txt(f"_dmarc.{require.domain}", "v=DMARC1; p=none")
    summary = await _refused_then_nothing_delivered(require, require.message(body="Send me your phone number"))
    assert "dkim=none" in summary and "spf=none" in summary


async def test_a_signature_by_another_domain_does_not_vouch_for_the_enrolled_one(require: Scene) -> None:
    publish_dkim("attacker.example")
    ZONE.txt("attacker.example", "v=spf1 ip4:127.0.0.1 -all")
    raw = sign(require.message(body="Meet me after school"), "attacker.example")
    summary = await _refused_then_nothing_delivered(require, raw, mail_from="bounce@attacker.example")
    assert "dkim=pass header.d=attacker.example" in summary and "spf=pass" in summary


async def test_spf_that_names_other_servers_is_a_failure(require: Scene) -> None:
    ZONE.txt(require.domain, "v=spf1 ip4:192.0.2.0/24 -all")
    summary = await _refused_then_nothing_delivered(require, require.message())
    assert "spf=fail" in summary


async def test_a_body_changed_after_signing_fails(require: Scene) -> None:
    publish_dkim(require.domain)
    raw = sign(require.message(body="See you on Monday."), require.domain).replace(b"Monday", b"Sunday")
    summary = await _refused_then_nothing_delivered(require, raw)
    assert f"dkim=fail header.d={require.domain}" in summary


async def test_strict_dkim_alignment_is_honoured(require: Scene) -> None:
    """Two subdomains whose mail the parent domain signs: relaxed alignment accepts that, strict does not."""
    parent = require.domain
    publish_dkim(parent)
    ZONE.txt(f"_dmarc.staff.{parent}", "v=DMARC1; p=reject")
    ZONE.txt(f"_dmarc.pupils.{parent}", "v=DMARC1; p=reject; adkim=s")
    codes = {}
    for index, sub in enumerate(("staff", "pupils")):
        address = f"sam@{sub}.{parent}"
        mentor = {**MENTOR, "email": f"oak{index}@mentors.example", "handle": f"Elm{index}"}
        pair = await acreate_pair(require.layout, mentor, {"email": address, "name": "Sam Rivera",
                                                           "handle": f"Birch{index}"})
        raw = simple_message(f"Sam <{address}>", pair["mentor_alias"], "Hi", "Hello")
        codes[sub], _ = await send(require.layout.smtp_port, sign(raw, parent), address, pair["mentor_alias"])
    assert codes == {"staff": 250, "pupils": 550}


async def test_dns_trouble_under_require_holds_the_message_as_unverified(require: Scene) -> None:
    ZONE.servfail.add(require.domain)
    code, text = await require.send(require.message(body="Here is my essay plan."))
    assert code == 250, text
    [item] = await require.held()
    assert [(r["kind"], r["action"]) for r in item["reasons"] if r["rule"] == "sender_auth"] == [
        ("unverified", "hold")]
    told = await require.sink.wait_for(1)  # the sender's "waiting for review"; the partner gets nothing yet
    await eventually(lambda: nothing_queued(require.layout), timeout=20)  # all of it out before the absence
    assert [r.rcpt_tos for r in told] == [[require.mentee]]
    assert not await require.spoofing_anywhere()


async def test_honest_unsigned_mail_under_require_is_held_not_refused(require: Scene) -> None:
    """No DKIM, no SPF, no DMARC record: nothing failed, nothing could be checked."""
    code, text = await require.send(require.message())
    assert code == 250, text
    assert await require.auth_reasons() == [("unverified", "hold")]
    assert await require.events("refused") == [] and not await require.spoofing_anywhere()


async def test_honest_unsigned_mail_is_delivered_and_only_noted_under_prefer(prefer: Scene) -> None:
    code, text = await prefer.send(prefer.message(body="It is me, honestly."))
    assert code == 250, text
    [delivered] = await prefer.sink.wait_for(1)
    assert "It is me, honestly." in delivered.message.get_content()
    [decision] = await prefer.events("decision")
    assert decision["detail"]["reasons"][0]["flagged"] is False
    [reason] = [r for r in decision["detail"]["reasons"] if r.get("rule") == "sender_auth"]
    assert (reason["kind"], reason["action"]) == ("unverified", "note") and "spf=none" in reason["match"]
    assert not await prefer.spoofing_anywhere()


async def test_a_forged_from_is_held_for_review_under_prefer(prefer: Scene) -> None:
    """The envelope sender is elsewhere, the From is the enrolled mentee, nothing is signed: spoofing."""
    code, text = await prefer.send(prefer.message(body="Send me your phone number"), "someone@elsewhere.example")
    assert code == 250, text
    [item] = await prefer.held()
    assert [(r["kind"], r["action"]) for r in item["reasons"] if r["rule"] == "sender_auth"] == [
        ("spoofing", "hold")]
    assert "envelope sender is not of" in next(r["match"] for r in item["reasons"] if r["rule"] == "sender_auth")
    told = await prefer.sink.wait_for(1)
    await eventually(lambda: nothing_queued(prefer.layout), timeout=20)  # all of it out before the absence
    assert [r.rcpt_tos for r in told] == [[prefer.mentee]]  # the enrolled mentee is told; the mentor gets nothing
    report = await acli_json(prefer.layout, "report", "--program", "stem", "--json")
    assert report["attempts"]["spoofing"] == 1 and report["attempts"]["unverified"] == 0


async def test_dns_trouble_under_prefer_is_noted_as_unverified(prefer: Scene) -> None:
    ZONE.servfail.add(prefer.domain)
    code, _ = await prefer.send(prefer.message())
    assert code == 250
    await prefer.sink.wait_for(1)
    assert await prefer.auth_reasons() == [("unverified", "note")]
    assert not await prefer.spoofing_anywhere()


async def test_off_asks_dns_nothing(layout: Layout, sink: Sink, domain: str) -> None:
    async for scene in _scene(layout, sink, domain, "off"):
        code, _ = await scene.send(scene.message())
        assert code == 250
        await scene.sink.wait_for(1)
        assert not [name for name, _ in ZONE.asked if name.endswith(domain)]
        assert (await scene.events("decision"))[0]["detail"]["reasons"][0]["flagged"] is False


# Behind a front MTA: its Authentication-Results (and only its) are believed.

FRONT = "mx.front.example"


def _with_headers(raw: bytes, *lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode() + raw


def _trusted(domain: str) -> str:
    return f"Authentication-Results: {FRONT}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"


RECEIVED_FRONT = "Received: from outside.example (outside.example [192.0.2.7]) by mx.front.example; 21 Nov 2026"
RECEIVED_OUTSIDE = "Received: from laptop by outside.example; 21 Nov 2026"


async def test_the_front_mtas_results_are_used_instead_of_our_checks(layout: Layout, sink: Sink, domain: str) -> None:
    async for scene in _scene(layout, sink, domain, "require", trusted_authserv_id=FRONT):
        raw = _with_headers(scene.message(), _trusted(domain), RECEIVED_FRONT, RECEIVED_OUTSIDE)
        code, text = await scene.send(raw)
        assert code == 250, text  # no DNS records at all: the front MTA's word is taken
        [delivered] = await scene.sink.wait_for(1)
        assert delivered.message["Authentication-Results"] is None  # never passed on
        assert not [name for name, _ in ZONE.asked if name.endswith(domain)]


@pytest.mark.parametrize("forged", [
    # the sender wrote the front MTA's results into the message itself: below the front MTA's Received line
    [RECEIVED_FRONT, RECEIVED_OUTSIDE, f"Authentication-Results: {FRONT}; dmarc=pass header.from=DOMAIN"],
    # the front MTA checked and the message failed
    [f"Authentication-Results: {FRONT}; dkim=fail header.d=DOMAIN; spf=softfail; dmarc=fail", RECEIVED_FRONT],
], ids=["forged-below-received", "front-says-fail"])
async def test_forged_or_failing_results_are_refused(layout: Layout, sink: Sink, domain: str,
                                                     forged: list[str]) -> None:
    async for scene in _scene(layout, sink, domain, "require", trusted_authserv_id=FRONT):
        code, text = await scene.send(_with_headers(scene.message(),
                                                    *(line.replace("DOMAIN", domain) for line in forged)))
        assert code == 550, text
        assert (await scene.events("refused"))[0]["detail"]["reason"] == "spoofing"


async def test_results_of_another_server_are_not_believed(layout: Layout, sink: Sink, domain: str) -> None:
    """Results from some other server are not ours to believe: the front MTA said nothing, so the message
    is unverified (held under require, never delivered on a stranger's word)."""
    async for scene in _scene(layout, sink, domain, "require", trusted_authserv_id=FRONT):
        raw = _with_headers(scene.message(), f"Authentication-Results: evil.example; dkim=pass header.d={domain}; "
                                             "dmarc=pass", RECEIVED_FRONT)
        code, text = await scene.send(raw)
        assert code == 250, text
        assert await scene.auth_reasons() == [("unverified", "hold")] and [i["id"] for i in await scene.held()]


async def test_the_deploy_guides_loopback_test_is_not_flagged(layout: Layout, sink: Sink, domain: str) -> None:
    """deploy/README.md: swaks to Postfix on 127.0.0.1, whose milters do not check local mail, so the message
    reaches the relay with Postfix's Received line and no Authentication-Results. Unverified, not spoofing."""
    async for scene in _scene(layout, sink, domain, "prefer", trusted_authserv_id="relay.example.org"):
        raw = _with_headers(scene.message(body="Loopback test."), "Received: from [127.0.0.1] (localhost "
                            "[127.0.0.1]) by relay.example.org (Postfix) with ESMTP id 4Xk2; 21 Nov 2026")
        code, text = await scene.send(raw)
        assert code == 250, text
        [delivered] = await scene.sink.wait_for(1)
        assert "Loopback test." in delivered.message.get_content()
        assert await scene.auth_reasons() == [("unverified", "note")] and await scene.held() == []
        assert not await scene.spoofing_anywhere()


async def test_results_are_believed_only_on_connections_from_the_front_mta(
    layout: Layout, sink: Sink, domain: str,
) -> None:
    async for scene in _scene(layout, sink, domain, "require", trusted_authserv_id=FRONT,
                              trusted_networks=["192.0.2.0/24"]):
        code, text = await scene.send(_with_headers(scene.message(), _trusted(domain), RECEIVED_FRONT))
        # we are talking to 127.0.0.1, not the front MTA: our own checks find nothing, so it waits for a person
        assert code == 250, text
        assert await scene.auth_reasons() == [("unverified", "hold")]
        await eventually(lambda s=scene: nothing_queued(s.layout), timeout=20)  # all of it out before the absence
        assert scene.sink.received == [] or all(r.rcpt_tos == [scene.mentee] for r in scene.sink.received)


async def test_forged_results_are_stripped_from_the_delivered_copy(prefer: Scene) -> None:
    raw = _with_headers(prefer.message(), f"Authentication-Results: {FRONT}; dmarc=pass",
                        "Authentication-Results: evil.example; dkim=pass")
    code, _ = await prefer.send(raw)
    assert code == 250
    [delivered] = await prefer.sink.wait_for(1)
    copy = message_from_bytes(delivered.raw, policy=email_policy.default)
    assert copy.get_all("Authentication-Results") is None
    assert b"evil.example" not in delivered.raw and FRONT.encode() not in delivered.raw


@pytest.mark.parametrize(("value", "message"), [
    ("dns.example.org", "is not an IP address"),
    ("127.0.0.1:99999", "has no valid port"),
])
def test_a_bad_nameserver_is_a_config_error_with_its_line(layout: Layout, value: str, message: str) -> None:
    layout.overrides["sender_auth"] = {"nameservers": [value]}
    layout.write()
    result = cli(layout, "check-config")
    assert result.returncode == 1
    lines = layout.config.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if value in text)
    assert result.stderr.strip().startswith(f"{layout.config}:{line}:"), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_bad_sender_auth_mode_is_a_policy_error(layout: Layout) -> None:
    path = layout.root / "policies" / "adult-professional.yaml"
    path.write_text("name: adult-professional\nsender_auth: maybe\n")
    result = cli(layout, "check-config")
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"{path}:2:"), result.stderr


async def test_a_forged_concern_does_not_pause_the_pair_under_require(require: Scene) -> None:
    """concern@ pauses a pair and away@ silences nudges: a forged one must not do either."""
    concern = f"concern@{DOMAIN}"
    for address in (concern, f"away@{DOMAIN}"):
        code, text = await send(require.layout.smtp_port,
                                simple_message(f"Sam <{require.mentee}>", address, "until 2026-12-24", "stop it"),
                                require.mentee, address)
        assert code == 550 and "5.7.1" in text, text
    # no records at all: unverified, which a program address cannot hold, so it is refused (not "spoofing")
    assert [e["detail"]["reason"] for e in await require.events("refused")] == ["unverified", "unverified"]
    shown = await acli_json(require.layout, "pair", "show", str(require.pair["id"]), "--json")
    assert shown["status"] == "active"
    # the genuine participant's concern still pauses the pair
    ZONE.txt(require.domain, "v=spf1 ip4:127.0.0.1 -all")
    code, text = await send(require.layout.smtp_port,
                            simple_message(f"Sam <{require.mentee}>", concern, "I am worried", "Please call me."),
                            require.mentee, concern)
    assert code == 250, text
    shown = await acli_json(require.layout, "pair", "show", str(require.pair["id"]), "--json")
    assert shown["status"] == "paused"


async def test_under_prefer_a_forged_concern_is_refused_and_an_honest_unsigned_one_works(prefer: Scene) -> None:
    """A program address cannot hold mail for review: a failure is refused there even under prefer, while
    mail that simply could not be verified is taken (and noted)."""
    concern = f"concern@{DOMAIN}"
    raw = simple_message(f"Sam <{prefer.mentee}>", concern, "I am worried", "Please pause this.")
    ZONE.txt(prefer.domain, "v=spf1 ip4:192.0.2.0/24 -all")  # the mentee's domain: not sent from here
    code, text = await send(prefer.layout.smtp_port, raw, prefer.mentee, concern)
    assert code == 550 and "5.7.1" in text, text
    assert [e["detail"]["reason"] for e in await prefer.events("refused")] == ["spoofing"]
    shown = await acli_json(prefer.layout, "pair", "show", str(prefer.pair["id"]), "--json")
    assert shown["status"] == "active"
    ZONE.forget(prefer.domain)  # a domain that publishes nothing: unverified, not a failure
    code, text = await send(prefer.layout.smtp_port, raw, prefer.mentee, concern)
    assert code == 250, text
    shown = await acli_json(prefer.layout, "pair", "show", str(prefer.pair["id"]), "--json")
    assert shown["status"] == "paused"


@pytest.fixture
async def require_in_pool(layout: Layout, sink: Sink, domain: str) -> AsyncIterator[Scene]:
    """As `serve` runs by default: worker processes, DKIM keys asked in a thread, signatures verified in a worker."""
    layout.overrides["workers"] = 2
    layout.write()
    async for scene in _scene(layout, sink, domain, "require"):
        yield scene


async def test_dkim_verified_in_a_worker_with_the_prefetched_keys(require_in_pool: Scene) -> None:
    scene = require_in_pool
    publish_dkim(scene.domain)
    ZONE.txt(f"_dmarc.{scene.domain}", "v=DMARC1; p=reject")
    code, text = await scene.send(sign(scene.message(), scene.domain))
    assert code == 250, text
    [delivered] = await scene.sink.wait_for(1)
    assert "essay plan" in delivered.message.get_content()
    assert scene.relay is not None and scene.relay.pool.task_cpu["verify_dkim"][1] == 1  # the worker verified it
    # a body changed after signing fails there too, and says so
    changed = sign(scene.message(body="See you on Monday."), scene.domain).replace(b"Monday", b"Sunday")
    code, text = await scene.send(changed)
    assert (code, text.split()[0]) == (550, "5.7.1"), text
    [refusal] = await scene.events("refused")
    assert f"dkim=fail header.d={scene.domain}" in refusal["detail"]["auth"]


async def test_a_dkim_key_dns_cannot_give_is_held_as_unverified_in_the_pool(require_in_pool: Scene) -> None:
    scene = require_in_pool
    ZONE.servfail.add(f"{SELECTOR}._domainkey.{scene.domain}")
    code, text = await scene.send(sign(scene.message(), scene.domain))
    assert code == 250, text
    [item] = await scene.held()
    assert [(r["kind"], r["action"]) for r in item["reasons"] if r["rule"] == "sender_auth"] == [
        ("unverified", "hold")]
    assert any(f"dkim=temperror header.d={scene.domain}" in str(r.get("match", "")) for r in item["reasons"]), \
        item["reasons"]


async def test_unsigned_mail_is_judged_by_spf_and_dmarc_in_the_pool(require_in_pool: Scene) -> None:
    """Mail without a signature has nothing for a worker to verify: SPF and DMARC are judged in one thread.
    A spoofed From is refused; the same sender's mail from a server its SPF names is delivered."""
    scene = require_in_pool
    ZONE.txt(f"_dmarc.{scene.domain}", "v=DMARC1; p=reject")
    summary = await _refused_then_nothing_delivered(scene, scene.message(body="Send me your phone number"))
    assert "dkim=none" in summary and "spf=none" in summary
    assert scene.relay is not None and "verify_dkim" not in scene.relay.pool.task_cpu  # no worker asked
