"""PDF text with page numbers, through pypdf.

pypdf was measured against pdfplumber on a generated 50-page PDF (benchmarks/documents.py):
both returned all 300 paragraphs verbatim, pypdf at about 258 pages/s and pdfplumber at about
10 pages/s on this 2-core machine, so pypdf it is (pure Python, no native dependencies).
"""

from __future__ import annotations

import io
import logging

from candor.documents.errors import DocumentError, DocumentTooLargeError
from candor.documents.extract import Document, Limits, Unit

PAGE_SEPARATOR = "\n\n"


def read_pdf(data: bytes, limits: Limits, where: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if b"%PDF-" not in data[:1024]:
        raise DocumentError("the PDF specified was not valid: no %PDF- header", field=where)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # recoverable-structure warnings are noise
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
        count = 0 if encrypted else len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise DocumentError(f"the PDF specified was not valid (corrupt or truncated): {exc}", field=where) from None
    if encrypted:
        raise DocumentError("the PDF is encrypted (password protected); send an unencrypted copy", field=where)
    if count == 0:
        raise DocumentError("the PDF has no pages", field=where)
    if count > limits.max_pages:
        raise DocumentTooLargeError(f"the PDF has {count} pages, over the limit of {limits.max_pages}", field=where)
    parts: list[str] = []
    units: list[Unit] = []
    empty: list[int] = []
    pos = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = (page.extract_text() or "").strip()
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
            raise DocumentError(f"page {number} of the PDF could not be read: {exc}", field=where) from None
        if not text:
            empty.append(number)
            continue
        if parts:
            parts.append(PAGE_SEPARATOR)
            pos += len(PAGE_SEPARATOR)
        units.append(Unit(number, pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
        if pos > limits.max_chars:
            raise DocumentTooLargeError(f"the PDF's text is over the limit of {limits.max_chars} characters",
                                        field=where)
    if not units:
        raise DocumentError(f"the PDF has no text layer on any of its {count} pages (a scanned document?); "
                            f"Candor reads text and does not run OCR", field=where)
    return Document("".join(parts), "pdf", tuple(units), tuple(empty))
