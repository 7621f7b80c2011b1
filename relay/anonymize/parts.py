"""Walk a MIME tree and scrub it: text, HTML, calendar and vCard parts, attached messages, delivery reports,
attachment names and the attachments themselves.

Text parts are decoded whatever their transfer encoding and charset, a mis-declared charset repaired first
(UTF-8 bytes labelled KOI8-R or Latin-1 are read as UTF-8; bytes that are not UTF-8 although labelled so, or
that name no charset, are read in the charset readings.py chooses, and their other readings are kept on the
part for the rules: `other_readings`), scrubbed, and written back as UTF-8 only when something changed or the
charset was guessed, so untouched parts keep their exact bytes; a part whose Content-Type is invalid is read,
and written back, as text/plain (RFC 2045). Headers of sub-parts are cut down to Content-* (Content-Location
and Content-Base, which hold file paths, go too); attached messages (message/rfc822) get the same treatment as
the outer message minus the parts that only the outer message has (aliases, ids), their Date in UTC. A
delivery report keeps its fields but not the ones that name hosts. Other parts are attachments: cleaned of
metadata (attachments.py) when the scrubber cleans attachments, or, when they cannot be cleaned, replaced by a
short note and listed in `scrubber.refused` (the pipeline then holds the message). A signed or encrypted
container (multipart/signed, multipart/encrypted) becomes multipart/mixed, since its signature is gone.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import unquote

from relay.anonymize import attachments, readings
from relay.anonymize.headers import (
    header_text,
    one_line_headers,
    restore_headers,
    scrub_attached_headers,
    scrub_content_headers,
    scrub_field_values,
    scrub_header,
    undeclared_text,
)
from relay.anonymize.mailpolicy import POLICY
from relay.anonymize.scrub import Scrubber
from relay.anonymize.writable import ESCAPED_BYTE as _ESCAPED_BYTE
from relay.anonymize.writable import has_surrogates, writable

CALENDAR_TYPES = {"text/calendar", "application/ics", "text/x-vcalendar"}
VCARD_TYPES = {"text/vcard", "text/x-vcard", "text/directory", "application/vcard"}
HEADER_BLOCK_TYPES = {"text/rfc822-headers", "message/rfc822-headers"}
# Fields of a delivery report that name hosts (the sender's provider) and are dropped from a forwarded report.
REPORT_HOST_FIELDS = {"reporting-mta", "received-from-mta", "remote-mta", "dsn-gateway", "original-envelope-id",
                      "arrival-date", "x-postfix-sender", "x-postfix-queue-id", "x-actual-recipient"}
_HOST = re.compile(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b|\[?\b\d{1,3}(?:\.\d{1,3}){3}\b\]?"
                   r"|\[?(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]?")
REPORT_FIELDS = {"message/delivery-status", "message/global-delivery-status", "message/disposition-notification"}
MAX_DEPTH = 40  # deeper nesting is refused as unprocessable rather than walked
_TOKEN = r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+"
MIME_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")  # a valid type/subtype (RFC 2045)


class Unprocessable(Exception):
    """The message cannot be anonymised safely; it is refused with a clear SMTP reply."""


def scrub_tree(part: Message, scrubber: Scrubber, depth: int = 0, walk: Walk | None = None) -> None:
    walk = walk or Walk(part, scrubber)
    if depth > MAX_DEPTH:
        raise Unprocessable(f"MIME nesting deeper than {MAX_DEPTH} levels")
    if depth > 0:
        _keep_content_headers(part)
    one_line_headers(part)
    scrub_content_headers(part, scrubber)
    _scrub_names(part, scrubber, walk)
    maintype = part.get_content_maintype()
    children = sub_parts(part)
    if maintype == "multipart":
        if children is not None:
            part.preamble, part.epilogue = _scrub_raw(part.preamble, scrubber), _scrub_raw(part.epilogue, scrubber)
            for child in children:
                scrub_tree(child, scrubber, depth + 1, walk)
            if part.get_content_subtype() in ("signed", "encrypted") and getattr(scrubber, "cleans_attachments", False):
                for param in ("protocol", "micalg"):
                    part.del_param(param)
                part.set_type("multipart/mixed")
        else:  # declared multipart, but the parser found no parts (missing boundary)
            _rewrite_text(part, read_text(part), scrubber.text, force_subtype="plain")
        return
    if part.get_content_type() in REPORT_FIELDS and children is not None:
        for block in children:  # message/delivery-status: header-like fields; keep them, scrub their values
            _drop_host_fields(block)
            scrub_field_values(block, scrubber)
        return
    if maintype == "message" and children is not None:
        children = _decoded_enclosed(part, children)
        for inner in children:  # message/rfc822 and friends: one enclosed message
            kept = scrub_attached_headers(inner, scrubber, walk.hints)
            scrub_tree(inner, scrubber, depth + 1, walk)  # cuts its header down to Content-*, so ...
            restore_headers(inner, kept)  # ... who/when/what are put back afterwards
        return
    ctype = part.get_content_type()
    if ctype in HEADER_BLOCK_TYPES:
        _rewrite_text(part, (_header_block(read_text(part)[0], scrubber), False), lambda text: text)
    elif ctype in CALENDAR_TYPES or ctype in VCARD_TYPES or _card_file(part):
        clean = scrubber.vcard if ctype in VCARD_TYPES or _card_file(part) == "vcf" else scrubber.calendar
        _rewrite_text(part, read_text(part), clean, force_subtype=None if maintype == "text" else
                      ("vcard" if clean == scrubber.vcard else "calendar"))
    elif maintype in ("text", "message"):  # text, or a message/* part the parser could not read
        clean = scrubber.html if part.get_content_subtype() == "html" else scrubber.text
        _rewrite_text(part, walk.read(part, clean), clean)
    elif _reads_as_text(part):  # an invalid Content-Type: mail clients show the part as text
        _rewrite_text(part, walk.read(part, scrubber.text), scrubber.text, force_subtype="plain")
    elif (text := _text_file(part)) is not None:  # a .txt sent as octet-stream: clients show it as text too
        _rewrite_text(part, (text, True), scrubber.text, force_subtype="plain")
    elif getattr(scrubber, "cleans_attachments", False):
        _clean_attachment(part, scrubber)


class Walk:
    """What the walk of one message shares: the message (its charsets and languages hint at the charset
    of a part that names none) and what reading such parts may still cost."""

    def __init__(self, root: Message, scrubber: Scrubber) -> None:
        self.root, self.scrubber = root, scrubber
        self._hints: readings.Hints | None = None

    def hints(self) -> readings.Hints:
        if self._hints is None:  # only for a part whose charset is unknown: ordinary mail never gets here
            languages = [getattr(person, "language", None) for person in getattr(self.scrubber, "identities", ())]
            self._hints = readings.hints_for(self.root, languages)
        return self._hints

    def read(self, part: Message, clean: Callable[[str], str]) -> tuple[str, bool]:
        """read_text, a part whose charset is unknown read as `readings.choose` reads it (a reading holding a
        member's real name first), with its other readings, scrubbed by `clean`, kept for the rules."""
        found_in = getattr(self.scrubber, "found_in", None)
        text, clean_decode = read_text(part, self, found_in)
        if not clean_decode:
            others = readings.others(_raw_text_bytes(part), text, self.hints())
            setattr(part, READINGS, tuple(clean(other) for other in others))
        return text, clean_decode


READINGS = "relay_other_readings"  # attribute of a part read in a guessed charset: its other readings


def other_readings(part: Message, text: str, clean_decode: bool) -> tuple[str, ...]:
    """The other readings of a part whose charset was unknown (see readings.py), as the anonymiser kept them
    (scrubbed) before writing the part back as UTF-8; for a part not anonymised (`text`, `clean_decode`:
    what read_text gave), read from its bytes now."""
    kept = getattr(part, READINGS, None)
    if kept is not None:
        return tuple(kept)
    return () if clean_decode else tuple(readings.others(_raw_text_bytes(part), text, readings.Hints()))


_ENCODINGS = {"base64", "quoted-printable"}


def _decoded_enclosed(part: Message, children: list[Message]) -> list[Message]:
    """The enclosed message of a message/* part, decoded when it was sent base64 or quoted-printable.

    RFC 2046 allows only 7bit, 8bit and binary there, but some clients encode a forwarded message all the
    same, and clients decode it. The parser does not: it reads the encoded text as a message without a
    header, so the real From and body would pass untouched. The encoded text is written back out as the
    parser read it, decoded the way the stdlib decodes any part's payload (get_payload(decode=True)), and
    parsed again, so that the enclosed message is scrubbed, and moderated, like any attached message."""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding not in _ENCODINGS:
        return children
    carrier = Message()
    carrier["Content-Transfer-Encoding"] = encoding
    try:
        carrier.set_payload("".join(child.as_string(policy=POLICY.clone(max_line_length=0)) for child in children))
        decoded = carrier.get_payload(decode=True)
        inner = BytesParser(policy=POLICY).parsebytes(decoded) if isinstance(decoded, bytes) else None
        eight_bit = isinstance(decoded, bytes) and not decoded.isascii()
    except (RecursionError, ValueError, IndexError, TypeError, AttributeError, LookupError):
        inner = None
    if inner is None:
        raise Unprocessable("an attached message sent base64 or quoted-printable could not be read")
    del part["Content-Transfer-Encoding"]
    if eight_bit:
        part["Content-Transfer-Encoding"] = "8bit"
    part.set_payload([inner])
    return [inner]


def _card_file(part: Message) -> str | None:
    """An .ics or .vcf file sent as application/octet-stream is calendar or vCard text all the same."""
    filename = part.get_filename() or ""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if part.get_content_type() in ("application/octet-stream", "text/plain") and extension in ("ics", "vcf"):
        return extension
    return None


_TEXT_FILES = ("txt", "text", "md", "csv", "log")


def _text_file(part: Message) -> str | None:
    """A text file sent as application/octet-stream (some phones' and schools' clients), as its text: UTF-8
    without NULs, named .txt, .md, .csv or .log; None for any other part. It is cleaned, read by the rules
    and delivered as the text it is."""
    filename = part.get_filename() or ""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if part.get_content_type() != "application/octet-stream" or extension not in _TEXT_FILES:
        return None
    payload = decoded_payload(part) or b""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def decoded_payload(part: Message) -> bytes | None:
    """part.get_payload(decode=True), with a base64 body decoded in one step.

    The email package decodes base64 by encoding the body's text to bytes twice (a check for surrogates, then
    the bytes), splitting those into lines and joining them again before decoding: for a 20 MB attachment
    about 90 MB more at once in the worker. binascii.a2b_base64 reads the ASCII text as it is and skips the
    line breaks. Where it succeeds it gives what the email package gives (tests/test_payload_decoding.py);
    where it does not (8-bit bytes in the body, missing padding), the email package decodes, with its repairs."""
    if str(part.get("content-transfer-encoding", "")).lower() == "base64" and not part.is_multipart():
        body = part.get_payload()
        if isinstance(body, str):
            try:
                return binascii.a2b_base64(body)
            except (ValueError, binascii.Error):
                pass
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def _clean_attachment(part: Message, scrubber: Scrubber) -> None:
    payload = decoded_payload(part)
    data = payload if isinstance(payload, bytes) else b""
    filename = part.get_filename()
    result = attachments.clean(data, part.get_content_type(), filename, scrubber.text)
    if isinstance(result, attachments.Cleaned):
        if result.data != data:
            del part["Content-Transfer-Encoding"]
            part.set_payload(base64.encodebytes(result.data).decode("ascii"))
            part["Content-Transfer-Encoding"] = "base64"
        return
    label = filename or part.get_content_type()
    scrubber.refused.append((label, result.reason))
    if not isinstance(part, EmailMessage):
        raise Unprocessable("unexpected message object")
    for name in list(part.keys()):
        del part[name]
    part.set_content(f"[An attachment ({label}) was removed by the program: {result.reason}.]\n",
                     subtype="plain", charset="utf-8")
    if "MIME-Version" in part:
        del part["MIME-Version"]


def _header_block(text: str, scrubber: Scrubber) -> str:
    """A returned message's header (text/rfc822-headers): only who, when and what, scrubbed."""
    block = HeaderParser().parsestr(text)
    lines = []
    for name in ("From", "To", "Cc", "Date", "Subject"):
        value = block.get(name)
        if value is None:
            continue
        value = utc_text(str(value)) if name == "Date" else scrub_header(scrubber, str(value))
        lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"


def utc_text(value: str) -> str:
    """A date header's value in UTC (an offset hints at where someone lives); unparseable: dropped."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return ""
    if when.tzinfo is None:
        return format_datetime(when.replace(tzinfo=UTC))
    return format_datetime(when.astimezone(UTC))


def _drop_host_fields(block: Message) -> None:
    """A delivery-status block without the fields that name hosts; Diagnostic-Code keeps its words but
    loses host names and IP addresses."""
    for name in set(block.keys()):
        lower = name.lower()
        if lower in REPORT_HOST_FIELDS or lower.startswith("x-"):
            del block[name]
    diagnostic = block.get("Diagnostic-Code")
    if diagnostic is not None:
        del block["Diagnostic-Code"]
        block["Diagnostic-Code"] = " ".join(_HOST.sub("[host]", str(diagnostic)).split())



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
    original = text
    text = _LONE_SURROGATE.sub("\ufffd", text)  # UTF-7 and the like: nothing can encode them
    if _ESCAPED_BYTE.search(text):  # undeclared 8-bit bytes: almost always UTF-8
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    clean = scrubber.text(text)
    if clean == text and not _LONE_SURROGATE.search(original):
        return original
    return clean.encode("utf-8", "surrogateescape").decode("ascii", "surrogateescape")


def sub_parts(part: Message) -> list[Message] | None:
    """A multipart's (or an enclosing message/* part's) parts; None for a leaf, or for a multipart the
    parser found no parts in. Only asks for the payload of parts that have sub-parts: on a leaf,
    get_payload() would decode it with its declared charset (a NUL in that: ValueError)."""
    if not part.is_multipart():
        return None
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else None


_DROPPED_CONTENT = {"content-location", "content-base"}


def _keep_content_headers(part: Message) -> None:
    for name in set(part.keys()):
        if not name.lower().startswith("content-") or name.lower() in _DROPPED_CONTENT:
            del part[name]


def _scrub_names(part: Message, scrubber: Scrubber, walk: Walk) -> None:
    """Attachment file names and descriptions may carry a real name ("Jane Doe CV.pdf"), in raw 8-bit bytes too
    (read as headers.undeclared_text reads them, and written back encoded: RFC 2047 and 2231, UTF-8)."""
    description = header_text(part, "Content-Description", scrubber.found_in, walk.hints)
    if description is not None:
        del part["Content-Description"]
        part["Content-Description"] = scrub_header(scrubber, description)
    for header in ("Content-Disposition", "Content-Type"):
        if header in part:
            _scrub_params(part, header, scrubber, walk)


_KEPT_PARAMS = {"boundary", "charset"}  # the structure and the decoding: never rewritten


def _scrub_params(part: Message, header: str, scrubber: Scrubber, walk: Walk) -> None:
    """Scrub every parameter of a Content-Type or Content-Disposition header, read as a mail client reads it.

    A parameter may be written twice ('filename="cv.txt"; filename*=utf-8''Jos%C3%A9...', and clients show
    the RFC 2231 one), percent-encoded (RFC 2231, "%27" for an apostrophe), or cut into continuations
    (filename*0*=, filename*1*=). The parsed header of policy.default keeps only the first of two, so the
    raw value is read with the compat32 parser, which keeps them all and decodes each (email.utils.
    decode_params). A value in raw 8-bit bytes (old Outlook, Outlook Express, phones: filename="Jos\\xe9.txt"),
    or in RFC 2231 with a charset that cannot read it, is read as headers.undeclared_text reads it (a reading
    holding a member's name first). When a value held a name, was in undeclared 8-bit bytes, or a parameter
    was written twice, each such parameter is set once, scrubbed, in RFC 2231 UTF-8 when it is not ASCII: the
    RFC 2231 value when there is one, so that what we checked is what clients show.
    """
    values: dict[str, list[tuple[str, bool]]] = {}  # name -> [(decoded value, written in RFC 2231)]
    undeclared: set[str] = set()  # names of parameters with bytes in no declared charset: always rewritten
    for name, value in _raw_params(part, header):
        if name.lower() not in _KEPT_PARAMS:
            text = _escaped(value) if isinstance(value, str) else _collapse(value)
            if _ESCAPED_BYTE.search(text):
                undeclared.add(name.lower())
                text = undeclared_text(text, scrubber.found_in, walk.hints)
            values.setdefault(name.lower(), []).append((text, not isinstance(value, str)))
    for name, written in values.items():
        cleaned = [(_scrub_param(text, scrubber), encoded) for text, encoded in written]
        if len(written) == 1 and name not in undeclared and cleaned[0][0] == " ".join(written[0][0].split()):
            continue  # nothing hidden, decoded or normalised (NFD file names): the header keeps its bytes
        chosen = next((clean for clean, encoded in reversed(cleaned) if encoded), cleaned[0][0])
        try:
            part.del_param(name, header=header)
            part.set_param(name, chosen, header=header)
        except (ValueError, IndexError, TypeError):
            continue


def _raw_params(part: Message, header: str) -> list[tuple[str, str | tuple[str | None, str | None, str]]]:
    """Every parameter of the header as written, duplicates included, continuations joined; a raw 8-bit byte
    is a character U+0080-U+00FF (`_escaped` turns it back into the parser's escape)."""
    raw = next((value for name, value in part.raw_items() if name.lower() == header.lower()), None)
    if raw is None:
        return []
    holder = Message()  # compat32: get_params keeps repeated parameters (policy.default keeps the first)
    # compat32 reads an escaped byte as U+FFFD: given as a Latin-1 character, the byte is kept
    holder.set_raw(header, raw.encode("ascii", "surrogateescape").decode("latin-1") if has_surrogates(raw) else raw)
    try:
        return list(holder.get_params(header=header, failobj=[])[1:])
    except (ValueError, IndexError, TypeError, LookupError):
        return []


def _scrub_param(text: str, scrubber: Scrubber) -> str:
    """A parameter value scrubbed; one percent-encoded outside RFC 2231 ("O%27Brien.pdf") is read decoded."""
    text = unicodedata.normalize("NFC", text)
    if "%" in text:
        decoded = unicodedata.normalize("NFC", unquote(text, errors="replace"))
        if decoded != text and scrubber.found_in(decoded):
            text = decoded
    return scrub_header(scrubber, text)


def _escaped(text: str) -> str:
    """A value of _raw_params with its raw 8-bit bytes (U+0080-U+00FF there) escaped as the parser escapes them."""
    return text if text.isascii() else text.encode("latin-1", "replace").decode("ascii", "surrogateescape")


def _collapse(value: tuple[str | None, str | None, str]) -> str:
    """An RFC 2231 value in its charset; bytes that charset cannot read (unknown-8bit, a wrong label) are
    escaped as the parser escapes undeclared bytes, for undeclared_text to read."""
    charset, _, text = value
    try:
        data = text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return text
    try:
        return data.decode(charset or "utf-8")
    except (LookupError, ValueError):  # unknown charset, bytes not in it, or a name with a NUL byte (ValueError)
        return data.decode("ascii", "surrogateescape")


def read_text(part: Message, walk: Walk | None = None,
              prefer: Callable[[str], bool] | None = None) -> tuple[str, bool]:
    """The part's text and whether it decoded cleanly in its declared charset (a repaired charset, or a
    lenient decode, is not clean: the part is written back as UTF-8 if the scrub changes it).

    Bytes that are not valid in the declared charset, or that declare none and are not UTF-8, are read
    as readings.choose reads them, with what the message says about itself (`walk`) and a reading that
    `prefer` likes (one holding a member's real name) first."""
    if isinstance(part, EmailMessage) and part.get_content_charset() in (None, "utf-8", "us-ascii"):
        try:
            content = part.get_content()
            # surrogates: undeclared 8-bit bytes, or a lone surrogate (UTF-7): read from the bytes below
            if isinstance(content, str) and not has_surrogates(content) and "\ufffd" not in content:
                return content, True
        except (LookupError, UnicodeError, ValueError, AttributeError, TypeError, KeyError, AssertionError):
            pass
    return decode_text(_raw_text_bytes(part), part.get_content_charset() or "utf-8", walk, prefer)


def _raw_text_bytes(part: Message) -> bytes:
    raw = decoded_payload(part)
    return raw if raw is not None else str(part.get_payload()).encode("utf-8", "surrogateescape")


def _mostly_utf8(raw: bytes) -> str | None:
    """UTF-8 with a stray invalid byte or two (a truncated line, a pasted signature): read as UTF-8, each bad
    byte a replacement character, when its valid multi-byte characters are at least as many as its bad
    bytes; a legacy text read as UTF-8 has almost none (a lead byte followed by continuation bytes), and
    every one of its letters is a bad byte. Read in a legacy charset instead,
    every accent of such a text would change ("José" as "JosĂ©"), and a real name in it would be missed."""
    text = raw.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(1 for char in text if char > "\x7f") - bad
    return text if good and good >= bad else None


def decode_text(raw: bytes, charset: str, walk: Walk | None = None,
                prefer: Callable[[str], bool] | None = None) -> tuple[str, bool]:
    """Bytes in their declared charset, repaired when the declaration is wrong (see the module docstring)."""
    utf8 = charset.lower().replace("_", "-") in ("utf-8", "utf8", "us-ascii", "ascii")
    try:
        text = writable(raw.decode(charset))
    except (LookupError, ValueError):  # unknown charset, bytes not in it, or a name with a NUL byte
        text = None
    if text is not None and (utf8 or raw.isascii()):
        return text, True
    if not raw.isascii():
        try:
            return writable(raw.decode("utf-8")), True  # UTF-8 under a legacy label: kept as it is unless scrubbed
        except UnicodeDecodeError:
            pass
    if text is not None:
        return text, True
    mostly = _mostly_utf8(raw)
    if mostly is not None:
        return writable(mostly), False
    chosen = readings.choose(raw, walk.hints() if walk is not None else readings.Hints(), prefer)
    if chosen is not None:
        return writable(chosen), False
    return raw.decode("cp1252", "replace"), False


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


_LONE_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")  # not an escaped byte: UTF-7 and the like
