"""PDFs with text on their pages, made for real with pikepdf, for the tests and benches that read documents:
each page draws with Helvetica (a standard Type1 font, so every PDF reader maps its text) as /F1."""

from __future__ import annotations

import io


def text_pdf(*contents: bytes, compress: bool = False) -> bytes:
    """A PDF with one page per content stream."""
    import pikepdf

    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    for content in contents:
        page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792],
                                  Contents=pikepdf.Stream(pdf, content),
                                  Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)))
        pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out, compress_streams=compress)
    return out.getvalue()


def kerned_page(lines: list[str]) -> bytes:
    """A page's content stream drawing each line as word processors do: one TJ array a line, its words
    apart by kerning (-250), one line under the other."""
    drawn = [b"BT /F1 11 Tf 14 TL 72 740 Td"]
    drawn += [b"[" + b" -250 ".join(b"(" + word.encode("latin-1") + b")" for word in line.split()) + b"] TJ T*"
              for line in lines]
    drawn.append(b"ET")
    return b"\n".join(drawn)
