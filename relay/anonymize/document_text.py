"""The text a person reads in a document attachment, for the moderation rules and the PDF page check.

Pure: a document's bytes and kind ("pdf", "ooxml", "odf", as attachments.kind_of says) in, its readable text
out; it reads nothing from the store. What is read:

  OOXML   the text elements (w:t, a:t, a sheet's t, w:delText) of every XML part but relationships, content
          types and docProps: body, headers, footers, notes, comments, but also text boxes, charts (their
          cached strings too), slide masters and layouts, the glossary, SmartArt; a sheet's formula strings
          and its headers and footers without their codes ("&C", "&\"Arial,Bold\"", "&P")
          (numbers typed into cells are not read: a column of marks or ids is no contact detail)
  ODT/ODS/ODP  the body and master styles (headers and footers) of every XML part but the manifest, meta.xml
          and settings.xml (content.xml, styles.xml, objects such as charts)
  PDF     the text drawn on each page (pypdf) and by its annotations' appearances, the text of its
          annotations and filled-in form values, where its links lead; bookmark titles, page label
          prefixes, named destinations and the document's own actions (bounded by MAX_STRUCTURE)
Office documents and PDFs embedded in an Office document are read in turn, as deep as cleaning goes.

In OOXML a paragraph's runs are joined as Word shows them ("step" + "dad hits me" reads "stepdad hits me");
paragraphs, table rows and line breaks end a line, cells and tabs are separated by a tab. Alternative content
kept for old readers (mc:Fallback) and phonetic guides (rPh) are left out: they repeat the text.

Bounded by the budgets of cleaning (attachments.MAX_UNZIPPED, MAX_ENTRIES, MAX_NESTING, and per XML part
MAX_PART_BYTES and MAX_PART_ELEMENTS) and by MAX_PAGES
pages and MAX_CHARACTERS characters per document: a document over them raises TooLarge (cleaning refuses it,
so that no document is delivered unread). A PDF's streams are decoded by pypdf within MAX_STREAM bytes each,
each content stream is parsed within MAX_STREAM_ITEMS items, and at most MAX_OPERATIONS drawing operations
are read in all (pypdf takes some 10 microseconds for one; about 200 dense pages): some 4 s of CPU at worst,
inside the worker's budget for a message (limits.message_cpu_seconds, 10 s), every step linear in what is
read.
A damaged file raises whatever its parser raises; `readable` never raises (inspection reads files that
cleaning accepted).

The text of the last few documents read is remembered by digest: cleaning reads a PDF's pages to check them
for names, and inspection, in the same worker and on the same cleaned bytes, then reads them once more for
free.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator

from relay.anonymize.attachments import (
    HEADER_FOOTER,
    MAX_ENTRIES,
    MAX_NESTING,
    MAX_PART_BYTES,
    MAX_UNZIPPED,
    PartTooLarge,
    header_footer_pieces,
    is_xml_part,
    parse_part,
    read_member,
)

MAX_PAGES = 300  # a PDF with more pages is not read (a thesis or a long CV has far fewer)
MAX_CHARACTERS = 1_500_000  # of text in one document, embedded ones included (about 500 dense pages)
MAX_STREAM = 32 * 1024 * 1024  # bytes one PDF stream may decode to (a page's drawing is a few hundred KB)
MAX_OPERATIONS = 250_000  # drawing operations read in one PDF (a dense page of text takes about 1,300)
MAX_STREAM_ITEMS = 250_000  # numbers, strings, names and operators in one content stream, parsed before reading
MAX_STRUCTURE = 100_000  # annotations' appearances and actions, bookmarks, page labels, destinations read in one PDF
_REMEMBERED = 4  # documents whose text is kept, by digest

# pypdf logs a warning for every oddity of a damaged file; the relay's log is no place for them.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class TooLarge(Exception):
    """The document is larger than the relay reads; the message says how."""


def readable(data: bytes, kind: str) -> str:
    """The document's text for the rules; "" for a kind that is not a document, or a file that cannot be read."""
    if kind not in ("pdf", "ooxml", "odf"):
        return ""
    try:
        return text_of(data, kind)
    except Exception:  # a damaged file: any library may raise anything on it (cleaning has refused it already)
        return ""


