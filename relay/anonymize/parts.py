"""Walk a MIME tree and scrub it: text parts, attached messages, calendar parts, attachment names.

Text parts are decoded whatever their transfer encoding and charset (falling back to a lenient
decode when the declared charset is unknown or the encoding is broken), scrubbed, and written back
as UTF-8 only when something changed, so untouched parts keep their exact bytes; a part whose
Content-Type is invalid is read, and written back, as text/plain (RFC 2045). Headers of sub-parts
are cut down to Content-*; attached messages (message/rfc822) get the same treatment as the outer
message minus the parts that only the outer message has (aliases, ids).
"""

from __future__ import annotations

import re
from email.message import EmailMessage, Message

from relay.anonymize.headers import (
    header_text,
    one_line_headers,
    scrub_attached_headers,
    scrub_content_headers,
    scrub_field_values,
    scrub_header,
)
from relay.anonymize.scrub import Scrubber
from relay.anonymize.writable import has_surrogates, writable

REPORT_FIELDS = {"message/delivery-status", "message/global-delivery-status", "message/disposition-notification"}
MAX_DEPTH = 40  # deeper nesting is refused as unprocessable rather than walked
_TOKEN = r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+"
MIME_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")  # a valid type/subtype (RFC 2045)


class Unprocessable(Exception):
    """The message cannot be anonymised safely; it is refused with a clear SMTP reply."""


