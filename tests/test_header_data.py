"""What a worker's header task sends back is plain data (strings and tuples), with every value intake reads.

A parsed EmailMessage sent back from a worker cost the relay process more to unpickle (email.headerregistry
objects) than parsing it had cost the worker; the pickle must therefore name no `email` class.
"""

from __future__ import annotations

import pickle
import pickletools

from relay.inbound.header import read_header
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


def test_a_trusted_front_mtas_results_are_read_from_the_trace_fields() -> None:
    header = read_header(RAW, whole=False)
    front = trusted_results(header.trace, "front.example.edu")
    assert front.results is not None
    assert [(r.method, r.result) for r in front.results] == [("dkim", "pass"), ("dmarc", "pass")]
    assert front.forged  # the one in its name below the second Received line came with the message
    assert trusted_results(header.trace, "other.example").results is None