_recent: OrderedDict[bytes, str] = OrderedDict()
_recent_lock = threading.Lock()  # a relay with `workers: 0` may clean on more than one thread


def text_of(data: bytes, kind: str) -> str:
    """The text of a document of `kind` ("pdf", "ooxml" or "odf"); TooLarge, or the parser's exception."""
    key = hashlib.blake2b(data, digest_size=20, person=kind.encode()[:16]).digest()
    with _recent_lock:
        if key in _recent:
            _recent.move_to_end(key)
            return _recent[key]
    budget = _Budget(MAX_CHARACTERS)
    text = _pdf(data, budget) if kind == "pdf" else _office(data, kind == "odf", budget, 0)
    with _recent_lock:
        _recent[key] = text
        while len(_recent) > _REMEMBERED:
            _recent.popitem(last=False)
    return text


class _Budget:
    """The characters a document (and the documents embedded in it) may still give."""

    def __init__(self, characters: int) -> None:
        self.characters = characters

    def spend(self, text: str) -> str:
        self.characters -= len(text)
        if self.characters < 0:
            raise TooLarge(f"it holds more than {MAX_CHARACTERS:,} characters of text")
        return text


# --- PDF ---------------------------------------------------------------------------------------------


def _pdf(data: bytes, budget: _Budget) -> str:
    import pypdf
    from pypdf.errors import LimitReachedError

    limits = {name: MAX_STREAM for name in (
        "maximum_declared_stream_length", "array_based_stream_maximum_output_length", "zlib_maximum_output_length",
        "lzw_maximum_output_length", "run_length_maximum_output_length", "brotli_maximum_output_length",
        "jbig2_maximum_output_length", "image_maximum_buffer_size", "stream_decoding_work_maximum_length")}
    # pypdf skips the forms of a page past its own count of them: ours (MAX_OPERATIONS) stops the reading first
    with pypdf.apply_configuration(None, jbig2dec_binary=None, stream_parsing_work_maximum_count=MAX_STREAM_ITEMS,
                                   xform_maximum_invocations_per_extraction=MAX_OPERATIONS + 1, **limits):
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ValueError("an encrypted PDF")  # cleaning refuses these before reading them
        operations = _Operations()
        pages = []
        try:
            count = len(reader.pages)
            if count > MAX_PAGES:
                raise TooLarge(f"it has {count:,} pages, more than the {MAX_PAGES} the relay reads")
            structure = _Structure()
            for page in reader.pages:
                drawn = page.extract_text(visitor_operand_before=operations)
                if operations.left < 0:  # raised inside a form, where pypdf catches it: the page is not whole
                    raise TooLarge(operations.reason)
                shown = _appearance_text(reader, page, operations, structure)
                pages.append(budget.spend("\n".join([drawn, shown, *_annotation_texts(page, structure)])))
            pages.append(budget.spend("\n".join(_document_texts(reader, structure))))
        except LimitReachedError as exc:
            raise TooLarge("a page is drawn with more data than the relay reads") from exc
    return "\n\n".join(p for p in pages if p)


class _Operations:
    """Called by pypdf before each drawing operation it reads (those of forms too): stops the reading of a
    document past MAX_OPERATIONS, which bounds its time whatever the pages hold. A TJ operation counts each
    piece of its array (pypdf treats every piece as one Tj: a line is often a dozen)."""

    reason = f"its pages are drawn with more than {MAX_OPERATIONS:,} operations"

    def __init__(self) -> None:
        self.left = MAX_OPERATIONS

    def __call__(self, operator: object, operands: object, cm: object, tm: object) -> None:
        pieces = operands[0] if operator == b"TJ" and isinstance(operands, list) and operands else ()
        self.left -= 1 + (len(pieces) if isinstance(pieces, list) else 0)
        if self.left < 0:
            raise TooLarge(self.reason)


