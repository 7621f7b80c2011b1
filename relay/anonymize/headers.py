"""Headers: read them robustly, scrub attached messages' headers, and build the outbound header.

The outbound header is an ALLOWLIST (invariant 2): Content-* and MIME-Version are kept from the
original, Subject is scrubbed, Date is normalised to UTC (the sender's offset hints at where they
live), From/Reply-To/To are aliases with handles, Message-ID is new on the relay domain, and
In-Reply-To/References carry only ids the recipient's own client knows. Everything else is dropped.
Bytes in no declared charset (raw 8-bit, =?unknown-8bit?...?=) are read as a text part naming no charset
is (`undeclared_text`), a reading holding a member's name first, and written back encoded.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.errors import HeaderParseError
from email.header import decode_header
from email.headerregistry import Address
from email.message import Message
from email.utils import format_datetime, getaddresses, parsedate_to_datetime

from relay.anonymize import readings
from relay.anonymize.fold import fold
from relay.anonymize.scrub import Scrubber, decode_encoded_words
from relay.anonymize.writable import ESCAPED_BYTE as _ESCAPED_BYTE
from relay.anonymize.writable import writable

_ESCAPED_RUN = re.compile("[\udc80-\udcff]+")
_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_WORD_RUN = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*")
KEPT = {"content-type", "content-transfer-encoding", "content-disposition", "content-language", "mime-version"}
ATTACHED_KEPT = {"from", "to", "cc", "date", "subject"}
MSGID = re.compile(r"<[^<>\s]{1,900}>")
_HIDDEN_BREAKS = re.compile(r"[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # line breaks to str.splitlines() only


Prefer = Callable[[str], bool]  # a reading to prefer among those of undeclared bytes: one holding a member's name
HintsFor = Callable[[], readings.Hints]  # what the message says of its charsets and languages (made when needed)


def _raw_value(message: Message, name: str) -> str | None:
    return next((value for key, value in message.raw_items() if key.lower() == name.lower()), None)


def header_text(message: Message, name: str, prefer: Prefer | None = None,
                hints: HintsFor | None = None) -> str | None:
    """A header's decoded text, surviving raw 8-bit bytes and malformed encodings; bytes in no declared
    charset are read as `undeclared_text` reads them (`prefer`, `hints`: see there)."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError, AttributeError, LookupError):
        value = _raw_value(message, name)
    if value is None:
        return None
    text = str(value)
    # the raw value is read only where the parsed one lost something: the parser puts U+FFFD for raw 8-bit bytes
    # and for encoded words it could not decode
    raw = _raw_value(message, name) if "\ufffd" in text else None
    if raw is not None and (_ESCAPED_BYTE.search(raw) or ("=?" in raw and "\ufffd" not in raw)):
        text = undeclared_text(re.sub(r"\r?\n(?=[ \t])", "", raw), prefer, hints)  # the parser put U+FFFD there
    elif _ESCAPED_BYTE.search(text):
        text = undeclared_text(text, prefer, hints)
    if "=?" in text:  # words the parser could not decode (UTF-7 to a lone surrogate, say): they would be
        text = decode_encoded_words(text)  # decoded again, and fail, wherever the text is set as a header
    return " ".join(writable(text).split())


