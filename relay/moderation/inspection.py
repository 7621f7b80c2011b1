"""What moderation rules look at: one read-only view of a message, built once per message.

Rules see the message as the partner would receive it (after anonymisation), so the members' own
addresses and names have already become aliases and handles; what remains is what a person typed.
For a group message the recipient fields are empty and `other_members` names every member besides the
sender, so that a rule checking identities checks all of them; `bystanders` names the people of the sender's
programs outside the conversation, whose identities are scrubbed too.
`text` is everything the partner can see, joined: the subject; every text part, both halves of a
multipart/alternative (they may disagree); of HTML the visible text (a name split across tags is seen whole; a tag
a client failed to escape, `<bob@mail.example>`, read as the text it is), the hidden text (comments, head, style,
declarations) and every attribute value, each link with its decoded readings (percent, base64, SafeLinks and
redirect parameters), and the element and attribute names no standard defines; calendar and vCard parts unfolded
and decoded; attachment file names; the headers kept in attached messages; the text of every attached document, as
anonymisation cleaned it (DOCX, XLSX, PPTX, ODT, ODS, ODP: their body, headers, footers, notes and comments; PDF:
the text on its pages, annotations and form values; relay/anonymize/document_text.py); last, after all of that (so
that the offsets of what comes before do not move), the other readings of each text part whose charset was unknown
(relay/anonymize/readings.py: a disclosure is seen in whichever legacy charset it was written). A Finding's offsets
refer to it; `documents` lists the spans of `text` that are a document's text or such another reading (a match
there cannot be redacted: the file is delivered as it is, and the partner gets the part in the reading chosen for
it, so the policy's redact holds the message instead).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from relay.anonymize import cards, document_text, htmltext
from relay.anonymize.attachments import kind_of
from relay.anonymize.headers import header_text
from relay.anonymize.parts import CALENDAR_TYPES, VCARD_TYPES, decoded_payload, other_readings, read_text

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
    sender_nicknames: tuple[str, ...] = ()
    recipient_nicknames: tuple[str, ...] = ()
    sender_other_emails: tuple[str, ...] = ()  # further addresses of each (`pair address add`)
    recipient_other_emails: tuple[str, ...] = ()
    region: str = "US"
    domain: str = ""
    aliases: tuple[str, ...] = ()
    stats: PairStats = PairStats()
    # A group's other members besides `recipient_*` (every member is checked by the identity rule):
    # (email, name, nicknames) each.
    other_members: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # People of the sender's programs outside the conversation (relay.communities.read_bystanders), scrubbed like
    # members; the identity rule reports only their forms that read as a name (see relay/moderation/rules/identity.py).
    bystanders: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    documents: tuple[tuple[int, int], ...] = ()  # spans of `text` read from attached documents

    def in_document(self, start: int) -> bool:
        """Whether offset `start` of `text` lies in an attached document's text."""
        return any(begin <= start < end for begin, end in self.documents)


def html_to_text(source: str) -> str:
    """The visible text of an HTML part: hidden elements dropped, tags removed, entities decoded."""
    without_hidden = _HIDDEN.sub(" ", source)
    with_breaks = _BLOCK.sub("\n", without_hidden)
    return html.unescape(_TAG.sub("", with_breaks))


def _shown(ctype: str, text: str) -> list[str]:
    """What the rules read of a text part: of HTML its visible and hidden text and attribute values."""
    if ctype == "text/html":
        seen = htmltext.view(text)
        return [seen.visible, seen.hidden, "\n".join(seen.attributes)]
    if ctype in CALENDAR_TYPES or ctype in VCARD_TYPES:
        return [cards.readable(text)]
    return [text]


def inspect_message(message: Message, **context: Any) -> Inspection:
    """Build the rules' view of an (anonymised) message: all it shows, and its attachments."""
    subject = header_text(message, "Subject") or ""
    texts = [subject]
    documents: set[int] = set()  # indexes in `texts` of documents' text (and of other readings, below)
    readings: list[str] = []  # other readings of parts of unknown charset: appended after everything else
    attachments: list[Attachment] = []
    for part in message.walk():
        if part is not message and part.get_content_maintype() == "message" and part.is_multipart():
            continue  # its enclosed message is walked next
        for name in ("From", "To", "Cc", "Subject") if part is not message else ():
            value = header_text(part, name)
            if value:
                texts.append(value)
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if filename:
            texts.append(filename)
        if ctype.startswith("text/") or ctype in CALENDAR_TYPES or ctype in VCARD_TYPES:
            text, clean = read_text(part)
            texts.extend(_shown(ctype, text))
            for reading in other_readings(part, text, clean) if ctype.startswith("text/") else ():
                readings.extend(_shown(ctype, reading))
            if disposition != "attachment":
                continue
        payload = decoded_payload(part)
        size = len(payload) if payload is not None else 0
        attachments.append(Attachment(filename=filename, content_type=ctype, size=size))
        if payload:
            documents.add(len(texts))
            texts.append(document_text.readable(payload, kind_of(ctype, filename)))
    documents.update(range(len(texts), len(texts) + len(readings)))
    texts.extend(readings)
    text, spans = _joined(texts, documents)
    return Inspection(text=text, subject=subject, attachments=attachments, documents=spans, **context)


def _joined(texts: list[str], documents: set[int]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The non-empty texts joined by blank lines, and the spans in it of those whose index is in `documents`."""
    spans: list[tuple[int, int]] = []
    position = 0
    kept: list[str] = []
    for index, piece in enumerate(texts):
        if not piece:
            continue
        if kept:
            position += 2
        if index in documents:
            spans.append((position, position + len(piece)))
        kept.append(piece)
        position += len(piece)
    return "\n\n".join(kept), tuple(spans)
