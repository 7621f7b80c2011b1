"""Malformed input never crashes the relay: each message is delivered intact in structure, or refused.

Two sources of messages go through one in-process relay (module-scoped, for speed):

* the corpus in tests/data/corpus (real and deliberately broken messages from other projects'
  test suites), used byte for byte except for the From header line, which is
  replaced (or inserted) so the message comes from the enrolled mentee;
* synthetic torture cases built here (broken boundaries, bad base64, NUL bytes, raw 8-bit headers,
  overlong lines, deep nesting, unknown charsets, broken parameters and encoded words).

For each message: the reply is 250, or a 5xx whose text is plain words (never an exception dump);
the relay still takes and delivers a normal message afterwards; and a delivered message parses, keeps
the original's leaves (count and content types; a part declared multipart that has no parts becomes
text/plain, as documented in relay.anonymize.parts, and an invalid Content-Type counts as the
text/plain it means) and shows neither member's real address, in its bytes or decoded. A message
that marks itself as automatic (delivery reports and newsletters in the corpus carry Auto-Submitted
or Precedence: bulk) is archived with the decision "autoreply" instead of being forwarded, as
relay.autoreply says; the test checks that decision in the store and the partner's one neutral notice.
A message with an attachment the relay cannot clean (a bzip2 file in the corpus) is held for a moderator
with the reason (issue 11), and nothing of it reaches the mentor.
"""

from __future__ import annotations

import base64
import email
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from relay.config import load_settings
from relay.service import Relay
from relay.store.schema import held, messages, outbound
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acreate_pair,
    eventually,
    free_port,
    send,
    simple_message,
)

ON_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the relay lives on the module's loop

# The corpus ships with the tests (tests/data/corpus/README.md says where each folder comes from).
CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
MESSAGE_SUFFIXES = {".eml", ".mime", ".mail"}
NOT_MESSAGES = re.compile(r"(README.*|COPYING.*|LICEN[SC]E.*)", re.IGNORECASE)
MISSING = "corpus-missing"

MENTEE_FROM = f"{MENTEE['name']} <{MENTEE['email']}>".encode()
REAL_ADDRESSES = [MENTEE["email"].lower().encode(), MENTOR["email"].lower().encode()]

