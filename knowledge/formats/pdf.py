"""PDF files (vendor manuals, papers, exported wiki pages) as Markdown-like text, through pypdf.

A PDF holds positioned text, not structure. What structure it has is used: the outline (bookmarks) gives
the headings and the page each starts on, and the metadata the title. What only repeats is left out: a
running header or footer (the same line at the top or bottom of most pages, page numbers aside) and the
dot leaders of a printed table of contents. Words hyphenated across a line break are joined again. A PDF
without a text layer (a scan) is refused with the reason: it needs OCR first, which is not done here.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError

__all__ = ["NotAPdf", "pdf_to_markdown"]

log = logging.getLogger(__name__)
_LEADER = re.compile(r"(?:\s*\.){4,}\s*\w{1,6}\s*$")  # "2.1 Naming . . . . . . 3"
_HYPHEN = re.compile(r"(\w)-\n(?=[a-z])")
# A page number as printed, digits already "#" ("- 12 -", "page 3 of 9", "iv").
_PAGE_NUMBER = re.compile(r"[-\u2013\u2014\s]*(?:page\s*)?(?:#+|[ivxlc]{1,6})(?:\s*(?:of|/)\s*#+)?[-\u2013\u2014\s]*")
# What pypdf raises on a malformed part of a file: its own errors, and those of the checks it makes as it goes.
_BROKEN: tuple[type[Exception], ...] = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError)


class NotAPdf(ValueError):
    """The bytes are not a PDF whose text can be read (the message says why)."""


def _outline(reader: Any) -> list[tuple[int, int, str]]:
    """``(page, level, title)`` of every bookmark, in reading order (level 0 = a chapter)."""
    out: list[tuple[int, int, str]] = []

    def walk(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except _BROKEN:  # a broken bookmark costs its heading, not the document
                log.debug("a PDF bookmark points nowhere", exc_info=True)
                continue
            title = re.sub(r"\s+", " ", str(getattr(item, "title", "") or "")).strip()
            if title and page is not None and page >= 0:
                out.append((page, level, title))

    try:
        walk(list(reader.outline), 0)
    except _BROKEN:  # a PDF with a broken outline is still read, without headings
        log.debug("the PDF outline could not be read", exc_info=True)
    return out


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Shapes of lines that open or close most pages (running headers and footers, page numbers)."""
    if len(pages) < 3:
        return set()
    ends = Counter(_shape(p[i]) for p in pages if p for i in {0, len(p) - 1})
    often = max(3, len(pages) // 2)
    return {shape for shape, n in ends.items() if n >= often or _PAGE_NUMBER.fullmatch(shape)}


def _find(text: str, title: str, start: int) -> tuple[int, int] | None:
    """The line at or after ``start`` that begins with ``title`` (whitespace and case aside): ``(start, end)``."""
    words = [re.escape(w) for w in title.split()]
    if not words:
        return None
    m = re.compile(r"^[ \t]*" + r"\s+".join(words), re.I | re.M).search(text, start)
    if not m:
        return None
    end = text.find("\n", m.end())
    return m.start(), len(text) if end < 0 else end


def _page_text(page: Any, number: int) -> str:
    """One page's text; a page pypdf cannot read costs its own text, not the document's."""
    try:
        return str(page.extract_text() or "").replace("\r", "\n")
    except _BROKEN:
        log.info("PDF page %d could not be read", number + 1, exc_info=True)
        return ""


def pdf_to_markdown(data: bytes) -> tuple[str, str]:
    """``(text, title)`` of the PDF ``data``; raises :class:`NotAPdf` if it cannot be read."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise NotAPdf("it is encrypted; save an unprotected copy to ingest it")
        pages = [_page_text(page, number) for number, page in enumerate(reader.pages)]
        meta = reader.metadata
        title = str(meta.title or "").strip() if meta else ""
    except PyPdfError as exc:
        raise NotAPdf(f"pypdf cannot read it ({exc})") from exc
    except _BROKEN as exc:
        raise NotAPdf(f"it is not a well-formed PDF ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # boundary: a parser of untrusted files; one broken file must not stop an ingest
        log.warning("pypdf failed on a file", exc_info=True)
        raise NotAPdf(f"pypdf failed on it ({type(exc).__name__}: {exc})") from exc
    if not any(p.strip() for p in pages):
        raise NotAPdf("it has no text layer (a scanned document?); run OCR on it first")
    lines = [[ln for ln in p.split("\n") if ln.strip()] for p in pages]
    running = _running_lines(lines)
    headings: dict[int, list[tuple[int, str]]] = {}
    for page, level, heading in _outline(reader):
        headings.setdefault(page, []).append((level, heading))
    parts: list[str] = []
    for number, page_lines in enumerate(lines):
        edges = {0, len(page_lines) - 1}
        kept = [
            ln for i, ln in enumerate(page_lines) if not ((i in edges and _shape(ln) in running) or _LEADER.search(ln))
        ]
        # Text is text: a line that starts with "#" is escaped, only bookmarks make headings.
        text = _HYPHEN.sub(r"\1", "\n".join(re.sub(r"^(\s*)#", r"\1\\#", ln) for ln in kept))
        cursor = 0
        for level, heading in headings.get(number, []):
            mark = f"\n\n{'#' * min(level + 2, 6)} {heading}\n\n"
            found = _find(text, heading, cursor)
            if found is None:  # the bookmark's words open no line of its page: the heading goes where we are
                at = end = cursor
            else:
                at, end = found
                if end - at > len(heading) + 12:  # the line goes on after the title: keep it, heading above
                    end = at
            text = text[:at] + mark + text[end:]
            cursor = at + len(mark)
        parts.append(text)
    body = "\n\n".join(parts)
    # Bookmarks are ## and deeper: the document's title is its only # heading.
    return (f"# {title}\n\n{body}" if title else body), title