class _Structure:
    """Counts the objects read outside the pages' drawing (annotations, appearances, bookmarks, page labels,
    actions, named destinations) against MAX_STRUCTURE, and remembers those read once (an appearance shared
    by a thousand check boxes is read once; a cycle of /Next or /First references ends)."""

    def __init__(self) -> None:
        self.left = MAX_STRUCTURE
        self.seen: set[tuple[int, int]] = set()

    def first_time(self, obj: object) -> bool:
        """Whether `obj` (a reference or a direct object) is read now; TooLarge past MAX_STRUCTURE."""
        self.left -= 1
        if self.left < 0:
            raise TooLarge(f"it holds more than {MAX_STRUCTURE:,} annotations, bookmarks, links and labels")
        reference = getattr(obj, "indirect_reference", None) or obj
        key = (getattr(reference, "idnum", None), getattr(reference, "generation", None))
        if key[0] is None:
            return True
        if key in self.seen:
            return False
        self.seen.add(key)  # type: ignore[arg-type]
        return True


def _resolved(value: object) -> object:
    return value.get_object() if value is not None and hasattr(value, "get_object") else value


def _annotations(page: object) -> list[object]:
    from pypdf.generic import ArrayObject, DictionaryObject

    annotations = _resolved(page.get("/Annots"))  # type: ignore[attr-defined]
    found: list[object] = []
    for annotation in annotations if isinstance(annotations, ArrayObject) else []:
        annotation = _resolved(annotation)
        if isinstance(annotation, DictionaryObject):
            found.append(annotation)
    return found


def _annotation_texts(page: object, structure: _Structure | None = None) -> Iterator[str]:
    """The text of a page's annotations (a sticky note, a comment), the values of its form fields, and where
    its links lead (a web or mailto: address, another file's name, a named destination)."""
    from pypdf.generic import DictionaryObject, TextStringObject

    structure = structure or _Structure()
    for annotation in _annotations(page):
        parent = _resolved(annotation.get("/Parent"))  # type: ignore[attr-defined]
        for value in (annotation.get("/Contents"), annotation.get("/V"),  # type: ignore[attr-defined]
                      parent.get("/V") if isinstance(parent, DictionaryObject) else None):
            if isinstance(value, TextStringObject):
                yield str(value)
        yield from _destination_text(annotation.get("/Dest"))  # type: ignore[attr-defined]
        yield from _action_texts(annotation.get("/A"), structure)  # type: ignore[attr-defined]
        additional = _resolved(annotation.get("/AA"))  # type: ignore[attr-defined]
        if isinstance(additional, DictionaryObject):
            for action in additional.values():
                yield from _action_texts(action, structure)


_ACTION_TEXT_KEYS = ("/URI", "/F", "/D", "/UF", "/DOS", "/Mac", "/Unix", "/P")


def _action_texts(action: object, structure: _Structure) -> Iterator[str]:
    """Where an action leads (/URI; /GoToR, /Launch, /GoToE file names and destinations; a /Launch's
    /Win parameters), and the actions chained after it (/Next: one action or an array of them)."""
    from pypdf.generic import ArrayObject, ByteStringObject, DictionaryObject, NameObject, TextStringObject

    pending = [action]
    while pending:
        item = pending.pop()
        if item is None or not structure.first_time(item):
            continue
        item = _resolved(item)
        if isinstance(item, ArrayObject):
            pending.extend(item)
            continue
        if not isinstance(item, DictionaryObject):
            continue
        for dictionary in (item, _resolved(item.get("/F")), _resolved(item.get("/Win"))):
            if not isinstance(dictionary, DictionaryObject):
                continue
            for key in _ACTION_TEXT_KEYS:
                value = dictionary.get(key)
                if isinstance(value, TextStringObject):
                    yield str(value)
                elif isinstance(value, ByteStringObject):  # a URI is bytes: ASCII by the standard
                    yield bytes(value).decode("latin-1")
                elif isinstance(value, NameObject) and key == "/D":
                    yield str(value)[1:]
        pending.append(item.get("/Next"))


def _destination_text(value: object) -> Iterator[str]:
    from pypdf.generic import NameObject, TextStringObject

    value = _resolved(value)
    if isinstance(value, TextStringObject):
        yield str(value)
    elif isinstance(value, NameObject):
        yield str(value)[1:]