# The header-line grammar of the stdlib parser (email.feedparser.headerRE): a line that matches is
# part of the header block; the first line that does not (or an empty line) starts the body.
HEADER_LINE = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")
FROM_LINE = re.compile(rb"^from[ \t]*:", re.IGNORECASE)
MIME_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+/[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+")  # RFC 2045 token/token
# What a reply must not look like: aiosmtpd's default "500 Error: (KeyError) ...", a traceback, or
# any Python exception class name leaking out of the relay.
EXCEPTION_DUMP = re.compile(r"Error: \(|Traceback|File \"|\b[A-Z]\w*(?:Error|Exception)\b")


# --------------------------------------------------------------------------------------------------
# Fixtures: one sink, one relay and one pair for the whole module.


@dataclass
class Env:
    relay: Relay
    layout: Layout
    sink: Sink
    mentor_alias: str
    mentee_alias: str
    accepted: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # queue id -> (Message-ID, body)
    follow_ups: int = 0
    away_notices: int = 0

    @property
    def port(self) -> int:
        return self.layout.smtp_port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def layout(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Layout:
    result = Layout(
        root=tmp_path_factory.mktemp("malformed") / "relay", smtp_port=free_port(), sink_port=sink.port,
    )
    result.write()
    return result


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def relay(layout: Layout) -> AsyncIterator[Relay]:
    running = Relay(load_settings(layout.config))
    await running.start()
    yield running
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(relay: Relay, layout: Layout, sink: Sink) -> Env:
    pair = await acreate_pair(layout)
    return Env(relay, layout, sink, pair["mentor_alias"], pair["mentee_alias"])


# --------------------------------------------------------------------------------------------------
# Helpers.


def corpus_files() -> list[Any]:
    """Every message file of the corpus; a single MISSING marker when there is none (so the test fails)."""
    if not CORPUS.is_dir():
        return [MISSING]
    files = sorted(
        p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() in MESSAGE_SUFFIXES
    )
    return [pytest.param(p, id=str(p.relative_to(CORPUS))) for p in files] or [MISSING]


def from_mentee(raw: bytes) -> bytes:
    """`raw` with its From header line(s) replaced by the mentee's (or one inserted); nothing else changes.

    The header block is found as the stdlib parser finds it, so a From: line that the parser would
    read as body is not touched. Continuation lines of a replaced From are dropped with it.
    """
    lines = raw.splitlines(keepends=True)
    newline = b"\r\n" if b"\r\n" in raw[:4096] or b"\n" not in raw else b"\n"
    replacement = b"From: " + MENTEE_FROM + newline
    out: list[bytes] = []
    index, replaced, in_from = 0, False, False
    while index < len(lines):
        line = lines[index]
        if line.strip(b"\r\n") == b"" or not HEADER_LINE.match(line):
            break  # end of the header block
        if in_from and line[:1] in (b" ", b"\t"):
            index += 1
            continue  # continuation of a From line being replaced
        in_from = False
        if FROM_LINE.match(line):
            out.append(replacement)
            replaced, in_from = True, True
        else:
            out.append(line)
        index += 1
    if not replaced:
        at = 1 if out and out[0].startswith(b"From ") else 0  # keep an mbox "From " line first
        out.insert(at, replacement)
    return b"".join(out) + b"".join(lines[index:])


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=policy.default)


def leaves(message: Message, *, multipart_without_parts: str | None = None) -> list[str]:
    """Content types of the non-multipart parts, in walk order.

    The type is the one a mail client reads: an invalid Content-Type ('"text/plain"', "text/plain(")
    means text/plain (RFC 2045, 5.2), though get_content_type() returns it as declared.
    `multipart_without_parts`: what to report for a part declared multipart whose body has no parts
    (the relay delivers such a part as text/plain). A UTF-8 text file sent as application/octet-stream
    (notes.txt) is text/plain too: the relay delivers it as the text it is, cleaned.
    """
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if not MIME_TYPE.fullmatch(ctype) or _text_file(part):
            ctype = "text/plain"
        if multipart_without_parts and part.get_content_maintype() == "multipart":
            ctype = multipart_without_parts
        found.append(ctype)
    return found


def _text_file(part: Message) -> bool:
    name = (part.get_filename() or "").lower()
    if part.get_content_type() != "application/octet-stream" or not name.endswith((".txt", ".md", ".csv", ".log")):
        return False
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or b"\x00" in payload:
        return False
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decoded_text(message: Message) -> str:
    """All header values and text leaves of `message`, decoded as a mail client would show them."""
    chunks: list[str] = []
    for part in message.walk():
        for name, value in part.items():
            chunks.append(f"{name}: {value}")
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and part.get_content_maintype() in ("text", "multipart"):
            chunks.append(payload.decode(part.get_content_charset() or "utf-8", "replace")
                          if _known_charset(part.get_content_charset()) else payload.decode("latin-1"))
    return "\n".join(chunks)


def _known_charset(charset: str | None) -> bool:
    if charset is None:
        return True
    try:
        "".encode(charset)
    except (LookupError, ValueError):  # ValueError: a NUL byte in the name
        return False
    return True


def assert_readable_refusal(code: int, text: str, label: str) -> None:
    assert code == 250 or 500 <= code < 600, f"{label}: expected 250 or a 5xx refusal, got {code} {text!r}"
    assert re.search(r"[A-Za-z]{3,}(?:\s+[A-Za-z]{2,})+", text), f"{label}: reply is not readable: {text!r}"
    assert not EXCEPTION_DUMP.search(text), f"{label}: reply looks like an exception dump: {code} {text!r}"


async def pass_through(env: Env, raw: bytes, label: str) -> tuple[int, str]:
    """Send `raw` from the mentee to the mentor's alias and check the outcome (see module docstring)."""
    before = len(env.sink.received)
    code, text = await send(env.port, raw, MENTEE["email"], env.mentor_alias)
    print(f"{label}: {code} {text}")  # the outcome, shown with -rP
    assert_readable_refusal(code, text, label)
    if code == 250:
        queued = re.search(r"queued as (\w+)", text)
        assert queued, f"{label}: 250 without a queue id: {text!r}"
        queue_id, key = queued.group(1), resend_key(raw)
        if queue_id in env.accepted:
            # The relay took it for a client resend (same Message-ID and body as a message it already
            # accepted and delivered), so nothing new is delivered: legitimate only if that is so.
            assert env.accepted[queue_id] == key and key[0], f"{label}: wrongly taken for a resend ({text!r})"
            await still_alive(env, label)
            return code, text
        env.accepted[queue_id] = key
        decision = await decision_of(env, queue_id)
        if decision == "autoreply":
            await check_auto_reply(env, before, label)
        elif decision == "hold":
            await check_held(env, queue_id, before, label)
        else:
            delivered = (await env.sink.wait_for(before + 1))[before]
            assert delivered.rcpt_tos == [MENTOR["email"]], label
            check_delivered(raw, delivered.raw, label)
    await still_alive(env, label)
    return code, text


async def decision_of(env: Env, queue_id: str) -> str:
    """The decision the relay recorded for a message (read from its store)."""
    async with env.relay.engine.connect() as connection:
        decision = (await connection.execute(select(messages.c.decision).where(messages.c.id == queue_id))).scalar()
    assert decision is not None, f"queue id {queue_id} is not in the archive"
    return str(decision)


async def check_held(env: Env, queue_id: str, before: int, label: str) -> None:
    """A message the relay cannot make safe (issue 11: an attachment it cannot clean, such as a bzip2 file) is
    held for a moderator with the reason, never delivered as it came: nothing reaches the mentor for it, only
    the notices (to the sender, to moderators) go out."""
    async with env.relay.engine.connect() as connection:
        reasons = (await connection.execute(select(held.c.reasons).where(held.c.message_id == queue_id))).scalar()
    assert reasons, f"{label}: held without a recorded reason"
    assert all(r.get("rule") and r.get("kind") for r in json.loads(reasons)), f"{label}: {reasons}"

    async def drained() -> bool:
        async with env.relay.engine.connect() as connection:
            waiting = (await connection.execute(select(outbound.c.id).where(outbound.c.state == "queued"))).first()
        return waiting is None

    await eventually(drained)
    assert not [r for r in env.sink.received[before:] if r.rcpt_tos == [MENTOR["email"]]], label


async def check_auto_reply(env: Env, before: int, label: str) -> None:
    """Mail marked as automatic (Auto-Submitted, Precedence bulk/list, ...) is archived, not forwarded:
    at most the partner's weekly neutral notice goes out, from the relay itself."""
    if env.away_notices == 0:
        notice = (await env.sink.wait_for(before + 1))[before]
        assert notice.message["From"].addresses[0].addr_spec == f"notices@{DOMAIN}", label
        assert notice.message["Subject"] == "Maple is away for now", label
        env.away_notices += 1


def resend_key(raw: bytes) -> tuple[str, bytes]:
    """What the relay's resend detection compares: the Message-ID and the body (line ends aside)."""
    normal = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    head, _, body = normal.partition(b"\r\n\r\n")
    found = re.search(rb"^message-id:[ \t]*(.*)$", head, re.IGNORECASE | re.MULTILINE)
    return (found.group(1).strip().decode("ascii", "replace") if found else ""), body


def opened(message: Message) -> Message:
    """The message with each attached message sent base64 or quoted-printable decoded, as mail clients (and
    the relay) read it; the stdlib parser leaves it as encoded text (rfc/008.eml)."""
    for part in message.walk():
        encoding = str(part.get("Content-Transfer-Encoding", "")).lower()
        children = part.get_payload() if part.get_content_maintype() == "message" else None
        if encoding in ("base64", "quoted-printable") and isinstance(children, list):
            carrier = Message()
            carrier["Content-Transfer-Encoding"] = encoding
            carrier.set_payload("".join(c.as_string() for c in children if isinstance(c, Message)))
            decoded = carrier.get_payload(decode=True)
            assert isinstance(decoded, bytes)
            part.set_payload([email.message_from_bytes(decoded, policy=policy.default)])
    return message


def check_delivered(original_raw: bytes, delivered_raw: bytes, label: str) -> None:
    lowered = delivered_raw.lower()
    for address in REAL_ADDRESSES:
        assert address not in lowered, f"{label}: {address.decode()} appears in the delivered bytes"
    delivered = parse(delivered_raw)
    shown = decoded_text(delivered).lower()
    for address in REAL_ADDRESSES:
        assert address.decode() not in shown, f"{label}: {address.decode()} appears in the decoded message"
    original = opened(parse(original_raw))
    expected = leaves(original, multipart_without_parts="text/plain")
    assert leaves(delivered) == expected, f"{label}: MIME structure changed in delivery"
    for name in ("From", "Reply-To", "To"):  # exactly the relay's own, nothing smuggled in
        values = [str(v) for v in delivered.get_all(name, [])]
        assert len(values) == 1 and values[0].endswith(f"@{DOMAIN}>"), f"{label}: {name} is {values!r}"
    assert MENTEE["handle"] in str(delivered["From"]), f"{label}: From is {delivered['From']!r}"


async def still_alive(env: Env, label: str) -> None:
    """A normal message right after is accepted and arrives: the relay survived."""
    env.follow_ups += 1
    token = f"follow-up {env.follow_ups}"
    before = len(env.sink.received)
    raw = simple_message(f"Jane Doe <{MENTEE['email']}>", env.mentor_alias, token, "Still there?",
                         message_id=f"<follow.{env.follow_ups}@mail.example.org>")
    code, text = await send(env.port, raw, MENTEE["email"], env.mentor_alias)
    assert code == 250, f"after {label}: a normal message was refused: {code} {text!r}"
    arrived = (await env.sink.wait_for(before + 1))[before].message
    assert arrived["Subject"] == token, f"after {label}: got {arrived['Subject']!r}, not the follow-up"


# --------------------------------------------------------------------------------------------------
# 1. The corpus.


@ON_MODULE_LOOP
@pytest.mark.parametrize("path", corpus_files())
async def test_corpus_message_passes_the_relay(env: Env, path: Any) -> None:
    if path == MISSING:
        pytest.fail(f"the mail corpus is missing or holds no messages: expected {CORPUS}")
    assert isinstance(path, Path)
    await pass_through(env, from_mentee(path.read_bytes()), str(path.relative_to(CORPUS)))


def test_corpus_holds_nothing_unrecognised() -> None:
    """A message file with an unexpected extension would silently escape the parametrised test."""
    if not CORPUS.is_dir():
        pytest.fail(f"the mail corpus is missing: expected {CORPUS}")
    unknown = [
        str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix.lower() not in MESSAGE_SUFFIXES and not NOT_MESSAGES.fullmatch(p.name)
    ]
    assert not unknown, f"files in the corpus that are neither messages nor licences: {unknown}"


def test_from_rewrite_is_minimal() -> None:
    raw = b"Received: x\r\nFROM: Someone\r\n  <s@x.example>\r\nSubject: caf\xe9\r\n\r\nFrom: body\r\n"
    assert from_mentee(raw) == (
        b"Received: x\r\nFrom: " + MENTEE_FROM + b"\r\nSubject: caf\xe9\r\n\r\nFrom: body\r\n"
    )
    assert from_mentee(b"Subject: x\n\nbody\n") == b"From: " + MENTEE_FROM + b"\nSubject: x\n\nbody\n"
    assert from_mentee(b"From a@b Mon\nTo: y\n\n") == b"From a@b Mon\nFrom: " + MENTEE_FROM + b"\nTo: y\n\n"


# --------------------------------------------------------------------------------------------------
# 2. Synthetic torture cases. Each body mentions a real address, so the leak checks mean something.

CRLF = b"\r\n"
ADDR = MENTEE["email"].encode()
MENTOR_ADDR = MENTOR["email"].encode()


def message(*headers: bytes | str, body: bytes | None = b"", from_line: bytes | None = None) -> bytes:
    """Header lines (bytes kept as they are) and a body; body=None means no blank line at all."""
    lines = [from_line if from_line is not None else b"From: " + MENTEE_FROM]
    lines += [h.encode() if isinstance(h, str) else h for h in headers]
    head = CRLF.join(lines) + CRLF
    return head if body is None else head + CRLF + body


def nested(depth: int) -> bytes:
    """A multipart nested `depth` levels deep with one text leaf at the bottom."""
    inner = b"Content-Type: text/plain; charset=utf-8" + CRLF + CRLF + b"deep down: " + ADDR + CRLF
    for level in range(depth, 0, -1):
        boundary = f"b{level}".encode()
        inner = (b"Content-Type: multipart/mixed; boundary=" + boundary + CRLF + CRLF
                 + b"--" + boundary + CRLF + inner + b"--" + boundary + b"--" + CRLF)
    return message("Subject: nested", "MIME-Version: 1.0", body=None) + inner  # inner's header continues ours


def enclosed(depth: int) -> bytes:
    """Content-Type header and body of message/rfc822 parts enclosed `depth` levels deep."""
    inner = b"Subject: innermost" + CRLF + CRLF + b"hi " + ADDR + CRLF
    for _ in range(depth):
        inner = b"Content-Type: message/rfc822" + CRLF + CRLF + inner
    return inner


def multipart(boundary: bytes, *parts: bytes, close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + CRLF + part + CRLF for part in parts)
    return body + (b"--" + boundary + b"--" + CRLF if close else b"")


TEXT_PART = b"Content-Type: text/plain; charset=utf-8" + CRLF + CRLF + b"write to " + ADDR
HTML_PART = (b"Content-Type: text/html; charset=utf-8" + CRLF + CRLF
             + b"<p>mail <a href=\"mailto:" + MENTOR_ADDR + b"\">me</a></p>")
GOOD_B64 = base64.b64encode(b"Hello, reach me at " + ADDR + b" any time.")


def _build_cases() -> dict[str, bytes]:
    mp = ("MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="XYZ"')
    long_folded = "X-Long: " + "\r\n ".join("w" * 99 for _ in range(20))  # 2000+ chars, folded
    cases: dict[str, bytes] = {
        "missing final boundary": message("Subject: t", *mp, body=multipart(b"XYZ", TEXT_PART, HTML_PART,
                                                                             close=False)),
        "first boundary misspelt (the part falls into the preamble)": message("Subject: t", *mp, body=(
            b"-XYZ" + CRLF + TEXT_PART + CRLF + multipart(b"XYZ", HTML_PART)
            + b"after the end: " + MENTOR_ADDR + CRLF)),
        "8-bit preamble with an encoded word": message("Subject: t", *mp, body=(
            "Pr\u00e9ambule =?utf-8?q?J=C3=A4ne?= ".encode() + ADDR + CRLF + multipart(b"XYZ", TEXT_PART))),
        "boundary never appears": message("Subject: t", *mp, body=b"just text, " + ADDR + CRLF),
        "boundary parameter missing": message("Subject: t", "MIME-Version: 1.0", "Content-Type: multipart/mixed",
                                              body=multipart(b"XYZ", TEXT_PART)),
        "bad base64 invalid chars": message(
            "Subject: t", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64",
            body=GOOD_B64[:12] + b"!!*$%" + GOOD_B64[12:] + b"@@" + CRLF),
        "bad base64 wrong padding": message(
            "Subject: t", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64",
            body=GOOD_B64.rstrip(b"=") + b"=====" + CRLF + b"QQ" + CRLF),
        "bad base64 truncated in multipart": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART,
            b"Content-Type: text/plain; charset=utf-8" + CRLF + b"Content-Transfer-Encoding: base64" + CRLF
            + CRLF + GOOD_B64[:-3])),
        "NUL bytes in body": message("Subject: t", "Content-Type: text/plain; charset=utf-8",
                                     body=b"before\x00after " + ADDR + b"\x00\x00" + CRLF),
        "NUL bytes in header": message(b"Subject: hello\x00world " + ADDR, b"X-Note: a\x00b",
                                       body=b"body" + CRLF),
        "NUL byte in Message-ID": message("Subject: t", b"Message-ID: <a\x00b@client.example>", body=b"hi" + CRLF),
        "2000-char Message-ID": message("Subject: t", b"Message-ID: <" + b"x" * 2000 + b"@client.example>",
                                        body=b"hi" + CRLF),
        "NUL byte in From display name": message(body=b"hi" + CRLF, from_line=b"From: Jane\x00Doe <" + ADDR + b">"),
        "raw UTF-8 Subject and From name": message(
            "Subject: caf\u00e9 \u2013 \u65e5\u672c".encode(), body=b"hi " + ADDR + CRLF,
            from_line="From: J\u00e4ne D\u00f6e \u65e5 <".encode() + ADDR + b">"),
        "raw latin-1 Subject and From name": message(
            b"Subject: caf\xe9 cr\xe8me", body=b"hi " + ADDR + CRLF, from_line=b"From: J\xe4ne D\xf6e <" + ADDR + b">"),
        "raw 8-bit mixed with encoded words": message(
            b"Subject: caf\xc3\xa9 =?utf-8?q?caf=C3=A9?= =?iso-8859-1?q?cr=E8me?=", body=b"hi" + CRLF,
            from_line=b"From: =?utf-8?q?J=C3=A4ne?= D\xc3\xb6e <" + ADDR + b">"),
        "raw 8-bit body without charset": message("Subject: t", body=b"Gr\xfc\xdfe, " + ADDR + b" \xe2\x82\xac" + CRLF),
        "5000-char body line": message("Subject: t", body=b"x" * 4950 + b" " + ADDR + CRLF),
        "2000-char header line": message("Subject: " + "y" * 2000, body=b"hi" + CRLF),
        "2000-char folded header": message(long_folded, "Subject: t", body=b"hi " + ADDR + CRLF),
        "5000-char quoted-printable line": message(
            "Subject: t", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable",
            body=b"=\r\n".join([b"z" * 70] * 72) + b" " + ADDR + CRLF),
        "multipart nested 60 deep": nested(60),
        "multipart nested 200 deep": nested(200),
        "unknown charset x-unknown": message(
            "Subject: =?x-unknown?q?hello?=", "Content-Type: text/plain; charset=x-unknown",
            body=b"\xe4\xf6 hello " + ADDR + CRLF),
        "unknown charset in multipart with base64": message("Subject: t", *mp, body=multipart(
            b"XYZ", b"Content-Type: text/html; charset=\"x-unknown\"" + CRLF
            + b"Content-Transfer-Encoding: base64" + CRLF + CRLF + GOOD_B64, TEXT_PART)),
        "no body": message("Subject: empty", "Content-Type: text/plain", body=b""),
        "headers only, no blank line": message("Subject: headers only", "To: someone", body=None),
        "broken Content-Type params": message(
            'Content-Type: text/plain; charset="utf-8; name==?utf-8?q?x; ;; =broken; format=', "Subject: t",
            body=b"hi " + ADDR + CRLF),
        "unterminated boundary quote": message(
            "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="XYZ', "Subject: t",
            body=multipart(b"XYZ", TEXT_PART)),
        "quoted Content-Type": message('Content-Type: "text/plain"', "Subject: t",
                                       body=b"call " + MENTOR_ADDR + b" or " + ADDR + CRLF),
        "Content-Type in angle brackets, multipart": message("Subject: t", "MIME-Version: 1.0",
                                                             'Content-Type: <multipart/mixed; boundary="XYZ">',
                                                             body=multipart(b"XYZ", TEXT_PART, HTML_PART)),
        "RFC 2231 parameter cut after its asterisk": message("Subject: t", "Content-Type: text/plain; name*",
                                                             body=b"hi " + ADDR + CRLF),
        "RFC 2231 parameter cut, in a sub-part": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART, b"Content-Type: application/pdf; filename*" + CRLF + CRLF + b"%PDF")),
        "control character before a multipart type": message(
            "Subject: t", "MIME-Version: 1.0", b'Content-Type:\x1cmultipart/mixed; boundary="XYZ"',
            body=multipart(b"XYZ", TEXT_PART, b"Content-Type: application/pdf" + CRLF + CRLF + b"%PDF")),
        "vertical tab smuggling a header out of Content-Type": message(
            "Subject: t", b"Content-Type: text/plain;\x0bReply-To: Jane <jane@elsewhere.example>",
            body=b"hi" + CRLF),
        "record separator smuggling a sub-part's Content-Type": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART,
            b"Content-Disposition: attachment; filename=cv.pdf\x1eContent-Type: text/html" + CRLF
            + b"Content-Type: application/pdf" + CRLF + CRLF + b"%PDF")),
        "NUL byte in a multipart type": message(
            "Subject: t", "MIME-Version: 1.0", b'Content-Type: multip\x00art/mixed; boundary="XYZ"',
            body=multipart(b"XYZ", TEXT_PART, HTML_PART)),
        "indented body line right under the header (no blank line)": message(
            "Subject: t", "Content-Type: text/plain; charset=utf-8", b"  write to " + ADDR, body=b"hi" + CRLF),
        "indented body line right under a part's header": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART, b"Content-Type: text/html; charset=utf-8" + CRLF
            + b' href="mailto:' + MENTOR_ADDR + b'">me</a>')),
        "garbage Content-Type": message("Content-Type: ;;;/;=", "Content-Transfer-Encoding: x-nonsense",
                                        "Subject: t", body=b"hi " + ADDR + CRLF),
        "encoded-word with invalid base64": message(
            "Subject: =?utf-8?B?SGVsbG8g*!am*FuZS?= mail =?utf-8?B?" + base64.b64encode(ADDR).decode() + "==?=",
            body=b"hi" + CRLF,
            from_line=b"From: =?utf-8?B?SmFu!!ZQ?= <" + ADDR + b">"),
        "encoded words glued to text, one a line break": message(
            b"Subject: caf\xc3\xa9 =?utf-8?q?caf==?utf-8?b?C3=A9?= Re:=?utf-8?q?a=0Ab?=", body=b"hi" + CRLF),
        "glued encoded words in an attachment's name and description": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART,
            b"Content-Type: application/pdf; name=\"CV_=?utf-8?q?Jane=0ADoe?=.pdf\"" + CRLF
            + b"Content-Description: by:=?utf-8?b?SmFuZQpEb2U=?=" + CRLF
            + b"Content-Transfer-Encoding: base64" + CRLF + CRLF + b"AAAA")),
        "encoded-word with unknown charset and bad q": message(
            "Subject: =?x-unknown?q?=ZZ=?= =?utf-8?q?=C3?=", body=b"hi" + CRLF),
        "broken encoded filename": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART,
            b"Content-Type: application/octet-stream; name*=utf-8''Jane%ZZDoe%" + CRLF
            + b"Content-Disposition: attachment; filename*0*=x-unknown''Jane%20Doe; filename*1=\"CV.pdf"
            + CRLF + b"Content-Transfer-Encoding: base64" + CRLF + CRLF + b"AAAA")),
        "multipart nested 1000 deep": nested(1000),
        "message/rfc822 nested 1000 deep": message("Subject: t", body=None) + enclosed(1000),
        "NUL byte in charset name": message(
            "Subject: t", b"Content-Type: text/plain; charset=utf\x00-8", body=b"hi " + ADDR + CRLF),
        "NUL byte in charset name, 8-bit body": message(
            "Subject: t", b"Content-Type: text/plain; charset=utf\x00-8", body=b"Gr\xfc\xdfe " + ADDR + CRLF),
        "control character in Content-Type, bad base64": message(
            "Subject: t", b"Content-Type: text/\x1dplain", "Content-Transfer-Encoding: base64",
            body=GOOD_B64[:20] + b"!" + GOOD_B64[20:] + CRLF),
        "RFC 2231 parameter decoding to a control character, bad base64": message(
            "Subject: t", "Content-Type: text/plain; format*=utf-8''fl%0Bowed", "Content-Transfer-Encoding: base64",
            body=GOOD_B64[:20] + b"!" + GOOD_B64[20:] + CRLF),
        "RFC 2231 file name decoding to a control character": message("Subject: t", *mp, body=multipart(
            b"XYZ", b"Content-Type: text/plain" + CRLF + b"Content-Disposition: inline; filename*=utf-8''cv%1D.txt"
            + CRLF + CRLF + b"write to " + ADDR)),
        "attached message with a group before a mailbox": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART, b"Content-Type: message/rfc822" + CRLF + CRLF
            + b"From: Sales: Team; Bob <bob@shop.example>" + CRLF + b"To: a: b; " + ADDR + CRLF
            + b"Subject: fwd" + CRLF + CRLF + b"forwarded to " + ADDR)),
        "message/rfc822 that is not a message": message("Subject: t", *mp, body=multipart(
            b"XYZ", TEXT_PART, b"Content-Type: message/rfc822" + CRLF + CRLF + b"\x00\xff not headers " + ADDR)),
    }
    return cases


