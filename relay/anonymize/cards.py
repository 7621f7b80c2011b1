"""iCalendar (RFC 5545) and vCard (2.1, 3.0, 4.0) text: read as the partner's client reads it, cleaned in
the format's own escaping.

Both formats fold long lines (a line break followed by a space continues the line), and escape text
values ("\\n", "\\,", "\\;", "\\\\"): a name can hide after a "\\n" or across a fold. vCard 2.1 also
writes values in quoted-printable (ENCODING=QUOTED-PRINTABLE, with "=" soft line breaks), in the
charset named by CHARSET. Each content line is unfolded, its value decoded, cleaned with the given
function, and, if that changed anything, written back: escaped again, quoted-printable values as plain
UTF-8 (the ENCODING parameter dropped, CHARSET=UTF-8). Lines that do not change keep their exact text.
`readable` gives the inspection every line unfolded and decoded.
A member's mailbox (`handle_of` gives the handle for a value that is a member's address): a CN parameter
before it (iCalendar's `ORGANIZER;CN="Doe, Jane (LHS Student - Grade 9)":mailto:...`, the display name the
member's directory gives, with school and grade) becomes the handle, whole; a vCard with a member's address
(EMAIL) is that member's card, and its names (FN, N, NICKNAME, SORT-STRING) become the handle.
A vCard's binary properties (PHOTO, LOGO, SOUND, KEY: a photo with EXIF, a face, a voice, a key naming its
owner) are dropped, not cleaned. An HTML value (Outlook's X-ALT-DESC;FMTTYPE=text/html, where a name can
hide in entities such as "Jos&eacute;") is cleaned as HTML with the `html` function given, and dropped
when there is none (clients fall back to the plain DESCRIPTION). Hand-written: the `icalendar` and
`vobject` libraries re-serialise the whole object (losing the exact text of untouched lines) and do not
read vCard 2.1 quoted-printable values reliably.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Callable

_FOLD = re.compile(r"\r?\n[ \t]")
_QP_SOFT_BREAK = re.compile(r"=\r?\n")
_UNESCAPE = re.compile(r"\\([\\;,nN])")
_HTML_VALUE = re.compile(r"(?i);fmttype=\"?text/html\b")
VCARD_BINARY = frozenset({"PHOTO", "LOGO", "SOUND", "KEY"})
VCARD_NAMES = frozenset({"FN", "N", "NICKNAME", "SORT-STRING"})
_CN = re.compile(r'(?i)(;CN=)(?:"[^"]*"|[^;:]*)')
HandleOf = Callable[[str], str | None]  # a value's owner's handle, when the value is a member's address


def _unfold(text: str, *, quoted_printable: bool = False) -> str:
    text = _FOLD.sub("", text)
    if quoted_printable:  # vCard 2.1: a QP value continues after "=" at the end of a line
        text = _QP_SOFT_BREAK.sub("=", text).replace("=\n", "")
    return text


def _split(line: str) -> tuple[str, str] | None:
    """A content line's "name;params" and value, split at the first colon outside quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:index], line[index + 1:]
    return None


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _escape(value: str, original: str) -> str:
    """Escaped again; "," and ";" only if the original escaped them (in structured values such as N they
    separate components and are written as they are)."""
    value = value.replace("\\", "\\\\").replace("\r\n", "\\n").replace("\n", "\\n")
    for char in ",;":
        if "\\" + char in original:
            value = value.replace(char, "\\" + char)
    return value


def _decode_qp(value: str, head: str) -> str:
    charset = re.search(r"(?i);charset=([^;:]+)", head)
    raw = quopri.decodestring(value.encode("ascii", "replace"))
    try:
        return raw.decode(charset.group(1).strip('"') if charset else "utf-8")
    except (LookupError, UnicodeDecodeError):
        return raw.decode("latin-1")


def _lines(text: str) -> list[str]:
    unfolded = _FOLD.sub("", text)
    lines: list[str] = []
    pending = ""
    for line in unfolded.splitlines():
        if pending:
            line = pending + line
            pending = ""
        split = _split(line)
        if split is not None and re.search(r"(?i)encoding=quoted-printable", split[0]) and line.endswith("="):
            pending = line[:-1]  # a QP value continues on the next line
            continue
        lines.append(line)
    if pending:
        lines.append(pending)
    return lines