def scrub_tree(part: Message, scrubber: Scrubber, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise Unprocessable(f"MIME nesting deeper than {MAX_DEPTH} levels")
    if depth > 0:
        _keep_content_headers(part)
    one_line_headers(part)
    scrub_content_headers(part, scrubber)
    _scrub_names(part, scrubber)
    maintype = part.get_content_maintype()
    children = sub_parts(part)
    if maintype == "multipart":
        if children is not None:
            part.preamble, part.epilogue = _scrub_raw(part.preamble, scrubber), _scrub_raw(part.epilogue, scrubber)
            for child in children:
                scrub_tree(child, scrubber, depth + 1)
        else:  # declared multipart, but the parser found no parts (missing boundary)
            _rewrite_text(part, read_text(part), scrubber.text, force_subtype="plain")
        return
    if part.get_content_type() in REPORT_FIELDS and children is not None:
        for block in children:  # message/delivery-status: header-like fields; keep them, scrub their values
            scrub_field_values(block, scrubber)
        return
    if maintype == "message" and children is not None:
        for inner in children:  # message/rfc822 and friends: one enclosed message
            scrub_attached_headers(inner, scrubber)
            scrub_tree(inner, scrubber, depth + 1)
        return
    if maintype in ("text", "message"):  # text, or a message/* part the parser could not read
        subtype = part.get_content_subtype()
        clean = scrubber.html if subtype == "html" else scrubber.calendar if subtype == "calendar" else scrubber.text
        _rewrite_text(part, read_text(part), clean)
    elif _reads_as_text(part):  # an invalid Content-Type: mail clients show the part as text
        _rewrite_text(part, read_text(part), scrubber.text, force_subtype="plain")


def _reads_as_text(part: Message) -> bool:
    """Whether the part's Content-Type is invalid, which means text/plain (RFC 2045, 5.2).

    get_content_type() returns what is declared ('"text/plain"', "<multipart/mixed", "multip\\x00art/
    mixed"), and the parser treats such a part as an opaque leaf; a mail client shows it as text.
    """
    return "Content-Type" in part and not MIME_TYPE.fullmatch(part.get_content_type())


def _scrub_raw(text: str | None, scrubber: Scrubber) -> str | None:
    """Scrub text the generator writes out as it is: a multipart's preamble and epilogue.

    Mail clients hide them, but a missing or misspelt first boundary turns a whole part into the
    preamble. Non-ASCII text written back is escaped the way the parser stores undeclared 8-bit bytes.
    """
    if text is None:
        return None
    clean = scrubber.text(text)
    if clean == text:
        return text
    return clean.encode("utf-8", "surrogateescape").decode("ascii", "surrogateescape")


def sub_parts(part: Message) -> list[Message] | None:
    """A multipart's (or an enclosing message/* part's) parts; None for a leaf, or for a multipart the
    parser found no parts in. Only asks for the payload of parts that have sub-parts: on a leaf,
    get_payload() would decode it with its declared charset (a NUL in that: ValueError)."""
    if not part.is_multipart():
        return None
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else None


def _keep_content_headers(part: Message) -> None:
    for name in set(part.keys()):
        if not name.lower().startswith("content-"):
            del part[name]


def _scrub_names(part: Message, scrubber: Scrubber) -> None:
    """Attachment file names and descriptions may carry a real name ("Jane Doe CV.pdf")."""
    description = header_text(part, "Content-Description")
    if description is not None:
        del part["Content-Description"]
        part["Content-Description"] = scrub_header(scrubber, description)
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        if header not in part:
            continue
        try:
            value = part.get_param(param, header=header)
        except (ValueError, IndexError, TypeError):
            continue
        if value is None:
            continue
        name = value if isinstance(value, str) else _collapse(value)
        clean = scrub_header(scrubber, name)
        if clean != " ".join(name.split()):  # something was hidden or decoded
            part.set_param(param, clean, header=header)


def _collapse(value: tuple[str | None, str | None, str]) -> str:
    charset, _, text = value
    try:
        return text.encode("latin-1", "surrogateescape").decode(charset or "utf-8", "replace")
    except (LookupError, ValueError):  # unknown charset, or a name with a NUL byte (ValueError)
        return text


def read_text(part: Message) -> tuple[str, bool]:
    """The part's text and whether it decoded cleanly."""
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            # surrogates: undeclared 8-bit bytes, or a lone surrogate (UTF-7): read from the bytes below
            if isinstance(content, str) and not has_surrogates(content):
                return content, True
        except (LookupError, UnicodeError, ValueError, AttributeError, TypeError, KeyError, AssertionError):
            pass
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raw = str(part.get_payload()).encode("utf-8", "surrogateescape")
    charset = part.get_content_charset() or "utf-8"
    try:
        return writable(raw.decode(charset, "replace")), False
    except (LookupError, ValueError):  # unknown charset, or a name with a NUL byte (ValueError)
        return raw.decode("utf-8", "replace"), False


def _header_safe(*values: object) -> bool:
    """Whether the values may go into a rebuilt header.

    The stdlib refuses a header value that str.splitlines() would split: besides CR and LF, that is
    also controls such as \\x1c-\\x1e, \\x85 and U+2028, which an RFC 2231 parameter can decode to
    ("filename*=utf-8''cv%0B.pdf").
    """
    return all("".join(text.splitlines()) == text for text in (str(v) for v in values if v is not None))


def _rewrite_text(part: Message, decoded: tuple[str, bool], clean, force_subtype: str | None = None) -> None:  # type: ignore[no-untyped-def]
    text, clean_decode = decoded
    new = clean(text)
    if new == text and clean_decode and force_subtype is None:
        return  # nothing to hide: keep the part's exact bytes
    subtype = force_subtype or part.get_content_subtype()
    if not MIME_TYPE.fullmatch(f"text/{subtype}"):
        subtype = "plain"  # an invalid subtype ("text/ plain") means text/plain (RFC 2045)
    params = {} if force_subtype else {  # a forced subtype's old parameters described another type
        k: v for k, v in part.get_params(header="Content-Type", failobj=[])[1:]
        if k.lower() not in ("charset", "boundary", "name")
    }
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    cid = part.get("Content-ID")
    had_mime_version = "MIME-Version" in part
    if not isinstance(part, EmailMessage):
        raise Unprocessable("unexpected message object")
    if not _header_safe(filename, cid, *params, *params.values()):
        raise Unprocessable("a part's Content-Type parameter or file name holds control characters")
    if part.get_content_maintype() == "multipart":
        del part["Content-Type"]  # declared multipart without parts: set_content refuses a multipart
    part.set_content(
        new, subtype=subtype, charset="utf-8", disposition=disposition, filename=filename,
        cid=str(cid) if cid else None, params=params or None,
    )
    if not had_mime_version:
        del part["MIME-Version"]
