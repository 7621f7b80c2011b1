"""What a moderator sees of a held message: its text with the findings marked, its HTML part sanitised
(nh3: no script, no event handlers, no styles, no images, no links), its attachments, and the copy the
partner would receive (built by the same code that delivers it: relay.holdqueue.actions.delivered_copy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from html import unescape
from typing import Any

import nh3
from markupsafe import Markup, escape

from relay.anonymize.message import parse
from relay.anonymize.parts import read_text

# Structure and emphasis only. Everything else goes, attributes included: no href, src, style or on*.
SAFE_TAGS = {"p", "br", "div", "span", "b", "i", "u", "s", "em", "strong", "small", "sub", "sup", "mark",
             "ul", "ol", "li", "dl", "dt", "dd", "blockquote", "pre", "code", "hr", "h1", "h2", "h3", "h4",
             "h5", "h6", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "a", "abbr", "q"}


@dataclass
class Attachment:
    index: int  # position among the message's leaf parts (the download URL names it)
    filename: str
    content_type: str
    size: int


@dataclass
class MessageView:
    headers: dict[str, str]
    text: str
    html: str | None  # sanitised
    attachments: list[Attachment] = field(default_factory=list)


def sanitise_html(html: str) -> str:
    return nh3.clean(html, tags=SAFE_TAGS, attributes={}, clean_content_tags={"script", "style", "title", "head"},
                     link_rel=None, url_schemes=set(), strip_comments=True)


def leaf_parts(message: Message) -> list[Message]:
    return [part for part in message.walk() if not part.is_multipart()]


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _text(part: Message) -> str:
    """The part's text in its charset; bytes that name none, or are not valid in the one they name, read as
    the relay reads them for the partner (relay/anonymize/readings.py), not as UTF-8 full of U+FFFD."""
    charset = part.get_content_charset() or "utf-8"
    try:
        return _payload(part).decode(charset)
    except (LookupError, UnicodeDecodeError, ValueError):
        return read_text(part)[0]


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment" or (
        part.get_filename() is not None) or part.get_content_maintype() not in ("text", "multipart")


def view(raw: bytes) -> MessageView:
    message: EmailMessage = parse(raw)
    headers = {name: str(message.get(name, "")) for name in ("From", "To", "Subject", "Date")}
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    for index, part in enumerate(leaf_parts(message)):
        if _is_attachment(part):
            attachments.append(Attachment(index, part.get_filename() or f"part-{index}", part.get_content_type(),
                                          len(_payload(part))))
        elif part.get_content_type() == "text/plain" and text is None:
            text = _text(part)
        elif part.get_content_type() == "text/html" and html is None:
            html = sanitise_html(_text(part))
    if text is None and html is not None:  # an HTML-only message: its words, for the findings and the edit
        text = unescape(nh3.clean(html, tags=set(), attributes={}, link_rel=None))
    return MessageView(headers, text if text is not None else "", html, attachments)


def attachment(raw: bytes, index: int) -> tuple[str, bytes] | None:
    """The attachment's file name and bytes, or None when the index names no attachment."""
    parts = leaf_parts(parse(raw))
    if not 0 <= index < len(parts) or not _is_attachment(parts[index]):
        return None
    part = parts[index]
    return part.get_filename() or f"part-{index}", _payload(part)


def highlight(text: str, reasons: list[dict[str, Any]]) -> Markup:
    """The text, escaped, with every occurrence of each finding's matched text in <mark>."""
    matches = sorted({str(r["match"]) for r in reasons if r.get("match") and int(r.get("start", -1)) >= 0},
                     key=len, reverse=True)
    spans: list[tuple[int, int]] = []
    for match in matches:
        start = text.find(match)
        while start >= 0:
            end = start + len(match)
            if not any(s < end and start < e for s, e in spans):
                spans.append((start, end))
            start = text.find(match, end)
    out: list[str] = []
    position = 0
    for start, end in sorted(spans):
        out.append(str(escape(text[position:start])))
        out.append(f'<mark class="finding">{escape(text[start:end])}</mark>')
        position = end
    out.append(str(escape(text[position:])))
    return Markup("".join(out))


def edited_message(raw: bytes, text: str) -> bytes:
    """A moderator's edit as a message: the original's headers (for threading and anonymisation) and the
    edited text as its only part. The HTML part and attachments of the original are not delivered."""
    original = parse(raw)
    edited = EmailMessage()
    for name, value in original.items():
        if not name.lower().startswith("content-") and name.lower() != "mime-version":
            edited[name] = value
    edited.set_content(text.replace("\r\n", "\n"))
    return edited.as_bytes()