CASES = _build_cases()


@ON_MODULE_LOOP
@pytest.mark.parametrize("name", list(CASES))
async def test_torture_case_passes_the_relay(env: Env, name: str) -> None:
    await pass_through(env, CASES[name], name)


@ON_MODULE_LOOP
async def test_address_glued_to_a_word_by_adjacent_encoded_words(env: Env) -> None:
    raw = message("Subject: =?utf-8?q?x?= =?utf-8?B?" + base64.b64encode(ADDR).decode() + "?=", body=b"hi" + CRLF)
    await pass_through(env, raw, "address glued to a word")


@ON_MODULE_LOOP
async def test_body_quoting_an_encoded_word_with_bad_base64(env: Env) -> None:
    raw = message("Subject: t", "Content-Type: text/plain; charset=utf-8",
                  body=b"My client shows =?utf-8?b?A?= instead of the subject, " + ADDR + CRLF)
    await pass_through(env, raw, "encoded word with bad base64 in a body")


@ON_MODULE_LOOP
async def test_body_quoting_an_encoded_word_with_a_non_ascii_charset(env: Env) -> None:
    raw = message("Subject: t", "Content-Type: text/plain; charset=utf-8",
                  body="Odd: =?ut\u00e9-8?q?x?= in a body".encode() + CRLF)
    await pass_through(env, raw, "encoded word with a non-ASCII charset name in a body")
