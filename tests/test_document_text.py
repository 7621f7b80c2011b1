"""The text inside attached documents: the rules read it, and a PDF whose pages show a real name is held.

A child who types a disclosure into a Word file or a PDF and attaches it with an empty body must be held as
urgent with the safeguarding lead told, as if it were typed in the body; a phone number typed into a DOCX is
a contact detail; a PDF whose page shows the sender's real name (drawn plainly, or cut into kerned pieces)
is not delivered, since page content cannot be rewritten, and the moderator sees why; an ordinary PDF, or
one that shows only the member's handle, is delivered. Every file is made here for real (pikepdf, zipfile)
and sent through the relay's own line (relay.pipeline.prepare with the shipped policies, as in
tests/test_attachment_depths.py) or through a running relay over SMTP into a loopback sink
(tests/safeguarding_kit.py).
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pikepdf
import pytest

from relay.anonymize import document_text
from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation import Decision
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from tests.consolekit import serving
from tests.documentkit import text_pdf
from tests.safeguarding_kit import LEAD, MODERATORS, Inboxes, leaks, text, use_shipped_policy
from tests.support import MENTEE, MENTOR, REPO, Layout, Sink, acli, acreate_pair, eventually, nothing_queued, send

DOMAIN = "relay.test"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DISCLOSURE = "my stepdad hits me, don't tell anyone"
SENDER = Identity(MENTEE["email"], MENTEE["name"], f"maple.x9@{DOMAIN}", MENTEE["handle"])
PARTNER = Identity(MENTOR["email"], MENTOR["name"], f"oak.k2@{DOMAIN}", MENTOR["handle"])
_CT = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


# --- files made for real ---------------------------------------------------------------------------


def _page(*lines: str) -> bytes:
    """A page's content stream drawing each line with Tj, one under the other."""
    shown = b" T* ".join(b"(" + line.encode("latin-1") + b") Tj" for line in lines)
    return b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b" ET"


HOMEWORK = [_page("Jane Doe", "Year 9 science: how bridges carry loads", "Arches push outwards at the base.")]
KERNED = [b"BT /F1 12 Tf 72 720 Td [(Ja) 30 (ne D) -15 (oe)] TJ 0 -14 Td [(Bridges) -250 (and) -250 (arches)] TJ ET"]
ORDINARY = [_page("Year 9 science: how bridges carry loads", "Arches push outwards at the base.")]
WITH_HANDLE = [_page("Maple", "Year 9 science: how bridges carry loads")]


def _docx(*paragraphs: list[str]) -> bytes:
    """A Word document; each paragraph is a list of runs (Word cuts a sentence into runs freely)."""
    body = "".join("<w:p>" + "".join(f"<w:r><w:t xml:space=\"preserve\">{run}</w:t></w:r>" for run in runs)
                   + "</w:p>" for runs in paragraphs)
    document = f'{_CT}<w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    types = (f'{_CT}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
             'wordprocessingml.document.main+xml"/></Types>')
    rels = (f'{_CT}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", rels)
        archive.writestr("word/document.xml", document)
    return out.getvalue()


def _package(parts: dict[str, str | bytes]) -> bytes:
    """A zip of Office parts as given (the relay reads the parts that hold text, whatever else is there)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def _xlsx(shared: str, inline: str) -> bytes:
    """A workbook: one string in the shared strings, one typed inline into a cell, and a number."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    return _package({
        "xl/sharedStrings.xml": f'{_CT}<sst xmlns="{main}"><si><t>{shared}</t></si></sst>',
        "xl/worksheets/sheet1.xml": f'{_CT}<worksheet xmlns="{main}"><sheetData><row r="1"><c r="A1" t="s"><v>0</v>'
                                    f'</c><c r="B1" t="inlineStr"><is><t>{inline}</t></is></c><c r="C1"><v>4155550132'
                                    "</v></c></row></sheetData></worksheet>"})