def _appearance_text(reader: object, page: object, operations: _Operations, structure: _Structure) -> str:
    """The text the appearances of a page's annotations draw (a free-text box, a stamp, a filled-in field:
    a viewer shows the appearance, not /Contents): every state of /N, /D and /R, each a form XObject, read
    by pypdf as a page that draws them one under the other, within the same count of operations."""
    from pypdf import PageObject
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, StreamObject

    forms: list[object] = []
    for annotation in _annotations(page):
        appearances = _resolved(annotation.get("/AP"))  # type: ignore[attr-defined]
        if not isinstance(appearances, DictionaryObject):
            continue
        for key in ("/N", "/D", "/R"):
            entry = appearances.get(key)
            resolved = _resolved(entry)
            states = [entry] if isinstance(resolved, StreamObject) else \
                list(resolved.values()) if isinstance(resolved, DictionaryObject) else []
            for state in states:
                if isinstance(_resolved(state), StreamObject) and structure.first_time(state):
                    forms.append(state)
    if not forms:
        return ""
    drawing = PageObject(pdf=reader)  # type: ignore[arg-type]
    drawing[NameObject("/MediaBox")] = page.mediabox  # type: ignore[attr-defined]
    drawing[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject(f"/A{i}"): form for i, form in enumerate(forms)})})
    content = DecodedStreamObject()
    content.set_data(b"".join(b"q 1 0 0 1 0 %d cm /A%d Do Q\n" % (-2000 * i, i) for i in range(len(forms))))
    drawing[NameObject("/Contents")] = content
    text = str(drawing.extract_text(visitor_operand_before=operations))
    if operations.left < 0:
        raise TooLarge(operations.reason)
    return text


