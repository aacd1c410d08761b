"""Read documents as found in the wild into clean text with metadata.

Handles YAML front matter (also inside an HTML comment), mojibake (UTF-8 read as cp1252, Latin-1 or Mac
Roman), badges and Mermaid diagrams (as the text they show, see :mod:`knowledge.markup`),
reStructuredText headings and plain HTML, so the chunker sees Markdown-like text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

from knowledge.markup import badges_to_text, compact_tables, fix_mojibake, image_text, mermaid_to_text

__all__ = ["SUFFIXES", "Document", "fix_mojibake", "load_document"]

SUFFIXES = {".md", ".markdown", ".txt", ".rst", ".html", ".htm"}

_FRONT = re.compile(r"\A\s*(?:<!--\s*)?---\s*\n(.*?)\n---\s*(?:-->)?\s*\n", re.S)


@dataclass(kw_only=True)
class Document:
    """One source file, cleaned."""

    source: str
    title: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in ("p", "div", "br", "tr", "table", "pre"):
            self.out.append("\n\n" if tag != "tr" else "\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" | ")
        elif tag == "img":
            # Alt text and badges say something; the image itself does not reach the index.
            found = {k: v or "" for k, v in attrs}
            self.out.append(" " + image_text(found.get("alt", ""), found.get("src", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def _rst_to_md(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    levels: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (
            line.strip()
            and re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", nxt.strip())
            and len(nxt.strip()) >= len(line.strip())
        ):
            char = nxt.strip()[0]
            if char not in levels:
                levels.append(char)
            out.append("#" * (levels.index(char) + 1) + " " + line.strip())
            i += 2
            continue
        if (
            re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", line.strip())
            and nxt.strip()
            and i + 2 < len(lines)
            and lines[i + 2].strip() == line.strip()
        ):
            i += 1  # over-and-under title: let the next iteration see "title / underline"
            continue
        out.append(re.sub(r"``([^`]+)``", r"`\1`", line))
        i += 1
    return "\n".join(out)


def load_document(path: Path, *, root: Path | None = None) -> Document:
    """Read ``path`` into a :class:`Document` (``source`` relative to ``root``)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    text = fix_mojibake(raw.replace("\r\n", "\n"))
    meta: dict[str, Any] = {}
    m = _FRONT.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1))
            meta = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            meta = {}
        text = text[m.end() :]
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        parser = _HtmlText()
        parser.feed(text)
        text = html.unescape("".join(parser.out))
    elif suffix == ".rst":
        text = _rst_to_md(text)
    text = compact_tables(mermaid_to_text(badges_to_text(text)))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    # The title is the H1 a document opens with; an H1 further down ("# Changelog") titles only its part.
    first = re.search(r"^(#{1,6})\s+(.+)$", text, re.M)
    heading = first if first and len(first.group(1)) == 1 else None
    title = str(meta.get("title") or (heading.group(2) if heading else path.stem.replace("-", " ").replace("_", " ")))
    source = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
    return Document(source=source, title=_clean_heading(title), text=text, meta=meta)


def _clean_heading(text: str) -> str:
    """Heading text without Markdown emphasis, links or emoji."""
    # Emphasis markers and backticks go; the underscores inside a name (OPT_STRICT_INTEGER) stay.
    text = re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)|`", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = "".join(
        ch for ch in text if ord(ch) < 0x2190 or (0x2E80 <= ord(ch) < 0x1F000 and not 0x2600 <= ord(ch) < 0x2C00)
    )
    return re.sub(r"\s+", " ", text).strip(" :#-")
