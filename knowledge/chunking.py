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

__all__ = ["Chunk", "chunk_document"]

MAX_TOKENS = 220  # leaves room for the "title > section" prefix within the model's 256 tokens

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
        """What is embedded: the heading path gives the chunk its context."""
        return f"{self.title} > {self.section}\n{self.text}" if self.section else f"{self.title}\n{self.text}"


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


def _split_block(block: str, count: Callable[[str], int], limit: int) -> list[str]:
    """A block too long for one chunk, split at rows/items or sentences."""
    lines = block.splitlines()
    is_rows = len(lines) > 1 and all(re.match(r"\s*([|*\-+]|\d+[.)])", ln) for ln in lines[1:])
    units = lines if is_rows or block.lstrip().startswith(("```", "~~~")) else _SENTENCE.split(block)
    header = (
        lines[0] + "\n" + lines[1]
        if is_rows and len(lines) > 1 and set(lines[1].replace("|", "").strip()) <= set("-: ")
        else ""
    )
    parts: list[str] = []
    current: list[str] = []
    joiner = "\n" if is_rows or block.lstrip().startswith(("```", "~~~")) else " "
    for unit in units:
        trial = joiner.join([*current, unit])
        if current and count(trial) > limit:
            parts.append(joiner.join(current))
            current = [header, unit] if header and unit not in header else [unit]
        else:
            current.append(unit)
    if current:
        parts.append(joiner.join(current))
    return parts


def chunk_document(doc: Document, count: Callable[[str], int], *, limit: int = MAX_TOKENS) -> list[Chunk]:
    """Chunks of ``doc``; ``count`` gives a text's length in model tokens."""
    sections: list[tuple[list[str], list[str]]] = []
    path: list[str] = []
    body: list[str] = []
    for line in doc.text.splitlines():
        m = _HEADING.match(line)
        if m and not (
            body and body[-1].strip().startswith("```") and len([b for b in body if b.strip().startswith("```")]) % 2
        ):
            sections.append((list(path), body))
            level = len(m.group(1))
            path = [*path[: level - 1], _clean_heading(m.group(2))]
            body = []
        else:
            body.append(line)
    sections.append((list(path), body))

    chunks: list[Chunk] = []
    for heading_path, lines in sections:
        # The document's own H1 is its title: leave it out of the section path.
        names = heading_path[1:] if heading_path and heading_path[0] == doc.title else heading_path
        section = " > ".join(n for n in names if n)
        pieces: list[str] = []
        for block in _blocks(lines):
            pieces += [block] if count(block) <= limit else _split_block(block, count, limit)
        current: list[str] = []
        for piece in pieces:
            trial = "\n\n".join([*current, piece])
            if current and count(trial) > limit:
                chunks.append(_make(doc, section, "\n\n".join(current), len(chunks)))
                last = _SENTENCE.split(current[-1])[-1]
                overlap = (
                    [last]
                    if count(last + "\n\n" + piece) <= limit and not last.lstrip().startswith(("|", "```"))
                    else []
                )
                current = [*overlap, piece]
            else:
                current.append(piece)
        if current:
            chunks.append(_make(doc, section, "\n\n".join(current), len(chunks)))
    return chunks


def _make(doc: Document, section: str, text: str, index: int) -> Chunk:
    digest = hashlib.sha1(f"{doc.source}\x00{index}\x00{text}".encode()).hexdigest()[:16]
    return Chunk(id=digest, source=doc.source, title=doc.title, section=section, text=text.strip(), index=index)
