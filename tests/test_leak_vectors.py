"""Leak vectors of real-world mail (issue 11): what the partner receives carries no identity of the sender
or of themselves, in any part, attribute, file name or attachment metadata, or the message is held with
the reason.

Each vector is one message in the style of a real client (Gmail, Outlook desktop/web/365, Apple Mail and
iPhone, Thunderbird, Yahoo, Android, a school's Exchange), sent both ways, through the relay's own line
(anonymise, inspect, the shipped adult-professional policy, redact: relay.pipeline.prepare), and the
delivered bytes are searched with tests/decode_all.py, which decodes everything on its own. Attachments
are real files made here with Pillow, pillow-heif, pikepdf and zipfile; a cleaned file must still open.
A few vectors also go through a running relay over SMTP to the sink (test_end_to_end_*).
"""

from __future__ import annotations

import base64
import io
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

import pikepdf
import pillow_heif
import pytest
from PIL import Image

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from relay.service import Relay
from tests.decode_all import leaks
from tests.support import REPO, Layout, Sink, acli, acreate_pair, eventually, nothing_queued, send

pillow_heif.register_heif_opener()
DOMAIN = "relay.test"
POLICY = parse_policy(REPO / "policies" / "adult-professional.yaml")


@dataclass(frozen=True)
class Member:
    name: str
    email: str
    handle: str
    alias: str
    nicknames: tuple[str, ...] = ()

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def last(self) -> str:
        return self.name.split()[-1]

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]

    def identity(self) -> Identity:
        return Identity(self.email, self.name, self.alias, self.handle, self.nicknames)

    def needles(self) -> list[str]:
        local = self.email.partition("@")[0]
        parts = {p for w in self.name.split() for p in w.split("-") if len(p) >= 3}
        return [self.email, local, self.domain, *parts, *self.nicknames]


THEO = Member("Théodora Vlindqvist", "theo.vlindqvist@mentor-mail.example", "Oak", f"oak.k2@{DOMAIN}", ("Teodorka",))
AMARU = Member("Amaru Quispe-Mamani", "amaru.qm@andes-post.example", "Maple", f"maple.x9@{DOMAIN}")
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


def _base(s: Member, p: Member, subject: str = "Re: essay") -> EmailMessage:
    m = EmailMessage()
    m["From"] = f"{s.name} <{s.email}>"
    m["To"] = p.alias
    m["Subject"] = subject
    m["Date"] = "Wed, 04 Nov 2026 10:17:41 +0100"
    m["Message-ID"] = f"<abc.{s.handle}@{s.domain}>"
    return m


def _alt(s: Member, p: Member, plain: str, html_body: str) -> bytes:
    m = _base(s, p)
    m.set_content(plain)
    m.add_alternative(html_body, subtype="html")
    return m.as_bytes()


def _html_only(s: Member, p: Member, html_body: str) -> bytes:
    m = _base(s, p)
    m.set_content(html_body, subtype="html")
    return m.as_bytes()


def _plain(s: Member, p: Member, text: str, charset: str = "utf-8") -> bytes:
    m = _base(s, p)
    m.set_content(text)
    return m.as_bytes()


def _with_file(s: Member, p: Member, data: bytes, maintype: str, subtype: str, filename: str) -> bytes:
    m = _base(s, p)
    m.set_content("Here is the file, see you Thursday.\n")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def _exif(s: Member) -> Image.Exif:
    exif = Image.Exif()
    exif[0x013B] = s.name  # Artist
    exif[0x8298] = f"(c) {s.name}"  # Copyright
    exif[0x010E] = f"photo by {s.first}"  # ImageDescription
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})  # GPS
    return exif


def _xmp(s: Member) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>{s.name} {s.email}'
            f"</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>").encode()


def _image(s: Member, fmt: str) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (32, 24), (200, 120, 40))
    if fmt == "JPEG":
        image.save(out, format="JPEG", exif=_exif(s).tobytes(), xmp=_xmp(s), comment=s.name.encode())
    elif fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Author", s.name)
        info.add_itxt("Description", f"{s.email}")
        image.save(out, format="PNG", pnginfo=info, exif=_exif(s).tobytes())
    elif fmt == "GIF":
        image.save(out, format="GIF", comment=f"{s.name} {s.email}".encode())
    elif fmt == "WEBP":
        image.save(out, format="WEBP", exif=_exif(s).tobytes(), xmp=_xmp(s))
    elif fmt == "HEIF":
        image.save(out, format="HEIF", exif=_exif(s).tobytes(), xmp=_xmp(s))
    return out.getvalue()


