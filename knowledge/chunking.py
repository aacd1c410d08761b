"""Split a document by its heading structure into chunks that fit the embedding model.

Each chunk knows its document, title and heading path. Blocks (paragraphs, lists, tables, code and
mermaid fences) are kept whole where they fit; a block too long for one chunk is split between
sentences (a table or list between rows/items), never mid-sentence. Consecutive chunks of one section
overlap by one sentence, so a fact at a boundary is findable from both sides.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.loaders import Document, _clean_heading
from knowledge.markup import strip_noise

__all__ = ["Chunk", "chunk_document"]

MAX_TOKENS = 220  # a chunk's text; with its "title > section" prefix it must fit the model's window
WINDOW = 256  # all-MiniLM-L6-v2 was trained on 256 tokens and cuts the rest: nothing longer may reach it
# Rows per table chunk, each chunk repeating the header: a row's fact is not averaged away among other rows.
# Tuned on the lab-docs set (bench/knowledge.py; hybrid recall@1 0.74 whole tables, 0.72 three rows, 0.79 one
# row) and reported on the package-README set, which was kept out of the tuning (0.64, 0.68, 0.67).
TABLE_ROWS = 1
MIN_BUDGET = 48  # a heading path so long it leaves less than this is itself shortened

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")


@dataclass(kw_only=True, frozen=True)
class Chunk:
    """One retrievable piece of a document."""

    id: str
    source: str
    title: str
    section: str
    text: str
    index: int

    @property
    def embed_text(self) -> str:
        """What is indexed (embedded and BM25): the heading path for context, the text without emphasis or emoji."""
        return f"{_prefix(self.title, self.section)}\n{strip_noise(self.text)}"


def _prefix(title: str, section: str) -> str:
    return f"{title} > {section}" if section else title


def _words(text: str, count: Callable[[str], int], limit: int) -> list[str]:
    """A single sentence or row longer than the limit, split between words (the last resort)."""
    # A "word" over the limit (a data URI, a hash list, CJK text without spaces) is cut by characters: a token
    # holds at least one character, so ``limit - 2`` characters and the two special tokens always fit.
    cut = max(limit - 2, 1)
    words = [w[i : i + cut] for w in text.split(" ") for i in range(0, max(len(w), 1), cut)]
    parts: list[str] = []
    start = 0
    while start < len(words):
        # The longest run of words from ``start`` that fits, found by bisection: a text of one endless line (a
        # log, a minified page) costs a few counts per part instead of one per word. A word is at least one
        # token, so no run longer than ``limit`` words can fit.
        low, high = 1, min(limit, len(words) - start)
        while low < high:
            mid = (low + high + 1) // 2
            if count(" ".join(words[start : start + mid])) <= limit:
                low = mid
            else:
                high = mid - 1
        parts.append(" ".join(words[start : start + low]))
        start += low
    return parts


def _blocks(lines: list[str]) -> list[str]:
    """Paragraphs, lists, tables and fenced code as whole blocks."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in lines:
        stripped = line.strip()
        if fence:
            current.append(line)
            if stripped.startswith(fence):
                blocks.append("\n".join(current))
                current, fence = [], None
            continue
        if stripped.startswith(("```", "~~~")):
            if current:
                blocks.append("\n".join(current))
            current, fence = [line], stripped[:3]
            continue
        if not stripped:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _is_separator(line: str) -> bool:
    """A Markdown table's ``|---|:--:|`` row (under the header)."""
    return set(line.replace("|", "").strip()) <= set("-: ")


def _table_groups(block: str, rows: int) -> list[str] | None:
    """A Markdown table with more than ``rows`` rows as groups of ``rows`` rows, each under the header."""
    lines = block.splitlines()
    if len(lines) < 3 + rows or not all(ln.lstrip().startswith("|") for ln in lines) or not _is_separator(lines[1]):
        return None
    header = lines[:2]
    body = lines[2:]
    return ["\n".join(header + body[i : i + rows]) for i in range(0, len(body), rows)]


