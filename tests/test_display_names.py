"""A member's display name (what their directory or account calls them) reaches the partner as the handle, whole.

A school's Exchange directory names the mentee "Doe, Jane (LHS Student - Grade 9)"; a Gmail account "Jane
Okafor-Doe" (enrolled as "Jane Doe"). Clients write that name before her address: in a forwarded message's
header (attached or inline, text and HTML), an attribution line, an invitation's ORGANIZER;CN=, a contact card.
Replacing only the enrolled words gave "Maple (LHS Student - Grade 9) <alias>" and "Maple Okafor-Maple": school,
grade, another surname. The display phrase before a member's address is now the member's (any member's: the
partner's display name in a quoted reply too), and the sender's own From display name is matched in the rest of
the message by its name-like words, never by its ordinary words ("Sunny Day" leaves "a sunny day" alone).

Through a running relay on loopback (SMTP in, sink out) and through relay.pipeline.prepare with the shipped
adult-professional policy, as the leak tests do.
"""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from relay.service import Relay
from tests.decode_all import leaks
from tests.mailclients import Person, calendar_invite
from tests.support import REPO, Layout, Sink, acreate_pair, send

DOMAIN = "relay.test"
POLICY = parse_policy(REPO / "policies" / "adult-professional.yaml")
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
JANE = Identity("jane.doe@mail.example.org", "Jane Doe", f"maple.x9@{DOMAIN}", "Maple")
JOSE = Identity("jose.mueller@uni.example.net", "José Müller", f"oak.k2@{DOMAIN}", "Oak")
DIRECTORY = "Doe, Jane (LHS Student - Grade 9)"  # the school's Exchange directory
TEACHER = "rsmith@lincolnhigh.k12.example.us"


def _teacher_mail() -> bytes:
    return (f'From: "Smith, Robert" <{TEACHER}>\r\nTo: "{DIRECTORY}" <{JANE.email}>\r\n'
            "Subject: Science fair project\r\nDate: Tue, 3 Nov 2026 08:15:00 -0600\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nYour project on bridges is due Friday.\r\n").encode()


def _outlook_forward_as_attachment(to_alias: str) -> bytes:
    m = EmailMessage()
    m["From"] = f'"{DIRECTORY}" <{JANE.email}>'
    m["To"] = to_alias
    m["Subject"] = "FW: Science fair project"
    m.set_content("Hi Oak, can you help me with this? See my teacher's mail attached.")
    m.add_attachment(email.message_from_bytes(_teacher_mail(), policy=policy.default),
                     filename="Science fair project.eml")
    return m.as_bytes()


def _gmail_inline_forward(to_alias: str) -> bytes:
    m = EmailMessage()
    m["From"] = f"Jane Doe <{JANE.email}>"  # her Gmail name; the forwarded block has the directory's
    m["To"] = to_alias
    m["Subject"] = "Fwd: Science fair project"
    m.set_content("Can you help?\n\n---------- Forwarded message ---------\n"
                  f"From: Smith, Robert <{TEACHER}>\nDate: Tue, 3 Nov 2026 at 15:15\n"
                  f"Subject: Science fair project\nTo: {DIRECTORY} <{JANE.email}>\n\n\n"
                  "Your project on bridges is due Friday.\n")
    m.add_alternative(
        '<div dir="ltr">Can you help?<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "---------- Forwarded message ---------<br>From: <strong class=\"gmail_sendername\" dir=\"auto\">"
        f'Smith, Robert</strong> <span dir="auto">&lt;<a href="mailto:{TEACHER}">{TEACHER}</a>&gt;</span><br>'
        "Date: Tue, 3 Nov 2026 at 15:15<br>Subject: Science fair project<br>"
        f'To: {DIRECTORY} &lt;<a href="mailto:{JANE.email}">{JANE.email}</a>&gt;<br></div><br><br>'
        '<div dir="ltr">Your project on bridges is due Friday.</div></div></div>', subtype="html")
    return m.as_bytes()


