"""Attachments cleaned of the metadata that names or locates their author, or refused with the reason.

Pure: bytes, type and name in; the cleaned bytes, or the reason they cannot be cleaned, out.

  JPEG, PNG, GIF, WebP, TIFF, BMP   Pillow: decoded and written again with no EXIF (author, copyright, GPS,
                                    camera serial), XMP, IPTC, comments or text chunks; a photo's EXIF
                                    orientation is applied to the pixels first; JPEG keeps its quantisation
                                    ("quality=keep"); animations keep every frame.
  HEIC / HEIF                        pillow-heif (libheif), the same way, written as HEIC without EXIF/XMP.
  PDF                                pikepdf (qpdf): the Info dictionary, every XMP metadata stream (of the
                                    document, its pages, images, fonts, ...), piece info and annotation
                                    authors (/T) go; annotation text and filled-in form values are scrubbed
                                    (a changed field's appearance is drawn again, a changed annotation's
                                    dropped); bookmarks, page labels, link targets and other actions, named
                                    destinations are scrubbed (_scrub_structure); a JPEG image keeps its
                                    pixels bytes for bytes but loses its EXIF, XMP, IPTC and comment
                                    segments (strip_jpeg_metadata). A PDF with embedded or attached files is
                                    refused. Page content cannot be rewritten reliably: the text on the pages
                                    is read (document_text.py, pypdf) and a PDF whose pages the scrub would
                                    change (a member's real name or address) is refused, as is one too big
                                    for its pages to be read.
  DOCX, XLSX, PPTX (OOXML), ODT,     the zip is rewritten (stdlib zipfile, XML through lxml with entities and
  ODS, ODP (ODF)                     network off): docProps/core.xml and app.xml lose creator,
                                     lastModifiedBy, company and manager; custom properties are emptied;
                                     comment, revision and person authors (w:author, w:initials, people.xml,
                                     xlsx comment authors and persons, pptx comment authors) become "Author";
                                     ODF meta.xml loses creator and initial-creator; the text of every XML
                                     part is passed through the scrub (a name in a heading is replaced; a
                                     sheet's header and footer piece by piece between their codes). Each XML
                                     part is read within MAX_PART_BYTES and parsed within MAX_PART_ELEMENTS.
                                     Pictures inside (word/media, ppt/media, xl/media, ODF Pictures) are
                                     cleaned like image attachments; the thumbnail (a rendering of the first
                                     page) is dropped with its references; embedded Office documents and
                                     PDFs are cleaned the same way, MAX_NESTING deep; an embedded OLE object
                                     or any other embedded file cannot be cleaned and refuses the document.
                                     A document whose text is more than the rules read (document_text.py) is
                                     refused rather than delivered partly unread.
Everything else that is not text (an unknown binary, an encrypted PDF or Office file, a damaged file,
S/MIME and PGP parts, audio and video, legacy .doc/.xls, an Office document holding an OpenPGP or S/MIME
armoured block, armour.py) cannot be cleaned: the caller holds the message
for a moderator and never delivers the file as it came.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_UNZIPPED = 200 * 1024 * 1024  # an Office file that unpacks to more is refused (zip bomb)
MAX_ENTRIES = 5000
MAX_PDF_IMAGE = 64 * 1024 * 1024  # a JPEG in a PDF, packed in a further filter, that unpacks to more is refused
MAX_NESTING = 3  # an Office document embedded this many levels deep (or deeper) is refused
# One XML part of an Office document: its bytes and its elements, each bounded as it is read and parsed, so that
# a small zip cannot take a worker's memory (the parsed tree costs some 300 bytes an element). A 300-page DOCX's
# document.xml has some 5 MB and 150,000 elements; a sheet of 20,000 rows of 10 cells some 8 MB and 400,000.
MAX_PART_BYTES = 16 * 1024 * 1024
MAX_PART_ELEMENTS = 500_000
NEUTRAL_AUTHOR = "Author"

_IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/pjpeg": "JPEG", "image/png": "PNG",
                  "image/gif": "GIF", "image/webp": "WEBP", "image/tiff": "TIFF", "image/bmp": "BMP",
                  "image/heic": "HEIF", "image/heif": "HEIF"}
_EXTENSIONS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
               "webp": "image/webp", "tif": "image/tiff", "tiff": "image/tiff", "bmp": "image/bmp",
               "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf",
               "docx": "ooxml", "xlsx": "ooxml", "pptx": "ooxml", "dotx": "ooxml", "xltx": "ooxml", "potx": "ooxml",
               "odt": "odf", "ods": "odf", "odp": "odf", "odg": "odf"}
_OOXML_PREFIX = "application/vnd.openxmlformats-officedocument."
_ODF_PREFIX = "application/vnd.oasis.opendocument."
SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pkcs7-mime",
                             "application/x-pkcs7-mime", "application/pgp-signature", "application/pgp-encrypted",
                             "application/pgp-keys"})
# OOXML and ODF: elements whose text names a person, and attributes that do.
_AUTHOR_ELEMENTS = frozenset({"creator", "lastModifiedBy", "Company", "Manager", "initial-creator", "printed-by",
                              "author", "HyperlinkBase"})
_AUTHOR_ATTRIBUTES = frozenset({"author", "initials", "userId", "displayName", "providerId", "name"})
_AUTHOR_ATTRIBUTE_ELEMENTS = frozenset({"comment", "ins", "del", "rPrChange", "pPrChange", "sectPrChange",
                                        "tblPrChange", "trPrChange", "tcPrChange", "numberingChange", "person",
                                        "presenceInfo", "cmAuthor", "author", "threadedComment", "moveFrom",
                                        "moveTo", "cellIns", "cellDel", "cellMerge", "customXmlInsRangeStart",
                                        "customXmlDelRangeStart", "commentAuthor"})


# Members of an Office zip, by extension: pictures cleaned like image attachments, documents cleaned in turn.
_PICTURE_EXTENSIONS = {"jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "png": "PNG", "gif": "GIF", "tif": "TIFF",
                       "tiff": "TIFF", "bmp": "BMP", "webp": "WEBP"}
_PICTURE_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"II*\x00", "TIFF"),
                  (b"MM\x00*", "TIFF"))
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc/.xls, OLE objects, packaged files
_THUMBNAIL_PREFIXES = ("docprops/thumbnail.", "thumbnails/")  # OOXML and ODF renderings of the first page


@dataclass(frozen=True)
class Cleaned:
    data: bytes


@dataclass(frozen=True)
class Refused:
    reason: str  # for the moderator: why the file could not be cleaned


def kind_of(content_type: str, filename: str | None) -> str:
    """What cleaner a part needs: an image format name, "pdf", "ooxml", "odf", "signature" or "unknown"."""
    content_type = content_type.lower()
    extension = (filename or "").rpartition(".")[2].lower() if filename and "." in filename else ""
    if content_type in SIGNATURE_TYPES or extension in ("p7s", "p7m", "asc", "gpg", "pgp", "sig"):
        return "signature"
    if content_type in ("application/octet-stream", "binary/octet-stream", "application/x-download", ""):
        content_type = _EXTENSIONS.get(extension, content_type)
    if content_type in _IMAGE_FORMATS:
        return _IMAGE_FORMATS[content_type]
    if content_type in ("application/pdf", "application/x-pdf"):
        return "pdf"
    if content_type.startswith(_OOXML_PREFIX) or content_type == "ooxml":
        return "ooxml"
    if content_type.startswith(_ODF_PREFIX) or content_type == "odf":
        return "odf"
    return "unknown"


def clean(data: bytes, content_type: str, filename: str | None, scrub: Callable[[str], str]) -> Cleaned | Refused:
    kind = kind_of(content_type, filename)
    try:
        if kind == "signature":
            return Refused("a signature or encryption part (S/MIME or PGP) names its owner and cannot be cleaned")
        if kind in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF"):
            return Cleaned(_image(data, kind))
        if kind == "pdf":
            return _pdf(data, scrub)
        if kind in ("ooxml", "odf"):
            return _text_read(_office(data, scrub, _Budget(MAX_UNZIPPED, MAX_ENTRIES), 0), kind)
    except _Unreadable as exc:
        return Refused(str(exc))
    except Exception as exc:  # a damaged file: any library may raise anything on it
        return Refused(f"the file could not be read to clean it ({type(exc).__name__})")
    return Refused(f"files of type {content_type or 'unknown'} cannot be cleaned of personal data")


class _Unreadable(Exception):
    pass


def _image(data: bytes, kind: str) -> bytes:
    from PIL import Image, ImageOps

    if kind == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        fmt = image.format or kind
        frames = getattr(image, "n_frames", 1)
        out = io.BytesIO()
        if fmt in ("GIF", "WEBP") and frames > 1:
            extra: dict[str, object] = {"save_all": True, "loop": image.info.get("loop", 0)}
            if "duration" in image.info:
                extra["duration"] = image.info["duration"]
            # Pillow carries the first frame's info (a GIF comment, a WebP's EXIF and XMP) into the copy
            # unless told otherwise
            extra.update({"comment": b""} if fmt == "GIF" else {"exif": b"", "xmp": b""})
            image.save(out, format=fmt, **extra)
            return out.getvalue()
        image.load()
        oriented = ImageOps.exif_transpose(image) or image
        options: dict[str, object] = {}
        if fmt == "JPEG":
            options["quality"] = "keep" if oriented is image else 95
            if image.info.get("icc_profile"):
                options["icc_profile"] = image.info["icc_profile"]
        elif fmt == "WEBP":
            options["lossless"] = image.info.get("lossless", False)
        elif fmt == "HEIF":
            options["quality"] = 90
        clean_image = oriented.copy()
        clean_image.info = {}
        clean_image.save(out, format=fmt, exif=b"", **options) if fmt in ("JPEG", "WEBP", "PNG") else \
            clean_image.save(out, format=fmt, **options)
        return out.getvalue()


def _pdf(data: bytes, scrub: Callable[[str], str]) -> Cleaned | Refused:
    import pikepdf

    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        return Refused("an encrypted PDF cannot be read to clean it")
    with pdf:
        if pdf.is_encrypted:
            return Refused("an encrypted PDF cannot be cleaned")
        if "/Info" in pdf.trailer:
            del pdf.trailer["/Info"]
        if ("/Names" in pdf.Root and "/EmbeddedFiles" in pdf.Root.Names) or _has_embedded_files(pdf):
            return Refused("a PDF with embedded files cannot be cleaned")
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                for key in ("/Metadata", "/PieceInfo"):
                    if key in obj:
                        del obj[key]
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == pikepdf.Name.Image:
                _clean_jpeg_stream(obj)
        for page in pdf.pages:
            for annotation in page.obj.get("/Annots", []):
                if annotation.get("/Subtype") != pikepdf.Name.Widget:  # a widget's /T names its form field
                    for key in ("/T", "/RC"):
                        if key in annotation:
                            del annotation[key]
                    # the appearance draws the text as it came: without it a viewer draws the scrubbed
                    # /Contents (or nothing); an appearance that shows a name by itself is read by the page check
                    if _scrub_strings(annotation, ("/Contents",), scrub) and "/AP" in annotation:
                        del annotation["/AP"]
                _scrub_strings(annotation, ("/Contents", "/T", "/TU"), scrub)
        _scrub_form(pdf, scrub)
        _scrub_structure(pdf, scrub)
        out = io.BytesIO()
        pdf.save(out, fix_metadata_version=False, deterministic_id=True)
    return _pages_checked(out.getvalue(), scrub)


def _pages_checked(data: bytes, scrub: Callable[[str], str]) -> Cleaned | Refused:
    """The cleaned PDF, unless its pages show what the scrub replaces (a member's real name or address):
    the text drawn on a page cannot be rewritten reliably (a name may be drawn letter by letter, in a font
    whose glyphs are not letters, under other text), so such a file is refused rather than delivered."""
    from relay.anonymize import document_text

    try:
        text = document_text.text_of(data, "pdf")
    except document_text.TooLarge as exc:
        return Refused(f"the PDF is too big for its pages to be checked for real names ({exc})")
    except Exception as exc:  # a damaged file: any library may raise anything on it
        return Refused(f"the pages of the PDF could not be read to check them for real names ({type(exc).__name__})")
    if changed_by(scrub, text):
        return Refused("the pages of this PDF show a real name or address, which cannot be removed from a PDF")
    return Cleaned(data)


def changed_by(scrub: Callable[[str], str], text: str) -> bool:
    """Whether the scrub replaces anything in `text`: a real name or address. The scrub also decodes RFC 2047
    words ("=?utf-8?q?...?="), which a document shows as they are written: their "=?" is broken first (by a
    word joiner, which name matching ignores), so that decoding one is no change."""
    guarded = text.replace("=?", "=\u2060?")
    return scrub(guarded) != guarded


def _text_read(result: Cleaned | Refused, kind: str) -> Cleaned | Refused:
    """A cleaned Office document whose text is more than the rules read (document_text.MAX_CHARACTERS) is
    refused rather than delivered partly unread. The text is remembered for the inspection that follows."""
    from relay.anonymize import armour, document_text

    if isinstance(result, Cleaned):
        try:
            text = document_text.text_of(result.data, kind)
        except document_text.TooLarge as exc:
            return Refused(f"the document is too big for its text to be checked ({exc})")
        if armour.NOTE.search(text):  # the scrub took a block's BEGIN line; the rest of it is in other paragraphs
            return Refused("the document holds an armoured key, signature or encrypted text (OpenPGP or S/MIME), "
                           "which names its owner and cannot be cleaned")
    return result


def _has_embedded_files(pdf: object) -> bool:
    """Whether any object is an embedded file, or a file specification or annotation that carries one (a
    file attachment annotation, a portfolio, a GoToE link)."""
    import pikepdf

    for obj in pdf.objects:  # type: ignore[attr-defined]
        if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            continue
        if obj.get("/Type") == pikepdf.Name.EmbeddedFile or "/EF" in obj or \
                obj.get("/Subtype") == pikepdf.Name.FileAttachment:
            return True
    return False


def _scrub_strings(obj: object, keys: tuple[str, ...], scrub: Callable[[str], str]) -> bool:
    """The text strings under `keys` of a PDF dictionary scrubbed; whether any changed."""
    import pikepdf

    changed = False
    for key in keys:
        value = obj.get(key)  # type: ignore[attr-defined]
        if isinstance(value, pikepdf.String):
            text = str(value)
            clean_text = scrub(text)
            if clean_text != text:
                obj[key] = pikepdf.String(clean_text)  # type: ignore[index]
                changed = True
    return changed


# Text strings a viewer shows or follows outside the pages: bookmark and thread titles (/Title), page label
# prefixes (/P), file names of links to other files (/F, /UF, /DOS, /Mac, /Unix), named destinations as
# strings (/D, /Dest), alternative text of tagged content (/Alt, /ActualText).
_PDF_TEXT_KEYS = ("/Title", "/P", "/F", "/UF", "/DOS", "/Mac", "/Unix", "/D", "/Dest", "/Alt", "/ActualText")
MAX_PDF_DICTIONARIES = 1_000_000  # dictionaries and arrays walked in one PDF (a 300-page CV has a few thousand)
MAX_PDF_NAMES = 100_000  # named destinations in one PDF


def _scrub_structure(pdf: object, scrub: Callable[[str], str]) -> None:
    """What a viewer shows or follows outside the pages, scrubbed: bookmarks, page labels, links and the
    other actions (a web link, a mailto: link, a link to another file, its chained /Next actions, the
    document's /OpenAction and /AA), named destinations and their references. Every dictionary of the file
    is visited once: each indirect object and the direct dictionaries and arrays inside it (no reference is
    followed, so there is no cycle), at most MAX_PDF_DICTIONARIES in all.

    A link's URI is scrubbed as text is in a message (a mailto: link to a member's real address leads to
    their alias; a name in a link's path becomes the handle, as in HTML mail); a link that the scrub cannot
    rewrite into a link (it would remove it) refuses the file."""
    import pikepdf

    left = MAX_PDF_DICTIONARIES
    for top in pdf.objects:  # type: ignore[attr-defined]
        pending = [top] if isinstance(top, pikepdf.Dictionary | pikepdf.Stream | pikepdf.Array) else []
        while pending:
            item = pending.pop()
            left -= 1
            if left < 0:
                raise _Unreadable("the PDF has too many objects for the relay to clean")
            if isinstance(item, pikepdf.Array):
                values = list(item)
            else:
                _scrub_strings(item, _PDF_TEXT_KEYS, scrub)
                for key in ("/D", "/Dest"):
                    value = item.get(key)
                    if isinstance(value, pikepdf.Name):
                        item[key] = _scrubbed_name(value, scrub)
                if item.get("/S") == pikepdf.Name.URI:
                    _scrub_uri(item, scrub)
                values = [value for _, value in item.items()]
            pending.extend(v for v in values if isinstance(v, pikepdf.Dictionary | pikepdf.Array)
                           and not v.is_indirect)
    _scrub_destination_names(pdf, scrub)


def _scrub_uri(action: object, scrub: Callable[[str], str]) -> None:
    import pikepdf

    value = action.get("/URI")  # type: ignore[attr-defined]
    if not isinstance(value, pikepdf.String):
        return
    uri = bytes(value).decode("latin-1")  # a URI is ASCII (7-bit) by the standard; Latin-1 reads any byte
    clean_uri = scrub(uri)
    if clean_uri == uri:
        return
    scheme = uri.split(":", 1)[0].lower() + ":"
    if not clean_uri.lower().startswith(scheme) or any(c.isspace() for c in clean_uri):
        raise _Unreadable("a link in this PDF leads to a real name or address and cannot be rewritten")
    action["/URI"] = pikepdf.String(clean_uri.encode("utf-8"))  # type: ignore[index]


def _scrubbed_name(name: object, scrub: Callable[[str], str]) -> object:
    import pikepdf

    text = str(name)[1:]
    clean_text = scrub(text)
    return name if clean_text == text else pikepdf.Name("/" + (clean_text or "_"))


def _scrub_destination_names(pdf: object, scrub: Callable[[str], str]) -> None:
    """Named destinations (a bookmark or link may jump to "/JaneDoe") renamed as the scrub renames their
    references (_scrub_structure), so that every jump still lands: the keys of the catalog's /Dests and of
    the /Names /Dests name tree (rebuilt when a key changes, as its keys must stay sorted)."""
    import pikepdf

    root = pdf.Root  # type: ignore[attr-defined]
    dests = root.get("/Dests")
    if isinstance(dests, pikepdf.Dictionary):
        keys = list(dests.keys())
        if len(keys) > MAX_PDF_NAMES:
            raise _Unreadable("the PDF has too many named destinations for the relay to clean")
        for key in keys:
            clean_key = str(_scrubbed_name(pikepdf.Name(key), scrub))
            if clean_key != key:
                dests[clean_key] = dests[key]
                del dests[key]
    names = root.get("/Names")
    tree = names.get("/Dests") if isinstance(names, pikepdf.Dictionary) else None
    if not isinstance(tree, pikepdf.Dictionary):
        return
    entries = []
    for key, value in pikepdf.NameTree(tree).items():
        entries.append((key, value))
        if len(entries) > MAX_PDF_NAMES:
            raise _Unreadable("the PDF has too many named destinations for the relay to clean")
    renamed = [(scrub(key), value) for key, value in entries]
    if any(clean_key != key for (clean_key, _), (key, _) in zip(renamed, entries, strict=True)):
        rebuilt = pikepdf.NameTree.new(pdf)  # type: ignore[arg-type]
        for key, value in renamed:
            rebuilt[key] = value
        names["/Dests"] = rebuilt.obj


def _scrub_form(pdf: object, scrub: Callable[[str], str]) -> None:
    """Filled-in form fields (a child's name typed into "Name:") scrubbed: their value, default value and
    names. A field whose text changed loses its drawn appearance, which qpdf draws again from the new value."""
    import pikepdf

    root = pdf.Root  # type: ignore[attr-defined]
    if "/AcroForm" not in root:
        return
    pending = list(root.AcroForm.get("/Fields", []))
    seen: set[tuple[int, int]] = set()
    changed = False
    while pending:
        field = pending.pop()
        if not isinstance(field, pikepdf.Dictionary) or (field.is_indirect and field.objgen in seen):
            continue
        if field.is_indirect:
            seen.add(field.objgen)
        if _scrub_strings(field, ("/V", "/DV", "/T", "/TU"), scrub):
            changed = True
            for widget in [field, *field.get("/Kids", [])]:
                if "/AP" in widget:
                    del widget["/AP"]
        pending.extend(field.get("/Kids", []))
    if changed:
        root.AcroForm.NeedAppearances = True
        # if qpdf cannot, NeedAppearances stays: the reader draws the fields from their (scrubbed) values
        with contextlib.suppress(pikepdf.PdfError):
            pdf.generate_appearance_streams()  # type: ignore[attr-defined]


def _clean_jpeg_stream(image: object) -> None:
    """A JPEG image (DCTDecode, possibly after other filters) without its metadata segments, pixels untouched."""
    import pikepdf

    filters = image.get("/Filter")  # type: ignore[attr-defined]
    names = list(filters) if isinstance(filters, pikepdf.Array) else [filters]
    if not names or names[-1] != pikepdf.Name.DCTDecode:
        return
    parms = image.get("/DecodeParms")  # type: ignore[attr-defined]
    jpeg = image.read_raw_bytes()  # type: ignore[attr-defined]
    if len(names) > 1:  # [/FlateDecode /DCTDecode]: unpacked here, within MAX_PDF_IMAGE (a small PDF can hold
        # a deflate bomb), rather than by qpdf, which unpacks a stream whole
        outer_parms = list(parms)[:-1] if isinstance(parms, pikepdf.Array) else []
        if names[:-1] != [pikepdf.Name.FlateDecode] or any(parm is not None for parm in outer_parms):
            raise _Unreadable("an image in the document is packed in a way the relay cannot clean")
        inflater = zlib.decompressobj()
        try:
            jpeg = inflater.decompress(jpeg, MAX_PDF_IMAGE)
        except zlib.error as exc:
            raise _Unreadable("an image in the document could not be unpacked to clean it") from exc
        if inflater.unconsumed_tail:
            raise _Unreadable("an image in the document unpacks to more than the relay cleans")
    if isinstance(parms, pikepdf.Array):
        parms = parms[-1] if len(parms) == len(names) else None
    stripped = strip_jpeg_metadata(jpeg)
    if stripped == jpeg and len(names) == 1:
        return
    image.write(stripped, filter=pikepdf.Name.DCTDecode,  # type: ignore[attr-defined]
                decode_parms=parms if isinstance(parms, pikepdf.Dictionary) else None)


# JPEG application segments that decoding needs, by marker and the identifier their payload starts with;
# every other APPn (EXIF, XMP, Photoshop IPTC, maker data, ...) and every comment (COM) is metadata.
_JPEG_KEPT = {0xE0: (b"JFIF\x00",), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}


def strip_jpeg_metadata(data: bytes) -> bytes:
    """A JPEG byte stream without its metadata segments (APP1 EXIF/XMP, APP13 IPTC, COM, ...): every other
    segment and the compressed image data are copied as they are, so nothing is decoded or re-encoded.

    Hand-written because Pillow (the image library used here) writes a JPEG only by encoding it again, and
    a JPEG inside a PDF should keep its exact pixels; the JPEG syntax (ITU T.81, B.1) makes this a short
    walk over length-prefixed segments. Bytes after the end-of-image marker are dropped."""
    if data[:2] != b"\xff\xd8":
        raise _Unreadable("a JPEG image in the document could not be read to clean it")
    out = bytearray(data[:2])
    pos = 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            raise _Unreadable("a JPEG image in the document could not be read to clean it")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            out += data[pos:pos + 2]
            return bytes(out)
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            out += data[pos:pos + 2]
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end > len(data) or end < pos + 4:
            raise _Unreadable("a JPEG image in the document could not be read to clean it")
        if not _jpeg_metadata(marker, data[pos + 4:end]):
            out += data[pos:end]
        pos = end
        if marker == 0xDA:  # start of scan: compressed data runs to the next marker
            scan_end = _jpeg_scan_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end
    return bytes(out)


def _jpeg_metadata(marker: int, payload: bytes) -> bool:
    if marker == 0xFE:
        return True
    if 0xE0 <= marker <= 0xEF:
        return not payload.startswith(_JPEG_KEPT.get(marker, ()))
    return False


def _jpeg_scan_end(data: bytes, pos: int) -> int:
    """Where a scan's compressed data ends: at the first 0xFF that is not a stuffed 0xFF00 or a restart marker."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos


@dataclass
class _Budget:
    """What is left of the bytes and entries a document and the documents embedded in it may unpack to."""

    size: int
    entries: int


class PartTooLarge(Exception):
    """An XML part of an Office document is larger than the relay reads (MAX_PART_BYTES, MAX_PART_ELEMENTS)."""


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A zip member's bytes, read with at most `limit` + 1 bytes inflated whatever its header declares;
    PartTooLarge when there are more. Only stored and deflated members (all that Office and ODF write) are
    read: other methods (bzip2, LZMA) inflate a whole block at a time, past any bound."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _Unreadable(f"the part {info.filename} of the document is packed in a way the relay does not read")
    with archive.open(info) as member:
        content = member.read(limit + 1)
    if len(content) > limit:
        raise PartTooLarge(f"its part {info.filename} unpacks to more than {limit // (1024 * 1024)} MB")
    return content


def parse_part(content: bytes, name: str) -> Any:
    """An XML part of an Office document parsed (no entities resolved: no billion laughs, no external files; no
    network; libxml2's limits on depth and text size), its elements counted as they are built: PartTooLarge
    past MAX_PART_ELEMENTS, before the rest is parsed. lxml.etree.XMLSyntaxError for a damaged part."""
    from lxml import etree

    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True, huge_tree=False,
                                 remove_blank_text=False)
    elements = 0
    step = 64 * 1024
    for start in range(0, len(content), step):
        parser.feed(content[start:start + step])
        elements += sum(1 for _ in parser.read_events())
        if elements > MAX_PART_ELEMENTS:
            raise PartTooLarge(f"its part {name} has more than {MAX_PART_ELEMENTS:,} XML elements")
    return parser.close()


def _office(data: bytes, scrub: Callable[[str], str], budget: _Budget, depth: int) -> Cleaned | Refused:
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return Refused("an encrypted or damaged Office document cannot be cleaned")
    infos = source.infolist()
    budget.size -= sum(i.file_size for i in infos)
    budget.entries -= len(infos)
    if budget.entries < 0 or budget.size < 0:
        return Refused("the document unpacks to too much data to be cleaned")
    if any(i.flag_bits & 0x1 for i in infos):
        return Refused("an encrypted Office document cannot be cleaned")
    dropped = frozenset(i.filename for i in infos if i.filename.lower().startswith(_THUMBNAIL_PREFIXES))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in infos:
            name = info.filename
            if name in dropped:
                continue
            if is_xml_part(name):
                try:
                    content = _clean_xml(read_member(source, info, MAX_PART_BYTES), name, scrub, dropped)
                except PartTooLarge as exc:
                    return Refused(f"the document is too big to be cleaned ({exc})")
            else:
                content = read_member(source, info, info.file_size)
                if not info.is_dir():
                    content = _clean_member(content, name, scrub, budget, depth)
            copy = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            copy.compress_type = info.compress_type
            copy.external_attr = info.external_attr
            target.writestr(copy, content)
    return Cleaned(out.getvalue())


def is_xml_part(name: str) -> bool:
    """Whether a member of an Office or ODF zip is an XML part (cleaned as XML, read for its text)."""
    return name.lower().endswith((".xml", ".rels"))


def _clean_member(content: bytes, name: str, scrub: Callable[[str], str], budget: _Budget, depth: int) -> bytes:
    """A zip member that is not XML: a picture cleaned, an embedded document or PDF cleaned in turn, an OLE
    object or other embedded file refused (_Unreadable), anything else (fonts, printer settings) as it is."""
    extension = name.rpartition(".")[2].lower() if "." in name.rpartition("/")[2] else ""
    picture = next((fmt for magic, fmt in _PICTURE_MAGIC if content.startswith(magic)), None)
    if picture is None and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        picture = "WEBP"
    if picture is not None or extension in _PICTURE_EXTENSIONS:
        try:
            return _image(content, picture or _PICTURE_EXTENSIONS[extension])
        except Exception:  # any library may raise anything on a damaged picture
            raise _Unreadable(f"the picture {name} in the document could not be read to clean it") from None
    if content[:4] == b"PK\x03\x04" or content[:4] == b"%PDF":
        if depth + 1 >= MAX_NESTING:
            raise _Unreadable(f"documents embedded more than {MAX_NESTING - 1} levels deep cannot be cleaned")
        nested = _office(content, scrub, budget, depth + 1) if content[:2] == b"PK" else _pdf(content, scrub)
        if isinstance(nested, Refused):
            raise _Unreadable(f"the embedded document {name}: {nested.reason}")
        return nested.data
    if content.startswith(_OLE2_MAGIC):
        raise _Unreadable(f"an embedded object ({name}) cannot be cleaned of personal data")
    if "embeddings/" in name.lower() or name.lower().startswith("object "):
        raise _Unreadable(f"an embedded file ({name}) cannot be cleaned of personal data")
    return content


# SpreadsheetML headers and footers (ECMA-376 Part 1, 18.3.1.39): text with formatting codes glued to it
# ("&CJane Doe": Jane Doe, centred), which would hide the first word from the name matching.
HEADER_FOOTER = frozenset({"oddHeader", "evenHeader", "firstHeader", "oddFooter", "evenFooter", "firstFooter"})
_HEADER_FOOTER_CODE = re.compile(
    r'&(?:&|"[^"]*"|K(?:[0-9A-Fa-f]{6}|\d\d[+-]\d{1,3})|\d+|[LCRPNDTZFAGBIUESXYO]|$)')


def header_footer_pieces(text: str) -> Iterator[tuple[bool, str]]:
    """A header or footer's text cut at its codes: (True, code) and (False, text as shown). "&&" is a code
    here (it shows as "&" and is written back as it was); an "&" before anything else is text."""
    at = 0
    for match in _HEADER_FOOTER_CODE.finditer(text):
        if match.start() > at:
            yield False, text[at:match.start()]
        yield True, match.group()
        at = match.end()
    if at < len(text):
        yield False, text[at:]


def _lists_members(name: str) -> bool:
    """Whether the part names other members of the package (so may name a dropped one): OOXML relationships,
    [Content_Types].xml, ODF META-INF/manifest.xml. No other part is searched for references."""
    return name.lower().endswith(".rels") or name in ("[Content_Types].xml", "META-INF/manifest.xml")


def _drop_references(root: object, name: str, dropped: frozenset[str]) -> None:
    """References to dropped members removed, so that the document opens without a repair prompt: OOXML
    relationships (_rels/*.rels, targets relative to the part's folder), [Content_Types].xml overrides and
    ODF META-INF/manifest.xml entries (a folder's entry goes with the last member in it)."""
    folder = posixpath.dirname(posixpath.dirname(name)) if "/_rels/" in f"/{name}" else ""
    for element in list(root.iter()):  # type: ignore[attr-defined]
        if not isinstance(element.tag, str):
            continue
        local = _local(element.tag)
        attributes = {_local(key): value for key, value in element.attrib.items()}
        path = None
        if local == "Relationship" and attributes.get("TargetMode") != "External":
            target = attributes.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        elif local == "Override":
            path = attributes.get("PartName", "").lstrip("/")
        elif local == "file-entry":
            path = attributes.get("full-path", "")
            if path.endswith("/") and any(d.startswith(path) for d in dropped):
                path = next(d for d in dropped if d.startswith(path))
        if path in dropped and element.getparent() is not None:
            element.getparent().remove(element)


def _local(name: object) -> str:
    text = str(name)
    return text.rsplit("}", 1)[-1] if "}" in text else text.rsplit(":", 1)[-1]


def _clean_xml(content: bytes, name: str, scrub: Callable[[str], str],
               dropped: frozenset[str] = frozenset()) -> bytes:
    from lxml import etree

    try:
        root = parse_part(content, name)
    except etree.XMLSyntaxError:
        raise _Unreadable(f"the part {name} of the document could not be read to clean it") from None
    if dropped and _lists_members(name):
        _drop_references(root, name, dropped)
    custom = name.lower().endswith("docprops/custom.xml")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        local = _local(element.tag)
        if local in _AUTHOR_ELEMENTS and (element.text or len(element)):
            for child in list(element):
                element.remove(child)
            element.text = NEUTRAL_AUTHOR if local in ("author", "creator", "lastModifiedBy") else ""
        elif local in HEADER_FOOTER and element.text:
            # each piece of text scrubbed alone (a name cut by a code, "Ja&Bne", is left to the identity rule,
            # which reads the text without its codes); a font's name too (not shown, but in the file)
            element.text = "".join(piece if (code and not piece.startswith('&"')) or not piece.strip() else scrub(piece)
                                   for code, piece in header_footer_pieces(element.text))
        elif custom and local == "property":
            for child in element:
                child.text = ""
        elif element.text and element.text.strip():
            element.text = scrub(element.text)
        if element.tail and element.tail.strip():
            element.tail = scrub(element.tail)
        if local in _AUTHOR_ATTRIBUTE_ELEMENTS:
            for attribute in list(element.attrib):
                if _local(attribute) in _AUTHOR_ATTRIBUTES:
                    element.attrib[attribute] = NEUTRAL_AUTHOR if _local(attribute) in ("author", "name") else ""
        for attribute, value in list(element.attrib.items()):
            if value and any(c.isalpha() for c in value):
                clean_value = scrub(value)
                if clean_value != value:
                    element.attrib[attribute] = clean_value
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))