def _pdf(s: Member, encrypted: bool = False) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    pdf.docinfo["/Author"] = s.name
    pdf.docinfo["/Creator"] = f"Word for {s.email}"
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = [s.name]
    annotation = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Text,
                                                      Rect=[10, 10, 50, 50], T=s.name, Contents="nice"))
    pdf.pages[0].obj["/Annots"] = pikepdf.Array([annotation])
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(owner="o", user="u") if encrypted else False)
    return out.getvalue()


_CT = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def _core(s: Member) -> str:
    return (_CT + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Essay</dc:title>'
            f"<dc:creator>{s.name}</dc:creator><cp:lastModifiedBy>{s.first.lower()}_{s.last.lower()}"
            "</cp:lastModifiedBy></cp:coreProperties>")


def _ooxml(s: Member, kind: str) -> bytes:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    files = {"[Content_Types].xml": _CT + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="xml" ContentType="application/xml"/></Types>',
             "docProps/core.xml": _core(s),
             "docProps/app.xml": _CT + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
             f'extended-properties"><Company>{s.last} family</Company><Manager>{s.name}</Manager></Properties>'}
    if kind == "docx":
        files["word/document.xml"] = (_CT + f'<w:document xmlns:w="{w}"><w:body><w:p><w:ins w:id="1" w:author='
                                      f'"{s.name}" w:initials="TV"><w:r><w:t>My essay</w:t></w:r></w:ins></w:p>'
                                      "</w:body></w:document>")
        files["word/comments.xml"] = (_CT + f'<w:comments xmlns:w="{w}"><w:comment w:id="0" w:author="{s.name}" '
                                      'w:initials="TV"><w:p><w:r><w:t>check</w:t></w:r></w:p></w:comment></w:comments>')
        files["word/people.xml"] = (_CT + '<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/'
                                    f'wordml"><w15:person w15:author="{s.name}"><w15:presenceInfo w15:providerId="AD"'
                                    f' w15:userId="S::{s.email}::1"/></w15:person></w15:people>')
    elif kind == "xlsx":
        files["xl/comments1.xml"] = (_CT + '<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
                                     f'main"><authors><author>{s.name}</author></authors></comments>')
    else:
        files["ppt/commentAuthors.xml"] = (_CT + '<p:cmAuthorLst xmlns:p="http://schemas.openxmlformats.org/'
                                           f'presentationml/2006/main"><p:cmAuthor id="1" name="{s.name}" '
                                           'initials="TV" lastIdx="1" clrIdx="0"/></p:cmAuthorLst>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def _odt(s: Member) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("meta.xml", _CT + '<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:'
                         'xmlns:office:1.0" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
                         'xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta>'
                         f"<meta:initial-creator>{s.name}</meta:initial-creator><dc:creator>{s.name}</dc:creator>"
                         "</office:meta></office:document-meta>")
        archive.writestr("content.xml", _CT + '<office:document-content xmlns:office="urn:oasis:names:tc:'
                         'opendocument:xmlns:office:1.0"/>')
    return out.getvalue()


def _raw(s: Member, p: Member, body: str, content_type: str = "text/plain; charset=utf-8",
         extra: str = "", encoding: str = "8bit") -> bytes:
    head = (f"From: {s.name} <{s.email}>\r\nTo: {p.alias}\r\nSubject: hello\r\nDate: Wed, 04 Nov 2026 10:17:41 "
            f"+0100\r\nMessage-ID: <r.{s.handle}@{s.domain}>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n{extra}\r\n")
    return head.encode("utf-8") + (body.encode("utf-8") if isinstance(body, str) else body)


def _multipart(s: Member, p: Member, parts: list[str], subtype: str = "mixed", epilogue: str = "",
               params: str = "") -> bytes:
    body = "".join(f"--b0\r\n{part}\r\n" for part in parts) + "--b0--\r\n" + epilogue
    return _raw(s, p, body, f'multipart/{subtype}; boundary="b0"{params}', encoding="7bit")


Builder = Callable[[Member, Member], bytes]
V: dict[str, tuple[Builder, str]] = {}


def vector(name: str, expect: str = "deliver") -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        V[name] = (builder, expect)
        return builder
    return register


@vector("gmail_html_signature")
def _(s: Member, p: Member) -> bytes:
    return _alt(s, p, "Thanks for the notes!\n\n--\nOak", f'<div dir="ltr">Thanks for the notes!<br><div class='
                f'"gmail_signature"><b>{s.name}</b><br><a href="https://www.linkedin.com/in/'
                f'{s.first.lower()}-{s.last.lower()}-4b2a91/">LinkedIn</a></div></div>')


@vector("outlook_safelinks")
def _(s: Member, p: Member) -> bytes:
    link = ("https://eur03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fschool.example%2Fessay&data=05%7C02%7C"
            + quote(s.email, safe="") + "%7C1f2e%7C&sdata=abc%3D&reserved=0")
    return _html_only(s, p, f'<p class=MsoNormal>Here is the <a href="{link}">essay page</a>.</p>')


