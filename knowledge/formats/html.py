"""HTML pages as Markdown-like text: the page's content, not its chrome.

A wiki or documentation page wraps its content in navigation, headers and footers that repeat on every
page. When the page marks its content (``<main>``, ``<article>`` or ``role="main"``), only that is kept;
otherwise navigation, asides and footers are left out. What the chunker needs is written as Markdown:
headings as ``#``, ``<pre>`` as fenced code (so a ``# comment`` in it is not a heading), tables as
``| a | b |`` rows under a separator (so each row is retrievable with its header), lists as ``-`` items,
definition lists as ``term: definition``, and images as the fact or alt text they show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Literal

from knowledge.formats.tables import cell_text, pipe_table
from knowledge.markup import image_text

__all__ = ["html_to_text"]

_SKIP = {"script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object", "button", "select"}
_CHROME = {"nav", "aside", "footer"}  # left out of a page that does not mark its content
# Classes and ids of page furniture inside the content: MediaWiki's "[edit]" links and table of contents, Sphinx
# and MkDocs permalinks, the "[src]"/"[source]" links of Node.js's and Sphinx's API pages, breadcrumbs, text
# only screen readers see.
_FURNITURE = {"mw-editsection", "headerlink", "toc", "toctitle", "breadcrumb", "breadcrumbs", "sr-only", "noprint",
              "visually-hidden", "screen-reader-text", "printfooter", "catlinks", "mw-jump-link", "srclink",
              "viewcode-link"}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_BLOCK = {"p", "div", "section", "article", "main", "header", "blockquote", "figure", "figcaption", "form",
          "fieldset", "details", "summary", "address", "center", "body", "hr"}  # fmt: skip
_HEADING = re.compile(r"h[1-6]")
_ANCHOR_MARKS = "¶#§🔗"  # Sphinx and MkDocs put a permalink sign in every heading


@dataclass(kw_only=True)
class _Table:
    rows: list[list[str]] = field(default_factory=list)
    cell: list[str] | None = None
    # A cell holding a heading, code or another table makes a layout table: page structure drawn with a grid (old
    # wikis, generated API pages), shown as blocks. A long cell alone does not: data tables describe at length.
    layout: bool = False


def _markdown_table(table: _Table) -> str:
    if table.layout:
        return "".join(f"\n\n{cell}\n\n" for row in table.rows for cell in row if cell.strip())
    lines = pipe_table([[cell_text(c) for c in row] for row in table.rows])
    return "\n\n" + "\n".join(lines) + "\n\n" if lines else ""


_Kind = Literal["skip", "chrome", "content", "title", "plain"]


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # Three renderings, the first with text wins: the marked content, the page without its chrome, everything.
        self.content: list[str] = []
        self.page: list[str] = []
        self.everything: list[str] = []
        self.title_parts: list[str] = []
        self.stack: list[tuple[_Kind, str]] = []  # open elements
        self.skip = 0
        self.chrome = 0
        self.content_depth = 0  # > 0 inside the first element that marks the page's content
        self.content_done = False
        self.pre = 0
        self.lists: list[list[int]] = []  # per open list: the last ordinal, or -1 for bullets
        self.tables: list[_Table] = []
        self.heading: list[str] | None = None

    def _write(self, text: str, *, raw: bool = False) -> None:
        """Text to the innermost thing that collects it: a heading, a table cell, or the page."""
        if self.skip:
            return
        if not raw and not self.pre:
            text = re.sub(r"\s+", " ", text)
        if self.heading is not None:
            self.heading.append(text)
        elif self.tables:
            if self.tables[-1].cell is not None:  # text between cells belongs to no cell
                self.tables[-1].cell.append(text)
        else:
            self.everything.append(text)
            if not self.chrome:
                self.page.append(text)
                if self.content_depth:
                    self.content.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag in _VOID:
            self._void(tag, found)
            return
        kind: _Kind = "plain"
        if tag == "title" and not self.title_parts and ("skip", "svg") not in self.stack:
            kind = "title"
        elif (
            tag in _SKIP
            or "hidden" in found
            or found.get("aria-hidden") == "true"
            or not _FURNITURE.isdisjoint([*found.get("class", "").split(), found.get("id", "")])
        ):
            kind = "skip"
            self.skip += 1
        elif tag in _CHROME or found.get("role") == "navigation":
            kind = "chrome"
            self.chrome += 1
        elif (tag in ("main", "article") or found.get("role") == "main") and not self.content_done:
            kind = "content"
            self.content_depth += 1
        self.stack.append((kind, tag))
        if kind in ("plain", "content"):
            self._open(tag, found)

    def _void(self, tag: str, found: dict[str, str]) -> None:
        if tag == "br":
            self._write("\n", raw=True)
        elif tag == "hr":
            self._write("\n\n", raw=True)
        elif tag == "img" and self.heading is None:  # a logo beside a title is no part of it
            said = image_text(found.get("alt", ""), found.get("src", ""))
            if said:
                self._write(f" {said} ")

    def _open(self, tag: str, found: dict[str, str]) -> None:
        if self.tables and self.tables[-1].cell is not None and (tag in ("pre", "table") or _HEADING.fullmatch(tag)):
            self.tables[-1].layout = True
        if _HEADING.fullmatch(tag) and self.heading is None:
            self.heading = []
        elif tag == "pre":
            if not self.pre:
                classes = found.get("class", "")
                lang = "mermaid" if "mermaid" in classes.split() else _language(classes)
                self._write(f"\n\n```{lang}\n", raw=True)
            self.pre += 1
        elif tag == "code":
            if not self.pre:
                self._write("`", raw=True)
            elif lang := _language(found.get("class", "")):  # <pre><code class="language-x">
                self._relabel_fence(lang)
        elif tag in ("ul", "ol", "dl"):
            if not self.lists:  # a nested list goes on under its item, with no blank line to break the block
                self._write("\n\n", raw=True)
            self.lists.append([0 if tag == "ol" else -1])
        elif tag in ("li", "dt"):
            indent = "  " * max(len(self.lists) - 1, 0)
            marker = "-"
            if self.lists and self.lists[-1][0] >= 0:
                self.lists[-1][0] += 1
                marker = f"{self.lists[-1][0]}."
            self._write(f"\n{indent}{marker} ", raw=True)
        elif tag == "dd":
            self._write(": ", raw=True)
        elif tag == "table":
            self.tables.append(_Table())
        elif tag == "tr" and self.tables:
            self.tables[-1].rows.append([])
        elif tag in ("td", "th") and self.tables:
            table = self.tables[-1]
            if not table.rows:
                table.rows.append([])
            table.cell = []
        elif tag in _BLOCK:
            self._write("\n\n", raw=True)

    def _relabel_fence(self, lang: str) -> None:
        for out in (self.content, self.page, self.everything):
            if out and out[-1] == "\n\n```\n":
                out[-1] = f"\n\n```{lang}\n"

    def handle_endtag(self, tag: str) -> None:
        if not any(t == tag for _, t in self.stack):
            return  # a stray end tag
        # Elements left open inside this one (<p>, <li>, <td> without their end tags) end with it.
        while self.stack:
            kind, opened = self.stack.pop()
            self.end_element(kind, opened)
            if opened == tag:
                break

    def end_element(self, kind: _Kind, tag: str) -> None:
        """End an element."""
        if kind == "skip":
            self.skip -= 1
            return
        if kind == "chrome":
            self.chrome -= 1
            return
        if kind == "title":
            return
        if kind == "content":
            self.content_depth -= 1
            self.content_done = self.content_depth == 0
        if _HEADING.fullmatch(tag) and self.heading is not None:
            text = re.sub(r"\s+", " ", "".join(self.heading)).strip().rstrip(_ANCHOR_MARKS).strip()
            self.heading = None
            if text:  # marked: only these lines are headings (see _strip_outside_fences)
                self._write(f"\n\n\x01{'#' * int(tag[1])} {text}\n\n", raw=True)
        elif tag == "pre" and self.pre:
            self.pre -= 1
            if not self.pre:
                self._write("\n```\n\n", raw=True)
        elif tag == "code" and not self.pre:
            self._write("`", raw=True)
        elif tag in ("ul", "ol", "dl") and self.lists:
            self.lists.pop()
            if not self.lists:
                self._write("\n\n", raw=True)
        elif tag in ("td", "th") and self.tables and self.tables[-1].cell is not None:
            table = self.tables[-1]
            text = "".join(table.cell or [])  # kept as written: a layout table shows it as blocks
            table.rows[-1].append(text)
            table.cell = None
        elif tag == "table" and self.tables:
            text = _markdown_table(self.tables.pop())
            if self.tables and self.tables[-1].cell is not None:
                self.tables[-1].cell.append(text)  # a table inside a cell (the outer one is a layout table)
            else:
                self._write(text, raw=True)
        elif tag in _BLOCK:
            self._write("\n\n", raw=True)

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "title":
            self.title_parts.append(data)
        else:
            self._write(data)

    def result(self) -> str:
        """The first rendering with text in it."""
        for out in (self.content, self.page, self.everything):
            if "".join(out).strip():
                return "".join(out)
        return ""


def _language(classes: str) -> str:
    m = re.search(r"\b(?:language|lang|highlight)-([\w+#-]+)", classes)
    return m.group(1) if m else ""


def html_to_text(source: str) -> tuple[str, str]:
    """``(text, title)`` of an HTML page: its content as Markdown-like text, and its ``<title>``."""
    parser = _Converter()
    parser.feed(source)
    parser.close()
    while parser.stack:  # elements left open at the end of the file
        parser.end_element(*parser.stack.pop())
    lines = [line.rstrip() for line in parser.result().split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(_strip_outside_fences(lines))).strip()
    return text, re.sub(r"\s+", " ", "".join(parser.title_parts)).strip()


def _strip_outside_fences(lines: list[str]) -> list[str]:
    """Lines without the indentation HTML source left on them (except in code); only ``<hN>`` lines are headings."""
    out: list[str] = []
    fence = False
    for line in lines:
        if line.lstrip().startswith("```"):
            while fence and out and not out[-1].strip():
                out.pop()  # the newline that ended the <pre>'s text
            fence = not fence
            out.append(line.strip())
        elif fence:
            out.append(line)
        else:
            stripped = line.strip()
            if stripped.startswith("\x01"):
                stripped = stripped[1:]
            elif stripped.startswith("#"):  # text that happens to start with "#" is no heading in HTML
                stripped = "\\" + stripped
            # List items keep the indentation that shows their nesting.
            out.append(line if re.match(r"\s*(-|\d+\.) ", line) else stripped)
    return out
