"""iCalendar (RFC 5545) and vCard (2.1, 3.0, 4.0) text: read as the partner's client reads it, cleaned in
the format's own escaping.

Both formats fold long lines (a line break followed by a space continues the line), and escape text
values ("\\n", "\\,", "\\;", "\\\\"): a name can hide after a "\\n" or across a fold. vCard 2.1 also
writes values in quoted-printable (ENCODING=QUOTED-PRINTABLE, with "=" soft line breaks), in the
charset named by CHARSET. Each content line is unfolded, its value decoded, cleaned with the given
function, and, if that changed anything, written back: escaped again, quoted-printable values as plain
UTF-8 (the ENCODING parameter dropped, CHARSET=UTF-8). Lines that do not change keep their exact text.
`readable` gives the inspection every line unfolded and decoded.
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


def _clean(text: str, clean: Callable[[str], str], drop: frozenset[str] = frozenset(),
           html: Callable[[str], str] | None = None) -> str:
    lines = _lines(text)
    changed = False
    out = []
    for line in lines:
        decoded = _decoded(line)
        if decoded is not None and (_property(decoded[0]) in drop or (html is None and _HTML_VALUE.search(decoded[0]))):
            changed = True
            continue
        if decoded is None:
            new = clean(line)
        else:
            head, value, qp = decoded
            clean_value = html(value) if html is not None and _HTML_VALUE.search(head) else clean(value)
            clean_head = clean(head)
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


def clean_calendar(text: str, clean: Callable[[str], str], html: Callable[[str], str] | None = None) -> str:
    """Calendar text cleaned line by line; HTML values with `html`, or dropped without it."""
    return _clean(text, clean, html=html)


def clean_vcard(text: str, clean: Callable[[str], str]) -> str:
    """vCard text cleaned line by line, without its binary properties (VCARD_BINARY)."""
    return _clean(text, clean, drop=VCARD_BINARY)