def _split_block(block: str, count: Callable[[str], int], limit: int) -> list[str]:
    """A block too long for one chunk, split at rows/items or sentences."""
    lines = block.splitlines()
    is_rows = len(lines) > 1 and all(re.match(r"\s*([|*\-+]|\d+[.)])", ln) for ln in lines[1:])
    units = lines if is_rows or block.lstrip().startswith(("```", "~~~")) else _SENTENCE.split(block)
    header = lines[0] + "\n" + lines[1] if is_rows and len(lines) > 1 and _is_separator(lines[1]) else ""
    parts: list[str] = []
    current: list[str] = []
    joiner = "\n" if is_rows or block.lstrip().startswith(("```", "~~~")) else " "
    units = [piece for unit in units for piece in ([unit] if count(unit) <= limit else _words(unit, count, limit))]
    for unit in units:
        trial = joiner.join([*current, unit])
        if current and count(trial) > limit:
            parts.append(joiner.join(current))
            with_header = header and unit not in header and count(header + "\n" + unit) <= limit
            current = [header, unit] if with_header else [unit]
        else:
            current.append(unit)
    if current:
        parts.append(joiner.join(current))
    return parts


def chunk_document(
    doc: Document, count: Callable[[str], int], *, limit: int = MAX_TOKENS, window: int = WINDOW
) -> list[Chunk]:
    """Chunks of ``doc``; ``count`` gives a text's length in model tokens (with the model's two special tokens).

    Every chunk's :attr:`Chunk.embed_text` fits ``window``: the text's budget is what its heading path leaves.
    """
    sections: list[tuple[list[str], list[str]]] = []
    path: list[str] = []
    levels: list[int] = []  # the heading level of each entry of ``path`` (a README may skip levels or lack an H1)
    body: list[str] = []
    fence: str | None = None  # a "# comment" inside a code block is not a heading
    for line in doc.text.splitlines():
        stripped = line.strip()
        if fence and stripped.startswith(fence):
            fence = None
        elif not fence and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        m = None if fence or stripped.startswith(("```", "~~~")) else _HEADING.match(line)
        if m:
            sections.append((list(path), body))
            level = len(m.group(1))
            while levels and levels[-1] >= level:
                levels.pop()
                path.pop()
            path, levels = [*path, _clean_heading(m.group(2))], [*levels, level]
            body = []
        else:
            body.append(line)
    sections.append((list(path), body))

    chunks: list[Chunk] = []
    for heading_path, lines in sections:
        # The document's own H1 is its title: leave it out of the section path.
        names = heading_path[1:] if heading_path and heading_path[0] == doc.title else heading_path
        section = " > ".join(n for n in names if n)
        # Prefix and text share one pair of special tokens, hence the + 2.
        budget = min(limit, window - count(_prefix(doc.title, section)) + 2)
        while budget < MIN_BUDGET and " > " in section:
            section = section.split(" > ", 1)[1]  # the nearest headings say the most about the text
            budget = min(limit, window - count(_prefix(doc.title, section)) + 2)
        budget = max(budget, MIN_BUDGET)
        pieces: list[tuple[str, bool]] = []  # (text, stands alone)
        for block in _blocks(lines):
            groups = _table_groups(block, TABLE_ROWS) if TABLE_ROWS else None
            # A table's row groups stand alone as chunks; other blocks are packed together up to the budget.
            for unit in groups if groups is not None else [block]:
                fitted = [unit] if count(unit) <= budget else _split_block(unit, count, budget)
                pieces += [(p, groups is not None) for p in fitted]
        current: list[str] = []
        for piece, alone in pieces:
            if alone:
                if current:
                    chunks.append(_make(doc, section, "\n\n".join(current), len(chunks)))
                chunks.append(_make(doc, section, piece, len(chunks)))
                current = []
                continue
            trial = "\n\n".join([*current, piece])
            if current and count(trial) > budget:
                chunks.append(_make(doc, section, "\n\n".join(current), len(chunks)))
                last = _SENTENCE.split(current[-1])[-1]
                overlap = (
                    [last]
                    if count(last + "\n\n" + piece) <= budget and not last.lstrip().startswith(("|", "```"))
                    else []
                )
                current = [*overlap, piece]
            else:
                current.append(piece)
        if current:
            chunks.append(_make(doc, section, "\n\n".join(current), len(chunks)))
    return chunks


def _make(doc: Document, section: str, text: str, index: int) -> Chunk:
    # Everything that is embedded is in the id, so an id names one set of token states (the store caches them by id).
    digest = hashlib.sha1(f"{doc.source}\x00{index}\x00{doc.title}\x00{section}\x00{text}".encode()).hexdigest()[:16]
    return Chunk(id=digest, source=doc.source, title=doc.title, section=section, text=text.strip(), index=index)
