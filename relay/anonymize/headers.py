"""Headers: read them robustly, scrub attached messages' headers, and build the outbound header.

The outbound header is an ALLOWLIST (invariant 2): Content-* and MIME-Version are kept from the
original, Subject is scrubbed, Date is normalised to UTC (the sender's offset hints at where they
live), From/Reply-To/To are aliases with handles, Message-ID is new on the relay domain, and
In-Reply-To/References carry only ids the recipient's own client knows. Everything else is dropped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime

from relay.anonymize.scrub import Scrubber

KEPT = {"content-type", "content-transfer-encoding", "content-disposition", "content-language", "mime-version"}
ATTACHED_KEPT = {"from", "to", "cc", "date", "subject"}
MSGID = re.compile(r"<[^<>\s]{1,900}>")


def header_text(message: Message, name: str) -> str | None:
    """A header's decoded text, surviving raw 8-bit bytes and malformed encodings."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError, AttributeError, LookupError):
        value = None
        for key, raw in message.raw_items() if hasattr(message, "raw_items") else []:
            if key.lower() == name.lower():
                value = raw
                break
    if value is None:
        return None
    text = str(value)
    if any("\udc80" <= c <= "\udcff" for c in text):  # undeclared 8-bit: almost always UTF-8
        text = text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split())


def message_ids(message: Message, name: str) -> list[str]:
    value = header_text(message, name)
    return MSGID.findall(value) if value else []


def scrub_attached_headers(message: Message, scrubber: Scrubber) -> None:
    """An enclosed message keeps who/when/what (scrubbed) and its Content-*; traces and ids go."""
    kept: list[tuple[str, str]] = []
    for name in ("From", "To", "Cc", "Date", "Subject"):
        value = header_text(message, name)
        if value is not None:
            kept.append((name, scrubber.text(value)))
    for name in set(message.keys()):
        lower = name.lower()
        if lower in ATTACHED_KEPT or not (lower.startswith("content-") or lower == "mime-version"):
            del message[name]
    for name, value in kept:
        _set(message, name, value)


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
) -> None:
    subject = header_text(message, "Subject")
    for name in set(message.keys()):
        if name.lower() not in KEPT:
            del message[name]
    if "MIME-Version" in message:
        del message["MIME-Version"]
    message["From"] = str(sender)
    message["Reply-To"] = str(sender)
    message["To"] = str(recipient)
    message["Subject"] = scrubber.text(subject) if subject else ""
    message["Date"] = date
    message["Message-ID"] = new_message_id
    if in_reply_to:
        message["In-Reply-To"] = " ".join(in_reply_to)
    if references:
        message["References"] = " ".join(references)
    message["MIME-Version"] = "1.0"
    message["X-Loop"] = domain
