"""The leak tests' decoder of everything: every string a recipient (or their software) could read out of
a delivered message, and one check that no identity needle is among them.

It does not use the relay's own decoders, so that a blind spot there is not repeated here: the raw
bytes (as Latin-1 and UTF-8); every header, decoded; every part's payload in its charset and as UTF-8,
with quoted-printable soft breaks and iCalendar/vCard folding undone and their escapes and QP values
decoded (and their HTML entities, as Outlook shows X-ALT-DESC); HTML entities decoded, text with tags
removed (so a name split across tags shows), every attribute value, percent-decoded (three times) and
with base64 query values and path segments decoded;
file names (NFC and NFD); images' info, EXIF (every IFD) and XMP (Pillow, pillow-heif); PDF Info, XMP
and annotation authors (pikepdf), every object and every stream (raw and decoded), every string, name and
dictionary key (links read as above), the text pages and appearance streams draw (hex strings too),
bookmark titles and page labels; every member of a zip (OOXML, ODF), as text, and every XML part's text as
Office shows it (a paragraph's runs joined, in text boxes, charts, masters and glossaries alike; a sheet's
headers and footers without their codes). Files inside files are opened as a recipient's software would
open them, a few levels deep: pictures, documents and PDFs inside zips, image and embedded-file streams of
PDFs, the bytes of data: URIs in HTML, and base64 values (PHOTO) of vCard and iCalendar lines.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email
import html
import io
import quopri
import re
import unicodedata
import zipfile
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import parse_qsl, unquote, urlsplit

from relay.anonymize.fold import fold


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.strings: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.strings.extend(v for _, v in attrs if v)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.strings.append(data)


def _url_readings(value: str) -> list[str]:
    readings = [value]
    for _ in range(3):
        value = unquote(value)
        readings.append(value)
    try:
        parts = urlsplit(value)
        pieces = [v for _, v in parse_qsl(parts.query)] + parts.path.split("/")
    except ValueError:
        pieces = []
    for piece in pieces:
        readings.append(piece)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                readings.append(decode(piece + "=" * (-len(piece) % 4)).decode("utf-8", "replace"))
    return readings


def _cards(text: str) -> list[str]:
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    qp = re.sub(r"=\r?\n", "", unfolded)
    decoded = quopri.decodestring(qp.encode("utf-8", "replace")).decode("utf-8", "replace")
    unescaped = re.sub(r"\\([nN])", "\n", decoded).replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
    return [unfolded, decoded, unescaped, html.unescape(unescaped)]  # HTML values (X-ALT-DESC) as clients show them


def _image(data: bytes) -> list[str]:
    from PIL import Image

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover
        pass
    out: list[str] = []
    with Image.open(io.BytesIO(data)) as image:
        for key, value in image.info.items():
            out.append(f"{key}={value!r}")
            if isinstance(value, bytes):
                out.append(value.decode("utf-8", "replace"))
        exif = image.getexif()
        out.extend(str(v) for v in exif.values())
        for ifd in (0x8769, 0x8825, 0xA005):
            out.extend(str(v) for v in exif.get_ifd(ifd).values())
        if hasattr(image, "text"):
            out.extend(f"{k}={v}" for k, v in image.text.items())
    return out


def _pdf(data: bytes, depth: int = 0) -> list[str]:
    import pikepdf

    out: list[str] = [data.decode("latin-1")]
    with pikepdf.open(io.BytesIO(data)) as pdf:
        out.extend(str(v) for v in pdf.docinfo.values())
        if "/Metadata" in pdf.Root:
            out.append(pdf.Root.Metadata.read_bytes().decode("utf-8", "replace"))
        for page in pdf.pages:
            for annotation in page.obj.get("/Annots", []):
                out.extend(str(annotation.get(k, "")) for k in ("/T", "/Contents", "/V"))
        for page in pdf.pages:
            with contextlib.suppress(Exception):
                out.append(str(page.label))  # the page label a viewer shows ("Jane Doe-1")
            with contextlib.suppress(Exception):
                out.append(_drawn(page.obj))
        with contextlib.suppress(Exception), pdf.open_outline() as outline:
            items = list(outline.root)
            while items and len(out) < 100_000:
                item = items.pop()
                out.append(str(item.title))
                items.extend(item.children)
        for obj in pdf.objects:
            out.append(repr(obj))
            with contextlib.suppress(Exception):  # a reading that fails must not hide the others
                out.extend(_pdf_strings(obj))
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == pikepdf.Name.Form:  # an appearance
                with contextlib.suppress(Exception):
                    out.append(_drawn(obj))
            if isinstance(obj, pikepdf.Stream):
                streams = [obj.read_raw_bytes()]
                with contextlib.suppress(pikepdf.PdfError):
                    streams.append(obj.read_bytes(decode_level=pikepdf.StreamDecodeLevel.generalized))
                for stream in streams:
                    out.append(stream.decode("latin-1"))
                    out.extend(_blob(stream, depth + 1))
    return out


# Elements whose text Office shows as one line: a paragraph (w:p, a:p, text:p, text:h), a shared or inline
# string of a sheet (si, is), a chart title's rich text; their runs are joined as shown ("Ja" + "ne Doe").
_SHOWN_AS_ONE = frozenset({"p", "h", "si", "is", "rich", "span"})
# A sheet's header and footer codes (ECMA-376 18.3.1.39), removed as Excel does when it shows them.
_SHEET_HEADER = frozenset({"oddHeader", "evenHeader", "firstHeader", "oddFooter", "evenFooter", "firstFooter"})
_SHEET_HEADER_CODE = re.compile(r'&(?:&|"[^"]*"|K[0-9A-Fa-f]{6}|K\d\d[+-]\d+|\d+|[A-Za-z])')


def _xml_shown(member: bytes) -> list[str]:
    """The text of an XML part as a recipient's Office shows it: each paragraph's runs joined, a sheet's
    headers and footers without their codes (each section alone and all together), every element's text."""
    from lxml import etree

    try:
        root = etree.fromstring(member, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return []
    out: list[str] = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        local = etree.QName(element).localname
        if local in _SHOWN_AS_ONE:
            out.append("".join(element.itertext()))
        elif local in _SHEET_HEADER and element.text:
            out.append(_SHEET_HEADER_CODE.sub(lambda code: "&" if code.group() == "&&" else "", element.text))
            out.extend(re.split(r"&[LCR]", element.text))
    return out


def _drawn(drawing: object) -> str:
    """The strings a page or form XObject (an annotation's appearance) shows, as Latin-1 and UTF-16, each
    TJ array joined: what a viewer draws with a simple font, hex strings included."""
    import pikepdf

    shown: list[bytes] = []
    for operands, operator in pikepdf.parse_content_stream(drawing):  # type: ignore[arg-type]
        if str(operator) in ("Tj", "TJ", "'", '"'):
            pieces = operands[-1] if str(operator) == "TJ" else [operands[-1]]
            shown.append(b"".join(bytes(p) for p in pieces if isinstance(p, pikepdf.String)))
    joined = b"\n".join(shown)
    return joined.decode("latin-1") + "\n" + joined.decode("utf-16-be", "replace")


def _pdf_strings(top: object) -> list[str]:
    """Every string and name in an object and the direct objects inside it, decoded; links read as a browser
    would (percent- and base64-decoded)."""
    import pikepdf

    out: list[str] = []
    pending = [top]
    while pending and len(out) < 100_000:
        item = pending.pop()
        if isinstance(item, pikepdf.String):
            text = str(item)
            out.extend([text, bytes(item).decode("latin-1"), *_url_readings(text)])
        elif isinstance(item, pikepdf.Name):
            out.append(unquote(str(item)[1:].replace("#", "%")))
        elif isinstance(item, pikepdf.Array):
            pending.extend(v for v in item if not getattr(v, "is_indirect", False))
        elif isinstance(item, pikepdf.Dictionary | pikepdf.Stream):
            for key, value in item.items():
                out.append(unquote(key[1:].replace("#", "%")))
                if not getattr(value, "is_indirect", False):
                    pending.append(value)
    return out


def _zip(data: bytes, depth: int = 0) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        out = list(archive.namelist())
        for name in archive.namelist():
            member = archive.read(name)
            text = member.decode("utf-8", "replace")
            out.extend([text, html.unescape(text)])
            if name.lower().endswith((".xml", ".rels")):
                out.extend(_xml_shown(member))
            out.extend(_blob(member, depth + 1))
    return out


_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")


def _blob(data: bytes, depth: int = 0, content_type: str = "") -> list[str]:
    """The strings a program finds in a file by what it is (a PDF, a zip, a picture), a few files deep; a
    damaged or encrypted file gives nothing more (its raw bytes are searched by the caller)."""
    if depth > 4:
        return []
    try:
        if data[:4] == b"%PDF":
            return _pdf(data, depth)
        if data[:2] == b"PK":
            return _zip(data, depth)
        if data.startswith(_IMAGE_MAGIC) or data[8:12] == b"WEBP" or data[4:8] == b"ftyp" or \
                content_type.startswith("image/"):
            return _image(data)
    except Exception:  # a damaged or encrypted file
        pass
    return []


_DATA_URI = re.compile(r"(?is)^\s*data:[^,]*?;base64,(.*)$")
_CARD_BASE64 = re.compile(r"(?im)^[^:\r\n]*;(?:encoding=b|encoding=base64|value=binary)[^:\r\n]*:([A-Za-z0-9+/=]+)$")


def _embedded(value: str) -> list[str]:
    """The bytes of a data: URI, opened like a file."""
    match = _DATA_URI.match(value)
    if match is None:
        return []
    with contextlib.suppress(binascii.Error, ValueError):
        data = base64.b64decode("".join(unquote(match.group(1)).split()))
        return [data.decode("latin-1"), *_blob(data, 1)]
    return []


def _card_files(unfolded: str) -> list[str]:
    """Base64 values of vCard and iCalendar lines (PHOTO;ENCODING=b, ATTACH;VALUE=BINARY), opened like files."""
    out: list[str] = []
    for match in _CARD_BASE64.finditer(unfolded):
        with contextlib.suppress(binascii.Error, ValueError):
            data = base64.b64decode(match.group(1))
            out.extend([data.decode("latin-1"), *_blob(data, 1)])
    return out


def everything(raw: bytes) -> list[str]:
    """Every string that can be read out of the delivered message."""
    out = [raw.decode("latin-1"), raw.decode("utf-8", "replace")]
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    for part in message.walk():
        for name, value in part.raw_items():
            out.append(f"{name}: {value}")
        for name in part:
            with contextlib.suppress(Exception):  # a header the stdlib cannot parse is in the raw items above
                out.append(str(part[name]))
        out.extend(str(v) for _, v in part.get_params(failobj=[]) if v)
        filename = part.get_filename()
        if filename:
            out.extend([filename, unicodedata.normalize("NFC", filename), unquote(filename)])
        if part.is_multipart():
            out.extend([part.preamble or "", part.epilogue or ""])
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else str(part.get_payload()).encode("utf-8", "replace")
        charset = part.get_content_charset() or "utf-8"
        texts = [data.decode("utf-8", "replace"), data.decode("latin-1")]
        with contextlib.suppress(LookupError):
            texts.append(data.decode(charset, "replace"))
        out.extend(texts)
        ctype = part.get_content_type()
        for text in texts[:1] + texts[2:]:
            cards = _cards(text)
            out.extend(cards)
            out.extend(_card_files(cards[0]))
            if "<" in text:
                reader = _Html()
                reader.feed(text)
                out.append("".join(reader.text))
                for value in reader.strings:
                    out.extend(_url_readings(value))
                    out.extend(_embedded(value))
        out.extend(_blob(data, 0, ctype))
    return out


def folded_forms(text: str) -> list[str]:
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
    return [plain, fold(text).text]


def leaks(raw: bytes, needles: list[str]) -> list[str]:
    """The needles (folded: lower case, no accents) found as whole words anywhere in the message, each with
    some context."""
    patterns = [(n, re.compile(rf"(?<![^\W\d_]){re.escape(folded_forms(n)[1])}(?![^\W\d_])")) for n in needles]
    found: list[str] = []
    for text in everything(raw):
        for form in folded_forms(text):
            for needle, pattern in patterns:
                match = pattern.search(form)
                if match is not None:
                    found.append(f"{needle!r} in ...{form[max(0, match.start() - 60):match.end() + 60]!r}...")
    return sorted(set(found))
