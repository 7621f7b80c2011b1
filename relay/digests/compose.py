"""A digest as mail (pure): the held-back anonymised copies, each whole as a message/rfc822 part of a
multipart/digest (RFC 2046 5.1.5), after a short text/plain table of contents — the layout of
Mailman's MIME digests (multipart/mixed: contents, then the multipart/digest), which mail clients show
as one mail with the messages attached, each openable and answerable on its own.

Built with the stdlib email package (email.mime keeps each copy's bytes as they were delivered: the copies
are parsed with compat32, which regenerates them unchanged).
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime

from relay import ids
from relay.languages import html_lang


@dataclass(frozen=True)
class Entry:
    """One held-back copy: who wrote it (as the copy shows it), its subject, when, and its bytes."""

    sender: str
    subject: str
    at: datetime
    raw: bytes


def entry_of(raw: bytes, at: datetime) -> Entry:
    """Read the From: display name and Subject of an anonymised copy (handles only by then)."""
    header = email.message_from_bytes(raw, policy=policy.default)
    sender = header.get("From")
    shown = sender.addresses[0].display_name if sender is not None and sender.addresses else ""
    return Entry(sender=shown or "", subject=str(header.get("Subject") or "(no subject)"), at=at, raw=raw)


def contents(entries: list[Entry]) -> list[dict[str, str]]:
    """The table of contents' lines (for the template): number, sender, subject."""
    return [{"number": str(n), "sender": e.sender, "subject": e.subject} for n, e in enumerate(entries, 1)]


def digest_message(*, domain: str, to: str, sender: Address, subject: str, toc: str, entries: list[Entry],
                   now: datetime, language: str | None = None) -> tuple[str, bytes]:
    """(Message-ID, bytes) of the digest mail (`language`: its table of contents', written by the relay; the
    messages it carries are in their writers' own)."""
    outer = MIMEMultipart("mixed")
    outer["From"] = str(sender)
    outer["To"] = to
    outer["Reply-To"] = str(sender)
    outer["Subject"] = subject
    outer["Date"] = format_datetime(now)
    message_id = ids.message_id(domain)
    outer["Message-ID"] = message_id
    outer["Auto-Submitted"] = "auto-generated"
    outer["X-Loop"] = domain
    contents = MIMEText(toc, "plain", "utf-8")
    if language:
        contents["Content-Language"] = html_lang(language)
    outer.attach(contents)
    digest = MIMEMultipart("digest")
    for entry in entries:
        copy: Message = email.message_from_bytes(entry.raw, policy=policy.compat32)
        digest.attach(MIMEMessage(copy))
    outer.attach(digest)
    return message_id, outer.as_bytes()
