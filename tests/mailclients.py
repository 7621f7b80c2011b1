"""Messages written the way real mail clients write them, for the relay's leak tests.

This module owns the *input side* of the anonymisation tests. Each builder returns the
raw bytes of one complete RFC 5322 message that a member sends to a relay alias, laid
out the way one particular client lays it out: MIME structure, transfer encodings,
charsets, quoting style, signatures, trace and vendor headers. Like real users, the
messages let both members' real identities slip in everywhere: the From: header,
Cc:/Reply-To:/Disposition-Notification-To:, Received: and Authentication-Results:
trace, attributions, greetings, quoted text, forwarded header blocks, signatures,
attachment file names and calendar data. The identities arrive in every encoding a
client may use: RFC 2047 encoded words, raw 8-bit headers, quoted-printable soft line
breaks, base64, format=flowed wrapping, HTML entities, percent-encoded mailto: links,
RFC 2231 parameters and folded iCalendar lines.

The output is deterministic: the tokens a client would generate at random (Message-IDs,
MIME boundaries, DKIM signatures, queue ids) are derived from the builder's arguments.
IP numbers are documentation (RFC 5737, RFC 3849) or link-local values.

Run ``python3 tests/mailclients.py`` to check that every message parses and really
carries the partner's address before anonymisation.
"""

from __future__ import annotations

import base64
import hashlib
import html
import html.entities
import quopri
import string
import struct
import textwrap
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser
from email.utils import quote as quote_string
from typing import Literal
from urllib.parse import quote as percent_encode

__all__ = [
    "CLIENTS",
    "Person",
    "apple_mail_reply",
    "calendar_invite",
    "decoded_text_parts",
    "forwarded_with_rfc822",
    "gmail_reply",
    "outlook_reply",
    "phone_reply",
    "thunderbird_reply",
]


@dataclass(frozen=True)
class Person:
    """A member's real identity, which must never reach the other member."""

    name: str
    address: str

    @property
    def first_name(self) -> str:
        words = self.name.split()
        return words[0] if words else self.name

    @property
    def surname_first(self) -> str:
        """The name in directory order, as Outlook shows it: "Müller, José"."""
        given, _, surname = self.name.rpartition(" ")
        return f"{surname}, {given}" if given else self.name

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


_Headers = list[tuple[str, str]]

_CET = timezone(timedelta(hours=1), "CET")
_PST = timezone(timedelta(hours=-8), "PST")
_QUOTED_AT = datetime(2026, 11, 3, 14, 2, 5, tzinfo=_CET)  # the partner's earlier message
_SENT_AT = datetime(2026, 11, 4, 9, 17, 41, tzinfo=_CET)  # the message being built
_MEETING_AT = datetime(2026, 11, 10, 17, 0, tzinfo=_CET)  # the event of the calendar invite

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# Documentation addresses standing in for the servers and devices on the way.
_GOOGLE_IP = "192.0.2.41"
_GOOGLE_IPV6 = "2001:db8:4860:4864:20::2d"
_MICROSOFT_IP = "198.51.100.72"
_SUBMISSION_IP = "198.51.100.25"
_OFFICE_IP = "203.0.113.45"
_HOME_IP = "203.0.113.88"
_PHONE_IPV6 = "2001:db8:a0b:12f0::1c5e"

_Q_SAFE = frozenset((string.ascii_letters + string.digits + "!*+-/").encode("ascii"))
_HEADER_SPECIALS = frozenset('()<>[]:;@\\,."')


class _Entropy:
    """Deterministic stand-in for the random tokens a client generates."""

    def __init__(self, *seed: str) -> None:
        self._seed = "\x1f".join(seed).encode("utf-8")
        self._draws = 0

    def raw(self, size: int) -> bytes:
        self._draws += 1
        return hashlib.shake_256(self._seed + b"\x1e%d" % self._draws).digest(size)

    def b64(self, size: int) -> str:
        return base64.b64encode(self.raw(size)).decode("ascii")

    def hex(self, size: int) -> str:
        return self.raw(size).hex()

    def alnum(self, length: int) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(alphabet[byte % len(alphabet)] for byte in self.raw(length))

    def uuid4(self) -> str:
        return str(uuid.UUID(bytes=self.raw(16), version=4))


# --- dates -------------------------------------------------------------------------------


def _names(moment: datetime) -> tuple[str, str]:
    """English day and month names, independent of the process locale."""
    return _DAY_NAMES[moment.weekday()], _MONTH_NAMES[moment.month - 1]


def _rfc822_date(moment: datetime, *, pad: str = "") -> str:
    """An RFC 5322 date; *pad* "0" or " " imitates software that pads the day."""
    day, month = _names(moment)
    day_of_month = str(moment.day).rjust(2, pad) if pad else str(moment.day)
    return f"{day[:3]}, {day_of_month} {month[:3]} {moment:%Y %H:%M:%S %z}"


def _trace_date(moment: datetime) -> str:
    """The date stamp of a Received: header, with the zone name as a comment."""
    return f"{_rfc822_date(moment, pad=' ')} ({moment:%Z})"


# --- headers -----------------------------------------------------------------------------


def _encoded_chunk(chunk: str, charset: str, encoding: str) -> str:
    raw = chunk.encode(charset)
    if encoding == "B":
        return base64.b64encode(raw).decode("ascii")
    return "".join(chr(byte) if byte in _Q_SAFE else "_" if byte == 0x20 else f"={byte:02X}" for byte in raw)


def _encoded_words(text: str, *, charset: str = "UTF-8", encoding: str = "Q") -> str:
    """RFC 2047 encoded words of at most 75 characters each, folded onto separate lines."""
    prefix = f"=?{charset}?{encoding}?"
    room = 75 - len(prefix) - len("?=")
    chunks = [""]
    for char in text:
        if chunks[-1] and len(_encoded_chunk(chunks[-1] + char, charset, encoding)) > room:
            chunks.append("")
        chunks[-1] += char
    return "\n ".join(f"{prefix}{_encoded_chunk(chunk, charset, encoding)}?=" for chunk in chunks)


def _header_text(text: str, *, charset: str = "UTF-8", encoding: str = "Q") -> str:
    return text if text.isascii() else _encoded_words(text, charset=charset, encoding=encoding)


def _mailbox(
    name: str, address: str, *, charset: str = "UTF-8", encoding: str = "Q", raw_8bit: bool = False
) -> str:
    """``Name <address>`` with the name quoted or encoded as the client would write it."""
    if not name:
        return address
    if not name.isascii() and not raw_8bit:
        display = _encoded_words(name, charset=charset, encoding=encoding)
    elif any(char in _HEADER_SPECIALS for char in name):
        display = f'"{quote_string(name)}"'
    else:
        display = name
    return f"{display} <{address}>"


