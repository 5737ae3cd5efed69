"""Bytes in, one `Document` out: the text every citation indexes into, plus its pages or blocks.

Text-like formats (plain text, Markdown, CSV, any text/*) are kept verbatim, so a `char_location`
citation's indices point into exactly what the client sent. PDF (pypdf), DOCX (python-docx) and
HTML (BeautifulSoup) are converted to text first; for PDF each page's span is kept so citations
can name pages. Every limit is checked before the expensive part, and each refusal names the
problem: corrupt, encrypted, scanned (no text layer), zip bomb, too large, unsupported, empty.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

from candor.documents.errors import DocumentError, DocumentTooLargeError

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MEDIA_KINDS = {
    "application/pdf": "pdf", "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
    "text/csv": "csv", "text/html": "html", "application/xhtml+xml": "html", DOCX_MIME: "docx",
}
EXTENSION_KINDS = {".pdf": "pdf", ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                   ".csv": "csv", ".html": "html", ".htm": "html", ".docx": "docx"}
KIND_MEDIA = {"pdf": "application/pdf", "text": "text/plain", "markdown": "text/markdown", "csv": "text/csv",
              "html": "text/html", "docx": DOCX_MIME}
SUPPORTED = "PDF, DOCX, HTML, Markdown, CSV and plain text (any text/* type)"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 32 * 1024 * 1024     # the Anthropic API's request limit
    max_pages: int = 600                  # PDF pages per document
    max_chars: int = 4_000_000            # extracted text (about a million tokens)
    max_unpacked: int = 128 * 1024 * 1024  # a DOCX's declared uncompressed size, all parts together
    max_ratio: int = 200                  # a DOCX part's uncompressed/compressed ratio (zip bombs)


LIMITS = Limits()


@dataclass(frozen=True)
class Unit:
    """A citable unit: a PDF page (`number` 1-based) or a content block (0-based), as a span of the text."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    text: str
    kind: str  # pdf | docx | html | markdown | csv | text | content
    units: tuple[Unit, ...] = ()  # pages of a PDF, blocks of a content source; () for the rest
    empty_pages: tuple[int, ...] = field(default=())  # PDF pages with no text layer

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def media_type(self) -> str:
        return KIND_MEDIA.get(self.kind, "text/plain")


def kind_of(media_type: str | None, filename: str | None, data: bytes, where: str = "document") -> str:
    """The format: the declared media type when it is specific, else the file name, else the bytes."""
    mt = (media_type or "").split(";")[0].strip().lower()
    if mt in MEDIA_KINDS:
        return MEDIA_KINDS[mt]
    if mt.startswith("text/"):
        return "text"
    if mt and mt not in ("application/octet-stream", "binary/octet-stream"):
        raise DocumentError(f"unsupported document type {mt!r}; Candor reads {SUPPORTED}", field=where)
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if suffix in EXTENSION_KINDS:
        return EXTENSION_KINDS[suffix]
    if data.lstrip()[:5] == b"%PDF-":
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        return "docx"
    sample = data[:8192]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return "text"
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 3:  # a character cut in half at the end of the sample
                return "text"
    raise DocumentError(f"cannot tell the type of {filename or 'the file'!r}; Candor reads {SUPPORTED}",
                        field=where)


def extract(data: bytes, media_type: str | None = None, filename: str | None = None, *,
            limits: Limits = LIMITS, where: str = "document") -> Document:
    if len(data) > limits.max_bytes:
        raise DocumentTooLargeError(f"document is {len(data)} bytes, over the limit of {limits.max_bytes}",
                                    field=where)
    if not data:
        raise DocumentError("document is empty", field=where)
    kind = kind_of(media_type, filename, data, where)
    if kind == "pdf":
        from candor.documents.pdf import read_pdf

        doc = read_pdf(data, limits, where)
    elif kind == "docx":
        from candor.documents.docx import read_docx

        doc = read_docx(data, limits, where)
    else:
        text = decode_text(data, where)
        if kind == "html":
            doc = Document(html_text(text), "html")
        else:
            if kind == "csv":
                check_csv(text, where)
            doc = Document(text, kind)
    return checked(doc, limits, where)


def from_text(text: str, kind: str = "text", *, limits: Limits = LIMITS, where: str = "document") -> Document:
    return checked(Document(text, kind), limits, where)


def from_blocks(blocks: list[str], *, limits: Limits = LIMITS, where: str = "document") -> Document:
    """A custom-content document: each block is one citable unit, joined by blank lines."""
    units: list[Unit] = []
    parts: list[str] = []
    pos = 0
    for i, block in enumerate(blocks):
        if parts:
            parts.append("\n\n")
            pos += 2
        units.append(Unit(i, pos, pos + len(block)))
        parts.append(block)
        pos += len(block)
    return checked(Document("".join(parts), "content", tuple(units)), limits, where)


def checked(doc: Document, limits: Limits, where: str) -> Document:
    if len(doc.text) > limits.max_chars:
        raise DocumentTooLargeError(f"document text is {len(doc.text)} characters, over the limit of "
                                    f"{limits.max_chars}", field=where)
    if not doc.text.strip():
        raise DocumentError("document has no text", field=where)
    return doc


def decode_text(data: bytes, where: str) -> str:
    if b"\x00" in data[:65536]:
        raise DocumentError("document is binary, not text (it contains NUL bytes); send text, PDF or DOCX",
                            field=where)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"text is not valid UTF-8 (bad byte at offset {exc.start})", field=where) from None


def check_csv(text: str, where: str) -> None:
    try:
        for _ in csv.reader(io.StringIO(text), strict=True):
            pass
    except csv.Error as exc:
        raise DocumentError(f"CSV could not be parsed: {exc}", field=where) from None


_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
               "article", "header", "footer", "pre", "blockquote", "dd", "dt", "dl", "hr", "main", "nav", "aside",
               "figure", "figcaption", "title", "caption", "form", "address"}


def html_text(html: str) -> str:
    """Visible text, one line per block element; scripts, styles and templates dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        if tag.name == "head":
            title = tag.find("title")
            tag.replace_with(title) if title else tag.decompose()
        else:
            tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for tag in soup.find_all(["td", "th"]):
        tag.insert_after(" | ")
    lines = (" ".join(line.split()) for line in soup.get_text("").splitlines())
    return "\n".join(line.removesuffix(" |") for line in lines if line.strip(" |"))
