"""The worker reads large messages without the stdlib's whole extra copies, and reads them the same.

relay/anonymize/message.py feeds the parser a piece at a time (BytesParser.parsebytes holds the message three
times more, once at four bytes per character); relay/anonymize/parts.decoded_payload decodes a base64 body in one
step (the email package copies it three times first). Both must give exactly what the stdlib gives, on every
message of the corpus and on base64 bodies broken in the ways real mail breaks them. How much memory they save
is a figure for bench/stall.py, not for a test.
"""

from __future__ import annotations

import base64
import os
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from relay.anonymize.mailpolicy import POLICY
from relay.anonymize.message import _parse_bytes
from relay.anonymize.parts import decoded_payload

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"


def corpus_messages() -> list[bytes]:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() in (".eml", ".msg", ".txt", ""))
    return [p.read_bytes() for p in files]


def stdlib_parse(raw: bytes) -> Message | BaseException:
    try:
        return BytesParser(policy=POLICY).parsebytes(raw)
    except Exception as error:
        return error


def test_the_corpus_parses_as_the_stdlib_parses_it_whole() -> None:
    messages = corpus_messages()
    assert len(messages) >= 80  # the corpus is there (tests/data/corpus/README.md)
    raws = [*messages, b"", b"Subject: no body", b"\xff\xfe\r\n\r\n\x80", os.urandom(3000)]
    large = (b"Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
             + "Gr\u00fc\u00dfe aus M\u00fcnchen, caf\u00e9 \u2603\r\n".encode() * 20_000)  # cut inside chars
    for raw in [*raws, large]:
        expected = stdlib_parse(raw)
        try:
            ours: Message | BaseException = _parse_bytes(raw)
        except Exception as error:
            ours = error
        if isinstance(expected, BaseException):
            assert type(ours) is type(expected), raw[:200]
            continue
        assert isinstance(ours, Message), (raw[:200], ours)
        assert ours.as_bytes(policy=POLICY) == expected.as_bytes(policy=POLICY), raw[:200]
        assert [str(d) for d in ours.defects] == [str(d) for d in expected.defects]


def base64_part(body: bytes) -> Message:
    raw = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body)
    part = BytesParser(policy=POLICY).parsebytes(raw)
    assert not part.is_multipart()
    return part


GOOD = base64.encodebytes(os.urandom(5000)).replace(b"\n", b"\r\n")

BODIES = {
    "lines of 76 with CRLF": GOOD,
    "one long line": base64.b64encode(os.urandom(3000)) + b"\r\n",
    "bare LF": base64.encodebytes(os.urandom(999)),
    "missing padding": base64.b64encode(b"ab") .rstrip(b"=") + b"\r\n",
    "characters outside the alphabet": GOOD[:200] + b"!*?" + GOOD[200:],
    "text after the padding": base64.b64encode(b"a") + b"\r\ntrailing words\r\n",
    "8-bit bytes": GOOD[:100] + b"\xe9\xff" + GOOD[100:],
    "empty": b"",
    "spaces and tabs": b" \t".join(GOOD.split(b"\r\n")),
    "not base64 at all": b"Dear Robin, see you on Tuesday.\r\n",
}


@pytest.mark.parametrize("name", list(BODIES))
def test_a_base64_body_decodes_as_the_email_package_decodes_it(name: str) -> None:
    part = base64_part(BODIES[name])
    assert decoded_payload(part) == part.get_payload(decode=True)


def test_every_base64_part_of_the_corpus_decodes_as_the_email_package_decodes_it() -> None:
    checked = 0
    for raw in corpus_messages():
        parsed = stdlib_parse(raw)
        if isinstance(parsed, BaseException):
            continue
        for part in parsed.walk():
            if not part.is_multipart() and str(part.get("content-transfer-encoding", "")).lower() == "base64":
                assert decoded_payload(part) == part.get_payload(decode=True)
                checked += 1
    assert checked >= 20  # the corpus has photos, documents and broken attachments
