"""Markdown as READMEs really write it: underlined headings, HTML blocks and comments.

The chunker understands ``#`` headings, paragraphs, lists, pipe tables and fences. READMEs also use
"setext" headings (a line underlined with ``===`` or ``---``), HTML for what Markdown cannot do (a centred
``<h1 align="center">``, ``<details>``, HTML tables, ``<br>`` in table cells) and HTML comments, which are
notes to the next editor, never meant to be read. This turns those into the forms the chunker knows and
leaves code (fenced or inline) exactly as written.
"""

from __future__ import annotations

import html
import re

from knowledge.formats.html import html_to_text

__all__ = ["normalize_markdown"]

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_TABLE = re.compile(r"<table\b.*?</table\s*>", re.S | re.I)
_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.S | re.I)
# Only tags HTML has: `List<String>` and `<user@host>` in prose are words, not markup.
_BLOCK_TAGS = "p|div|details|summary|center|section|article|header|footer|blockquote|figure|figcaption|hr|ul|ol|li"
_INLINE_TAGS = (
    "a|b|strong|i|em|u|s|del|ins|sup|sub|span|small|big|kbd|samp|var|mark|abbr|cite|font|picture|source|"
    "video|audio|nobr|tt|dl|dt|dd"
)
_BLOCK = re.compile(rf"</?(?:{_BLOCK_TAGS})\b[^>]*>", re.I)
_INLINE = re.compile(rf"</?(?:{_INLINE_TAGS})\b[^>]*>", re.I)
_BR = re.compile(r"<br\s*/?>", re.I)
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_CODE_TAG = re.compile(r"</?code\b[^>]*>", re.I)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.S)
_UNDERLINE = re.compile(r"^ {0,3}(={2,}|-{3,})[ \t]*$")


def _segments(text: str) -> list[tuple[bool, str]]:
    """``(is_code, text)`` pieces: fenced blocks whole, and the Markdown between them."""
    out: list[tuple[bool, list[str]]] = []
    fence: str | None = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append((True, [line]))
            continue
        if fence is not None:
            out[-1][1].append(line)
            closing = line.strip()
            if len(closing) >= len(fence) and not closing.strip(fence[0]):  # as long a run of the same character
                fence = None
            continue
        if not out or out[-1][0]:
            out.append((False, []))
        out[-1][1].append(line)
    return [(code, "\n".join(lines)) for code, lines in out]


def _html_out(text: str) -> str:
    """HTML in Markdown prose as Markdown; inline code is kept as written."""
    spans: list[str] = []

    def keep(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = _INLINE_CODE.sub(keep, text)
    text = _COMMENT.sub("", text)
    text = _TABLE.sub(lambda m: "\n\n" + html_to_text(m.group(0))[0] + "\n\n", text)
    text = _HEADING.sub(lambda m: f"\n\n{'#' * int(m.group(1))} {_one_line(m.group(2))}\n\n", text)
    # A <br> inside a table row must not end the row.
    text = _BR.sub(" ", text)
    text = _BLOCK.sub("\n\n", text)
    text = _CODE_TAG.sub("`", _INLINE.sub("", text))
    text = html.unescape(text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def _one_line(fragment: str) -> str:
    """A heading's HTML as one line of text; a logo beside the title is no part of it."""
    return re.sub(r"\s+", " ", _INLINE.sub("", _IMG.sub("", _BR.sub(" ", fragment)))).strip()


def _setext(text: str) -> str:
    """``Title`` over ``=====`` (or ``-----``) as ``# Title`` (``## Title``)."""
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        m = _UNDERLINE.match(line)
        prev = out[-1] if out else ""
        before = out[-2] if len(out) > 1 else ""
        # Only a one-line paragraph is a heading here: "---" under a longer paragraph is more often meant as a
        # rule than as the heading CommonMark would make of the whole paragraph. Rows and items are not titles.
        if i > 0 and m and prev.strip() and not before.strip() and not re.match(r"\s*([|>#*+-]|\d+[.)]\s)", prev):
            out[-1] = ("#" if m.group(1)[0] == "=" else "##") + " " + prev.strip()
            continue
        out.append(line)
    return "\n".join(out)


def normalize_markdown(text: str) -> str:
    """Setext headings as ``#`` headings, HTML comments out, HTML blocks as Markdown; code untouched."""
    return "\n".join(part if code else _setext(_html_out(part)) for code, part in _segments(text))
