"""Attachments cleaned of the metadata that names or locates their author, or refused with the reason.

Pure: bytes, type and name in; the cleaned bytes, or the reason they cannot be cleaned, out.

  JPEG, PNG, GIF, WebP, TIFF, BMP   Pillow: decoded and written again with no EXIF (author, copyright, GPS,
                                    camera serial), XMP, IPTC, comments or text chunks; a photo's EXIF
                                    orientation is applied to the pixels first; JPEG keeps its quantisation
                                    ("quality=keep"); animations keep every frame.
  HEIC / HEIF                        pillow-heif (libheif), the same way, written as HEIC without EXIF/XMP.
  PDF                                pikepdf (qpdf): the Info dictionary, the XMP metadata stream of the
                                    document and of every page, piece info, and annotation authors (/T) go.
  DOCX, XLSX, PPTX (OOXML), ODT,     the zip is rewritten (stdlib zipfile, XML through lxml with entities and
  ODS, ODP (ODF)                     network off): docProps/core.xml and app.xml lose creator,
                                     lastModifiedBy, company and manager; custom properties are emptied;
                                     comment, revision and person authors (w:author, w:initials, people.xml,
                                     xlsx comment authors and persons, pptx comment authors) become "Author";
                                     ODF meta.xml loses creator and initial-creator; the text of every XML
                                     part is passed through the scrub (a name in a heading is replaced).
Everything else that is not text (an unknown binary, an encrypted PDF or Office file, a damaged file,
S/MIME and PGP parts, audio and video, legacy .doc/.xls) cannot be cleaned: the caller holds the message
for a moderator and never delivers the file as it came.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

MAX_UNZIPPED = 200 * 1024 * 1024  # an Office file that unpacks to more is refused (zip bomb)
MAX_ENTRIES = 5000
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
            return _pdf(data)
        if kind in ("ooxml", "odf"):
            return _office(data, kind, scrub)
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


def _pdf(data: bytes) -> Cleaned | Refused:
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
        for key in ("/Metadata", "/PieceInfo"):
            if key in pdf.Root:
                del pdf.Root[key]
        if "/Names" in pdf.Root and "/EmbeddedFiles" in pdf.Root.Names:
            return Refused("a PDF with embedded files cannot be cleaned")
        for page in pdf.pages:
            for key in ("/Metadata", "/PieceInfo"):
                if key in page.obj:
                    del page.obj[key]
            for annotation in page.obj.get("/Annots", []):
                for key in ("/T", "/RC"):
                    if key in annotation:
                        del annotation[key]
        out = io.BytesIO()
        pdf.save(out, fix_metadata_version=False, deterministic_id=True)
        return Cleaned(out.getvalue())


def _office(data: bytes, kind: str, scrub: Callable[[str], str]) -> Cleaned | Refused:
    from lxml import etree

    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return Refused("an encrypted or damaged Office document cannot be cleaned")
    infos = source.infolist()
    if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_UNZIPPED:
        return Refused("the document unpacks to too much data to be cleaned")
    if any(i.flag_bits & 0x1 for i in infos):
        return Refused("an encrypted Office document cannot be cleaned")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in infos:
            content = source.read(info)
            name = info.filename
            if name.lower().endswith((".xml", ".rels")) or name in ("content.xml", "meta.xml", "styles.xml"):
                content = _clean_xml(content, name, parser, scrub)
            copy = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            copy.compress_type = info.compress_type
            copy.external_attr = info.external_attr
            target.writestr(copy, content)
    return Cleaned(out.getvalue())


def _local(name: object) -> str:
    text = str(name)
    return text.rsplit("}", 1)[-1] if "}" in text else text.rsplit(":", 1)[-1]


def _clean_xml(content: bytes, name: str, parser: object, scrub: Callable[[str], str]) -> bytes:
    from lxml import etree

    try:
        root = etree.fromstring(content, parser)  # type: ignore[arg-type]
    except etree.XMLSyntaxError:
        raise _Unreadable(f"the part {name} of the document could not be read to clean it") from None
    custom = name.lower().endswith("docprops/custom.xml")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        local = _local(element.tag)
        if local in _AUTHOR_ELEMENTS and (element.text or len(element)):
            for child in list(element):
                element.remove(child)
            element.text = NEUTRAL_AUTHOR if local in ("author", "creator", "lastModifiedBy") else ""
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
