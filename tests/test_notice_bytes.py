"""A notice's bytes are what the email package writes for it: every notice in every language, with plain
and unusual handles, addresses, program names, subjects and texts, is byte for byte the message that
EmailMessage (policy.default) composes, as the relay composed every notice before relay/notices/mime.py
(issue 14: the sweep writes text notices without building an EmailMessage). A member gets the same mail."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from relay.languages import SHIPPED, html_lang
from relay.notices import compose, notice
from tests.test_translations import NAMES, YOUTH, contexts

NOW = datetime(2026, 7, 20, 17, 58, 33, tzinfo=UTC)
DOMAIN = "relay.example"
BOUNDARY = re.compile(rb"=+[0-9]+==")


def email_package(*, domain: str, program_name: str, to: str, subject: str, body: str, now: datetime,
                  message_id: str, in_reply_to: str | None = None, reply_to: str | None = None,
                  headers: dict[str, str] | None = None, html: str | None = None,
                  attachments: list[tuple[bytes, str, str]] | None = None, language: str | None = None) -> bytes:
    """A notice as the relay wrote every notice before: an EmailMessage with policy.default."""
    message = EmailMessage()
    message["From"] = Address(display_name=program_name, username="notices", domain=domain)
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message["Auto-Submitted"] = "auto-generated"
    message["X-Loop"] = domain
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for data, content_type, filename in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    if language:
        message["Content-Language"] = html_lang(language)
    if subject.isascii() and len(subject) < 900:
        return message.as_bytes(policy=message.policy.clone(max_line_length=998))
    return message.as_bytes()


def same_as_email_package(*, domain: str = DOMAIN, program_name: str = "STEM mentoring", **fields: Any) -> None:
    """compose's bytes, checked against the email package's for the same notice (same Message-ID; the
    random MIME boundaries of a multipart notice read alike); a notice the email package refuses (a line
    break in a header, an address it cannot parse) is refused with the same error."""
    try:
        made = compose(domain=domain, program_name=program_name, now=NOW, **fields)
    except Exception as refused:
        with pytest.raises(type(refused)):
            email_package(domain=domain, program_name=program_name, now=NOW, message_id="<a.b@relay.example>",
                          **fields)
        return
    expected = email_package(domain=domain, program_name=program_name, now=NOW, message_id=made.message_id,
                             **fields)
    assert BOUNDARY.sub(b"=BOUNDARY=", made.raw) == BOUNDARY.sub(b"=BOUNDARY=", expected), (made.raw, expected)


HANDLES = [{}, {"handle": "Zoë", "partner_handle": "Ñandú", "mentee_handle": "Zoë", "mentor_handle": "Ñandú"},
           {"handle": "Сова", "partner_handle": "بومة", "mentee_handle": "Сова", "mentor_handle": "بومة"},
           {"handle": "O'Brien-Smith_2", "partner_handle": "Oak", "mentee_handle": "O'Brien-Smith_2",
            "mentor_handle": "Oak", "subject": 'Re: "week 4" (draft) =?utf-8?q?hi?= <a@b>, c; d: e\\f'}]
RECIPIENTS = ["mentor0@uni.example.net", "ana.maria+mentoring@mail.example-school.org"]


@pytest.mark.parametrize("language", SHIPPED)
@pytest.mark.parametrize("name", NAMES)
def test_every_notice_in_every_language_is_what_the_email_package_writes(name: str, language: str) -> None:
    for number, context in enumerate(contexts(name)):
        for handles in HANDLES:
            for audience in (None, "youth") if name in YOUTH else (None,):
                mail = notice(name, language, audience=audience, **{**context, **handles})
                same_as_email_package(to=RECIPIENTS[number % 2], subject=mail.subject, body=mail.text, html=mail.html,
                                      language=language)


def test_unusual_addresses_names_subjects_and_headers() -> None:
    body = "Hello Oak,\n\nA line.\n"
    for to in ["o'brien@example.org", "Ana Lima <ana@example.org>", '"Lima, Ana" <ana@example.org>',
               "a..b@example.org", ".a@example.org", "=?utf-8?q?x?=@example.org", "x@[127.0.0.1]",
               "verylonglocalpart.verylonglocalpart.verylonglocalpart.verylong@a-rather-long-domain.example.org",
               "ünï@example.org", "a@b", "  spaced@example.org", "two@example.org, three@example.org"]:
        same_as_email_package(to=to, subject="Hello", body=body)
    for program_name in ["Programa de mentoría", 'Club "Robotics", Inc.', "Ann's (STEM) club: a; b",
                         "A very long program name that goes on and on for more than the line of a header"]:
        same_as_email_package(program_name=program_name, to="a@example.org", subject="Hello", body=body)
        same_as_email_package(program_name=program_name, to="a@example.org", subject="Hola, ¿qué tal?", body=body)
    for subject in ["", " leading", "trailing ", "two  spaces", "tab\there", "=?utf-8?q?caf=C3=A9?=", "x" * 72,
                    "word " * 14 + "end", "w" * 899, "w " * 460, "Ünïcode " * 20, "Сова ждёт ответа уже 3 недели",
                    "URGENT: a held message in pair 7 needs a look", "line\x0cfeed", "del\x7fete"]:
        same_as_email_package(to="a@example.org", subject=subject, body=body)
    same_as_email_package(to="a@example.org", subject="Hello", body=body, in_reply_to="<m1.2@mail.example.org>",
                          reply_to="help@relay.example", headers={"Importance": "high", "X-Priority": "1"})
    same_as_email_package(to="a@example.org", subject="Hello", body=body, headers={"Content-Description": "x"})
    same_as_email_package(to="a@example.org", subject="Hello", body=body, language="es-MX")
    same_as_email_package(to="a@example.org", subject="Hello", body=body, html="<p>Hello</p>", language="fr")
    same_as_email_package(to="a@example.org", subject="Hello", body=body,
                          attachments=[(b"From a\n", "application/mbox", "conversation-Oak.mbox")])
    for to, subject in [("a@example.org\nBcc: b@example.org", "Hello"), ("a@example.org", "Hi\r\nBcc: x")]:
        with pytest.raises(ValueError):  # no header injection, as before
            compose(domain=DOMAIN, program_name="STEM", now=NOW, to=to, subject=subject, body=body)


def test_texts_of_every_shape() -> None:
    """Short and long lines, ASCII and not, few and many lines (7bit, 8bit, quoted-printable, base64)."""
    long_en = "A reminder that Maple0 is still waiting for your answer, sent three weeks ago on Monday. "
    long_ru = "Напоминаем: Сова всё ещё ждёт вашего ответа, отправленного три недели назад в понедельник. "
    long_ar = "تذكير: بومة ما زالت تنتظر ردك الذي أرسل قبل ثلاثة أسابيع يوم الاثنين. "
    shapes = ["", "\n", "one line without an end", "x" * 78 + "\n", "x" * 79 + "\n", "é" * 39 + "\n", "é" * 40 + "\n",
              "trailing spaces   \nand tabs\t\n", "crlf\r\nlines\r\n", "form\x0cfeed and\x0bvertical tab\n",
              "From the start\n.\n..\n", "=3D equals = signs=\n" * 3, "nul \x00 and bell \x07\n",
              "next line \u0085 and separators \u2028 \u2029\n"]
    for text in (long_en, long_ru, long_ar):
        shapes += [text, text * 3, (text * 2 + "\n") * 5, (text * 2 + "\n") * 12, text + "\n" + "short\n" * 12]
    for body in shapes:
        same_as_email_package(to="a@example.org", subject="Hello", body=body)
        same_as_email_package(to="a@example.org", subject="Привет", body=body, language="ru")


def test_random_ascii_subjects_and_addresses() -> None:
    """Printable ASCII with the characters that header parsing treats specially, seeded."""
    chance = random.Random(14)
    alphabet = "abcXYZ019 ._-+'\"()<>@,;:\\[]=?!#%&*/{}|~`^$"
    for _ in range(300):
        subject = "".join(chance.choice(alphabet) for _ in range(chance.randrange(1, 90)))
        local = "".join(chance.choice(alphabet) for _ in range(chance.randrange(1, 20)))
        same_as_email_package(to=f"{local}@example.org", subject=subject, body="x\n")
