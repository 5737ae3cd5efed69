"""Small documents the document tests write themselves: PDFs (fpdf2), DOCX (python-docx), zip bombs."""

from __future__ import annotations

import io
import zipfile


def pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a text layer: one list of paragraphs per page."""
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("Helvetica", size=11)
    for paragraphs in pages:
        doc.add_page()
        for para in paragraphs:
            doc.multi_cell(0, 5, para)
            doc.ln(2)
    return bytes(doc.output())


def scanned_pdf(pages: int = 2) -> bytes:
    """Pages with only drawings, as a scanner's images would be: no text layer at all."""
    from fpdf import FPDF

    doc = FPDF()
    for _ in range(pages):
        doc.add_page()
        doc.rect(20, 20, 100, 60, style="F")
    return bytes(doc.output())


def encrypted_pdf(text: str = "Secret text.") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf([[text]]))))
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for para in paragraphs:
        document.add_paragraph(para)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def docx_bomb(inflated: int = 200 * 1024 * 1024) -> bytes:
    """A real DOCX whose extra part inflates from a few hundred KB to `inflated` bytes of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx(["Hello."]))) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        with dst.open("word/media/bomb.bin", "w", force_zip64=True) as f:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(inflated // len(chunk)):
                f.write(chunk)
    return out.getvalue()