def _pptx_notes(text: str) -> bytes:
    """A presentation whose only words are in the speaker notes of its slide."""
    drawing = "http://schemas.openxmlformats.org/drawingml/2006/main"
    return _package({
        "ppt/slides/slide1.xml": f'{_CT}<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>',
        "ppt/notesSlides/notesSlide1.xml": f'{_CT}<p:notes xmlns:p="http://schemas.openxmlformats.org/presentationml/'
                                           f'2006/main" xmlns:a="{drawing}"><a:p><a:r><a:t>{text}</a:t></a:r></a:p>'
                                           "</p:notes>"})


def _odt(text: str) -> bytes:
    content = (f'{_CT}<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
               f'<text:p>{text[:10]}<text:span>{text[10:]}</text:span></text:p></office:text></office:body>'
               '</office:document-content>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ODT)
        archive.writestr("content.xml", content)
    return out.getvalue()


def _mail(data: bytes, content_type: str, filename: str, body: str = "", to: str = PARTNER.alias_address) -> bytes:
    """The sender's mail with the file attached and `body` (empty: only the file speaks)."""
    m = EmailMessage()
    m["From"] = f"{MENTEE['name']} <{MENTEE['email']}>"
    m["To"] = to
    m["Subject"] = "homework"
    m["Message-ID"] = "<doc.1@mail.example.org>"
    m.set_content(body)
    maintype, subtype = content_type.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


# --- through the relay's line -----------------------------------------------------------------------


def _relay(raw: bytes, policy: str) -> tuple[bytes, Decision]:
    context: dict[str, Any] = {
        "sender_role": "mentee", "sender_email": SENDER.email, "sender_name": SENDER.name,
        "recipient_email": PARTNER.email, "recipient_name": PARTNER.name, "region": "US", "domain": DOMAIN,
        "aliases": (SENDER.alias_address, PARTNER.alias_address), "stats": PairStats(5, 1)}
    prepared = prepare(parse(raw), sender=SENDER, recipient=PARTNER, thread_map={}, new_message_id=f"<n@{DOMAIN}>",
                       now=datetime(2026, 11, 4, 9, 0, tzinfo=UTC), domain=DOMAIN,
                       policy=parse_policy(REPO / "policies" / f"{policy}.yaml"), context=context)
    return prepared.raw, prepared.decision


def _kinds(decision: Decision) -> set[tuple[str, str]]:
    return {(r["rule"], r["kind"]) for r in decision.reason_dicts()}


def _attached(raw: bytes, filename: str) -> bytes | None:
    message = BytesParser(policy=email_policy.default).parsebytes(raw)
    part = next((p for p in message.walk() if p.get_filename() == filename), None)
    payload = part.get_payload(decode=True) if part is not None else None
    return payload if isinstance(payload, bytes) else None


@pytest.mark.parametrize("policy", ["youth-strict", "supervised"])
@pytest.mark.parametrize("document", ["docx", "xlsx", "pptx", "odt", "pdf"])
def test_a_disclosure_typed_only_inside_a_document_is_urgent(document: str, policy: str) -> None:
    files = {"docx": (_docx(["My stepd", "ad hits me, don", "'t tell anyone"]), DOCX, "story.docx"),
             "xlsx": (_xlsx("my stepdad hits me", "don't tell anyone"), XLSX, "story.xlsx"),
             "pptx": (_pptx_notes(DISCLOSURE), PPTX, "story.pptx"),
             "odt": (_odt(DISCLOSURE), ODT, "story.odt"),
             "pdf": (text_pdf(_page(DISCLOSURE)), "application/pdf", "story.pdf")}
    _, decision = _relay(_mail(*files[document]), policy)
    assert decision.action == "hold" and decision.urgent, decision.reason_dicts()
    assert {("keywords", "abuse"), ("keywords", "secrecy")} <= _kinds(decision), decision.reason_dicts()


@pytest.mark.parametrize("pages", [HOMEWORK, KERNED], ids=["plain", "kerned"])
def test_a_pdf_whose_page_shows_the_senders_real_name_is_held_not_delivered(pages: list[bytes]) -> None:
    raw = _mail(text_pdf(*pages), "application/pdf", "homework.pdf", "Here is my homework.")
    delivered, decision = _relay(raw, "adult-professional")
    assert decision.action == "hold"
    [reason] = [r for r in decision.reason_dicts() if r["kind"] == "not_cleaned"]
    assert reason["match"] == ("homework.pdf: the pages of this PDF show a real name or address, which cannot be "
                               "removed from a PDF")
    assert _attached(delivered, "homework.pdf") is None  # a release delivers the note, never the file
    assert b"Jane" not in delivered and b"Doe" not in delivered


@pytest.mark.parametrize("pages", [ORDINARY, WITH_HANDLE], ids=["ordinary", "handle"])
def test_a_pdf_showing_no_real_name_is_delivered(pages: list[bytes]) -> None:
    original = text_pdf(*pages)
    delivered, decision = _relay(_mail(original, "application/pdf", "homework.pdf", "Here it is."),
                                 "adult-professional")
    assert decision.action == "deliver", decision.reason_dicts()
    copy = _attached(delivered, "homework.pdf")
    assert copy is not None
    assert document_text.text_of(copy, "pdf") == document_text.text_of(original, "pdf")


def test_a_phone_number_typed_inside_a_docx_is_a_contact_detail() -> None:
    raw = _mail(_docx(["Call me on my mobile: "], ["(415) 555-0132 after school"]), DOCX, "plan.docx")
    # where the policy rejects (youth-strict) or redacts (adult-professional) contact details, a match inside a
    # file can be neither redacted nor taken out as a typed one: held for a person, never delivered
    for policy in ("youth-strict", "adult-professional"):
        _, decision = _relay(raw, policy)
        assert decision.action == "hold", decision.reason_dicts()
        assert [(r["action"], "555-0132" in r["match"]) for r in decision.reason_dicts()
                if r["rule"] == "contact_info"] == [("hold", True)]


def test_a_name_cut_into_runs_of_a_docx_is_seen_by_the_identity_rule() -> None:
    """The cleaning scrubs each run of text alone, so "Ja" + "ne Doe" stays; the rules read the paragraph."""
    raw = _mail(_docx(["Written by Ja", "ne Doe, class 9B"]), DOCX, "essay.docx", "My essay.")
    _, decision = _relay(raw, "adult-professional")
    assert decision.action == "hold" and ("identity", "own_name") in _kinds(decision), decision.reason_dicts()


def test_a_pdf_embedded_in_a_docx_whose_page_shows_the_name_holds_the_docx() -> None:
    docx = _package({"word/document.xml": f'{_CT}<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>See the '
                                          "attached report</w:t></w:r></w:p></w:body></w:document>",
                     "word/embeddings/report.pdf": text_pdf(*HOMEWORK)})
    delivered, decision = _relay(_mail(docx, DOCX, "essay.docx", "My essay."), "adult-professional")
    assert [r["match"] for r in decision.reason_dicts() if r["kind"] == "not_cleaned"] == [
        "essay.docx: the embedded document word/embeddings/report.pdf: the pages of this PDF show a real name or "
        "address, which cannot be removed from a PDF"]
    assert _attached(delivered, "essay.docx") is None


def test_numbers_typed_into_spreadsheet_cells_are_not_read() -> None:
    """A column of marks or pupil numbers is no contact detail; strings in cells are read."""
    text = document_text.text_of(_xlsx("Marks for term 2", "Maple"), "ooxml")
    assert "Marks for term 2" in text and "Maple" in text and "4155550132" not in text


_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_SHEET = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PLAIN_SHEET = (f'{_CT}<worksheet xmlns="{_SHEET}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Marks</t>'
                "</is></c></row></sheetData></worksheet>")


def _runs(pieces: list[str]) -> str:
    return "".join(f'<a:r><a:t xml:space="preserve">{piece}</a:t></a:r>' for piece in pieces)


def _chart(pieces: list[str]) -> str:
    return (f'{_CT}<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:a="{_A}">'
            f"<c:chart><c:title><c:tx><c:rich><a:p>{_runs(pieces)}</a:p></c:rich></c:tx></c:title></c:chart>"
            "</c:chartSpace>")


def _docx_part(name: str, xml: str) -> bytes:
    return _package({"word/document.xml": f'{_CT}<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>My chart'
                                          "</w:t></w:r></w:p></w:body></w:document>", name: xml})


# Places in Office files that Office shows and that are not a document's body, each given text cut into runs.
_OTHER_PLACES = {
    "xlsx_text_box": lambda pieces: (_package({
        "xl/worksheets/sheet1.xml": _PLAIN_SHEET,
        "xl/drawings/drawing1.xml": f'{_CT}<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/'
                                    f'spreadsheetDrawing" xmlns:a="{_A}"><xdr:twoCellAnchor><xdr:sp><xdr:txBody>'
                                    f"<a:p>{_runs(pieces)}</a:p></xdr:txBody></xdr:sp></xdr:twoCellAnchor></xdr:wsDr>"}),
        XLSX, "marks.xlsx"),
    "xlsx_chart_title": lambda pieces: (_package({"xl/worksheets/sheet1.xml": _PLAIN_SHEET,
                                                  "xl/charts/chart1.xml": _chart(pieces)}), XLSX, "marks.xlsx"),
    "docx_chart_title": lambda pieces: (_docx_part("word/charts/chart1.xml", _chart(pieces)), DOCX, "chart.docx"),
    "xlsx_sheet_header": lambda pieces: (_package({"xl/worksheets/sheet1.xml": _PLAIN_SHEET.replace(
        "</sheetData>", "</sheetData><headerFooter><oddHeader>&amp;C" + "&amp;B".join(pieces)
        + "</oddHeader></headerFooter>")}), XLSX, "marks.xlsx"),
    "pptx_slide_master": lambda pieces: (_package({
        "ppt/slides/slide1.xml": f'{_CT}<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>',
        "ppt/slideMasters/slideMaster1.xml": f'{_CT}<p:sldMaster xmlns:p="http://schemas.openxmlformats.org/'
                                             f'presentationml/2006/main" xmlns:a="{_A}"><p:cSld><p:spTree><p:sp>'
                                             f"<p:txBody><a:p>{_runs(pieces)}</a:p></p:txBody></p:sp></p:spTree>"
                                             "</p:cSld></p:sldMaster>"}), PPTX, "slides.pptx"),
    "docx_glossary": lambda pieces: (_docx_part(
        "word/glossary/document.xml", f'{_CT}<w:glossaryDocument xmlns:w="{_W}"><w:docParts><w:docPart><w:docPartBody>'
        "<w:p>" + "".join(f"<w:r><w:t>{piece}</w:t></w:r>" for piece in pieces)
        + "</w:p></w:docPartBody></w:docPart></w:docParts></w:glossaryDocument>"), DOCX, "essay.docx"),
}


@pytest.mark.parametrize("policy", ["youth-strict", "supervised"])
@pytest.mark.parametrize("place", sorted(_OTHER_PLACES))
def test_a_disclosure_in_a_text_box_chart_header_master_or_glossary_is_urgent(place: str, policy: str) -> None:
    """Every XML part is read, not only the body: a text box, a chart's title, a sheet's header (its codes
    taken out), a slide master (where slide footers live), the glossary of building blocks."""
    _, decision = _relay(_mail(*_OTHER_PLACES[place]([DISCLOSURE])), policy)
    assert decision.action == "hold" and decision.urgent, decision.reason_dicts()
    assert {("keywords", "abuse"), ("keywords", "secrecy")} <= _kinds(decision), decision.reason_dicts()


@pytest.mark.parametrize("place", sorted(_OTHER_PLACES))
def test_a_name_cut_into_runs_outside_the_body_is_seen_by_the_identity_rule(place: str) -> None:
    """As in a DOCX body: the cleaning scrubs each run (or header piece) alone, the rules read them joined."""
    _, decision = _relay(_mail(*_OTHER_PLACES[place](["Ja", "ne Doe, class 9B"]), "My work."), "adult-professional")
    assert decision.action == "hold" and ("identity", "own_name") in _kinds(decision), decision.reason_dicts()


def test_a_sheet_header_is_read_without_its_codes_and_a_chart_without_its_numbers() -> None:
    header = ('&amp;L&amp;"Arial,Bold"&amp;14Term &amp;&amp; marks&amp;C&amp;K00FF00Form 9B&amp;RPage &amp;P '
              "of &amp;N")
    chart = (f'{_CT}<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:chart><c:ser>'
             "<c:tx><c:v>Maths</c:v></c:tx><c:cat><c:strRef><c:strCache><c:pt idx=\"0\"><c:v>Spring</c:v></c:pt>"
             "</c:strCache></c:strRef></c:cat><c:val><c:numRef><c:numCache><c:pt idx=\"0\"><c:v>4155550132</c:v>"
             "</c:pt></c:numCache></c:numRef></c:val></c:ser></c:chart></c:chartSpace>")
    text = document_text.text_of(_package({
        "xl/worksheets/sheet1.xml": _PLAIN_SHEET.replace(
            "</sheetData>", f"</sheetData><headerFooter><oddHeader>{header}</oddHeader></headerFooter>"),
        "xl/charts/chart1.xml": chart}), "ooxml")
    assert "\tTerm & marks\tForm 9B\tPage  of \n" in text
    assert "Maths" in text and "Spring" in text and "4155550132" not in text


def _operations_bomb() -> bytes:
    """A 6 KB PDF of two pages, each drawn with 3,000 lines of 26 kerned pieces (pypdf would read for seconds)."""
    return text_pdf(*[b"BT /F1 12 Tf " + (b"[" + b"(a) -1 " * 25 + b"(b)] TJ ") * 3_000 + b"ET"] * 2)


def _parsing_bomb() -> bytes:
    """A 3 KB PDF whose page's content stream holds 300,000 numbers and operators (parsed before it is read)."""
    return text_pdf(b"BT /F1 12 Tf " + b"1 0 Td " * 100_000 + b"ET")


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: text_pdf(*[_page("page")] * (document_text.MAX_PAGES + 1)),
     f"the PDF is too big for its pages to be checked for real names (it has {document_text.MAX_PAGES + 1} pages, "
     f"more than the {document_text.MAX_PAGES} the relay reads)"),
    (_operations_bomb, "the PDF is too big for its pages to be checked for real names (its pages are drawn with "
                       f"more than {document_text.MAX_OPERATIONS:,} operations)"),
    (_parsing_bomb, "the PDF is too big for its pages to be checked for real names (a page is drawn with more data "
                    "than the relay reads)"),
    (lambda: text_pdf(*ORDINARY)[:-600], "the file could not be read to clean it (PdfError)"),
], ids=["pages", "operations", "parsing", "damaged"])
def test_a_pdf_too_big_to_check_or_damaged_is_held_with_the_reason(make: Any, expected: str) -> None:
    delivered, decision = _relay(_mail(make(), "application/pdf", "notes.pdf", "notes attached"), "adult-professional")
    assert decision.action == "hold"
    assert [r["match"] for r in decision.reason_dicts() if r["kind"] == "not_cleaned"] == [f"notes.pdf: {expected}"]
    assert _attached(delivered, "notes.pdf") is None