def _reply_subject(subject: str, *, charset: str = "UTF-8", encoding: str = "Q") -> str:
    if subject[:3].lower() == "re:":
        return _header_text(subject, charset=charset, encoding=encoding)
    return "Re: " + _header_text(subject, charset=charset, encoding=encoding)


def _optional(name: str, value: str | None) -> _Headers:
    return [(name, value)] if value else []


def _param(key: str, value: str) -> str:
    """A MIME parameter, RFC 2231-encoded when the value is not ASCII."""
    if value.isascii():
        return f'{key}="{quote_string(value)}"'
    return f"{key}*=utf-8''{percent_encode(value, safe='')}"


def _chunks(value: str, size: int) -> list[str]:
    return [value[start : start + size] for start in range(0, len(value), size)]


def _signature(tags: str, rand: _Entropy, *, indent: str, body_hash: bool = True) -> str:
    """A DKIM or ARC signature value: *tags*, then the bh= and b= tags folded."""
    body = f";\n{indent}bh={rand.b64(32)}" if body_hash else ""
    signature = f"\n{indent} ".join(_chunks(rand.b64(256), 64))
    return f"{tags}{body};\n{indent}b={signature}"


def _relay_host(to_alias: str) -> str:
    return "mx." + to_alias.rpartition("@")[2]


def _submission_trace(
    *, sender: Person, to_alias: str, helo: str, client_ip: str, rand: _Entropy
) -> _Headers:
    """Return-Path and the two Received: hops of mail submitted to the sender's provider."""
    submitter = f"smtp.{sender.domain}"
    return [
        ("Return-Path", f"<{sender.address}>"),
        (
            "Received",
            f"from {submitter} ({submitter} [{_SUBMISSION_IP}])\n"
            f"\tby {_relay_host(to_alias)} (Postfix) with ESMTPS id {rand.hex(6).upper()}\n"
            f"\tfor <{to_alias}>; {_trace_date((_SENT_AT + timedelta(seconds=2)).astimezone(UTC))}",
        ),
        (
            "Received",
            f"from {helo} (unknown [{client_ip}])\n"
            f"\t(Authenticated sender: {sender.address})\n"
            f"\tby {submitter} (Postfix) with ESMTPSA id {rand.hex(5).upper()}\n"
            f"\tfor <{to_alias}>; {_trace_date(_SENT_AT + timedelta(seconds=1))}",
        ),
    ]


# --- bodies ------------------------------------------------------------------------------


def _typed(text: str) -> str:
    """Text as typed by the user, with LF line ends and no surrounding blank lines."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


def _opening(partner: Person, text: str) -> str:
    return f"Hi {partner.first_name},\n\n{_typed(text)}"


def _earlier_message(*, author: Person, recipient: Person) -> str:
    """The partner's earlier message that the reply quotes, signed with their real name."""
    return (
        f"Hi {recipient.first_name},\n\n"
        "thanks for the reading list you sent after our last session. I have worked through the "
        "first two chapters and have a few questions about the exercises, so it would be great "
        "to go through them together.\n\n"
        "Could we move Thursday's call to 17:00? If anything changes, just write to me directly "
        f"at {author.address} - that is quicker than the programme inbox.\n\n"
        f"Best,\n{author.name}"
    )


