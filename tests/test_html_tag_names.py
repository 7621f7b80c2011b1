"""Text in tag and attribute names: what a client failed to escape reaches no partner, and the rules read it.

"Hi, it's Jane Doe <jane.doe@mail.example>" written into HTML without escaping (a script that builds HTML from
text, a forwarded header, a pasted signature) is, to an HTML parser, an element named `jane.doe@mail.example`:
a browser shows nothing of it, but the source holds the address, and a plain-text view or a client that
escapes shows it. The relay reads such a tag as the text it was meant to be (relay/anonymize/htmltext.py):
the members' own addresses and names in it become aliases and handles, visibly; a stranger's address in it is
a contact detail for the policy; an attribute name or an unknown element name that names a member goes; and
real markup is left as it was, even where a member's name is a tag's (`<mark>`) or an attribute's (`lang=`).

Everything goes through the relay's own line (anonymise, inspect, the shipped policies, redact:
relay.pipeline.prepare), and the delivered bytes are searched with tests/decode_all.py; one message also goes
through a running relay over SMTP.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from relay.anonymize.message import parse
from relay.moderation.inspection import PairStats
from relay.moderation.policy import Policy, parse_policy
from relay.pipeline import prepare
from relay.service import Relay
from tests.decode_all import leaks
from tests.support import REPO, Layout, Sink, acreate_pair, send
from tests.test_leak_vectors import Member  # the leak tests' member: identity and the needles searched for

DOMAIN = "relay.test"
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


THEO = Member("Théodora Vlindqvist", "theo.vlindqvist@mentor-mail.example", "Oak", f"oak.k2@{DOMAIN}")
AMARU = Member("Amaru Quispe-Mamani", "amaru.qm@andes-post.example", "Maple", f"maple.x9@{DOMAIN}")
STRANGER = "bob.smith@elsewhere-mail.example"


def _html(sender: Member, partner: Member, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{sender.name} <{sender.email}>"
    message["To"] = partner.alias
    message["Subject"] = "Re: essay"
    message["Date"] = "Wed, 04 Nov 2026 10:17:41 +0100"
    message["Message-ID"] = f"<tags.{sender.handle}@{sender.domain}>"
    message.set_content(body, subtype="html")
    return message


def _prepare(body: str, policy: str = "adult-professional", sender: Member = THEO, partner: Member = AMARU,
             ) -> tuple[bytes, object]:
    message = parse(_html(sender, partner, body).as_bytes())
    context = {"sender_role": "mentor", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": partner.email, "recipient_name": partner.name,
               "sender_nicknames": sender.nicknames, "recipient_nicknames": partner.nicknames,
               "region": "US", "domain": DOMAIN, "aliases": (sender.alias, partner.alias), "stats": PairStats(5, 1)}
    prepared = prepare(message, sender=sender.identity(), recipient=partner.identity(), thread_map={},
                       new_message_id=f"<new@{DOMAIN}>", now=NOW, domain=DOMAIN, policy=_policy(policy),
                       context=context)
    return prepared.raw, prepared.decision


def _policy(name: str) -> Policy:
    return parse_policy(REPO / "policies" / f"{name}.yaml")


def _html_part(raw: bytes) -> str:
    part = next(p for p in parse(raw).walk() if p.get_content_type() == "text/html")
    return str(part.get_content())


def _reasons(decision: object) -> list[dict]:  # type: ignore[type-arg]
    return list(decision.reason_dicts())  # type: ignore[attr-defined]


# What clients and hand-written HTML put between < and > that is no tag; {s} is the sender, {p} the partner.
UNESCAPED = {
    "address_after_name": "<p>Hi, it's {s.name} <{s.email}></p>",
    "forwarded_header": "<div>---------- Forwarded message ---------<br>From: {p.name} <{p.email}><br>"
                        "Date: Tue, 3 Nov 2026</div><p>See below.</p>",
    "self_closing": "<p>Write to <{s.email}/> any time.</p>",
    "end_tag": "<p>Thanks!</{s.email}></p>",
    "name_and_address_as_one_tag": "<p>Cheers, <{s.name} {s.email}></p>",
    "nested_brackets": "<p>From: <{s.name} <{s.email}>></p>",
    "attribute_name": '<p {s.email}="">Thanks for the notes.</p>',
    "attribute_name_of_a_known_tag": "<div data-{s.first}-{s.last} class=x>Thanks for the notes.</div>",
    "attribute_name_after_slash": "<p/{s.email}>Thanks for the notes.</p>",
    "attribute_names_in_capitals": "<P {s.email_upper}>Thanks for the notes.</P>",
    "attribute_name_in_entities": "<p {s.email_entities}>Thanks for the notes.</p>",
    "unknown_element": "<{s.login}>Thanks for the notes.</{s.login}>",
    "unknown_element_namespaced": "<{s.login}:note>Thanks for the notes.</{s.login}:note>",
    "end_tag_with_more": "<p>Thanks for the notes.</p {s.email}>",
    "doctype": "<!DOCTYPE html {s.email}><p>Thanks for the notes.</p>",
    "outlook_marked_section": "<p><![if {s.email}]>1.<![endif]>Thanks for the notes.</p>",
    "bogus_comment": "<p>Thanks<!{s.email}> for the notes.</p>",
    "processing_instruction": "<?xml author={s.email}?><p>Thanks for the notes.</p>",
}


class _Fields:
    """A member's forms as the bodies above write them."""

    def __init__(self, member: Member) -> None:
        self.name, self.email, self.first, self.last = member.name, member.email, member.first, member.last
        self.email_upper = member.email.upper()
        self.email_entities = "".join(f"&#{ord(c)};" if c in ".@" else c for c in member.email)
        ascii_name = unicodedata.normalize("NFKD", member.name).encode("ascii", "ignore").decode().lower()
        self.login = "-".join(ascii_name.split())  # "theodora-vlindqvist": an element name's shape