def test_reading_a_damaged_document_never_raises() -> None:
    for data in (b"%PDF-1.7\n1 0 obj << /Type /Catalog", b"PK\x03\x04 not a zip", text_pdf(*ORDINARY)[:200], b""):
        for kind in ("pdf", "ooxml", "odf"):
            assert document_text.readable(data, kind) == ""


# --- end to end, over SMTP ---------------------------------------------------------------------------


async def _held(layout: Layout) -> list[dict[str, Any]]:
    result = await acli(layout, "held", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("document", ["docx", "pdf"])
async def test_end_to_end_a_disclosure_only_in_an_attachment_alerts_the_lead(
    layout: Layout, sink: Sink, document: str,
) -> None:
    use_shipped_policy(layout)
    data = _docx([DISCLOSURE]) if document == "docx" else text_pdf(_page(DISCLOSURE))
    async with serving(layout):
        pair = await acreate_pair(layout)
        alias = pair["mentor_alias"]
        raw = _mail(data, DOCX if document == "docx" else "application/pdf", f"story.{document}", to=alias)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], alias)
        assert code == 250, reply
        inbox = Inboxes(sink)
        await sink.wait_for(3)  # the help text to the mentee, the lead's and the moderators' URGENT alerts
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert inbox.counts() == {"mentor": 0, "mentee": 1, "moderators": 1, "lead": 1, "coordinator": 0}
        [alert] = inbox.of(LEAD)
        assert alert["Subject"].startswith("URGENT")
        assert "(abuse, URGENT): stepdad hits me" in text(alert) and leaks(alert) == []
        assert inbox.of(MODERATORS)[0]["Subject"].startswith("URGENT")
        [item] = await _held(layout)
        assert (item["severity"], item["release_requires"]) == ("urgent", 2)


