"""What moderation rules look at: one read-only view of a message, built once per message.

Rules see the message as the partner would receive it (after anonymisation), so the members' own
addresses and names have already become aliases and handles; what remains is what a person typed.
`text` is the subject and every text part joined (HTML reduced to its visible text); a Finding's
offsets refer to it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from relay.anonymize.headers import header_text
from relay.anonymize.parts import read_text, sub_parts

_BLOCK = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h\d|p|div|li|tr|h\d)\b[^>]*>", re.IGNORECASE)
_HIDDEN = re.compile(r"<\s*(script|style|head|title)\b.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int  # decoded bytes


@dataclass(frozen=True)
class PairStats:
    """The pair's history before this message (for rate and first-messages rules)."""

    messages_total: int = 0
    messages_last_24h: int = 0


@dataclass(frozen=True)
class Inspection:
    text: str
    subject: str
    attachments: list[Attachment] = field(default_factory=list)
    sender_role: str = "mentee"
    sender_email: str = ""
    sender_name: str = ""
    recipient_email: str = ""
    recipient_name: str = ""
    region: str = "US"
    domain: str = ""
    aliases: tuple[str, ...] = ()
    stats: PairStats = PairStats()


def html_to_text(source: str) -> str:
    """The visible text of an HTML part: hidden elements dropped, tags removed, entities decoded."""
    without_hidden = _HIDDEN.sub(" ", source)
    with_breaks = _BLOCK.sub("\n", without_hidden)
    return html.unescape(_TAG.sub("", with_breaks))


def inspect_message(message: Message, **context: Any) -> Inspection:
    """Build the rules' view of an (anonymised) message: its visible text and its attachments.

    Of a multipart/alternative, the plain text is read when there is one, else the HTML's visible
    text; attached messages are read like the outer one. `context` fills the other fields.
    """
    subject = header_text(message, "Subject") or ""
    texts = [subject]
    attachments: list[Attachment] = []
    skip: set[int] = set()
    for part in message.walk():
        if id(part) in skip:
            continue
        ctype = part.get_content_type()
        children = sub_parts(part) if ctype == "multipart/alternative" else None
        if children is not None:
            if any(c.get_content_type() == "text/plain" for c in children):
                skip.update(id(c) for c in children if c.get_content_type() == "text/html")
            continue
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        if ctype.startswith("text/") and disposition != "attachment":
            text, _ = read_text(part)
            texts.append(html_to_text(text) if ctype == "text/html" else text)
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        attachments.append(Attachment(filename=part.get_filename(), content_type=ctype, size=size))
    return Inspection(text="\n\n".join(texts), subject=subject, attachments=attachments, **context)
