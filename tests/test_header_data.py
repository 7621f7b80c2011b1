"""What a worker's header task sends back is plain data (strings and tuples), with every value intake reads.

A parsed EmailMessage sent back from a worker cost the relay process more to unpickle (email.headerregistry
objects) than parsing it had cost the worker; the pickle must therefore name no `email` class.
"""

from __future__ import annotations

import dataclasses
import pickle
import pickletools

import pytest

from relay.inbound.header import HeaderTooLarge, body_hash, head, read_header
from relay.senderauth.trusted import trusted_results

RAW = (
    b"Received: from front.example.edu by relay\r\n"
    b"Authentication-Results: front.example.edu; dkim=pass header.d=example.org; dmarc=pass header.from=example.org\r\n"
    b"Received: from outside by front.example.edu\r\n"
    b"Authentication-Results: front.example.edu; dkim=fail header.d=evil.example\r\n"
    b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.org>\r\n"
    b"To: alias@relay.example\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?= plans\r\n"
    b"Message-ID: <own@example.org>\r\n"
    b"In-Reply-To: <a@relay.example>\r\n"
    b"References: <z@relay.example>\r\n <a@relay.example>\r\n"
    b"X-Loop: Relay.Example\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Hola, caf=C3=A9 at nine?\r\n"
    b"--b\r\nContent-Type: text/html\r\n\r\n<p>Hola</p>\r\n--b--\r\n"
)


def _classes(data: bytes) -> set[str]:
    """The modules of every class a pickle would import when loaded."""
    found: set[str] = set()
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(str(arg))
        elif opcode.name == "STACK_GLOBAL":
            found.add(strings[-2])
        elif opcode.name == "GLOBAL":
            found.add(str(arg).split()[0])
    return found


def test_the_header_task_returns_plain_values_intake_needs() -> None:
    header = read_header(RAW, whole=False)
    assert header.sender == "jose@example.org"
    assert header.own_id == "<own@example.org>"
    assert header.looped("relay.example")
    assert header.subject == "Café plans"
    assert header.refs == ("<a@relay.example>", "<z@relay.example>", "<a@relay.example>")
    assert header.auto_reply == "Auto-Submitted: auto-replied"
    assert header.text == ""  # the body is read only for program mail
    modules = _classes(pickle.dumps(header))
    assert modules == {"relay.inbound.header"}, modules


def test_program_mail_gets_the_plain_text_of_the_body() -> None:
    header = read_header(RAW, whole=True)
    assert header.text == "Hola, café at nine?"
    assert _classes(pickle.dumps(header)) == {"relay.inbound.header"}


def test_program_mail_gets_every_text_a_reader_sees() -> None:
    """Not only the first text/plain part: HTML alone (its visible text), text after a photo, a forward's text;
    an alternative's two versions once; attached files left out."""
    head = b"From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    html_only = head + (b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p {color: red}</style>"
                        b"</head><body><p>I feel unsafe at <b>home</b> &amp; scared</p></body></html>\r\n")
    assert read_header(html_only).text == "I feel unsafe at home & scared"
    mixed = head + (
        b"Content-Type: multipart/mixed; boundary=m\r\n\r\n"
        b"--m\r\nContent-Type: text/plain\r\n\r\nThis is my arm:\r\n"
        b"--m\r\nContent-Type: image/jpeg\r\nContent-Disposition: inline; filename=a.jpg\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n/9j/4A==\r\n"
        b"--m\r\nContent-Type: text/plain\r\n\r\nHe hits me.\r\n"
        b"--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: text/plain\r\n\r\nPlain version\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n<p>HTML version</p>\r\n--a--\r\n"
        b"--m\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.net\r\nSubject: fw\r\n\r\nForwarded words\r\n"
        b"--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n"
        b"An attached file\r\n--m--\r\n")
    assert read_header(mixed).text == "This is my arm:\n\nHe hits me.\n\nPlain version\n\nForwarded words"
    assert read_header(head + b"Content-Type: image/png\r\n\r\nx\r\n").text.startswith("(The message has no text")


def test_a_trusted_front_mtas_results_are_read_from_the_trace_fields() -> None:
    header = read_header(RAW, whole=False)
    front = trusted_results(header.trace, "front.example.edu")
    assert front.results is not None
    assert [(r.method, r.result) for r in front.results] == [("dkim", "pass"), ("dmarc", "pass")]
    assert front.forged  # the one in its name below the second Received line came with the message
    assert trusted_results(header.trace, "other.example").results is None


@pytest.mark.parametrize("raw", [
    RAW,
    RAW.replace(b"\r\n", b"\n"),  # LF line ends
    b"From: a@example.org\nSubject: early LF LF\n\nbody\r\n\r\nmore\r\n",  # LF LF before CRLF CRLF
    b"From: a@example.org\r\nSubject: late LF LF\r\n\r\nbody\n\nmore\n",
    b"From: a@example.org\r\nSubject: no body\r\n",
    RAW + b"A" * 300_000,  # a large body: what a large message's header read gets
])
def test_a_large_messages_header_read_from_its_head_is_the_whole_reading(raw: bytes) -> None:
    """Of a large message intake sends only the head to a worker and hashes the body itself: the same Header."""
    assert dataclasses.replace(read_header(head(raw), whole=False), body_hash=body_hash(raw)) == read_header(
        raw, whole=False)


def test_a_header_too_large_is_refused_from_the_head_alone() -> None:
    raw = b"From: a@example.org\r\n" + b"X-Filler: " + b"x" * 10_000 + b"\r\n" + b"X-More: y\r\n" * 20_000 + b"\r\nbody"
    with pytest.raises(HeaderTooLarge) as whole:
        read_header(raw, whole=False)
    with pytest.raises(HeaderTooLarge) as from_head:
        read_header(head(raw), whole=False)
    assert str(from_head.value) == str(whole.value)