async def test_end_to_end_the_moderator_sees_why_a_pdf_with_a_real_name_is_held(layout: Layout, sink: Sink) -> None:
    use_shipped_policy(layout, "supervised", lead=False)
    async with serving(layout):
        pair = await acreate_pair(layout)
        alias = pair["mentor_alias"]
        raw = _mail(text_pdf(*HOMEWORK), "application/pdf", "homework.pdf", "Here is my homework.", to=alias)
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], alias)
        assert code == 250, reply
        [item] = await _held(layout)
        shown = await acli(layout, "held", "show", str(item["id"]), "--json")
        assert shown.returncode == 0, shown.stderr
        assert "the pages of this PDF show a real name or address, which cannot be removed from a PDF" in shown.stdout
        await eventually(lambda: nothing_queued(layout), timeout=20)
        assert Inboxes(sink).mentor == []


# --- what a PDF shows outside its pages' drawing ---------------------------------------------------------


def _annotated(build: Any) -> bytes:
    """A one-page ORDINARY PDF with what `build(pdf, font)` adds (annotations, bookmarks, destinations)."""
    with pikepdf.open(io.BytesIO(text_pdf(*ORDINARY))) as pdf:
        build(pdf, pdf.pages[0].obj.Resources.Font.F1)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def _form(pdf: pikepdf.Pdf, font: pikepdf.Object, text: str) -> pikepdf.Stream:
    form = pikepdf.Stream(pdf, b"BT /F1 12 Tf 2 4 Td (" + text.encode("latin-1") + b") Tj ET")
    form.Type, form.Subtype, form.BBox = pikepdf.Name.XObject, pikepdf.Name.Form, [0, 0, 300, 20]
    form.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    return form