@vector("tracking_link_base64")
def _(s: Member, p: Member) -> bytes:
    token = base64.urlsafe_b64encode(s.email.encode()).decode()
    return _alt(s, p, "Look at this course.", f'<a href="https://click.news.example/t?e={token}&c=9">course</a>')


@vector("name_split_across_tags")
def _(s: Member, p: Member) -> bytes:
    first = s.first
    return _html_only(s, p, f"<p>Cheers,<br><b>{first[:4]}</b>{first[4:]} <span class=SpellE>{s.last[:3]}</span>"
                      f"{s.last[3:]}</p>")


@vector("alt_and_title_attributes")
def _(s: Member, p: Member) -> bytes:
    return _html_only(s, p, f'<p>Our team: <img alt="{s.name} at the fair" title="{p.name}" src="https://img.example/x.png"'
                      "></p>")


@vector("word_paste_file_path")
def _(s: Member, p: Member) -> bytes:
    user = s.first.lower()
    return _html_only(s, p, f'<p class=MsoNormal><img width=20 src="file:///Users/{user}/Library/Group%20Containers/'
                      f'clip_image001.png">Essay draft <a href="file:///C:/Users/{s.last}/Documents/essay.docx">here</a></p>')


@vector("hidden_text")
def _(s: Member, p: Member) -> bytes:
    return _html_only(s, p, f'<p>See you.</p><div style="display:none">{s.email}</div><span style="font-size:0px">'
                      f"{s.name}</span><!-- sent by {s.first} -->")


@vector("outlook_conditional_comment")
def _(s: Member, p: Member) -> bytes:
    return _html_only(s, p, f"<!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:Author>{s.name}</o:Author>"
                      "</o:OfficeDocumentSettings></xml><![endif]--><p class=MsoNormal>Hi!</p>")


@vector("alternative_halves_disagree")
def _(s: Member, p: Member) -> bytes:
    return _alt(s, p, "Hi, see you soon.", f"<p>Hi {p.first}, see you soon.</p><p>{s.name}<br>"
                f'<a href="mailto:{s.email}">{s.email}</a></p>')


@vector("mailto_percent_encoded")
def _(s: Member, p: Member) -> bytes:
    return _html_only(s, p, f'<a href="mailto:{quote(s.email, safe="")}?subject=hi">write me</a>')


@vector("entities_in_html")
def _(s: Member, p: Member) -> bytes:
    name = "".join(f"&#{ord(c)};" for c in s.first)
    return _html_only(s, p, f"<p>Best, {name}</p>")


@vector("lowercase_signoff")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"sounds good, thanks!\n\n- {s.first.lower()}\n")


@vector("first_name_prefix_nickname")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"Talk soon,\n{s.first[:4]}\n")


@vector("username_glued_to_digits")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"my old account was {s.first.lower()}_{s.last.lower().split('-')[0]}09 lol\n")


@vector("one_half_of_double_surname")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"Hello {p.last.split('-')[-1]}!\nAll the best\n")


@vector("nfd_accents_macos")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, unicodedata.normalize("NFD", f"Kind regards,\n{s.name}\n"))


@vector("fullwidth_letters")
def _(s: Member, p: Member) -> bytes:
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s.last)
    return _plain(s, p, f"signed {wide}\n")


@vector("cyrillic_lookalikes")
def _(s: Member, p: Member) -> bytes:
    fake = s.last.replace("a", "а").replace("o", "о").replace("e", "е").replace("i", "і")
    return _plain(s, p, f"Best, {fake}\n")


@vector("latin1_bytes_labelled_utf8")
def _(s: Member, p: Member) -> bytes:
    return _raw(s, p, "", extra="") .replace(b"Content-Transfer-Encoding: 8bit", b"Content-Transfer-Encoding: 8bit") \
        + f"Saludos, {s.name}\r\n".encode("latin-1", "replace")


@vector("utf8_bytes_labelled_koi8r")
def _(s: Member, p: Member) -> bytes:
    return _raw(s, p, f"Saludos, {s.name}\r\n", "text/plain; charset=koi8-r")


@vector("quoted_printable_soft_breaks")
def _(s: Member, p: Member) -> bytes:
    body = f"Bye from {s.first}\r\n{s.email}\r\n".encode()
    import quopri

    encoded = quopri.encodestring(body).decode().replace(s.first[:3], s.first[:3] + "=\r\n")
    return _raw(s, p, encoded, encoding="quoted-printable")


@vector("address_wrapped_at_at")
def _(s: Member, p: Member) -> bytes:
    local, _, domain = s.email.partition("@")
    return _plain(s, p, f"> you can reach me at {local}@\n> {domain} anytime\n")