@pytest.mark.parametrize("name", sorted(UNESCAPED))
@pytest.mark.parametrize("direction", ["mentor_to_mentee", "mentee_to_mentor"])
def test_no_identity_survives_in_a_tag_or_attribute_name(name: str, direction: str) -> None:
    sender, partner = (THEO, AMARU) if direction == "mentor_to_mentee" else (AMARU, THEO)
    body = UNESCAPED[name].format(s=_Fields(sender), p=_Fields(partner))
    needles = sender.needles() + partner.needles()
    assert leaks(_html(sender, partner, body).as_bytes(), needles), "the mail carries an identity to begin with"
    delivered, decision = _prepare(body, sender=sender, partner=partner)
    found = leaks(delivered, needles)
    assert not found, "\n".join(found)
    assert decision.action == "deliver", _reasons(decision)  # type: ignore[attr-defined]


def test_an_address_typed_after_a_name_shows_as_the_alias() -> None:
    delivered, _ = _prepare(f"<p>Hi, it's {THEO.name} <{THEO.email}></p>")
    assert f"<p>Hi, it's Oak &lt;{THEO.alias}&gt;</p>" in _html_part(delivered)


def test_a_strangers_address_in_a_tag_is_a_contact_detail_and_is_redacted() -> None:
    body = f"<p>Write to my friend Bob Smith <{STRANGER}> instead.</p>"
    delivered, decision = _prepare(body)
    assert decision.action == "redact", _reasons(decision)  # type: ignore[attr-defined]
    assert any(r["rule"] == "contact_info" and r["kind"] == "email" for r in _reasons(decision))
    assert STRANGER not in delivered.decode("utf-8", "replace")
    assert "[contact details removed by the program]" in _html_part(delivered)


@pytest.mark.parametrize("body", [
    f'<p {STRANGER}="">Write to my friend instead.</p>',
    f"<p>Write to my friend instead.</p {STRANGER}>",
    f"<p>Write to my friend <bob smith <{STRANGER}>> instead.</p>",
    f"<!DOCTYPE html {STRANGER}><p>Write to my friend instead.</p>",
], ids=["attribute_name", "end_tag", "nested", "doctype"])
def test_a_strangers_address_anywhere_in_markup_holds_the_mail(body: str) -> None:
    _, decision = _prepare(body, policy="supervised")
    assert decision.action == "hold", _reasons(decision)  # type: ignore[attr-defined]
    assert any(r["rule"] == "contact_info" and r["kind"] == "email" for r in _reasons(decision)), _reasons(decision)
    redacted, decision = _prepare(body)
    assert decision.action == "redact", _reasons(decision)  # type: ignore[attr-defined]
    assert STRANGER not in redacted.decode("utf-8", "replace")


def test_markup_whose_names_are_a_members_name_is_left_as_it_was() -> None:
    mark = Member("Mark Lang", "mark.lang@school-mail.example", "Rowan", f"rowan.r1@{DOMAIN}")
    body = ('<html lang="en"><body><p class=MsoNormal lang=EN-US>Please <mark>read</mark> the <ruby>漢<rt>kan'
            "</rt></ruby> note<o:p></o:p></p><p>Thanks, Mark</p></body></html>")
    delivered, decision = _prepare(body, sender=mark)
    html_part = _html_part(delivered)
    assert '<html lang="en"><body><p class=MsoNormal lang=EN-US>Please <mark>read</mark> the <ruby>漢<rt>kan' \
           "</rt></ruby> note<o:p></o:p></p>" in html_part
    assert "<p>Thanks, Rowan</p>" in html_part
    assert decision.action == "deliver", _reasons(decision)  # type: ignore[attr-defined]


def test_an_ordinary_doctype_is_no_contact_detail() -> None:
    body = ('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/'
            'xhtml1-transitional.dtd"><html><body><p>See you on Tuesday.</p></body></html>')
    delivered, decision = _prepare(body)
    assert decision.action == "deliver", _reasons(decision)  # type: ignore[attr-defined]
    assert _html_part(delivered).startswith('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"')


# --- end to end, through a running relay and the shipped policy ------------------------------------


async def test_end_to_end_an_unescaped_address_reaches_the_partner_as_the_alias(
    shipped_policies: Layout, relay: Relay, sink: Sink,
) -> None:
    pair = await acreate_pair(shipped_policies, {"email": THEO.email, "name": THEO.name, "handle": "Oak"},
                              {"email": AMARU.email, "name": AMARU.name, "handle": "Maple"}, "stem")
    sender = Member(AMARU.name, AMARU.email, "Maple", pair["mentee_alias"])
    partner = Member(THEO.name, THEO.email, "Oak", pair["mentor_alias"])
    body = (f"<p>Hi {THEO.first}, it's {AMARU.name} <{AMARU.email}></p><p data-{AMARU.first.lower()}>See you."
            f"</p {AMARU.email}>")
    code, text = await send(shipped_policies.smtp_port, _html(sender, partner, body).as_bytes(), AMARU.email,
                            pair["mentor_alias"])
    assert code == 250, text
    received = (await sink.wait_for(1))[0]
    found = leaks(received.raw, AMARU.needles() + THEO.needles())
    assert not found, "\n".join(found)
    html_part = _html_part(received.raw)
    assert f"it's Maple &lt;{pair['mentee_alias']}&gt;</p>" in html_part