def _annotations(pdf: pikepdf.Pdf, *annotations: pikepdf.Dictionary) -> None:
    pdf.pages[0].obj["/Annots"] = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(a) for a in annotations]))


@pytest.mark.parametrize("policy", ["youth-strict", "supervised"])
def test_a_disclosure_drawn_only_by_a_stamps_appearance_is_urgent(policy: str) -> None:
    stamp = _annotated(lambda pdf, font: _annotations(pdf, pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Stamp, Rect=[72, 600, 372, 620],
        AP=pikepdf.Dictionary(N=_form(pdf, font, DISCLOSURE)))))
    _, decision = _relay(_mail(stamp, "application/pdf", "stamp.pdf"), policy)
    assert decision.action == "hold" and decision.urgent, decision.reason_dicts()
    assert {("keywords", "abuse"), ("keywords", "secrecy")} <= _kinds(decision), decision.reason_dicts()


def test_a_free_text_box_loses_the_appearance_that_drew_the_name() -> None:
    """The scrubbed /Contents is what a viewer draws now; the old appearance showed the name."""
    box = _annotated(lambda pdf, font: _annotations(pdf, pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FreeText, Rect=[72, 600, 172, 620],
        Contents=pikepdf.String("Jane Doe"), DA=pikepdf.String("/Helv 12 Tf 0 g"),
        AP=pikepdf.Dictionary(N=_form(pdf, font, "Jane Doe")))))
    delivered, decision = _relay(_mail(box, "application/pdf", "form.pdf", "Here it is."), "adult-professional")
    assert decision.action == "deliver", decision.reason_dicts()
    copy = _attached(delivered, "form.pdf")
    assert copy is not None and b"Jane" not in copy and b"Doe" not in copy
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        [annotation] = pdf.pages[0].obj.Annots
        assert str(annotation.Contents) == "Maple" and "/AP" not in annotation