def _decoded(line: str) -> tuple[str, str, bool] | None:
    split = _split(line)
    if split is None:
        return None
    head, value = split
    qp = re.search(r"(?i)encoding=quoted-printable|;quoted-printable", head) is not None
    return head, (_decode_qp(value, head) if qp else _unescape(value)), qp


def readable(text: str) -> str:
    """Every content line unfolded, its parameters as written and its value decoded."""
    out = []
    for line in _lines(text):
        decoded = _decoded(line)
        out.append(line if decoded is None else f"{decoded[0]}:{decoded[1]}")
    return "\n".join(out)


def _property(head: str) -> str:
    """A content line's property name, without its group ("item1.PHOTO;..." -> "PHOTO")."""
    return head.split(";", 1)[0].rpartition(".")[2].strip().upper()


def _param(value: str) -> str:
    """A parameter value, quoted when it holds a character that ends one (RFC 5545 3.2)."""
    return f'"{value.replace(chr(34), "")}"' if any(c in value for c in ',;:"') else value


def _with_cn(head: str, name: str) -> str:
    """A content line's name and parameters with every CN parameter set to `name`."""
    value = _param(name)
    return _CN.sub(lambda match: match.group(1) + value, head)


def _card_owners(lines: list[str], handle_of: HandleOf | None) -> list[str | None]:
    """For each line, the handle of the member whose vCard (BEGIN:VCARD ... END:VCARD) holds it, when the
    card carries a member's address (EMAIL); None elsewhere."""
    owners: list[str | None] = [None] * len(lines)
    if handle_of is None:
        return owners
    start: int | None = None
    owner: str | None = None
    for index, line in enumerate(lines):
        decoded = _decoded(line)
        if decoded is None:
            continue
        name, value = _property(decoded[0]), decoded[1].strip().upper()
        if name == "BEGIN" and value == "VCARD":
            start, owner = index, None
        elif name == "EMAIL" and start is not None and owner is None:
            owner = handle_of(decoded[1])
        elif name == "END" and value == "VCARD" and start is not None:
            owners[start:index + 1] = [owner] * (index + 1 - start)
            start = None
    return owners


def _clean(text: str, clean: Callable[[str], str], drop: frozenset[str] = frozenset(),
           html: Callable[[str], str] | None = None, handle_of: HandleOf | None = None) -> str:
    lines = _lines(text)
    owners = _card_owners(lines, handle_of)
    changed = False
    out = []
    for line, owner in zip(lines, owners, strict=True):
        decoded = _decoded(line)
        if decoded is not None and (_property(decoded[0]) in drop or (html is None and _HTML_VALUE.search(decoded[0]))):
            changed = True
            continue
        if decoded is None:
            new = clean(line)
        else:
            head, value, qp = decoded
            own_head, own_value = head, value
            handle = handle_of(value) if handle_of is not None and _CN.search(head) else None
            if handle is not None:  # the display name of a member's mailbox: the handle, whole
                own_head = _with_cn(head, handle)
            if owner is not None and _property(head) in VCARD_NAMES:  # a member's own card: named by the handle
                own_value = owner + ";" * min(value.count(";"), 4)
            clean_value = html(own_value) if html is not None and _HTML_VALUE.search(head) else clean(own_value)
            clean_head = clean(own_head)
            if clean_head == head and clean_value == value:
                new = line
            else:
                if qp:
                    clean_head = re.sub(r"(?i);(?:encoding=)?quoted-printable", "", clean_head)
                    clean_head = re.sub(r"(?i);charset=[^;:]+", "", clean_head) + ";CHARSET=UTF-8"
                new = f"{clean_head}:{_escape(clean_value, line)}"
        changed = changed or new != line
        out.append(new)
    if not changed:
        return text
    return "\r\n".join(out) + "\r\n"


def clean_calendar(text: str, clean: Callable[[str], str], html: Callable[[str], str] | None = None,
                   handle_of: HandleOf | None = None) -> str:
    """Calendar text cleaned line by line; HTML values with `html`, or dropped without it; a member's
    mailbox named by the handle (`handle_of`, see the module docstring)."""
    return _clean(text, clean, html=html, handle_of=handle_of)


def clean_vcard(text: str, clean: Callable[[str], str], handle_of: HandleOf | None = None) -> str:
    """vCard text cleaned line by line, without its binary properties (VCARD_BINARY); a member's card and
    mailboxes named by the handle (`handle_of`)."""
    return _clean(text, clean, drop=VCARD_BINARY, handle_of=handle_of)
