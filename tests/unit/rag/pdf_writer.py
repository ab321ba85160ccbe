"""A minimal PDF writer for tests: text pages in Helvetica, with an optional document title.

pypdf reads PDFs but does not lay out text; this writes just enough PDF 1.4 (catalog, pages, one font, a
content stream per page, an info dictionary and the cross-reference table) for real text extraction.
"""

from __future__ import annotations

import textwrap


def make_pdf(pages: list[str], title: str | None = None, width: int = 90) -> bytes:
    """A PDF with one page per entry of ``pages``; paragraphs (blank-line separated) are wrapped at ``width``."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = _content_stream(text, width)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_id + 1} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    info_id = None
    if title is not None:
        objects.append(b"<< /Title (" + _escape(title) + b") /Producer (ailb tests) >>")
        info_id = len(objects)
    return _assemble(objects, info_id)


def _content_stream(text: str, width: int) -> bytes:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        lines.extend(textwrap.wrap(" ".join(paragraph.split()), width) or [""])
        lines.append("")
    ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"56 740 Td"]
    for line in lines[:50]:
        ops.append(b"(" + _escape(line) + b") Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _assemble(objects: list[bytes], info_id: int | None) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    info = f" /Info {info_id} 0 R" if info_id is not None else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