@vector("quoted_attribution")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"Yes!\n\nOn Tue, 3 Nov 2026 at 14:02, {p.name} <{p.email}> wrote:\n> Shall we meet?\n")


@vector("yahoo_signature")
def _(s: Member, p: Member) -> bytes:
    return _alt(s, p, "ok", f'<div class="yahoo-style-wrap"><div>ok</div><div id="ymail_android_signature">'
                f'<a id="ymail_android_signature_link" href="https://go.onelink.me/107872968?pid=InProduct&amp;'
                f'c=Global_Internal_YGrowth&amp;af_sub1={quote(s.email)}">Sent from Yahoo Mail</a></div></div>')


@vector("android_plain")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"ok see u\n\nSent from my Galaxy\n{s.first} {s.last.upper()}\n")


@vector("iphone_signature")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"Great, thanks!\n\n{s.first[:4]} {s.last[0]}.\nSent from my iPhone\n")


@vector("school_exchange_disclaimer")
def _(s: Member, p: Member) -> bytes:
    return _alt(s, p, "See attached.", f"<p>See attached.</p><p style='font-size:7pt;color:#999'>This e-mail is "
                f"intended for {p.name} only. {s.name} | Riverside High</p>")


@vector("tel_and_sms_links", expect="deliver")
def _(s: Member, p: Member) -> bytes:
    return _html_only(s, p, f'<p><a href="tel:+15550104477">{s.first}\'s phone</a> '
                      '<a href="sms:+15550104477">text</a></p>')


@vector("nickname_enrolled")
def _(s: Member, p: Member) -> bytes:
    return _plain(s, p, f"hugs from {(s.nicknames or ('Quispito',))[0].lower()}\n")


@vector("subject_and_filename_nfd")
def _(s: Member, p: Member) -> bytes:
    m = _base(s, p, subject=f"{s.name} essay")
    m.set_content("attached")
    m.add_attachment(b"plain notes\n", maintype="text", subtype="plain",
                     filename=unicodedata.normalize("NFD", f"{s.first}_{s.last}_Essay_v3.txt"))
    return m.as_bytes()


@vector("jpeg_exif_gps_xmp")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _image(s, "JPEG"), "image", "jpeg", "IMG_2041.jpg")


@vector("png_text_chunks")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _image(s, "PNG"), "image", "png", "diagram.png")


@vector("gif_comment")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _image(s, "GIF"), "image", "gif", "wave.gif")


@vector("webp_exif")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _image(s, "WEBP"), "image", "webp", "photo.webp")


@vector("heic_exif")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _image(s, "HEIF"), "image", "heic", "IMG_0001.HEIC")


@vector("pdf_info_xmp_annotations")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _pdf(s), "application", "pdf", f"{s.first}_{s.last}_Essay_v3.pdf")