def _document_texts(reader: object, structure: _Structure) -> Iterator[str]:
    """What a viewer shows or follows outside the pages: bookmark titles (/Outlines, /First and /Next
    followed), page label prefixes (/PageLabels, a number tree), the names of named destinations (/Dests
    and the /Names /Dests tree), and the document's own actions (/OpenAction, /AA)."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    root = _resolved(reader.trailer.get("/Root"))  # type: ignore[attr-defined]
    if not isinstance(root, DictionaryObject):
        return
    outlines = _resolved(root.get("/Outlines"))
    pending = [outlines.get("/First")] if isinstance(outlines, DictionaryObject) else []
    while pending:
        entry = pending.pop()
        if entry is None or not structure.first_time(entry):
            continue
        item = _resolved(entry)
        if not isinstance(item, DictionaryObject):
            continue
        if isinstance(item.get("/Title"), TextStringObject):
            yield str(item["/Title"])
        yield from _destination_text(item.get("/Dest"))
        yield from _action_texts(item.get("/A"), structure)
        pending.extend((item.get("/Next"), item.get("/First")))
    names = _resolved(root.get("/Names"))
    for tree in (root.get("/PageLabels"), names.get("/Dests") if isinstance(names, DictionaryObject) else None):
        pending = [tree]
        while pending:
            node = pending.pop()
            if node is None or not structure.first_time(node):
                continue
            node = _resolved(node)
            if not isinstance(node, DictionaryObject):
                continue
            kids = _resolved(node.get("/Kids"))
            pending.extend(kids if isinstance(kids, ArrayObject) else [])
            for key in ("/Nums", "/Names"):
                pairs = _resolved(node.get(key))
                for value in pairs if isinstance(pairs, ArrayObject) else []:
                    if not structure.first_time(value):
                        continue
                    value = _resolved(value)
                    if isinstance(value, TextStringObject):  # a destination's name
                        yield str(value)
                    elif isinstance(value, DictionaryObject) and isinstance(value.get("/P"), TextStringObject):
                        yield str(value["/P"])  # a page label's prefix
    dests = _resolved(root.get("/Dests"))
    if isinstance(dests, DictionaryObject):
        for key in dests:
            if structure.first_time(NameObject(key)):
                yield str(key)[1:]
    yield from _action_texts(root.get("/OpenAction"), structure)
    additional = _resolved(root.get("/AA"))
    if isinstance(additional, DictionaryObject):
        for action in additional.values():
            yield from _action_texts(action, structure)


# --- OOXML and ODF -----------------------------------------------------------------------------------

# Every XML part is read for its text elements but these, which hold no text a reader sees in the document:
# relationships, content types, document properties (cleaning empties the names in them), and ODF's manifest,
# metadata and settings. Parts with no text elements (styles, themes, numbering) give nothing.
_NOT_TEXT = re.compile(r"(?:.*\.rels|\[content_types\]\.xml|docprops/.*|(?:.*/)?(?:meta|settings|manifest)\.xml"
                       r"|meta-inf/.*)")
_ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODF_TEXTS = (f"{{{_ODF_OFFICE}}}body", f"{{{_ODF_OFFICE}}}master-styles")  # styles.xml: headers and footers
_LINE_ENDS = frozenset({"p", "h", "tr", "row", "si", "br", "cr", "line-break", "list-item", *HEADER_FOOTER})
_TABS = frozenset({"tab", "tc", "c", "table-cell"})
_LEFT_OUT = frozenset({"Fallback", "rPh", "instrText", "change-info", "creator", "date"})
_SECTIONS = frozenset({"&L", "&C", "&R"})  # a header's left, centre and right sections; other codes format
_CHART_STRINGS = frozenset({"strCache", "strLit", "lvl"})  # a chart's cached labels and titles (numCache: numbers)


def _text_part(name: str) -> bool:
    return is_xml_part(name) and _NOT_TEXT.fullmatch(name.lower()) is None


def _office(data: bytes, odf: bool, budget: _Budget, depth: int) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_UNZIPPED:
            raise TooLarge("it unpacks to more data than the relay reads")
        if any(i.flag_bits & 0x1 for i in infos):
            raise ValueError("an encrypted Office document")  # cleaning refuses these before reading them
        texts: list[str] = []
        for info in infos:
            if _text_part(info.filename):
                try:
                    root = parse_part(read_member(archive, info, MAX_PART_BYTES), info.filename)
                except PartTooLarge as exc:
                    raise TooLarge(str(exc)) from None
                tops = [e for top in _ODF_TEXTS for e in root.iter(top)] if odf else [root]
                texts.extend(budget.spend("".join(_pieces(top, odf))) for top in tops)
            elif "embeddings/" in info.filename.lower() and depth + 1 < MAX_NESTING:
                with archive.open(info) as member:
                    magic = member.read(4)
                if magic in (b"%PDF", b"PK\x03\x04"):
                    texts.append(_embedded(archive.read(info), budget, depth))
    return "\n\n".join(t for t in texts if t.strip())


def _embedded(content: bytes, budget: _Budget, depth: int) -> str:
    """The text of an Office document or PDF embedded in one (cleaning has cleaned it in turn)."""
    if content[:4] == b"%PDF":
        return _pdf(content, budget)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        odf = "content.xml" in archive.namelist()
    return _office(content, odf, budget, depth + 1)


def _pieces(root: object, odf: bool) -> Iterator[str]:
    """The text of an XML part in reading order. OOXML: only text elements (w:t, a:t, a sheet's t, w:delText:
    other elements hold numbers such as drawing offsets), with a formula's string result, a chart's cached
    labels and titles, and a sheet's headers and footers without their codes. ODF: all text and tails (text:p
    holds its text in spans and between them)."""
    from lxml import etree

    walk = etree.iterwalk(root, events=("start", "end"))
    for event, element in walk:
        local = etree.QName(element).localname if isinstance(element.tag, str) else ""
        if event == "start":
            if local in _LEFT_OUT or not local:
                walk.skip_subtree()
            elif odf or local in ("t", "delText") or (local == "v" and _string_value(element)):
                yield element.text or ""
            elif local in HEADER_FOOTER:
                yield "".join(piece if not code else "&" if piece == "&&" else "\t" if piece in _SECTIONS else ""
                              for code, piece in header_footer_pieces(element.text or ""))
            if local == "s" and odf:
                yield " "
            continue
        if local in _LINE_ENDS:
            yield "\n"
        elif local in _TABS:
            yield "\t"
        if odf and element is not root:
            yield element.tail or ""


def _string_value(element: object) -> bool:
    """Whether a v element holds text: a formula's string result (a cell of type "str"), a chart's cached
    string (strCache/strLit, multi-level labels) or a series name typed as text (c:tx/c:v)."""
    from lxml import etree

    parent = element.getparent()  # type: ignore[attr-defined]
    if parent is None:
        return False
    if parent.get("t") == "str":
        return True
    parent_local = etree.QName(parent).localname
    if parent_local == "tx":
        return True
    grandparent = parent.getparent()
    return parent_local == "pt" and grandparent is not None and etree.QName(grandparent).localname in _CHART_STRINGS