def undeclared_text(value: str, prefer: Prefer | None = None, hints: HintsFor | None = None) -> str:
    """A header value (or parameter) holding bytes that no charset was declared for, read as a mail client
    reads it: raw 8-bit bytes (surrogate escapes, as the parser keeps them: old Outlook, Outlook Express and
    phones write names so, in the sender's Windows code page) and encoded words whose charset cannot read
    their bytes ("=?unknown-8bit?q?Jos=E9?=", what Python tools write for raw 8-bit; a mislabelled charset).
    UTF-8 bytes are read as UTF-8; others in the legacy charset readings.choose picks for a text part that
    names none, a reading that `prefer` likes (one holding a member's real name) first, then the charsets
    the message points to (`hints`). Other encoded words are decoded; the result holds no escaped byte."""
    text = _WORD_RUN.sub(_undeclared_words, value) if "=?" in value else value
    if not _ESCAPED_BYTE.search(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    charset = readings.choose_charset(raw, hints() if hints is not None else readings.Hints(), prefer)
    if charset is None:
        return raw.decode("utf-8", "replace")
    if all(char < "\x80" or "\udc80" <= char <= "\udcff" for char in text):
        return raw.decode(charset, "replace")
    # decoded words beside raw bytes: only the raw bytes are read in the legacy charset
    return _ESCAPED_RUN.sub(lambda run: run.group(0).encode("ascii", "surrogateescape").decode(charset, "replace"),
                            text)


def _undeclared_words(run: re.Match[str]) -> str:
    """Adjacent encoded words (the space between them is not text: RFC 2047, 6.2), each decoded in its charset
    when that reads its bytes, else kept as bytes (surrogate escapes) for undeclared_text to read."""
    pieces = []
    for word in _WORD.findall(run.group(0)):
        try:
            ((data, charset),) = decode_header(word)
        except (ValueError, LookupError, binascii.Error, HeaderParseError):
            pieces.append(word)
            continue
        if isinstance(data, str):
            pieces.append(data)
            continue
        try:
            pieces.append(data.decode(str(charset)))
        except (LookupError, UnicodeDecodeError, ValueError):  # unknown-8bit, x-unknown, a wrong label
            pieces.append(data.decode("ascii", "surrogateescape"))
    return "".join(pieces)


def scrub_header(scrubber: Scrubber, value: str) -> str:
    """Scrub a header value and keep it on one line.

    The scrub decodes encoded words the parser left alone (glued to text, say), and one may decode to
    a line break, which the stdlib refuses in a header value (ValueError).
    """
    return " ".join(scrubber.text(value).split())


def own_display_names(message: Message, addresses: Iterable[str], name: str) -> tuple[str, ...]:
    """The display names the message's From gives its sender's own addresses (`addresses`, compared without a
    +tag and case), other than the enrolled `name` as written: "Doe, Jane (LHS Student - Grade 9)" for a
    member enrolled as "Jane Doe". The scrub matches them in this message (mailboxes.py)."""
    value = header_text(message, "From")
    if not value:
        return ()
    own = {_bare(address) for address in addresses}
    enrolled = " ".join(fold(name).text.split())
    found: list[str] = []
    for display, address in getaddresses([value]):
        display = " ".join(display.split())
        if display and _bare(address) in own and " ".join(fold(display).text.split()) != enrolled \
                and display not in found:
            found.append(display)
    return tuple(found)


def _bare(address: str) -> str:
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def message_ids(message: Message, name: str) -> list[str]:
    value = header_text(message, name)
    return MSGID.findall(value) if value else []


def scrub_attached_headers(message: Message, scrubber: Scrubber,
                           hints: HintsFor | None = None) -> list[tuple[str, str]]:
    """An enclosed message keeps who/when/what (scrubbed, Date in UTC) and its Content-*; traces and ids go.
    Returns what was kept, for `restore_headers` once the enclosed message's own parts are walked."""
    kept: list[tuple[str, str]] = []
    for name in ("From", "To", "Cc", "Date", "Subject"):
        value = header_text(message, name, scrubber.found_in, hints)
        if value is not None:
            kept.append((name, _utc(value) if name == "Date" else scrub_header(scrubber, value)))
    for name in set(message.keys()):
        lower = name.lower()
        if lower in ATTACHED_KEPT or not (lower.startswith("content-") or lower == "mime-version"):
            del message[name]
    restore_headers(message, kept)
    return kept


def restore_headers(message: Message, kept: list[tuple[str, str]]) -> None:
    for name, value in kept:
        if value and name not in message:
            _set(message, name, value)


def _utc(value: str) -> str:
    """An attached message's Date in UTC: its offset hints at where its author lives."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return ""
    return format_datetime((when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC))


def _set(message: Message, name: str, value: str) -> None:
    """Set a header; a value the stdlib cannot take as an address list is kept as plain words.

    The address parser raises ValueError, TypeError or IndexError on some malformed lists, and
    AttributeError on a group followed by more text ("Sales: Team; Bob <b@example.com>"). Reduced to
    letters, digits, dots, hyphens and single spaces, any value parses and serialises.
    """
    try:
        message[name] = value
    except (ValueError, TypeError, IndexError, AttributeError):
        message[name] = " ".join(re.sub(r"[^\w.\- ]", " ", value).split())


def one_line_headers(message: Message) -> None:
    """Blank out, in the part's own header values, the characters the generator writes as line breaks.

    The parser keeps \\x0b, \\x0c and \\x1c-\\x1e inside a header line, but str.splitlines() breaks
    at them, and so does the generator when it writes a kept header out: "Content-Type: text/plain;
    \\x0bReply-To: <real address>" would be delivered as two headers, and the rest of a Content-Type
    after one would fall out of it (losing the MIME structure).
    """
    items = list(message.raw_items())
    if not any(_HIDDEN_BREAKS.search(value) for _, value in items):
        return
    for name in set(message.keys()):
        del message[name]
    for name, value in items:  # same order, values otherwise untouched
        message.set_raw(name, _HIDDEN_BREAKS.sub(" ", value))


def scrub_content_headers(message: Message, scrubber: Scrubber) -> None:
    """Scrub the values of the part's Content-* headers, which are otherwise kept as they are.

    A parameter can hold anything, and a body line that starts with a space right under the header
    (the blank line forgotten) continues the header above it: "Content-Type: text/html" followed by
    ' href="mailto:<real address>">' is one Content-Type. Only a header that holds an identity is
    rewritten; non-ASCII text it gains is stored as the parser stores undeclared 8-bit bytes.
    """
    _scrub_raw_values(message, scrubber, lambda name: name.lower().startswith("content-"))


def scrub_field_values(block: Message, scrubber: Scrubber) -> None:
    """Scrub every field of a delivery-status (or disposition) block and keep them all: a forwarded
    bounce report stays readable (Action, Status, ...) while Final-Recipient and the like lose the
    real address."""
    _scrub_raw_values(block, scrubber, lambda name: True)


def _scrub_raw_values(message: Message, scrubber: Scrubber, which: Callable[[str], bool]) -> None:
    """Each value of the headers `which` names that holds an identity, scrubbed (raw 8-bit bytes read as
    undeclared_text reads them) and written back as the parser stores undeclared 8-bit bytes (UTF-8)."""
    read: dict[str, str] = {}

    def reading(value: str) -> str:
        if not _ESCAPED_BYTE.search(value):
            return value
        if value not in read:
            read[value] = undeclared_text(value, scrubber.found_in)
        return read[value]

    items = list(message.raw_items())
    if not any(which(name) and scrubber.found_in(reading(value)) for name, value in items):
        return
    for name in set(message.keys()):
        del message[name]
    for name, value in items:
        if which(name) and scrubber.found_in(reading(value)):
            value = scrubber.text(reading(value)).encode("utf-8", "surrogateescape").decode("ascii", "surrogateescape")
        message.set_raw(name, value)


def utc_date(message: Message, now: datetime) -> str:
    """The sender's Date in UTC; `now` when missing, unparseable, or far in the future."""
    value = header_text(message, "Date")
    when = None
    if value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
    if when is None or when.tzinfo is None or when > now + timedelta(hours=1):
        when = now
    return format_datetime(when.astimezone(UTC))


def rewrite_outbound_headers(
    message: Message,
    *,
    scrubber: Scrubber,
    sender: Address,
    recipient: Address,
    new_message_id: str,
    in_reply_to: list[str],
    references: list[str],
    date: str,
    domain: str,
    reply_to: Address | None = None,
    subject: str | None = None,
) -> None:
    """The outbound header (see the module docstring); `subject`: the Subject's text as read before the MIME
    walk (header_text with the scrubber's preference), else read here."""
    subject = subject if subject is not None else header_text(message, "Subject", scrubber.found_in)
    for name in set(message.keys()):
        if name.lower() not in KEPT:
            del message[name]
    if "MIME-Version" in message:
        del message["MIME-Version"]
    message["From"] = str(sender)
    message["Reply-To"] = str(reply_to or sender)
    message["To"] = str(recipient)
    message["Subject"] = scrub_header(scrubber, subject) if subject else ""
    message["Date"] = date
    set_thread_headers(message, new_message_id, in_reply_to, references)
    message["MIME-Version"] = "1.0"
    message["X-Loop"] = domain


def set_thread_headers(message: Message, new_message_id: str, in_reply_to: list[str], references: list[str]) -> None:
    """Message-ID, In-Reply-To and References of one recipient's copy (a group's copies differ only here)."""
    for name in ("Message-ID", "In-Reply-To", "References"):
        del message[name]
    message["Message-ID"] = new_message_id
    if in_reply_to:
        message["In-Reply-To"] = " ".join(in_reply_to)
    if references:
        message["References"] = " ".join(references)