def _pdf_parts(build: Callable[[pikepdf.Pdf, pikepdf.Dictionary], None]) -> bytes:
    """A one-page PDF showing an ordinary line, with what `build` adds to it (given the file and its font)."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica, Encoding=pikepdf.Name.WinAnsiEncoding))
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792],
                              Contents=pikepdf.Stream(pdf, b"BT /F1 12 Tf 72 720 Td (How bridges carry loads) Tj ET"),
                              Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)))
    pdf.pages.append(pikepdf.Page(page))
    build(pdf, font)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _appearance(pdf: pikepdf.Pdf, font: pikepdf.Dictionary, text: str) -> pikepdf.Stream:
    """A form XObject drawing `text` as a hex string (as Acrobat writes it), the way annotations show."""
    form = pikepdf.Stream(pdf, b"BT /F1 12 Tf 2 4 Td <" + text.encode("cp1252").hex().encode() + b"> Tj ET")
    form.Type, form.Subtype, form.BBox = pikepdf.Name.XObject, pikepdf.Name.Form, [0, 0, 300, 20]
    form.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    return form


def _annotate(pdf: pikepdf.Pdf, **entries: object) -> None:
    annotation = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Annot, Rect=[72, 600, 372, 620], **entries))
    pdf.pages[0].obj["/Annots"] = pdf.make_indirect(pikepdf.Array([annotation]))


def _link(pdf: pikepdf.Pdf, action: pikepdf.Dictionary) -> None:
    _annotate(pdf, Subtype=pikepdf.Name.Link, A=action)


@vector("pdf_free_text_box_appearance")
def _(s: Member, p: Member) -> bytes:
    """Preview's or Acrobat's "Fill & Sign" text box: its text in /Contents and drawn again in its appearance."""
    return _with_file(s, p, _pdf_parts(lambda pdf, font: _annotate(
        pdf, Subtype=pikepdf.Name.FreeText, Contents=pikepdf.String(s.name), DA=pikepdf.String("/Helv 12 Tf 0 g"),
        AP=pikepdf.Dictionary(N=_appearance(pdf, font, s.name)))), "application", "pdf", "form.pdf")


@vector("pdf_stamp_appearance_only", expect="hold:not_cleaned")
def _(s: Member, p: Member) -> bytes:
    """A stamp whose appearance alone shows the name: it cannot be rewritten, so the file is held."""
    return _with_file(s, p, _pdf_parts(lambda pdf, font: _annotate(
        pdf, Subtype=pikepdf.Name.Stamp, AP=pikepdf.Dictionary(N=_appearance(pdf, font, f"Signed: {s.name}")))),
        "application", "pdf", "signed.pdf")


@vector("pdf_bookmark_title")
def _(s: Member, p: Member) -> bytes:
    def build(pdf: pikepdf.Pdf, font: pikepdf.Dictionary) -> None:
        with pdf.open_outline() as outline:
            outline.root.append(pikepdf.OutlineItem(f"{s.name} - CV", 0))
    return _with_file(s, p, _pdf_parts(build), "application", "pdf", "cv.pdf")


@vector("pdf_mailto_link")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _pdf_parts(lambda pdf, font: _link(pdf, pikepdf.Dictionary(
        S=pikepdf.Name.URI, URI=pikepdf.String(f"mailto:{s.email}")))), "application", "pdf", "contact.pdf")


@vector("pdf_profile_link", expect="hold:handle")
def _(s: Member, p: Member) -> bytes:
    """A link to the sender's profile: the name in its path becomes the handle, and the rules read the link
    (a social profile is a contact detail, which cannot be redacted inside a file: held)."""
    slug = f"{s.first.lower()}-{s.last.lower()}-4a1b2c"
    return _with_file(s, p, _pdf_parts(lambda pdf, font: _link(pdf, pikepdf.Dictionary(
        S=pikepdf.Name.URI, URI=pikepdf.String(f"https://www.linkedin.com/in/{slug}")))), "application", "pdf",
        "profile.pdf")


@vector("pdf_link_to_another_file_chained", expect="hold:url")
def _(s: Member, p: Member) -> bytes:
    """A link that opens a file in the sender's home folder, then (a /Next action) a web page naming them: both
    scrubbed, and the web link read by the rules as a link typed on the page would be."""
    return _with_file(s, p, _pdf_parts(lambda pdf, font: _link(pdf, pikepdf.Dictionary(
        S=pikepdf.Name.GoToR, F=pikepdf.String(f"C:\\Users\\{s.first}\\Documents\\{s.last} CV.pdf"),
        D=pikepdf.Array([0, pikepdf.Name.Fit]),
        Next=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(f"https://blog.example/by/{s.last}"))))),
        "application", "pdf", "links.pdf")


@vector("pdf_page_label_prefix")
def _(s: Member, p: Member) -> bytes:
    def build(pdf: pikepdf.Pdf, font: pikepdf.Dictionary) -> None:
        pdf.Root.PageLabels = pikepdf.Dictionary(Nums=pikepdf.Array([0, pikepdf.Dictionary(
            S=pikepdf.Name.D, P=pikepdf.String(f"{s.name}-"))]))
    return _with_file(s, p, _pdf_parts(build), "application", "pdf", "labels.pdf")


@vector("pdf_named_destinations")
def _(s: Member, p: Member) -> bytes:
    """Destinations named after the sender, in the catalog's /Dests and the /Names tree, and a link to each."""
    def build(pdf: pikepdf.Pdf, font: pikepdf.Dictionary) -> None:
        target = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])
        old_style = f"{s.first}{s.last}".replace("-", "")
        pdf.Root.Dests = pikepdf.Dictionary({f"/{old_style}": target})
        tree = pikepdf.NameTree.new(pdf)
        tree[f"{s.last} notes"] = target
        pdf.Root.Names = pikepdf.Dictionary(Dests=tree.obj)
        _annotate(pdf, Subtype=pikepdf.Name.Link, Dest=pikepdf.Name(f"/{old_style}"),
                  A=pikepdf.Dictionary(S=pikepdf.Name.GoTo, D=pikepdf.String(f"{s.last} notes")))
    return _with_file(s, p, _pdf_parts(build), "application", "pdf", "dests.pdf")


@vector("docx_authors")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _ooxml(s, "docx"), "application",
                      "vnd.openxmlformats-officedocument.wordprocessingml.document", "essay.docx")


@vector("xlsx_comment_authors")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _ooxml(s, "xlsx"), "application",
                      "vnd.openxmlformats-officedocument.spreadsheetml.sheet", "budget.xlsx")


