"""The bytes of a text-only notice, written without building an email.message.EmailMessage: the very
bytes that EmailMessage (policy.default, as relay/notices/__init__.py composes a notice) gives.

Building the message costs most of a nudge sweep's time (issue 14: 3 of its 5 ms per notice): the
header registry makes a class and parses and refolds every header of every notice. Here:

- a header line is folded by the email package itself (its header registry and folder, with the line
  length the message is written with), once per (name, value, line length): the headers that every
  notice of a program shares in a sweep (From, Date, X-Loop, the Content-* lines) are folded once;
- an address, a message id or a subject that the email package writes exactly as given (plain ASCII,
  nothing to quote, encode or fold: `_AS_IS`) is written directly;
- the text is encoded by EmailMessage.set_content's rules for text: 7bit or 8bit when every line is
  short enough, else quoted-printable or base64, whichever is shorter on its first ten lines.

tests/test_notice_bytes.py compares these bytes with EmailMessage's for every notice in every language.
Pure: nothing here touches the store.
"""

from __future__ import annotations

import binascii
import re
from email import policy as email_policy
from email import quoprimime
from functools import lru_cache

# A notice is written with lines of at most 998 characters when its subject is ASCII (headers are not
# folded), else with the default 78 (relay/notices/__init__.py: compose).
_DEFAULT = email_policy.default
_POLICIES = {78: _DEFAULT, 998: _DEFAULT.clone(max_line_length=998)}
_TEXT = _DEFAULT  # the policy set_content encodes the text with (the message's own)

_WORD = r"[A-Za-z0-9_+-]+"
_DOTTED = rf"{_WORD}(?:\.{_WORD})*"
# Values the header registry parses and writes back unchanged, when the whole line fits its length.
_AS_IS = {
    "to": re.compile(rf"{_DOTTED}@{_DOTTED}"),
    "message-id": re.compile(rf"<{_DOTTED}@{_DOTTED}>"),
    # unstructured: printable ASCII words, single spaces, no encoded-word opener
    "subject": re.compile(r"[!-~]+(?: [!-~]+)*"),
}
_NEWLINES = re.compile(r"\r\n|\r|\n")


@lru_cache(maxsize=2048)
def header_line(name: str, value: str, max_line_length: int) -> bytes:
    """One header as EmailMessage writes it (folded to `max_line_length`, the line ending included).
    Raises ValueError where EmailMessage would (a line break in the value)."""
    header = _DEFAULT.header_store_parse(name, value)[1]
    return _POLICIES[max_line_length].fold_binary(name, header)


def _line(name: str, value: str, max_line_length: int) -> bytes:
    simple = _AS_IS.get(name.lower())
    if (simple is not None and len(name) + 2 + len(value) <= max_line_length and simple.fullmatch(value)
            and "=?" not in value):
        return f"{name}: {value}\n".encode("ascii")
    return header_line(name, value, max_line_length)


def _base64(data: bytes, max_line_length: int) -> str:
    per_line = max_line_length // 4 * 3
    return "".join(binascii.b2a_base64(data[at:at + per_line]).decode("ascii")
                   for at in range(0, len(data), per_line))


def encode_text(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, payload) of `text` as UTF-8 text/plain, chosen as set_content chooses."""
    lines = text.encode("utf-8").splitlines()
    limit = _TEXT.max_line_length or 78
    body = b"\n".join(lines) + b"\n"
    if max((len(line) for line in lines), default=0) <= limit:
        if body.isascii():
            return "7bit", body.decode("ascii")
        return "8bit", body.decode("ascii", "surrogateescape")
    linesep = _TEXT.linesep.encode("ascii")
    first = linesep.join(lines[:10]) + linesep
    first_qp = quoprimime.body_encode(first.decode("latin-1"), limit)
    if len(first_qp) > len(binascii.b2a_base64(first)):
        return "base64", _base64(linesep.join(lines) + linesep, limit)
    if len(lines) <= 10:
        return "quoted-printable", first_qp
    return "quoted-printable", quoprimime.body_encode(body.decode("latin-1"), limit)


def _written(payload: str) -> bytes:
    """The payload as the generator writes it: every line break made a newline."""
    parts = _NEWLINES.split(payload)
    return ("".join(part + "\n" for part in parts[:-1]) + parts[-1]).encode("ascii", "surrogateescape")


def text_notice(headers: list[tuple[str, str]], text: str, *, content_language: str | None,
                max_line_length: int) -> bytes:
    """A text/plain notice: `headers` in their order (each name once, no Content-* or MIME-Version among
    them), then the Content-Type, Content-Transfer-Encoding, MIME-Version and Content-Language lines that
    set_content and compose add, then the text."""
    encoding, payload = encode_text(text)
    out = [_line(name, value, max_line_length) for name, value in headers]
    out.append(header_line("Content-Type", 'text/plain; charset="utf-8"', max_line_length))
    out.append(header_line("Content-Transfer-Encoding", encoding, max_line_length))
    out.append(header_line("MIME-Version", "1.0", max_line_length))
    if content_language:
        out.append(header_line("Content-Language", content_language, max_line_length))
    out.append(b"\n")
    out.append(_written(payload))
    return b"".join(out)
