"""Read documents as found in the wild into clean text with metadata.

Bytes are decoded whatever the file's Unicode form or Windows code page (:mod:`knowledge.formats.decode`);
YAML front matter (also inside an HTML comment) becomes metadata; mojibake (UTF-8 read as cp1252, Latin-1
or Mac Roman) is repaired; HTML, reStructuredText and Jupyter notebooks are turned into Markdown, and
Markdown's own variants (underlined headings, HTML blocks) into the forms the chunker knows; badges and
Mermaid diagrams become the text they show (:mod:`knowledge.markup`). PDF and Word files are read by their
own readers (:mod:`knowledge.formats.pdf`, :mod:`knowledge.formats.docx`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import KnowledgeError
from knowledge.formats.decode import NotText, decode
from knowledge.formats.docx import NotADocx, docx_to_markdown
from knowledge.formats.html import html_to_text
from knowledge.formats.markdown import normalize_markdown
from knowledge.formats.notebook import NotANotebook, notebook_to_markdown
from knowledge.formats.pdf import NotAPdf, pdf_to_markdown
from knowledge.formats.rst import rst_to_markdown
from knowledge.markup import badges_to_text, compact_tables, fix_mojibake, mermaid_to_text

__all__ = ["SUFFIXES", "Document", "UnreadableDocument", "fix_mojibake", "load_document"]

_MARKDOWN = {".md", ".markdown", ".mdown", ".mkd", ".txt", ".text"}
_HTML = {".html", ".htm", ".xhtml"}
_RST = {".rst", ".rest"}
_NOTEBOOK = {".ipynb"}
# Binary formats with their own readers: each gives (text, title) or raises ValueError with the reason.
_BINARY: dict[str, Callable[[bytes], tuple[str, str]]] = {".pdf": pdf_to_markdown, ".docx": docx_to_markdown}
SUFFIXES = frozenset(_MARKDOWN | _HTML | _RST | _NOTEBOOK | set(_BINARY))

_FRONT = re.compile(r"\A\s*(?:<!--\s*)?---\s*\n(.*?)\n---\s*(?:-->)?\s*\n", re.S)


class UnreadableDocument(KnowledgeError):
    """A file is not a document LabOps can read (binary, or not the format its suffix says)."""


@dataclass(kw_only=True)
class Document:
    """One source file, cleaned."""

    source: str
    title: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def load_document(path: Path, *, root: Path | None = None) -> Document:
    """Read ``path`` into a :class:`Document` (``source`` relative to ``root``).

    Raises :class:`UnreadableDocument` for a file that is not text or not the format its suffix names.
    """
    source = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
    suffix = path.suffix.lower()
    if suffix in _BINARY:
        return _load_binary(path, source, _BINARY[suffix])
    try:
        raw = decode(path.read_bytes())
    except NotText as exc:
        raise UnreadableDocument(f"{source} is not a text document: {exc}") from exc
    text = fix_mojibake(raw.replace("\r\n", "\n").replace("\r", "\n"))
    meta: dict[str, Any] = {}
    m = _FRONT.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1))
            meta = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            meta = {}
        text = text[m.end() :]
    page_title = ""
    if suffix in _HTML:
        text, page_title = html_to_text(text)
    elif suffix in _RST:
        text = rst_to_markdown(text)
    elif suffix in _NOTEBOOK:
        try:
            text = notebook_to_markdown(text)
        except NotANotebook as exc:
            raise UnreadableDocument(f"{source} is not a Jupyter notebook: {exc}") from exc
    if suffix not in _HTML:
        text = normalize_markdown(text)  # before the badges: an <h1> leaves its logo out of the title
    return _document(path, source, compact_tables(mermaid_to_text(badges_to_text(text))), meta, page_title)


def _load_binary(path: Path, source: str, read: Callable[[bytes], tuple[str, str]]) -> Document:
    """A PDF or Word document: its reader gives Markdown-like text; markup repair is for hand-written text."""
    kind = "PDF" if path.suffix.lower() == ".pdf" else "Word document"
    try:
        text, title = read(path.read_bytes())
    except (NotAPdf, NotADocx) as exc:  # the reason is in the message
        raise UnreadableDocument(f"{source} is not a {kind} LabOps can read: {exc}") from exc
    # The readers put the title they found on the text's first line as "# title", so the H1 rule finds it.
    return _document(path, source, compact_tables(fix_mojibake(text)), {}, title)


def _document(path: Path, source: str, text: str, meta: dict[str, Any], fallback_title: str) -> Document:
    """The document, titled by its front matter, else its opening H1, else ``fallback_title``, else its name."""
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    # The title is the H1 a document opens with; an H1 further down ("# Changelog") titles only its part.
    first = re.search(r"^(#{1,6})\s+(.+)$", _outside_fences(text), re.M)
    heading = first.group(2) if first and len(first.group(1)) == 1 else None
    title = str(meta.get("title") or heading or fallback_title or path.stem.replace("-", " ").replace("_", " "))
    return Document(source=source, title=_clean_heading(title), text=text, meta=meta)


def _outside_fences(text: str) -> str:
    """``text`` with fenced code blanked out (a ``# comment`` in code is no title)."""
    return re.sub(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", "", text, flags=re.M | re.S)


def _clean_heading(text: str) -> str:
    """Heading text without Markdown emphasis, links or emoji."""
    # Emphasis markers and backticks go; the underscores inside a name (OPT_STRICT_INTEGER) stay.
    text = re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)|`", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = "".join(
        ch
        for ch in text
        if ord(ch) < 0x2190
        or (0x2E80 <= ord(ch) < 0x1F000 and not 0x2600 <= ord(ch) < 0x2C00 and not 0xFE00 <= ord(ch) <= 0xFE0F)
    )
    return re.sub(r"\s+", " ", text).strip(" :#-")
