"""Contact details and places the contact rule once missed (review R7), through a real relay and the shipped policies.

Under `supervised` (contact_info: hold), after a pair's first 3 messages, a mentee wrote to the mentor a home
address in Russian, Arabic, Dutch or Polish, or in lower-case French, Spanish or German; an HTML link of a
messaging app with a handle and no phone or web host (skype:, tg://, snapchat://, discord://, msteams:); or a
location (GPS coordinates, decimal or in degrees, a Plus Code, what3words, a geo: link): each was delivered.
Each is now held for a moderator with a contact_info finding and nothing reaches the mentor.

Under `adult-professional` (contact_info: redact), the delivered copy must carry none of them either: the text is
replaced by the marker, an app link, a tracking pixel loaded protocol-relative or from an IPv6 address, and a
phone number in a CDATA section are taken out of the HTML.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from tests.consolekit import serving
from tests.safeguarding_kit import use_shipped_policy
from tests.support import MENTEE, MENTOR, REPO, Layout, Sink, acli, acreate_pair, send, simple_message

PLAIN = {
    "ru": "Привет! Если захочешь прислать открытку, мой адрес: г. Казань, ул. Баумана, д. 7, кв. 15.",
    "ar": "مرحبا، إذا أردت أن ترسل لي بطاقة فعنواني: شارع الملك فهد 24، حي العليا، الرياض",
    "fr": "Salut ! Tu peux m'envoyer la carte, j'habite au 12 rue des lilas à Lyon.",
    "es": "Hola, puedes mandarme la postal, vivo en la calle mayor 5, 3º B en Madrid.",
    "de": "Hallo, schick mir die Karte, ich wohne in der hauptstraße 5 in Berlin.",
    "nl": "Hoi! Mijn adres is Kerkstraat 12, 1017 GL Amsterdam.",
    "pl": "Cześć! Mój adres: ul. Marszałkowska 10/12, 00-590 Warszawa.",
    "coordinates": "I'm at 55.7963, 49.1088 right now, come by!",
    "degrees": "my house: 55°47'46.7\"N 49°06'31.7\"E",
    "plus code": "we live at 9G7VQ4W2+XH, the blue door",
    "what3words": "find me at ///filled.count.soap",
}
LINKS = {
    "skype": "skype:sunny.dancer11?call",
    "telegram": "tg://resolve?domain=sunnydancer11",
    "snapchat": "snapchat://add/sunnydancer11",
    "discord": "discord://-/users/80351110224678912",
    "teams": "msteams:/l/chat/0/0?users=sunny.dancer11",
    "geo": "geo:55.796306,49.108806",
}


def _html(sender: dict[str, str], to: str, subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"{sender['name']} <{sender['email']}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Thanks!\n")
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    return message.as_bytes()


def _messages(to: str) -> dict[str, bytes]:
    sender = f"{MENTEE['name']} <{MENTEE['email']}>"
    messages = {name: simple_message(sender, to, f"case {name}", text) for name, text in PLAIN.items()}
    for name, link in LINKS.items():
        messages[name] = _html(MENTEE, to, f"case {name}", f'<p>Thanks! <a href="{link}">reach me here</a></p>')
    return messages


async def _held(layout: Layout) -> dict[str, dict[str, Any]]:
    result = await acli(layout, "held", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {item["id"]: item for item in json.loads(result.stdout)}


@pytest.mark.parametrize("cases", [sorted(PLAIN), sorted(LINKS)], ids=["typed", "html-links"])
async def test_addresses_app_links_and_locations_are_held_under_supervised(
        layout: Layout, sink: Sink, cases: list[str]) -> None:
    """In two halves, as supervised holds more than 20 messages a day of a pair for their number alone."""
    use_shipped_policy(layout, "supervised")
    async with serving(layout):
        pair = await acreate_pair(layout)
        mentor = pair["mentor_alias"]
        for index in range(3):  # supervised holds a pair's first 3 messages whatever they say
            raw = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", mentor, f"warm-up {index}", "hi")
            assert (await send(layout.smtp_port, raw, MENTEE["email"], mentor))[0] == 250
        queued = {}
        messages = _messages(mentor)
        for name in cases:
            raw = messages[name]
            code, reply = await send(layout.smtp_port, raw, MENTEE["email"], mentor)
            assert code == 250, reply
            queued[name] = reply.rsplit(" ", 1)[-1]
        # an ordinary message after them is delivered: once it has arrived, anything delivered before it has too
        last = simple_message(f"{MENTEE['name']} <{MENTEE['email']}>", mentor, "ordinary", "See you on Tuesday!")
        assert (await send(layout.smtp_port, last, MENTEE["email"], mentor))[0] == 250
        await sink.handler.wait_until(lambda got: sum(MENTOR["email"] in r.rcpt_tos for r in got), 1, 20,
                                      "messages to the mentor")
        to_mentor = [r for r in sink.received if MENTOR["email"] in r.rcpt_tos]
        assert [parse(r.raw)["Subject"] for r in to_mentor] == ["ordinary"]
        held = await _held(layout)
        missing = [name for name, queue_id in queued.items() if queue_id not in held
                   or "contact_info" not in {reason["rule"] for reason in held[queue_id]["reasons"]}]
        assert not missing, missing


def _redacted(raw: bytes) -> tuple[str, list[str], str]:
    """The delivered copy under adult-professional: its decision, the kinds found, and every text part joined."""
    sender = Identity(MENTEE["email"], MENTEE["name"], "maple.1@relay.test", "Maple")
    recipient = Identity(MENTOR["email"], MENTOR["name"], "oak.1@relay.test", "Oak")
    context = {"sender_email": MENTEE["email"], "sender_name": MENTEE["name"], "recipient_email": MENTOR["email"],
               "recipient_name": MENTOR["name"], "domain": "relay.test",
               "aliases": ("maple.1@relay.test", "oak.1@relay.test"), "stats": PairStats(5, 1)}
    prepared = prepare(parse(raw), sender=sender, recipient=recipient, thread_map={},
                       new_message_id="<n@relay.test>", now=datetime(2026, 11, 4, tzinfo=UTC), domain="relay.test",
                       policy=parse_policy(REPO / "policies" / "adult-professional.yaml"), context=context)
    parts = [str(part.get_content()) for part in parse(prepared.raw).walk() if part.get_content_maintype() == "text"]
    kinds = [reason.finding.kind for reason in prepared.decision.reasons if reason.finding.rule == "contact_info"]
    return prepared.decision.action, kinds, "\n".join(parts)


@pytest.mark.parametrize(("name", "gone"), [
    ("ru", "Баумана"), ("ar", "الملك فهد 24"), ("fr", "rue des lilas"), ("es", "calle mayor 5"),
    ("de", "hauptstraße 5"), ("nl", "Kerkstraat 12"), ("pl", "Marszałkowska"), ("coordinates", "55.7963"),
    ("degrees", "46.7"), ("plus code", "9G7VQ4W2+XH"), ("what3words", "filled.count.soap"),
    ("skype", "sunny.dancer11"), ("telegram", "sunnydancer11"), ("snapchat", "sunnydancer11"),
    ("discord", "80351110224678912"), ("teams", "sunny.dancer11"), ("geo", "55.796306"),
])
def test_adult_professional_redacts_them(name: str, gone: str) -> None:
    action, kinds, delivered = _redacted(_messages("oak.1@relay.test")[name])
    assert action == "redact", (action, kinds)
    assert gone not in delivered, delivered
    assert "[contact details removed by the program]" in delivered or name in LINKS, delivered


@pytest.mark.parametrize(("html", "gone"), [
    ('<p>Great essay.</p><img src="//pix.trackr.io/o.gif" width=1 height=1>', "trackr.io"),
    ('<p>Great essay.</p><img src="http://[2001:db8::77]/o.gif" width=1 height=1>', "2001:db8::77"),
    ("<p>Great essay.</p><![CDATA[cell +1 217 555 0143]]>", "555 0143"),
    ('<p>Great essay.</p><svg><text><![CDATA[cell +1 217 555 0143]]></text></svg>', "555 0143"),
])
def test_tracking_pixels_and_cdata_are_seen_and_taken_out(html: str, gone: str) -> None:
    action, kinds, delivered = _redacted(_html(MENTEE, "oak.1@relay.test", "essay", html))
    assert action == "redact", (action, kinds)
    assert gone not in delivered, delivered
    assert "Great essay." in delivered
