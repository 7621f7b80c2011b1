"""Reading what intake needs from a message before anything else: its sender, its Message-ID, its
loop marker, its Subject, the ids it answers, the automatic-reply signal, the trace fields a trusted front
MTA's verdict is read from, the hash of its body (which recognises a resend that gained Received lines), and
for program mail the text of its body as a reader sees it.

Pure functions of the raw bytes; no store, no network. They run in a worker process (relay/workers), and
what they return is plain data (strings and tuples): a parsed EmailMessage sent back from the worker cost
the relay process more to unpickle (email.headerregistry objects, on the pool's hand-off threads, under the
event loop's GIL) than the parse had cost the worker.

Header fields are bounded before anything parses them: the stdlib's header parsing and refolding is
super-linear in the length of one field (a 204 KB folded Subject cost 8 s of CPU), so a field longer than
MAX_FIELD bytes (unfolded) or a header longer than MAX_HEADER bytes is refused (HeaderTooLarge, 554 5.6.0).
Real mail stays far below both: a long References field of 100 Message-IDs is about 8 KB.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses

from relay.anonymize import htmltext
from relay.anonymize.headers import header_text, message_ids
from relay.anonymize.message import parse
from relay.anonymize.parts import read_text
from relay.anonymize.writable import writable
from relay.autoreply import auto_reply_signal, no_auto_answer_signal

MAX_FIELD = 16 * 1024  # bytes of one header field, its folded lines joined (32 KB: 64 ms of CPU to refold)
MAX_HEADER = 128 * 1024  # bytes of the whole header
_FIELD_START = re.compile(rb"\r?\n(?![ \t])")  # a line break not followed by folding whitespace


class HeaderTooLarge(Exception):
    """A header field (or the whole header) is longer than the relay reads; refused with 554 5.6.0."""


@dataclass(frozen=True)
class Header:
    """What intake reads from a message's header before anything else (plain data: it travels back from a
    worker process)."""

    sender: str | None  # the first From: address
    own_id: str  # the Message-ID as written
    loop_marker: str  # X-Loop, case-folded
    body_hash: str = ""  # see body_hash()
    subject: str | None = None  # decoded (RFC 2047); None when the message has none
    refs: tuple[str, ...] = ()  # the ids of In-Reply-To, then of References
    auto_reply: str | None = None  # relay/autoreply.auto_reply_signal
    no_auto_answer: str | None = None  # relay/autoreply.no_auto_answer_signal
    trace: tuple[tuple[str, str], ...] = ()  # see trace_fields()
    text: str = ""  # read with `whole`: the body's text as a reader sees it (see readable_text())

    def looped(self, domain: str) -> bool:
        """Our own message came back: it carries our Message-ID or our X-Loop."""
        return self.own_id.casefold().endswith(f"@{domain}>") or domain in self.loop_marker.split()


def read_header(raw: bytes, whole: bool = True) -> Header:
    """Read the header fields (and with `whole` the text of the body); HeaderTooLarge when they are over
    the bounds."""
    end = header_end(raw)
    check_bounds(raw[:end])
    message = parse(raw if whole else raw[:end])
    return Header(
        sender=first_address(message), own_id=(header_text(message, "Message-ID") or "").strip(),
        loop_marker=(header_text(message, "X-Loop") or "").casefold(), body_hash=body_hash(raw),
        subject=header_text(message, "Subject"),
        refs=tuple(message_ids(message, "In-Reply-To") + message_ids(message, "References")),
        auto_reply=auto_reply_signal(message), no_auto_answer=no_auto_answer_signal(message),
        trace=trace_fields(message),
        text=readable_text(message) if whole else "",
    )


def trace_fields(message: Message) -> tuple[tuple[str, str], ...]:
    """The Received and Authentication-Results fields (name, value as written; a Received field's value is
    not kept), in order: what relay/senderauth/trusted.py reads a trusted front MTA's results (and forgeries
    of them) from."""
    fields: list[tuple[str, str]] = []
    for name, value in message.raw_items():
        lower = name.lower()
        if lower == "received":
            fields.append(("Received", ""))
        elif lower == "authentication-results":
            fields.append(("Authentication-Results", str(value)))
    return tuple(fields)


def readable_text(message: Message) -> str:
    """What a person reading the message sees, as plain text, for a coordinator (help@, concern@) or a member
    (the coordinator's answer): every text part in order, of HTML its visible text (relay/anonymize/htmltext,
    as moderation reads it), of a multipart/alternative one version (the plain text when it has one), the text
    of an enclosed message (a forward) too; attached files are left out (the archive keeps them as sent). A
    note when there is no text."""
    texts = [text.strip() for text in _texts(message)]
    return writable("\n\n".join(text for text in texts if text)) or (
        "(The message has no text; the program's archive keeps it as it was sent.)")


def _texts(part: Message) -> Iterator[str]:
    if part.is_multipart():  # an enclosed message (message/rfc822) too: its payload is [the message]
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if part.get_content_type() == "multipart/alternative" and children:
            children = [child for child in children if child.get_content_type() == "text/plain"][:1] or children[-1:]
        for child in children:
            yield from _texts(child)
        return
    content_type = part.get_content_type()
    if part.get_content_disposition() == "attachment" or content_type not in ("text/plain", "text/html"):
        return
    text, _ = read_text(part)
    yield htmltext.view(text).visible if content_type == "text/html" else text


def header_end(raw: bytes) -> int:
    """Where the header ends (its blank line included), or len(raw) when there is no body.

    The earlier of the first CRLF CRLF and the first LF LF; the LF LF search stops where it could no longer be
    the earlier one, so a large body (base64 has no LF LF) is not scanned to its end."""
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n", 0, crlf + 3 if crlf >= 0 else len(raw))
    ends = [index + length for index, length in ((crlf, 4), (lf, 2)) if index >= 0]
    return min(ends, default=len(raw))


def head(raw: bytes) -> bytes:
    """The part of `raw` that read_header(whole=False) reads: the header and its blank line (for a large message,
    what is sent to a worker instead of every byte; the body hash is computed beside it, see body_hash)."""
    return raw[:header_end(raw)]


def check_bounds(head: bytes) -> None:
    if len(head) > MAX_HEADER:
        raise HeaderTooLarge(f"its header is {len(head) // 1024} KB long; the relay reads at most "
                             f"{MAX_HEADER // 1024} KB")
    for field in _FIELD_START.split(head):
        if len(field) > MAX_FIELD:
            name = field.split(b":", 1)[0][:40].decode("ascii", "replace")
            raise HeaderTooLarge(f"its {name} header field is {len(field) // 1024} KB long; the relay reads at "
                                 f"most {MAX_FIELD // 1024} KB per field")


def first_address(message: EmailMessage) -> str | None:
    value = header_text(message, "From")
    if not value:
        return None
    for _, address in getaddresses([value]):
        if "@" in address:
            return address.strip()
    return None


def body_hash(raw: bytes) -> str:
    """Hash of the body only: a resend through another hop may gain Received lines, not a new body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index >= 0:
            return hashlib.sha256(memoryview(raw)[index + len(separator):]).hexdigest()  # no copy of the body
    return hashlib.sha256(raw).hexdigest()