def test_an_appearance_showing_the_name_by_itself_holds_the_pdf() -> None:
    stamp = _annotated(lambda pdf, font: _annotations(pdf, pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Stamp, Rect=[72, 600, 372, 620],
        AP=pikepdf.Dictionary(N=pikepdf.Dictionary(On=_form(pdf, font, "Approved by Jane Doe"))))))
    delivered, decision = _relay(_mail(stamp, "application/pdf", "stamp.pdf", "Signed."), "adult-professional")
    assert [r["match"] for r in decision.reason_dicts() if r["kind"] == "not_cleaned"] == [
        "stamp.pdf: the pages of this PDF show a real name or address, which cannot be removed from a PDF"]
    assert _attached(delivered, "stamp.pdf") is None


def _outline_and_links(pdf: pikepdf.Pdf, font: pikepdf.Object) -> None:
    with pdf.open_outline() as outline:
        outline.root.append(pikepdf.OutlineItem("Chapter 1", 0))
    pdf.Root.Dests = pikepdf.Dictionary(Chapter1=pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit]))
    _annotations(pdf, pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Text, Rect=[72, 500, 92, 520],
                                         Contents=pikepdf.String("Check the units here")),
                 pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[72, 700, 300, 730],
                                    Dest=pikepdf.Name.Chapter1),
                 pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[72, 650, 300, 680],
                                    A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org"))))


