"""Turning uploaded files (.txt, .md, .html, .pdf) into plain text with a title.

This is the seam for pypdf and BeautifulSoup: their failures become ``InvalidRequestError``s here.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import PurePath

from ailb.errors import InvalidRequestError, UnsupportedMediaTypeError

log = logging.getLogger("ailb.rag")

SUPPORTED_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
_MD_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "header", "li", "ul", "ol", "table", "tr", "blockquote", "pre",
    "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "hr", "figcaption",
)  # fmt: skip
_DROPPED_TAGS = ("script", "style", "noscript", "template", "svg", "nav", "footer", "head", "iframe", "form")
_BLOCK_MARK, _LINE_MARK = "\u2029", "\u2028"
_ANY_SPACE = re.compile(r"[ \t\n\r\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_INLINE_SPACE = re.compile(r"[ \t\f\v\xa0]+")
_WRAPPED_LINE = 40  # a PDF line at least this long that does not end a sentence continues on the next line


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    text: str
    title: str
    kind: str  # "text", "markdown", "html" or "pdf"


def is_supported(filename: str) -> bool:
    return PurePath(filename).suffix.lower() in SUPPORTED_EXTENSIONS


def parse_file(filename: str, data: bytes) -> ParsedDocument:
    """Extract the text and title of ``filename`` from its bytes (blocking: run it off the event loop)."""
    suffix = PurePath(filename).suffix.lower()
    fallback_title = _title_from_name(filename)
    if suffix == ".pdf":
        return parse_pdf(data, fallback_title)
    if suffix in (".html", ".htm"):
        return parse_html(_decode(data), fallback_title)
    if suffix in (".md", ".markdown"):
        return parse_markdown(_decode(data), fallback_title)
    if suffix == ".txt":
        text = _tidy(_decode(data))
        return ParsedDocument(text, _heading_line(text) or fallback_title, "text")
    raise UnsupportedMediaTypeError(
        f"Cannot ingest {filename!r}: supported file types are {', '.join(SUPPORTED_EXTENSIONS)}.",
        param="file",
        code="unsupported_file_type",
    )


def parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    heading = _MD_HEADING.search(text)
    title = heading.group(1).strip() if heading else fallback_title
    text = _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", text))
    return ParsedDocument(_tidy(text), title, "markdown")


def parse_html(markup: str, fallback_title: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.find("title")
    heading = soup.find("h1")
    title = _first_text(title_tag) or _first_text(heading) or fallback_title
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    # Whitespace in HTML source is insignificant: only block elements and <br> break the text.
    for tag in soup.find_all("br"):
        tag.replace_with(_LINE_MARK)
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(_BLOCK_MARK)
        tag.insert_after(_BLOCK_MARK)
    text = _ANY_SPACE.sub(" ", soup.get_text()).replace(_LINE_MARK, "\n").replace(_BLOCK_MARK, "\n\n")
    return ParsedDocument(_tidy(text), title, "html")


def parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise InvalidRequestError(
                "The PDF is encrypted; decrypt it before ingesting.", param="file", code="unreadable_document"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata_title = reader.metadata.title if reader.metadata is not None else None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        log.info("unreadable PDF: %s", exc)
        raise InvalidRequestError(
            f"The PDF could not be read: {exc}", param="file", code="unreadable_document"
        ) from exc
    title = str(metadata_title).strip() if metadata_title else fallback_title
    return ParsedDocument(_tidy("\n\n".join(_reflow(page) for page in pages)), title or fallback_title, "pdf")


def _reflow(page: str) -> str:
    """Re-join lines a PDF wrapped mid-sentence (a long line, or one followed by lowercase, not ending a sentence)."""
    lines = [line.strip() for line in page.splitlines()]
    joined: list[str] = []
    for line in lines:
        previous = joined[-1] if joined else ""
        continues = line[:1].islower() or len(previous) >= _WRAPPED_LINE
        if line and previous and continues and previous[-1] not in ".!?:;" and not line.startswith("•"):
            joined[-1] = f"{previous} {line}"
        else:
            joined.append(line)
    return "\n".join(joined)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _tidy(text: str) -> str:
    """Collapse runs of spaces within lines and runs of blank lines, keeping paragraph breaks."""
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _heading_line(text: str) -> str:
    """The first line of a plain text file when it reads like a title (short, not a sentence)."""
    first = text.split("\n", 1)[0].strip()
    return first if 0 < len(first) <= 100 and first[-1] not in ".!?,;:" else ""


def _first_text(tag: object) -> str:
    text = getattr(tag, "get_text", None)
    return _INLINE_SPACE.sub(" ", text()).strip() if callable(text) else ""


def _title_from_name(filename: str) -> str:
    stem = PurePath(filename).stem
    return re.sub(r"[-_]+", " ", stem).strip().capitalize() or "Untitled"
