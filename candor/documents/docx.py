"""DOCX text through python-docx, after checking the zip's declared sizes (zip bombs).

zipfile never inflates a member past its declared size (it stops and fails the CRC check), so
checking the central directory's sizes and ratios before reading bounds the memory used.
"""

from __future__ import annotations

import io
import zipfile

from candor.documents.errors import DocumentError, DocumentTooLargeError
from candor.documents.extract import Document, Limits

MAX_MEMBERS = 10_000


def check_zip(data: bytes, limits: Limits, where: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise DocumentError(f"the DOCX is not a valid zip file: {exc}", field=where) from None
    if len(infos) > MAX_MEMBERS:
        raise DocumentTooLargeError(f"the DOCX has {len(infos)} parts, over the limit of {MAX_MEMBERS}", field=where)
    total = sum(i.file_size for i in infos)
    if total > limits.max_unpacked:
        raise DocumentTooLargeError(f"the DOCX would unpack to {total} bytes, over the limit of "
                                    f"{limits.max_unpacked} (a zip bomb?)", field=where)
    for info in infos:
        if info.file_size > 1_000_000 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise DocumentTooLargeError(
                f"the DOCX part {info.filename!r} inflates {info.file_size // max(info.compress_size, 1)}-fold, "
                f"over the limit of {limits.max_ratio} (a zip bomb?)", field=where)
    if "word/document.xml" not in names:
        raise DocumentError("the file is a zip but not a DOCX (no word/document.xml)", field=where)


def read_docx(data: bytes, limits: Limits, where: str) -> Document:
    check_zip(data, limits, where)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = [" ".join(c.text.split()) for c in row.cells]
                    lines.append(" | ".join(cells))
            else:
                lines.append(item.text)
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise DocumentError(f"the DOCX could not be read: {exc}", field=where) from None
    except Exception as exc:  # noqa: BLE001 - lxml and python-docx raise their own error types
        raise DocumentError(f"the DOCX could not be read: {type(exc).__name__}: {exc}", field=where) from None
    text = "\n".join(line for line in lines if line.strip())
    return Document(text, "docx")