def test_an_ordinary_annotated_pdf_keeps_its_bookmark_and_links() -> None:
    """Nothing in it names anybody: the bookmark, the jump and the web link stay as they are. The web link is
    read by the rules as a link typed on the page is (every shipped policy reports links: held, not cleaned
    away); the copy a release delivers is the file with its links."""
    original = _annotated(_outline_and_links)
    delivered, decision = _relay(_mail(original, "application/pdf", "notes.pdf", "Notes."), "adult-professional")
    assert _kinds(decision) == {("contact_info", "url")}, decision.reason_dicts()
    assert [r["match"] for r in decision.reason_dicts()] == ["https://example.org"]
    copy = _attached(delivered, "notes.pdf")
    assert copy is not None
    with pikepdf.open(io.BytesIO(copy)) as pdf, pdf.open_outline() as outline:
        assert [item.title for item in outline.root] == ["Chapter 1"]
        text, jump, link = pdf.pages[0].obj.Annots
        assert str(text.Contents) == "Check the units here"
        assert jump.Dest == pikepdf.Name.Chapter1 and "/Chapter1" in pdf.Root.Dests
        assert str(link.A.URI) == "https://example.org"
    assert "Chapter 1" in document_text.text_of(copy, "pdf")


def test_a_link_in_a_pdf_is_held_for_a_person_where_a_typed_one_is_rejected() -> None:
    """youth-strict rejects a link typed in mail (the sender takes it out and writes again); one in a handout
    cannot be taken out so, nor redacted: it is held for a moderator, who tells a citation from a private
    channel."""
    original = _annotated(_outline_and_links)
    _, decision = _relay(_mail(original, "application/pdf", "notes.pdf", "Notes."), "youth-strict")
    assert decision.action == "hold", decision.reason_dicts()
    assert ("contact_info", "url") in _kinds(decision)
    _, typed = _relay(_mail(b"", "text/plain", "notes.txt", "Notes: https://example.org"), "youth-strict")
    assert typed.action == "reject", typed.reason_dicts()