def _outlook_invitation(to_alias: str) -> bytes:
    ics = ("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\n"
           f'BEGIN:VEVENT\r\nORGANIZER;CN="{DIRECTORY}":mailto:{JANE.email}\r\n'
           f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Oak:mailto:{to_alias}\r\n"
           "SUMMARY;LANGUAGE=en-US:Mentoring chat\r\nDTSTART:20261110T170000Z\r\nDTEND:20261110T180000Z\r\n"
           "UID:040000008200E00074C5B7101A82E00800000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    m = EmailMessage()
    m["From"] = f'"{DIRECTORY}" <{JANE.email}>'
    m["To"] = f"Oak <{to_alias}>"
    m["Subject"] = "Mentoring chat"
    m.set_content("Mentoring chat\n")
    m.add_alternative(ics, subtype="calendar", params={"method": "REQUEST"})
    return m.as_bytes()


def _texts(raw: bytes) -> str:
    """What the copy shows below its own header (which always names the sender by the handle): every part's
    decoded content and the header of an attached message."""
    message = email.message_from_bytes(raw, policy=policy.default)
    shown: list[str] = []
    for part in message.walk():
        if part is not message:
            shown += [f"{name}: {value}" for name, value in part.items()]
        if not part.is_multipart() and part.get_content_type() != "message/rfc822":
            shown.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return "\n".join(shown)


async def test_school_directory_name_reaches_the_mentor_as_the_handle(relay: Relay, layout: Layout,
                                                                        sink: Sink) -> None:
    pair = await acreate_pair(layout, {"email": JOSE.email, "name": JOSE.name, "handle": "Oak"},
                              {"email": JANE.email, "name": JANE.name, "handle": "Maple"})
    mentor_alias, mentee_alias = pair["mentor_alias"], pair["mentee_alias"]
    builders = [_outlook_forward_as_attachment, _gmail_inline_forward, _outlook_invitation]
    for index, build in enumerate(builders):
        code, text = await send(layout.smtp_port, build(mentor_alias), JANE.email, mentor_alias)
        assert code == 250, text
        await sink.wait_for(index + 1)
    attached, inline, invitation = (received.raw for received in sink.received)
    for raw in (attached, inline, invitation):
        assert not leaks(raw, ["LHS Student", "Grade 9", "Jane", "Doe", JANE.email]), "\n".join(
            leaks(raw, ["LHS Student", "Grade 9", "Jane", "Doe", JANE.email]))
    # the attached message's header, the inline forward's text and HTML lines, the invitation's organiser
    assert f"Maple <{mentee_alias}>" in _texts(attached)
    inline_text = _texts(inline)
    assert f"To: Maple <{mentee_alias}>" in inline_text
    assert f"To: Maple &lt;<a href=\"mailto:{mentee_alias}\">" in inline_text
    assert f"ORGANIZER;CN=Maple:mailto:{mentee_alias}" in _texts(invitation)
    assert "Your project on bridges is due Friday." in inline_text  # the forwarded mail itself is kept


def _prepare(raw: bytes, sender: Identity = JANE, recipient: Identity = JOSE,
             actions: tuple[str, ...] = ("deliver", "redact")) -> bytes:
    """The copy the partner receives (a held message's copy is what a release delivers: anonymised alike)."""
    context = {"sender_role": "mentee", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": recipient.email, "recipient_name": recipient.name,
               "sender_nicknames": (), "recipient_nicknames": (), "region": "US", "domain": DOMAIN,
               "aliases": (sender.alias_address, recipient.alias_address), "stats": PairStats(5, 1)}
    prepared = prepare(parse(raw), sender=sender, recipient=recipient, thread_map={},
                       new_message_id=f"<new@{DOMAIN}>", now=NOW, domain=DOMAIN, policy=POLICY, context=context)
    assert prepared.decision.action in actions, prepared.decision
    return prepared.raw


def _plain(from_display: str, body: str) -> bytes:
    m = EmailMessage()
    m["From"] = f'"{from_display}" <{JANE.email}>'
    m["To"] = JOSE.alias_address
    m["Subject"] = "Re: hello"
    m.set_content(body)
    return m.as_bytes()


def test_google_calendar_invitation_from_another_surname_names_nobody() -> None:
    raw = calendar_invite(sender=Person("Jane Okafor-Doe", JANE.email), partner=Person("Oak", JOSE.alias_address),
                          to_alias=JOSE.alias_address, subject="Mentoring chat")
    delivered = _prepare(raw)
    assert not leaks(delivered, ["Okafor", "Jane", JANE.email]), "\n".join(leaks(delivered, ["Okafor", "Jane"]))
    texts = _texts(delivered)
    assert f"ORGANIZER;CN=Maple:mailto:{JANE.alias_address}" in texts
    assert f"Organiser: Maple <{JANE.alias_address}>" in texts
    assert "Mentoring session between Maple and Oak." in texts


def test_the_senders_own_display_name_is_matched_in_the_rest_of_the_message() -> None:
    delivered = _prepare(_plain("Jane Okafor-Doe", "Thanks for today!\n\nLove from the Okafor-Doe family.\n"
                                                   "Grandma Okafor says hello too.\n"))
    assert not leaks(delivered, ["Okafor"]), "\n".join(leaks(delivered, ["Okafor"]))
    assert "Love from the Maple family." in _texts(delivered)


def test_ordinary_words_of_a_display_name_stay_words() -> None:
    body = (f"What a sunny day for the fair! Have a nice Day.\n\n---------- Forwarded message ---------\n"
            f"From: Smith, Robert <{TEACHER}>\nTo: Sunny Day <{JANE.email}>\n\nSee you at the fair.\n")
    texts = _texts(_prepare(_plain("Sunny Day", body)))
    assert "What a sunny day for the fair! Have a nice Day." in texts  # "day" is not the handle
    assert f"To: Maple <{JANE.alias_address}>" in texts  # but her display name before her address is


def test_the_partners_display_name_in_a_quoted_reply_is_the_handle() -> None:
    """Her client quotes his message with the name his university's directory gives him; the text around it
    (the date, "wrote:") stays as written."""
    mentor = "Müller, José (Dept. of Physics, Uni Example)"
    m = EmailMessage()
    m["From"] = f"Jane Doe <{JANE.email}>"
    m["To"] = JOSE.alias_address
    m["Subject"] = "Re: reading list"
    m.set_content(f"Thank you!\n\nOn Tue, Nov 3, 2026 at 3:15 PM {mentor} <{JOSE.email}> wrote:\n"
                  "> Here is the reading list.\n")
    m.add_alternative(f'<div>Thank you!</div><div class="gmail_quote"><div class="gmail_attr">On Tue, Nov 3, 2026 '
                      f'at 3:15 PM {mentor} &lt;<a href="mailto:{JOSE.email}">{JOSE.email}</a>&gt; wrote:<br></div>'
                      "<blockquote>Here is the reading list.</blockquote></div>", subtype="html")
    delivered = _prepare(m.as_bytes())
    assert not leaks(delivered, ["Physics", "Uni Example", "Müller", JOSE.email]), "\n".join(
        leaks(delivered, ["Physics", "Uni Example", "Müller"]))
    texts = _texts(delivered)
    assert f"On Tue, Nov 3, 2026 at 3:15 PM Oak <{JOSE.alias_address}> wrote:" in texts
    assert f"On Tue, Nov 3, 2026 at 3:15 PM Oak &lt;<a href=\"mailto:{JOSE.alias_address}\">" in texts


def test_a_members_own_contact_card_is_named_by_the_handle() -> None:
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nN:Okafor;Jane;;;\r\nFN:Jane Okafor\r\n"
            f"EMAIL;TYPE=INTERNET:{JANE.email}\r\nNOTE:my card\r\nEND:VCARD\r\n")
    m = EmailMessage()
    m["From"] = f"Jane Doe <{JANE.email}>"
    m["To"] = JOSE.alias_address
    m["Subject"] = "my contact"
    m.set_content("Here is my card.")
    m.add_attachment(card.encode(), maintype="text", subtype="vcard", filename="card.vcf")
    delivered = _prepare(m.as_bytes(), actions=("hold",))  # the shipped policy holds contact cards for a look
    assert not leaks(delivered, ["Okafor", "Jane"]), "\n".join(leaks(delivered, ["Okafor", "Jane"]))
    texts = _texts(delivered)
    assert "FN:Maple" in texts and f"EMAIL;TYPE=INTERNET:{JANE.alias_address}" in texts