def _quote_lines(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def _flowed(text: str, *, quote_depth: int = 0, width: int = 72) -> str:
    """*text* as RFC 3676 format=flowed lines: soft breaks end in a space."""
    lines: list[str] = []
    for line in text.split("\n"):
        if line == "-- " and not quote_depth:
            lines.append(line)
            continue
        line = line.rstrip(" ")
        if quote_depth:  # noqa: SIM108 - a nested conditional expression would read worse
            prefix = ">" * quote_depth + " "
        else:
            prefix = " " if line.startswith((" ", ">", "From ")) else ""
        if not line:
            lines.append(prefix.rstrip(" "))
            continue
        pieces = textwrap.wrap(line, width - len(prefix), break_long_words=False, break_on_hyphens=False)
        lines.extend(f"{prefix}{piece} " for piece in pieces[:-1])
        lines.append(prefix + pieces[-1])
    return "\n".join(lines)


def _legacy_charset(text: str) -> str:
    """The first charset of Outlook's preference that can carry *text*."""
    for charset in ("iso-8859-1", "windows-1252"):
        try:
            text.encode(charset)
        except UnicodeEncodeError:
            continue
        return charset
    return "utf-8"


def _html_lines(text: str, line: str, blank: str, separator: str = "") -> str:
    """One HTML element per line of *text*: *line* with "{}" for the content, *blank* for empty."""
    return separator.join(
        line.format(html.escape(content, quote=False)) if content else blank for content in text.split("\n")
    )


def _html_paragraphs(text: str, indent: str) -> str:
    """One ``<p>`` per paragraph of *text*, lines separated by ``<br>``, as Thunderbird writes them."""
    return "\n".join(
        f"{indent}<p>"
        + f"<br>\n{indent}  ".join(html.escape(line, quote=False) for line in paragraph.split("\n"))
        + "</p>"
        for paragraph in text.split("\n\n")
    )


def _html_entities(text: str, *, style: Literal["named", "mixed"]) -> str:
    """*text* escaped for HTML with non-ASCII letters as entities.

    *style* "named" writes ``&eacute;`` where HTML has a name, "mixed" alternates between
    named and numeric (``&#252;``) references, as editors that re-serialise HTML do.
    """
    parts: list[str] = []
    named = True
    for char in html.escape(text, quote=False):
        if char.isascii():
            parts.append(char)
            continue
        name = html.entities.codepoint2name.get(ord(char))
        parts.append(f"&{name};" if named and name else f"&#{ord(char)};")
        named = style == "named" or not named
    return "".join(parts)


def _html_address(address: str) -> str:
    """An address with the @ as a numeric character reference, as Outlook writes it."""
    return html.escape(address).replace("@", "&#64;")


def _qp(text: str, charset: str = "utf-8", errors: str = "strict") -> bytes:
    return quopri.encodestring(text.encode(charset, errors))


def _base64_text(text: str, charset: str) -> bytes:
    """A base64 text body; encoded text is in canonical form, with CRLF line ends."""
    return base64.encodebytes(text.replace("\n", "\r\n").encode(charset))


def _tiny_png() -> bytes:
    """A valid one-pixel PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1 pixel, 8-bit RGB
    pixels = zlib.compress(b"\x00\xf2\x8c\x28")  # filter type 0, one orange pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# --- MIME assembly -----------------------------------------------------------------------


def _render(headers: _Headers, body: bytes) -> bytes:
    """A message or body part from header fields (pre-folded with LF) and an encoded body."""
    head = "".join(f"{name}: {value}\n" for name, value in headers).encode("utf-8")
    return head + b"\n" + (body if body.endswith(b"\n") else body + b"\n")


def _multipart(boundary: str, parts: Sequence[bytes], *, preamble: str = "") -> bytes:
    delimiter = b"--" + boundary.encode("ascii")
    chunks = [preamble.encode("ascii") + b"\n"] if preamble else []
    for part in parts:
        chunks += [delimiter, b"\n", part, b"\n"]
    chunks += [delimiter, b"--\n"]
    return b"".join(chunks)


def _wire(message: bytes) -> bytes:
    """The message with the CRLF line ends it has on the wire."""
    return message.replace(b"\n", b"\r\n")


# --- the clients -------------------------------------------------------------------------


def gmail_reply(
    *,
    sender: Person,
    partner: Person,
    to_alias: str,
    partner_handle: str,
    subject: str,
    in_reply_to: str | None,
    references: list[str],
    text: str,
) -> bytes:
    """A reply from the Gmail web client, as received by the relay's MX.

    multipart/alternative of quoted-printable UTF-8 text/plain and text/html; the HTML
    carries the sender's name in a ``gmail_signature`` div and the partner's address in a
    ``mailto:`` link inside ``<div class="gmail_quote">``; Google trace, DKIM and ARC headers
    name the sender's address.
    """
    rand = _Entropy("gmail", sender.address, to_alias, subject, text)
    day, month = _names(_QUOTED_AT)
    when = f"{day[:3]}, {_QUOTED_AT.day} {month[:3]} {_QUOTED_AT:%Y} at {_QUOTED_AT:%H:%M}"
    new_text = f"{_opening(partner, text)}\n\nBest wishes,\n{sender.first_name}"
    earlier = _earlier_message(author=partner, recipient=sender)

    plain = (
        f"{new_text}\n\n-- \n{sender.name}\n\n"
        f"On {when}, {partner.name} <{partner.address}> wrote:\n\n"
        f"{_quote_lines(earlier)}\n"
    )
    address = html.escape(partner.address)
    link = f'<a href="mailto:{address}" target="_blank">{address}</a>'
    html_body = (
        '<div dir="ltr">'
        + _html_lines(new_text, "<div>{}</div>", "<div><br></div>")
        + '<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>'
        + '<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">'
        + f"{html.escape(sender.name)}</div></div><br>"
        + '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
        + f"On {when}, {html.escape(partner.name)} &lt;{link}&gt; wrote:<br></div>"
        + '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        + 'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        + '<div dir="ltr">'
        + _html_lines(earlier, "<div>{}</div>", "<div><br></div>").replace(address, link)
        + "</div></blockquote></div>\n"
    )
    boundary = "000000000000" + rand.hex(8)
    body = _multipart(
        boundary,
        [
            _render(
                [
                    ("Content-Type", 'text/plain; charset="UTF-8"'),
                    ("Content-Transfer-Encoding", "quoted-printable"),
                ],
                _qp(plain),
            ),
            _render(
                [
                    ("Content-Type", 'text/html; charset="UTF-8"'),
                    ("Content-Transfer-Encoding", "quoted-printable"),
                ],
                _qp(html_body),
            ),
        ],
    )

    stamp = int(_SENT_AT.timestamp())
    google_at = (_SENT_AT + timedelta(seconds=2)).astimezone(_PST)
    alias_domain = to_alias.rpartition("@")[2]
    dkim = _signature(
        f"v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
        f"        d={sender.domain}; s=20230601; t={stamp}; x={stamp + 604800}; darn={alias_domain};\n"
        "        h=to:subject:message-id:date:from:in-reply-to:references\n"
        "         :mime-version:from:to:cc:subject:date:message-id:reply-to",
        rand,
        indent="        ",
    )
    headers: _Headers = [
        ("Return-Path", f"<{sender.address}>"),
        (
            "Received",
            f"from mail-ej1-f41.google.com (mail-ej1-f41.google.com [{_GOOGLE_IP}])\n"
            f"\tby {_relay_host(to_alias)} (Postfix) with ESMTPS id 4{rand.alnum(11)}\n"
            f"\tfor <{to_alias}>; {_trace_date((_SENT_AT + timedelta(seconds=3)).astimezone(UTC))}",
        ),
        (
            "ARC-Seal",
            _signature(
                f"i=1; a=rsa-sha256; t={stamp}; cv=none;\n        d=google.com; s=arc-20240605",
                rand,
                indent="        ",
                body_hash=False,
            ),
        ),
        (
            "ARC-Message-Signature",
            _signature(
                "i=1; a=rsa-sha256; c=relaxed/relaxed; d=google.com; s=arc-20240605;\n"
                "        h=to:subject:message-id:date:from:in-reply-to:references\n"
                "         :mime-version:dkim-signature",
                rand,
                indent="        ",
            ),
        ),
        (
            "ARC-Authentication-Results",
            f"i=1; mx.google.com;\n"
            f"       dkim=pass header.i=@{sender.domain} header.s=20230601 header.b={rand.alnum(8)};\n"
            f"       spf=pass (google.com: domain of {sender.address} designates {_GOOGLE_IPV6} as "
            f"permitted sender) smtp.mailfrom={sender.address};\n"
            f"       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from={sender.domain}",
        ),
        (
            "Authentication-Results",
            f"{_relay_host(to_alias)};\n"
            f"\tdkim=pass (2048-bit key; unprotected) header.d={sender.domain} header.i=@{sender.domain} "
            f"header.a=rsa-sha256 header.s=20230601 header.b={rand.alnum(8)};\n"
            f"\tspf=pass ({_relay_host(to_alias)}: domain of {sender.address} designates {_GOOGLE_IP} "
            f"as permitted sender) smtp.mailfrom={sender.address};\n"
            f"\tdmarc=pass (p=none dis=none) header.from={sender.domain}",
        ),
        (
            "Received",
            f"by mail-ej1-f41.google.com with SMTP id a640c23a62f3a-{rand.hex(5)}so{rand.hex(4)}.1\n"
            f"        for <{to_alias}>; {_rfc822_date(google_at, pad='0')} ({google_at:%Z})",
        ),
        ("DKIM-Signature", dkim),
        (
            "X-Google-DKIM-Signature",
            _signature(
                f"v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
                f"        d=1e100.net; s=20230601; t={stamp}; x={stamp + 604800};\n"
                "        h=to:subject:message-id:date:from:in-reply-to:references\n"
                "         :mime-version:x-gm-message-state:from:to:cc:subject:date:message-id\n"
                "         :reply-to",
                rand,
                indent="        ",
            ),
        ),
        ("X-Gm-Message-State", "AOJu0Y" + rand.b64(42)),
        ("X-Gm-Gg", "ASbGnc" + rand.b64(96)),
        ("X-Google-Smtp-Source", "AGHT+I" + rand.b64(45)),
        (
            "X-Received",
            f"by 2001:db8:907:{rand.hex(2)}:b0:a9a:{rand.hex(2)}:{rand.hex(2)} with SMTP id "
            f"a640c23a62f3a-{rand.hex(5)}mr{rand.hex(7)}66b.{rand.raw(1)[0] % 9 + 1};\n"
            f"        {_rfc822_date(google_at, pad='0')} ({google_at:%Z})",
        ),
        ("MIME-Version", "1.0"),
        *_optional("References", " ".join(references)),
        *_optional("In-Reply-To", in_reply_to),
        ("From", _mailbox(sender.name, sender.address)),
        ("Date", _rfc822_date(_SENT_AT)),
        ("X-Gm-Features", "AWmQ_b" + rand.alnum(60)),
        ("Message-ID", f"<CA{rand.b64(36).replace('/', '_')}@mail.gmail.com>"),
        ("Subject", _reply_subject(subject)),
        ("To", _mailbox(partner_handle, to_alias)),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    return _wire(_render(headers, body))


def outlook_reply(
    *,
    sender: Person,
    partner: Person,
    to_alias: str,
    partner_handle: str,
    subject: str,
    in_reply_to: str | None,
    references: list[str],
    text: str,
) -> bytes:
    """A reply from Outlook for Windows through Exchange Online.

    multipart/alternative of a base64 text/plain and a Word-generated quoted-printable
    text/html, both in a legacy charset (iso-8859-1 or windows-1252) when the text fits.
    The quoted header block names the partner as "Name <address>" in the plain part and as
    "Surname, Given &lt;local&#64;domain&gt;" with named entities in the HTML part. Read
    receipt request (Disposition-Notification-To) and X-MS-Exchange-* headers.
    """
    rand = _Entropy("outlook", sender.address, to_alias, subject, text)
    new_text = f"{_opening(partner, text)}\n\nKind regards,\n{sender.name}"
    earlier = _earlier_message(author=partner, recipient=sender)
    day, month = _names(_QUOTED_AT)
    plain = (
        f"{new_text}\n\n{'_' * 32}\n"
        f"From: {partner.name} <{partner.address}>\n"
        f"Sent: {day}, {_QUOTED_AT.day} {month} {_QUOTED_AT:%Y %H:%M}\n"
        f"To: {sender.name} <{sender.address}>\n"
        f"Subject: {subject}\n\n"
        f"{earlier}\n"
    )
    charset = _legacy_charset(plain + partner_handle)
    encoding = "B" if charset == "utf-8" else "Q"

    paragraph = '<p class="MsoNormal">{}<o:p></o:p></p>'
    empty = '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
    entity_address = _html_address(partner.address)
    hour12 = f"{(_QUOTED_AT.hour - 1) % 12 + 1}:{_QUOTED_AT:%M} {'AM' if _QUOTED_AT.hour < 12 else 'PM'}"
    quoted_header = (
        f'<p class="MsoNormal"><b>From:</b> {_html_entities(partner.surname_first, style="named")} '
        f"&lt;{entity_address}&gt; <br>\n"
        f"<b>Sent:</b> {day}, {month} {_QUOTED_AT.day}, {_QUOTED_AT:%Y} {hour12}<br>\n"
        f"<b>To:</b> {_html_entities(sender.surname_first, style='named')} "
        f"&lt;{_html_address(sender.address)}&gt;<br>\n"
        f"<b>Subject:</b> {html.escape(subject, quote=False)}<o:p></o:p></p>"
    )
    html_body = "\n".join(
        [
            '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:w="urn:schemas-microsoft-com:office:word" '
            'xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">',
            "<head>",
            f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">',
            '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">',
            "<style><!--",
            "p.MsoNormal, li.MsoNormal, div.MsoNormal",
            '\t{margin:0cm;\n\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;}',
            "a:link, span.MsoHyperlink",
            "\t{mso-style-priority:99;\n\tcolor:blue;\n\ttext-decoration:underline;}",
            "div.WordSection1\n\t{page:WordSection1;}",
            "--></style>",
            "</head>",
            '<body lang="EN-GB" link="blue" vlink="purple" style="word-wrap:break-word">',
            '<div class="WordSection1">',
            _html_lines(new_text, paragraph, empty, "\n"),
            empty,
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">',
            quoted_header,
            "</div>",
            empty,
            _html_lines(earlier, paragraph, empty, "\n").replace(
                html.escape(partner.address), f'<a href="mailto:{entity_address}">{entity_address}</a>'
            ),
            "</div>",
            "</body>",
            "</html>",
            "",
        ]
    )
    server = f"AS8PR07MB{rand.hex(2).upper()}"
    gateway = f"DU0PR07MB{rand.hex(2).upper()}"
    local = f"{server}{rand.hex(10).upper()}"
    boundary = f"_000_{local}{server[:4]}eurp_"
    body = _multipart(
        boundary,
        [
            _render(
                [
                    ("Content-Type", f'text/plain; charset="{charset}"'),
                    ("Content-Transfer-Encoding", "base64"),
                ],
                _base64_text(plain, charset),
            ),
            _render(
                [
                    ("Content-Type", f'text/html; charset="{charset}"'),
                    ("Content-Transfer-Encoding", "quoted-printable"),
                ],
                _qp(html_body, charset, "xmlcharrefreplace"),
            ),
        ],
    )

    sent_utc = _SENT_AT.astimezone(UTC)
    ten_thousandths = int.from_bytes(rand.raw(2)) % 10000
    headers: _Headers = [
        (
            "Received",
            f"from EUR05-AM6-obe.outbound.protection.outlook.com "
            f"(mail-am6eur05on2072.outbound.protection.outlook.com [{_MICROSOFT_IP}])\n"
            f"\tby {_relay_host(to_alias)} (Postfix) with ESMTPS id {rand.hex(6).upper()}\n"
            f"\tfor <{to_alias}>; {_trace_date(sent_utc + timedelta(seconds=4))}",
        ),
        (
            "ARC-Seal",
            _signature(
                "i=1; a=rsa-sha256; s=arcselector10001; d=microsoft.com; cv=none",
                rand,
                indent=" ",
                body_hash=False,
            ),
        ),
        (
            "ARC-Message-Signature",
            _signature(
                "i=1; a=rsa-sha256; c=relaxed/relaxed; d=microsoft.com;\n"
                " s=arcselector10001;\n"
                " h=From:Date:Subject:Message-ID:Content-Type:MIME-Version:"
                "X-MS-Exchange-AntiSpam-MessageData-ChunkCount:X-MS-Exchange-AntiSpam-MessageData-0",
                rand,
                indent=" ",
            ),
        ),
        (
            "ARC-Authentication-Results",
            f"i=1; mx.microsoft.com 1; spf=pass\n smtp.mailfrom={sender.domain}; dmarc=pass action=none\n"
            f" header.from={sender.domain}; dkim=pass header.d={sender.domain}; arc=none",
        ),
        (
            "DKIM-Signature",
            _signature(
                f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={sender.domain};\n"
                " s=selector1;\n"
                " h=From:Date:Subject:Message-ID:Content-Type:MIME-Version:X-MS-Exchange-SenderADCheck",
                rand,
                indent=" ",
            ),
        ),
        (
            "Received",
            f"from {server}.eurprd07.prod.outlook.com (2001:db8:10a6:20b:3a1::9)\n"
            f" by {gateway}.eurprd07.prod.outlook.com (2001:db8:10a6:10:414::17) with\n"
            " Microsoft SMTP Server (version=TLS1_2,\n"
            " cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8158.12; "
            f"{_rfc822_date(sent_utc + timedelta(seconds=2))}",
        ),
        (
            "Received",
            f"from {server}.eurprd07.prod.outlook.com\n"
            f" ([fe80::1c2d:3e4f:5a6b:7c8d]) by {server}.eurprd07.prod.outlook.com\n"
            " ([fe80::1c2d:3e4f:5a6b:7c8d%4]) with mapi id 15.20.8158.011; "
            f"{_rfc822_date(sent_utc + timedelta(seconds=1))}",
        ),
        ("From", _mailbox(sender.name, sender.address, charset=charset, encoding=encoding)),
        ("To", _mailbox(partner_handle, to_alias, charset=charset, encoding=encoding)),
        ("Subject", _reply_subject(subject, charset=charset, encoding=encoding)),
        ("Thread-Topic", _header_text(subject, charset=charset, encoding=encoding)),
        ("Thread-Index", base64.b64encode(b"\x01\x01\xdc" + rand.raw(24)).decode("ascii")),
        ("Date", _rfc822_date(sent_utc)),
        ("Message-ID", f"<{local}@{server}.eurprd07.prod.outlook.com>"),
        *_optional("References", "\n ".join(references)),
        *_optional("In-Reply-To", in_reply_to),
        ("Accept-Language", "en-GB, de-DE"),
        ("Content-Language", "en-GB"),
        ("X-MS-Has-Attach", ""),
        ("X-MS-TNEF-Correlator", ""),
        (
            "Disposition-Notification-To",
            _mailbox(sender.name, sender.address, charset=charset, encoding=encoding),
        ),
        ("x-ms-publictraffictype", "Email"),
        ("x-ms-traffictypediagnostic", f"{server}:EE_|{gateway}:EE_"),
        ("x-ms-office365-filtering-correlation-id", rand.uuid4()),
        ("x-originating-ip", f"[{_OFFICE_IP}]"),
        ("x-ms-exchange-senderadcheck", "1"),
        ("x-ms-exchange-antispam-relay", "0"),
        ("x-microsoft-antispam", "BCL:0;ARA:13230040|1800799024|366016|376014|38070700018;"),
        ("x-ms-exchange-antispam-messagedata-chunkcount", "1"),
        ("x-ms-exchange-antispam-messagedata-0", "\n ".join(_chunks(rand.b64(180), 76))),
        ("Content-Type", f'multipart/alternative;\n\tboundary="{boundary}"'),
        ("MIME-Version", "1.0"),
        ("X-OriginatorOrg", sender.domain),
        ("X-MS-Exchange-CrossTenant-AuthAs", "Internal"),
        ("X-MS-Exchange-CrossTenant-AuthSource", f"{server}.eurprd07.prod.outlook.com"),
        ("X-MS-Exchange-CrossTenant-Network-Message-Id", rand.uuid4()),
        (
            "X-MS-Exchange-CrossTenant-originalarrivaltime",
            f"{sent_utc:%d} {_names(sent_utc)[1][:3]} {sent_utc:%Y %H:%M:%S}.{ten_thousandths:04d} (UTC)",
        ),
        ("X-MS-Exchange-CrossTenant-fromentityheader", "Hosted"),
        ("X-MS-Exchange-CrossTenant-id", rand.uuid4()),
        ("X-MS-Exchange-CrossTenant-mailboxtype", "HOSTED"),
        ("X-MS-Exchange-CrossTenant-userprincipalname", rand.b64(48)),
        ("X-MS-Exchange-Transport-CrossTenantHeadersStamped", gateway),
    ]
    return _wire(_render(headers, body))


def apple_mail_reply(
    *,
    sender: Person,
    partner: Person,
    to_alias: str,
    partner_handle: str,
    subject: str,
    in_reply_to: str | None,
    references: list[str],
    text: str,
) -> bytes:
    """A reply from Apple Mail on macOS with a photo dropped into the text.

    Apple's layout: multipart/alternative of a quoted-printable ``format=flowed`` text/plain
    and a multipart/mixed holding text/html, the image (file name "<sender name> photo.png",
    RFC 2231 in Content-Disposition and RFC 2047 in Content-Type) and the rest of the HTML.
    The attribution "> On 3 Nov 2026, at 14:02, Name <address> wrote:" is itself quoted;
    the sender Cc's themselves; Message-Id is a UUID at the sender's domain.
    """
    rand = _Entropy("apple_mail", sender.address, to_alias, subject, text)
    opening = _opening(partner, text)
    closing = f"Best,\n{sender.first_name}\n\n{sender.name}"
    earlier = _earlier_message(author=partner, recipient=sender)
    _, month = _names(_QUOTED_AT)
    when = f"{_QUOTED_AT.day} {month[:3]} {_QUOTED_AT:%Y}, at {_QUOTED_AT:%H:%M}"
    plain = (
        _flowed(f"{opening}\n\n{closing}", width=78)
        + "\n\n"
        + _flowed(
            f"On {when}, {partner.name} <{partner.address}> wrote:\n\n{earlier}", quote_depth=1, width=78
        )
        + "\n"
    )
    head = (
        '<html aria-label="message body"><head>'
        '<meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
        '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">'
    )
    address = html.escape(partner.address)
    html_before = f"{head}{_html_lines(opening, '<div>{}</div>', '<div><br></div>')}<div></div></body></html>"
    html_after = (
        head
        + "<div></div><div><br></div>"
        + _html_lines(closing, "<div>{}</div>", "<div><br></div>")
        + '<div><br><blockquote type="cite"><div>'
        + f"On {when}, {html.escape(partner.name)} &lt;"
        + f'<a href="mailto:{address}" class="">{address}</a>&gt; wrote:</div>'
        + '<br class="Apple-interchange-newline"><div><div>'
        + _html_lines(earlier, "<div>{}</div>", "<div><br></div>")
        + "</div></div></blockquote></div><br></body></html>"
    )
    filename = f"{sender.name} photo.png"
    name_parameter = filename if filename.isascii() else _encoded_words(filename, charset="utf-8")
    html_headers: _Headers = [
        ("Content-Transfer-Encoding", "quoted-printable"),
        ("Content-Type", "text/html;\n\tcharset=utf-8"),
    ]
    mixed_boundary = f"Apple-Mail=_{rand.uuid4().upper()}"
    mixed = _multipart(
        mixed_boundary,
        [
            _render(html_headers, _qp(html_before)),
            _render(
                [
                    ("Content-Disposition", f"inline;\n\t{_param('filename', filename)}"),
                    (
                        "Content-Type",
                        f'image/png;\n\tx-unix-mode=0644;\n\tname="{quote_string(name_parameter)}"',
                    ),
                    ("Content-Transfer-Encoding", "base64"),
                ],
                base64.encodebytes(_tiny_png()),
            ),
            _render(html_headers, _qp(html_after)),
        ],
    )
    boundary = f"Apple-Mail=_{rand.uuid4().upper()}"
    body = _multipart(
        boundary,
        [
            _render(
                [
                    ("Content-Transfer-Encoding", "quoted-printable"),
                    ("Content-Type", "text/plain;\n\tcharset=utf-8;\n\tformat=flowed"),
                ],
                _qp(plain),
            ),
            _render([("Content-Type", f'multipart/mixed;\n\tboundary="{mixed_boundary}"')], mixed),
        ],
    )
    headers: _Headers = [
        *_submission_trace(
            sender=sender, to_alias=to_alias, helo="smtpclient.apple", client_ip=_HOME_IP, rand=rand
        ),
        ("From", _mailbox(sender.name, sender.address, charset="utf-8")),
        ("Content-Type", f'multipart/alternative;\n\tboundary="{boundary}"'),
        ("Mime-Version", "1.0 (Mac OS X Mail 16.0 \\(3826.400.131.1.6\\))"),
        ("Subject", _reply_subject(subject, charset="utf-8")),
        ("Date", _rfc822_date(_SENT_AT)),
        *_optional("References", "\n ".join(references)),
        ("Cc", _mailbox(sender.name, sender.address, charset="utf-8")),
        ("To", _mailbox(partner_handle, to_alias, charset="utf-8")),
        *_optional("In-Reply-To", in_reply_to),
        ("Message-Id", f"<{rand.uuid4().upper()}@{sender.domain}>"),
        ("X-Mailer", "Apple Mail (2.3826.400.131.1.6)"),
    ]
    return _wire(_render(headers, body))


def thunderbird_reply(
    *,
    sender: Person,
    partner: Person,
    to_alias: str,
    partner_handle: str,
    subject: str,
    in_reply_to: str | None,
    references: list[str],
    text: str,
) -> bytes:
    """A bottom-posted reply from Mozilla Thunderbird in "plain text and HTML" mode.

    multipart/alternative of an 8bit ``format=flowed`` text/plain, where the attribution
    "On 03/11/2026 14:02, Name wrote:" is followed by "> " lines holding the partner's
    address, and a quoted-printable text/html, where the partner's name is written with
    named and numeric entities (``&eacute;``, ``&#252;``) and the address is a
    ``mailto:local%40domain`` link. Reply-To and Disposition-Notification-To name the sender.
    """
    rand = _Entropy("thunderbird", sender.address, to_alias, subject, text)
    new_text = f"{_opening(partner, text)}\n\nCheers,\n{sender.first_name}"
    earlier = _earlier_message(author=partner, recipient=sender)
    when = f"{_QUOTED_AT:%d/%m/%Y %H:%M}"
    plain = (
        _flowed(f"On {when}, {partner.name} wrote:")
        + "\n"
        + _flowed(earlier, quote_depth=1)
        + "\n\n"
        + _flowed(f"{new_text}\n\n-- \n{sender.name}")
        + "\n"
    )
    entity_name = _html_entities(partner.name, style="mixed")
    address = html.escape(partner.address)
    link = (
        '<a class="moz-txt-link-abbreviated moz-txt-link-freetext" '
        f'href="mailto:{percent_encode(partner.address, safe="+")}">{address}</a>'
    )
    cite = f' cite="mid:{html.escape(in_reply_to.strip("<>"))}"' if in_reply_to else ""
    quoted = (
        _html_paragraphs(earlier, "      ")
        .replace(address, link)
        .replace(html.escape(partner.name, quote=False), entity_name)
    )
    html_body = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
        "  </head>\n  <body>\n"
        f'    <div class="moz-cite-prefix">On {when}, {entity_name} wrote:<br>\n    </div>\n'
        f'    <blockquote type="cite"{cite}>\n{quoted}\n    </blockquote>\n'
        f"{_html_paragraphs(new_text, '    ')}\n"
        f'    <div class="moz-signature">-- <br>\n      {html.escape(sender.name)}</div>\n'
        "  </body>\n</html>\n"
    )
    boundary = "------------" + rand.alnum(24)
    body = _multipart(
        boundary,
        [
            _render(
                [
                    ("Content-Type", "text/plain; charset=UTF-8; format=flowed"),
                    ("Content-Transfer-Encoding", "8bit"),
                ],
                plain.encode("utf-8"),
            ),
            _render(
                [
                    ("Content-Type", "text/html; charset=UTF-8"),
                    ("Content-Transfer-Encoding", "quoted-printable"),
                ],
                _qp(html_body),
            ),
        ],
        preamble="This is a multi-part message in MIME format.",
    )
    own_mailbox = _mailbox(sender.name, sender.address)
    headers: _Headers = [
        *_submission_trace(
            sender=sender, to_alias=to_alias, helo="[192.168.1.23]", client_ip=_HOME_IP, rand=rand
        ),
        ("Content-Type", f'multipart/alternative;\n boundary="{boundary}"'),
        ("Message-ID", f"<{rand.uuid4()}@{sender.domain}>"),
        ("Date", _rfc822_date(_SENT_AT)),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("Subject", _reply_subject(subject)),
        ("Content-Language", "en-GB"),
        ("To", _mailbox(partner_handle, to_alias)),
        *_optional("References", "\n ".join(references)),
        ("Reply-To", own_mailbox),
        ("From", own_mailbox),
        ("Disposition-Notification-To", own_mailbox),
        *_optional("In-Reply-To", in_reply_to),
    ]
    return _wire(_render(headers, body))


def phone_reply(
    *,
    sender: Person,
    partner: Person,
    to_alias: str,
    partner_handle: str,
    subject: str,
    in_reply_to: str | None,
    references: list[str],
    text: str,
) -> bytes:
    """A short reply typed on a phone.

    A single text/plain; charset=utf-8 part in 8bit (raw UTF-8 bytes), signed with the
    sender's name and "Sent from my iPhone", above the original message behind a
    "-------- Original message --------" header block. The From: header carries the
    sender's name as raw 8-bit UTF-8, as some broken phone clients write it.
    """
    rand = _Entropy("phone", sender.address, to_alias, subject, text)
    earlier = _earlier_message(author=partner, recipient=sender)
    body = (
        f"{_opening(partner, text)}\n\n{sender.name}\n\nSent from my iPhone\n\n"
        "-------- Original message --------\n"
        f"From: {partner.name} <{partner.address}>\n"
        f"Date: {_QUOTED_AT:%d/%m/%Y %H:%M} (GMT+01:00)\n"
        f"To: {sender.name} <{sender.address}>\n"
        f"Subject: {subject}\n\n"
        f"{earlier}\n"
    )
    headers: _Headers = [
        *_submission_trace(
            sender=sender, to_alias=to_alias, helo="smtpclient.apple", client_ip=_PHONE_IPV6, rand=rand
        ),
        ("From", _mailbox(sender.name, sender.address, raw_8bit=True)),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
        ("Mime-Version", "1.0 (1.0)"),
        ("Subject", _reply_subject(subject, charset="utf-8")),
        ("Date", _rfc822_date(_SENT_AT)),
        ("Message-Id", f"<{rand.uuid4().upper()}@{sender.domain}>"),
        *_optional("References", "\n ".join(references)),
        *_optional("In-Reply-To", in_reply_to),
        ("To", _mailbox(partner_handle, to_alias, charset="utf-8")),
        ("X-Mailer", "iPhone Mail (22B83)"),
    ]
    return _wire(_render(headers, body.encode("utf-8")))


def forwarded_with_rfc822(
    *, sender: Person, partner: Person, to_alias: str, subject: str, text: str
) -> bytes:
    """A Thunderbird "forward as attachment" of an earlier message from partner to sender.

    multipart/mixed of an 8bit text/plain and a message/rfc822 part: the partner's original
    message as the sender's mailbox stored it, with Return-Path, Delivered-To, Received,
    Authentication-Results, From, To and Message-ID naming both real identities.
    """
    rand = _Entropy("forward", sender.address, partner.address, to_alias, subject, text)
    received_at = _QUOTED_AT + timedelta(seconds=4)
    partner_server = f"smtp.{partner.domain}"
    original_headers: _Headers = [
        ("Return-Path", f"<{partner.address}>"),
        ("Delivered-To", sender.address),
        (
            "Received",
            f"from {partner_server} ({partner_server} [{_SUBMISSION_IP}])\n"
            f"\tby mx.{sender.domain} (Postfix) with ESMTPS id {rand.hex(6).upper()}\n"
            f"\tfor <{sender.address}>; {_trace_date(received_at)}",
        ),
        (
            "Authentication-Results",
            f"mx.{sender.domain};\n"
            f"\tspf=pass smtp.mailfrom={partner.address};\n"
            f"\tdkim=pass header.d={partner.domain}",
        ),
        (
            "Received",
            f"from [10.0.0.12] (unknown [{_OFFICE_IP}])\n"
            f"\t(Authenticated sender: {partner.address})\n"
            f"\tby {partner_server} (Postfix) with ESMTPSA id {rand.hex(5).upper()}\n"
            f"\tfor <{sender.address}>; {_trace_date(_QUOTED_AT + timedelta(seconds=2))}",
        ),
        ("Message-ID", f"<{rand.uuid4()}@{partner.domain}>"),
        ("Date", _rfc822_date(_QUOTED_AT)),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("From", _mailbox(partner.name, partner.address)),
        ("To", _mailbox(sender.name, sender.address)),
        ("Subject", _header_text(subject)),
        ("Content-Type", "text/plain; charset=UTF-8; format=flowed"),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]
    original = _render(
        original_headers, _qp(_flowed(_earlier_message(author=partner, recipient=sender)) + "\n")
    )
    note = (
        f"{_opening(partner, text)}\n\n"
        "I have attached your mail from 3 November so we both have it in one place.\n\n"
        f"Best,\n{sender.name}"
    )
    attachment_name = f"{subject}.eml".replace("/", "_")
    boundary = "------------" + rand.alnum(24)
    body = _multipart(
        boundary,
        [
            _render(
                [
                    ("Content-Type", "text/plain; charset=UTF-8; format=flowed"),
                    ("Content-Transfer-Encoding", "8bit"),
                ],
                (_flowed(note) + "\n").encode("utf-8"),
            ),
            _render(
                [
                    ("Content-Type", f"message/rfc822; charset=UTF-8;\n {_param('name', attachment_name)}"),
                    ("Content-Disposition", f"attachment;\n {_param('filename', attachment_name)}"),
                ],
                original,
            ),
        ],
        preamble="This is a multi-part message in MIME format.",
    )
    headers: _Headers = [
        *_submission_trace(
            sender=sender, to_alias=to_alias, helo="[192.168.1.23]", client_ip=_HOME_IP, rand=rand
        ),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
        ("Message-ID", f"<{rand.uuid4()}@{sender.domain}>"),
        ("Date", _rfc822_date(_SENT_AT)),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("Content-Language", "en-GB"),
        ("To", to_alias),
        ("From", _mailbox(sender.name, sender.address)),
        ("Subject", "Fwd: " + _header_text(subject)),
    ]
    return _wire(_render(headers, body))


def _ical_text(value: str) -> str:
    """An iCalendar TEXT value with its special characters escaped."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ical_parameter(value: str) -> str:
    """An iCalendar parameter value, quoted when it holds ":", ";" or ","."""
    value = value.replace('"', "'")
    return f'"{value}"' if any(char in value for char in ":;,") else value


def _fold_ical(line: str, *, split_inside: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 sequence.

    Lines containing *split_inside* get an extra fold in its middle, which the RFC allows
    anywhere: the value then only exists in the unfolded text.
    """
    forced = line.find(split_inside) + len(split_inside) // 2 if split_inside in line else -1
    segments = [""]
    size, limit = 0, 75
    for index, char in enumerate(line):
        width = len(char.encode("utf-8"))
        if size + width > limit or (index == forced and segments[-1]):
            segments.append("")
            size, limit = 0, 74  # continuation lines start with a space
        segments[-1] += char
        size += width
    return "\n ".join(segments)


def calendar_invite(*, sender: Person, partner: Person, to_alias: str, subject: str) -> bytes:
    """A Google Calendar invitation from sender to partner.

    multipart/alternative of a base64 text/plain summary and a text/calendar
    (METHOD:REQUEST) part with ``ORGANIZER;CN=<sender name>:mailto:<sender address>`` and
    ``...;CN=<partner name>:mailto:<partner address>`` attendee lines, folded at 75 octets
    with a fold in the middle of the partner's address. The Subject, as Google writes it,
    ends with the invitee's (the partner's) address; Reply-To names the sender.
    """
    rand = _Entropy("calendar", sender.address, partner.address, to_alias, subject)
    start = _MEETING_AT.astimezone(UTC)
    end = start + timedelta(hours=1)
    stamp = _SENT_AT.astimezone(UTC)
    ical_time = "%Y%m%dT%H%M%SZ"
    day, month = _names(_MEETING_AT)
    local_end = _MEETING_AT + timedelta(hours=1)
    when = f"{day[:3]} {_MEETING_AT.day} {month[:3]} {_MEETING_AT:%Y %H:%M} - {local_end:%H:%M} (CET)"
    description = (
        f"Mentoring session between {sender.name} and {partner.name}.\n"
        f"If the time does not suit you, write to {sender.address}."
    )
    calendar_lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"DTSTART:{start:{ical_time}}",
        f"DTEND:{end:{ical_time}}",
        f"DTSTAMP:{stamp:{ical_time}}",
        f"ORGANIZER;CN={_ical_parameter(sender.name)}:mailto:{sender.address}",
        f"UID:{rand.alnum(26).lower()}@google.com",
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE;"
        f"CN={_ical_parameter(sender.name)}:mailto:{sender.address}",
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;"
        f"CN={_ical_parameter(partner.name)}:mailto:{partner.address}",
        f"CREATED:{stamp:{ical_time}}",
        f"DESCRIPTION:{_ical_text(description)}",
        f"LAST-MODIFIED:{stamp:{ical_time}}",
        "LOCATION:",
        "SEQUENCE:0",
        "STATUS:CONFIRMED",
        f"SUMMARY:{_ical_text(subject)}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    calendar = "\n".join(_fold_ical(line, split_inside=partner.address) for line in calendar_lines) + "\n"
    summary = (
        "You have been invited to the following event.\n\n"
        f"Title: {subject}\n"
        f"When: {when}\n"
        f"Organiser: {sender.name} <{sender.address}>\n"
        "Who:\n"
        f"    * {sender.name} <{sender.address}> - organiser\n"
        f"    * {partner.name} <{partner.address}>\n\n"
        f"{description}\n\n"
        "Invitation from Google Calendar\n\n"
        f"You are receiving this email at the account {partner.address} because you are an "
        "attendee of this event.\n"
    )
    boundary = "000000000000" + rand.hex(8)
    body = _multipart(
        boundary,
        [
            _render(
                [("Content-Type", 'text/plain; charset="UTF-8"'), ("Content-Transfer-Encoding", "base64")],
                _base64_text(summary, "utf-8"),
            ),
            _render(
                [
                    ("Content-Type", 'text/calendar; charset="UTF-8"; method=REQUEST'),
                    ("Content-Transfer-Encoding", "7bit" if calendar.isascii() else "8bit"),
                ],
                calendar.encode("utf-8"),
            ),
        ],
    )
    headers: _Headers = [
        ("Return-Path", f"<{sender.address}>"),
        (
            "Received",
            f"from mail-sor-f73.google.com (mail-sor-f73.google.com [{_GOOGLE_IP}])\n"
            f"\tby {_relay_host(to_alias)} (Postfix) with ESMTPS id 4{rand.alnum(11)}\n"
            f"\tfor <{to_alias}>; {_trace_date((_SENT_AT + timedelta(seconds=3)).astimezone(UTC))}",
        ),
        ("MIME-Version", "1.0"),
        ("Reply-To", _mailbox(sender.name, sender.address)),
        ("Sender", "Google Calendar <calendar-notification@google.com>"),
        ("Message-ID", f"<calendar-{rand.uuid4()}@google.com>"),
        ("Date", _rfc822_date(_SENT_AT)),
        ("Subject", _header_text(f"Invitation: {subject} @ {when} ({partner.address})")),
        ("From", _mailbox(sender.name, sender.address)),
        ("To", to_alias),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    return _wire(_render(headers, body))


CLIENTS: dict[str, Callable[..., bytes]] = {
    "gmail": gmail_reply,
    "outlook": outlook_reply,
    "apple_mail": apple_mail_reply,
    "thunderbird": thunderbird_reply,
    "phone": phone_reply,
}


def decoded_text_parts(message: bytes) -> list[str]:
    """The decoded content of every text/* part, including parts of attached messages."""
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    return [part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text"]


def _self_check() -> None:
    """Build every message for two members and show that the partner's address is in it."""
    jose = Person("José Müller", "jose.mueller@example.net")
    jane = Person("Jane Doe", "jane.doe+mentor@mail.example.org")
    text = (
        "Thursday at 17:00 works for me — I'll bring my notes on chapter two and the questions "
        "about exercise 4, so we can spend most of the hour on those.\nSpeak soon!"
    )
    threads: list[tuple[str | None, list[str]]] = [
        ("<CAH7x2f0Q9w@mail.gmail.com>", ["<a1b2c3@mail.example.org>", "<CAH7x2f0Q9w@mail.gmail.com>"]),
        (None, []),
    ]
    failures: list[str] = []
    for (sender, partner), (in_reply_to, references) in zip(
        ((jose, jane), (jane, jose)), threads, strict=True
    ):
        messages = {
            name: build(
                sender=sender,
                partner=partner,
                to_alias="mentee-4821@relay.example",
                partner_handle="Mentee 4821 (Spring cohort)",
                subject="Reading list für Donnerstag",
                in_reply_to=in_reply_to,
                references=references,
                text=text,
            )
            for name, build in CLIENTS.items()
        }
        messages["forwarded_with_rfc822"] = forwarded_with_rfc822(
            sender=sender,
            partner=partner,
            to_alias="mentee-4821@relay.example",
            subject="Reading list für Donnerstag",
            text=text,
        )
        messages["calendar_invite"] = calendar_invite(
            sender=sender, partner=partner, to_alias="mentee-4821@relay.example", subject="Mentoring session"
        )
        for name, raw in messages.items():
            parsed = BytesParser(policy=policy.default).parsebytes(raw)
            defects = [defect for part in parsed.walk() for defect in part.defects]
            texts = decoded_text_parts(raw)
            found = sum(partner.address in content for content in texts)
            status = "ok" if found and not defects else "FAIL"
            if status == "FAIL":
                failures.append(name)
            print(
                f"{status:4} {name:22} {sender.name} -> {partner.name}: {len(raw)} bytes, "
                f"address in {found} of {len(texts)} text parts, {len(defects)} MIME defects"
            )
    if failures:
        raise SystemExit(f"leak fixtures broken: {', '.join(failures)}")


if __name__ == "__main__":
    _self_check()