def test_an_ordinary_pdf_with_a_bookmark_and_a_jump_is_delivered() -> None:
    def build(pdf: pikepdf.Pdf, font: pikepdf.Object) -> None:
        _outline_and_links(pdf, font)
        del pdf.pages[0].obj.Annots[2]
    original = _annotated(build)
    delivered, decision = _relay(_mail(original, "application/pdf", "notes.pdf", "Notes."), "adult-professional")
    assert decision.action == "deliver", decision.reason_dicts()
    copy = _attached(delivered, "notes.pdf")
    assert copy is not None and document_text.text_of(copy, "pdf") == document_text.text_of(original, "pdf")


def test_named_destinations_renamed_with_their_references() -> None:
    """A destination named after the sender is renamed as the scrub renames a link's reference to it, so the
    link still lands; the /Names tree is rebuilt sorted."""
    def build(pdf: pikepdf.Pdf, font: pikepdf.Object) -> None:
        target = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])
        pdf.Root.Dests = pikepdf.Dictionary(JaneDoe=target)
        tree = pikepdf.NameTree.new(pdf)
        tree["Jane Doe notes"] = target
        tree["appendix"] = target
        pdf.Root.Names = pikepdf.Dictionary(Dests=tree.obj)
        _annotations(pdf, pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 9, 9],
                                             Dest=pikepdf.Name.JaneDoe),
                     pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 9, 9],
                                        A=pikepdf.Dictionary(S=pikepdf.Name.GoTo, D=pikepdf.String("Jane Doe notes"))))
    delivered, decision = _relay(_mail(_annotated(build), "application/pdf", "d.pdf", "Notes."), "adult-professional")
    assert decision.action == "deliver", decision.reason_dicts()
    copy = _attached(delivered, "d.pdf")
    assert copy is not None and b"Jane" not in copy and b"Doe" not in copy
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        first, second = pdf.pages[0].obj.Annots
        assert str(first.Dest)[1:] in [key[1:] for key in pdf.Root.Dests]
        tree = pikepdf.NameTree(pdf.Root.Names.Dests)
        assert sorted(tree.keys()) == ["Maple notes", "appendix"] and str(second.A.D) in tree


def test_cycles_in_bookmarks_and_chained_actions_end() -> None:
    """A bookmark whose /Next is itself and an action whose /Next is itself: read once, no hang."""
    def build(pdf: pikepdf.Pdf, font: pikepdf.Object) -> None:
        item = pdf.make_indirect(pikepdf.Dictionary(Title=pikepdf.String("Loop")))
        item.Next = item
        item.First = item
        pdf.Root.Outlines = pdf.make_indirect(pikepdf.Dictionary(First=item, Last=item))
        action = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.URI,
                                                      URI=pikepdf.String("mailto:jane.doe@mail.example.org")))
        action.Next = pikepdf.Array([action, action])
        _annotations(pdf, pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 9, 9],
                                             A=action))
    data = _annotated(build)
    assert document_text.text_of(data, "pdf").count("Loop") == 1
    delivered, decision = _relay(_mail(data, "application/pdf", "loop.pdf", "Notes."), "adult-professional")
    copy = _attached(delivered, "loop.pdf")
    assert copy is not None and b"jane.doe" not in copy, decision.reason_dicts()
