"""Walk a MIME tree and scrub it: text parts, attached messages, calendar parts, attachment names.

Text parts are decoded whatever their transfer encoding and charset (falling back to a lenient
decode when the declared charset is unknown or the encoding is broken), scrubbed, and written back
as UTF-8 only when something changed, so untouched parts keep their exact bytes. Headers of sub-parts
are cut down to Content-*; attached messages (message/rfc822) get the same treatment as the outer
message minus the parts that only the outer message has (aliases, ids).
"""

from __future__ import annotations

from email.message import EmailMessage, Message

from relay.anonymize.headers import header_text, scrub_attached_headers
from relay.anonymize.scrub import Scrubber

MAX_DEPTH = 40  # deeper nesting is refused as unprocessable rather than walked


class Unprocessable(Exception):
    """The message cannot be anonymised safely; it is refused with a clear SMTP reply."""


def scrub_tree(part: Message, scrubber: Scrubber, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise Unprocessable(f"MIME nesting deeper than {MAX_DEPTH} levels")
    if depth > 0:
        _keep_content_headers(part)
    _scrub_names(part, scrubber)
    maintype = part.get_content_maintype()
    payload = part.get_payload()
    if maintype == "multipart":
        if isinstance(payload, list):
            for child in payload:
                scrub_tree(child, scrubber, depth + 1)
        else:  # declared multipart, but the parser found no parts (missing boundary)
            _rewrite_text(part, _read_text(part), scrubber.text, force_subtype="plain")
        return
    if maintype == "message" and isinstance(payload, list):
        for inner in payload:  # message/rfc822 and friends: one enclosed message
            scrub_attached_headers(inner, scrubber)
            scrub_tree(inner, scrubber, depth + 1)
        return
    if maintype == "text" or (maintype == "message" and isinstance(payload, str)):
        subtype = part.get_content_subtype()
        clean = scrubber.html if subtype == "html" else scrubber.calendar if subtype == "calendar" else scrubber.text
        _rewrite_text(part, _read_text(part), clean)


def _keep_content_headers(part: Message) -> None:
    for name in set(part.keys()):
        if not name.lower().startswith("content-"):
            del part[name]


def _scrub_names(part: Message, scrubber: Scrubber) -> None:
    """Attachment file names and descriptions may carry a real name ("Jane Doe CV.pdf")."""
    description = header_text(part, "Content-Description")
    if description is not None:
        del part["Content-Description"]
        part["Content-Description"] = scrubber.text(description)
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
        clean = scrubber.text(name)
        if clean != name:
            part.set_param(param, clean, header=header)


def _collapse(value: tuple[str | None, str | None, str]) -> str:
    charset, _, text = value
    try:
        return text.encode("latin-1", "surrogateescape").decode(charset or "utf-8", "replace")
    except (LookupError, UnicodeError):
        return text


def _read_text(part: Message) -> tuple[str, bool]:
    """The part's text and whether it decoded cleanly."""
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str) and not _has_surrogates(content):
                return content, True
        except (LookupError, UnicodeError, ValueError, AttributeError, TypeError, KeyError, AssertionError):
            pass
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raw = str(part.get_payload()).encode("utf-8", "surrogateescape")
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace"), False
    except LookupError:
        return raw.decode("utf-8", "replace"), False


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _rewrite_text(part: Message, decoded: tuple[str, bool], clean, force_subtype: str | None = None) -> None:  # type: ignore[no-untyped-def]
    text, clean_decode = decoded
    new = clean(text)
    if new == text and clean_decode and force_subtype is None:
        return  # nothing to hide: keep the part's exact bytes
    subtype = force_subtype or part.get_content_subtype()
    params = {k: v for k, v in part.get_params(header="Content-Type", failobj=[])[1:] if k.lower() not in ("charset", "boundary", "name")}
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    cid = part.get("Content-ID")
    had_mime_version = "MIME-Version" in part
    if not isinstance(part, EmailMessage):
        raise Unprocessable("unexpected message object")
    part.set_content(
        new, subtype=subtype, charset="utf-8", disposition=disposition, filename=filename,
        cid=str(cid) if cid else None, params=params or None,
    )
    if not had_mime_version:
        del part["MIME-Version"]