@vector("pptx_comment_authors")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _ooxml(s, "pptx"), "application",
                      "vnd.openxmlformats-officedocument.presentationml.presentation", "slides.pptx")


@vector("xlsx_header_footer_codes")
def _(s: Member, p: Member) -> bytes:
    """Excel glues a header's codes to its text ("&CThéodora": Théodora, centred); both names, first names too."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sheet = (_CT + f'<worksheet xmlns="{main}"><sheetData/><headerFooter><oddHeader>&amp;C{s.name}</oddHeader>'
             f'<oddFooter>&amp;L&amp;"Calibri,Bold"&amp;11{s.first}&amp;RPage &amp;P</oddFooter>'
             f"<evenHeader>&amp;C{p.first} and {s.first}</evenHeader><firstFooter>&amp;R&amp;K00FF00{p.name}"
             "</firstFooter></headerFooter></worksheet>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return _with_file(s, p, out.getvalue(), "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      "marks.xlsx")


@vector("odt_meta")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _odt(s), "application", "vnd.oasis.opendocument.text", "essay.odt")


@vector("octet_stream_docx_by_extension")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _ooxml(s, "docx"), "application", "octet-stream", "cv.docx")


@vector("inline_image_content_id")
def _(s: Member, p: Member) -> bytes:
    cid = f"part1.{s.first.lower()}@{s.domain}"
    image = base64.encodebytes(_image(s, "PNG")).decode()
    html_part = (f'Content-Type: text/html; charset=utf-8\r\n\r\n<p>logo <img src="cid:{cid}"></p>')
    img_part = (f"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <{cid}>\r\n"
                f"Content-Disposition: inline\r\n\r\n{image}")
    return _multipart(s, p, [html_part, img_part], "related", params=f'; start="<x@{s.domain}>"')


@vector("forwarded_delivery_report")
def _(s: Member, p: Member) -> bytes:
    report = (f"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.{s.domain}\r\n"
              f"X-Postfix-Queue-ID: 4Xyz\r\nX-Postfix-Sender: rfc822; {s.email}\r\nArrival-Date: Wed, 4 Nov 2026 "
              f"10:00:00 +0100\r\n\r\nFinal-Recipient: rfc822; {p.email}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
              f"Remote-MTA: dns; mx.{p.domain}\r\nDiagnostic-Code: smtp; 550 5.1.1 host mx.{p.domain}[192.0.2.7] "
              "said: user unknown\r\n")
    headers = (f"Content-Type: text/rfc822-headers\r\n\r\nReceived: from mail.{s.domain} (mail.{s.domain} "
               f"[192.0.2.5])\r\nFrom: {s.name} <{s.email}>\r\nTo: {p.email}\r\nSubject: hi\r\n")
    return _multipart(s, p, ["Content-Type: text/plain\r\n\r\nThis bounced:", report, headers], "report",
                      params="; report-type=delivery-status")


@vector("icalendar_escaped_name")
def _(s: Member, p: Member) -> bytes:
    cal = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:1@x\r\nSUMMARY:Mentoring\r\n"
           f"DESCRIPTION:See you then\\,\\n{s.first} {s.last[:4]}\r\n {s.last[4:]}\r\nORGANIZER;CN=\"{s.last}\\, "
           f"{s.first}\":mailto:{s.email}\r\nATTENDEE;CN={p.name}:mailto:{p.email}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    return _multipart(s, p, ["Content-Type: text/plain\r\n\r\nInvite", "Content-Type: text/calendar; method=REQUEST; "
                             f"charset=utf-8\r\n\r\n{cal}"], "alternative")


@vector("vcard_21_quoted_printable", expect="hold:type_not_allowed")  # the policy does not allow vCard files
def _(s: Member, p: Member) -> bytes:
    qp = "".join(f"={b:02X}" for b in s.first.encode())
    card = (f"BEGIN:VCARD\r\nVERSION:2.1\r\nN;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:{s.last};{qp[:9]}=\r\n"
            f"{qp[9:]};;;\r\nFN;ENCODING=QUOTED-PRINTABLE:{qp}\r\nEND:VCARD\r\n")
    return _multipart(s, p, ["Content-Type: text/plain\r\n\r\ncard", "Content-Type: text/x-vcard; name=\"me.vcf\"\r\n"
                             f"Content-Disposition: attachment; filename=\"me.vcf\"\r\n\r\n{card}"])


@vector("attached_message_date_and_headers")
def _(s: Member, p: Member) -> bytes:
    inner = (f"From: {s.name} <{s.email}>\r\nTo: {p.name} <{p.email}>\r\nDate: Tue, 03 Nov 2026 08:00:00 -0500\r\n"
             f"Subject: notes\r\nReceived: from x.{s.domain}\r\n\r\nNotes from {s.first}.\r\n")
    return _multipart(s, p, ["Content-Type: text/plain\r\n\r\nForwarding:",
                             f"Content-Type: message/rfc822\r\n\r\n{inner}"])


@vector("multipart_epilogue_and_preamble")
def _(s: Member, p: Member) -> bytes:
    raw = _multipart(s, p, ["Content-Type: text/plain\r\n\r\nhello"], epilogue=f"{s.first} was here\r\n")
    return raw.replace(b"--b0\r\n", f"preamble by {s.name}\r\n--b0\r\n".encode(), 1)


@vector("obfuscated_address_any_domain")
def _(s: Member, p: Member) -> bytes:
    local, _, domain = s.email.partition("@")
    spoken = local.replace(".", " dot ") + " at " + domain.replace(".", " dot ")
    return _plain(s, p, f"write to me at {spoken} ok?\n")


@vector("encrypted_pdf", expect="hold:not_cleaned")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, _pdf(s, encrypted=True), "application", "pdf", "locked.pdf")


@vector("smime_signed", expect="hold:not_cleaned")
def _(s: Member, p: Member) -> bytes:
    signature = base64.encodebytes(f"certificate of {s.name} <{s.email}>".encode()).decode()
    return _multipart(s, p, ["Content-Type: text/plain\r\n\r\nsigned hello",
                             'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\nContent-Transfer-Encoding:'
                             f' base64\r\nContent-Disposition: attachment; filename="smime.p7s"\r\n\r\n{signature}'],
                      "signed", params='; protocol="application/pkcs7-signature"; micalg=sha-256')


@vector("unknown_binary", expect="hold:not_cleaned")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, b"\x00\x01binary " + s.name.encode(), "application", "x-custom", "data.bin")


@vector("damaged_jpeg", expect="hold:not_cleaned")
def _(s: Member, p: Member) -> bytes:
    return _with_file(s, p, b"\xff\xd8\xff\xe1garbage " + s.name.encode(), "image", "jpeg", "broken.jpg")


def _run(builder: Builder, sender: Member, partner: Member) -> tuple[bytes, object]:
    raw = builder(sender, partner)
    message = parse(raw)
    context = {"sender_role": "mentor", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": partner.email, "recipient_name": partner.name,
               "sender_nicknames": sender.nicknames, "recipient_nicknames": partner.nicknames,
               "region": "US", "domain": DOMAIN, "aliases": (sender.alias, partner.alias), "stats": PairStats(5, 1)}
    prepared = prepare(message, sender=sender.identity(), recipient=partner.identity(), thread_map={},
                       new_message_id=f"<new@{DOMAIN}>", now=NOW, domain=DOMAIN, policy=POLICY, context=context)
    return prepared.raw, prepared.decision


DIRECTIONS = {"mentor_to_mentee": (THEO, AMARU), "mentee_to_mentor": (AMARU, THEO)}


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
@pytest.mark.parametrize("name", sorted(V))
def test_vector(name: str, direction: str) -> None:
    builder, expect = V[name]
    sender, partner = DIRECTIONS[direction]
    original = builder(sender, partner)
    assert leaks(original, sender.needles() + partner.needles()), "the vector carries no identity to begin with"
    delivered, decision = _run(builder, sender, partner)
    found = leaks(delivered, sender.needles() + partner.needles())
    if expect == "deliver":
        assert not found, "\n".join(found)
        assert decision.action in ("deliver", "redact"), decision.reason_dicts()  # type: ignore[attr-defined]
    else:
        kind = expect.split(":", 1)[1]
        assert decision.action == "hold", decision  # type: ignore[attr-defined]
        assert any(r["kind"] == kind for r in decision.reason_dicts()), decision.reason_dicts()  # type: ignore
        assert not found, "\n".join(found)  # the copy a release delivers carries a note instead of the file


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "HEIF"])
def test_cleaned_images_still_open_with_their_pixels(fmt: str) -> None:
    from relay.anonymize.attachments import Cleaned, clean

    result = clean(_image(THEO, fmt), f"image/{fmt.lower()}", "x", lambda text: text)
    assert isinstance(result, Cleaned)
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (32, 24) and image.format == fmt
        assert not dict(image.getexif())
        r, g, b = image.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
        assert abs(r - 200) < 12 and abs(g - 120) < 12 and abs(b - 40) < 12


def test_cleaned_pdf_and_office_files_still_open() -> None:
    from relay.anonymize.attachments import Cleaned, clean

    pdf = clean(_pdf(THEO), "application/pdf", "x.pdf", lambda text: text)
    assert isinstance(pdf, Cleaned)
    with pikepdf.open(io.BytesIO(pdf.data)) as document:
        assert len(document.pages) == 1 and not document.docinfo.keys()
    docx = clean(_ooxml(THEO, "docx"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                 "x.docx", lambda text: text)
    assert isinstance(docx, Cleaned)
    with zipfile.ZipFile(io.BytesIO(docx.data)) as archive:
        assert archive.testzip() is None
        assert "My essay" in archive.read("word/document.xml").decode()
        assert b"Vlindqvist" not in archive.read("docProps/core.xml")
    odt = clean(_odt(THEO), "application/vnd.oasis.opendocument.text", "x.odt", lambda text: text)
    assert isinstance(odt, Cleaned)
    with zipfile.ZipFile(io.BytesIO(odt.data)) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED


def test_html_finding_is_redacted_in_html_and_a_tel_link_removed() -> None:
    policy = parse_policy(REPO / "policies" / "adult-professional.yaml")
    assert any(s.rule == "contact_info" and s.action == "redact" for s in policy.rules)
    delivered, decision = _run(V["tel_and_sms_links"][0], THEO, AMARU)
    assert decision.action == "redact"  # type: ignore[attr-defined]
    html_part = next(p for p in parse(delivered).walk() if p.get_content_type() == "text/html").get_content()
    assert "tel:" not in html_part and "sms:" not in html_part and "5550104477" not in html_part


# --- end to end, through a running relay and the shipped policy ------------------------------------


async def _pair(layout: Layout) -> dict:  # type: ignore[type-arg]
    return await acreate_pair(layout, {"email": THEO.email, "name": THEO.name, "handle": "Oak"},
                              {"email": AMARU.email, "name": AMARU.name, "handle": "Maple"}, "stem",
                              "--mentor-nickname", "Teodorka")


@pytest.mark.parametrize("name", ["gmail_html_signature", "docx_authors", "jpeg_exif_gps_xmp", "nickname_enrolled"])
async def test_end_to_end_delivered_clean(shipped_policies: Layout, relay: Relay, sink: Sink, name: str) -> None:
    pair = await _pair(shipped_policies)
    sender = Member(AMARU.name, AMARU.email, "Maple", pair["mentee_alias"])
    partner = Member(THEO.name, THEO.email, "Oak", pair["mentor_alias"], ("Teodorka",))
    raw = V[name][0](sender if name != "nickname_enrolled" else partner, partner if name != "nickname_enrolled"
                     else sender)
    mail_from = AMARU.email if name != "nickname_enrolled" else THEO.email
    rcpt = pair["mentor_alias"] if name != "nickname_enrolled" else pair["mentee_alias"]
    code, text = await send(shipped_policies.smtp_port, raw, mail_from, rcpt)
    assert code == 250, text
    received = (await sink.wait_for(1))[0]
    found = leaks(received.raw, AMARU.needles() + THEO.needles())
    assert not found, "\n".join(found)


async def test_end_to_end_uncleanable_attachment_is_held_with_the_reason(
    shipped_policies: Layout, relay: Relay, sink: Sink,
) -> None:
    import json

    pair = await _pair(shipped_policies)
    sender = Member(AMARU.name, AMARU.email, "Maple", pair["mentee_alias"])
    partner = Member(THEO.name, THEO.email, "Oak", pair["mentor_alias"])
    code, text = await send(shipped_policies.smtp_port, V["encrypted_pdf"][0](sender, partner), AMARU.email,
                            pair["mentor_alias"])
    assert code == 250, text

    async def held() -> list:  # type: ignore[type-arg]
        result = await acli(shipped_policies, "held", "list", "--json")
        return list(json.loads(result.stdout)) if result.returncode == 0 else []

    items = await eventually(held)
    reasons = items[0]["reasons"]
    assert any(r.get("kind") == "not_cleaned" and "encrypted" in r.get("match", "") for r in reasons), reasons
    await eventually(lambda: nothing_queued(shipped_policies), timeout=20)  # all of it out before the absence
    assert not [r for r in sink.received if r.rcpt_tos == [THEO.email]]


def test_attached_message_date_is_in_utc() -> None:
    delivered, _ = _run(V["attached_message_date_and_headers"][0], THEO, AMARU)
    inner = next(p for p in parse(delivered).walk() if p.get_content_type() == "message/rfc822").get_payload(0)
    assert inner["Date"] == format_datetime(datetime(2026, 11, 3, 13, 0, tzinfo=UTC))


def test_content_ids_are_reminted_on_the_relay_domain() -> None:
    delivered, _ = _run(V["inline_image_content_id"][0], THEO, AMARU)
    message = parse(delivered)
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    cid = str(image["Content-ID"]).strip("<>")
    assert cid.endswith(f"@{DOMAIN}")
    html_part = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    assert f"cid:{cid}" in html_part


def test_leak_vector_count() -> None:
    assert len(V) * len(DIRECTIONS) >= 50

