"""Fenced code blocks in an answer: which lines are code, and blocks left empty once their lines were dropped."""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["drop_empty_fences", "fenced_lines", "not_prose"]

# An opening or closing fence, its language word, and anything written after it on the same line.
_FENCE = re.compile(r"^(?P<fence>\s*(?:```|~~~)[\w+.-]*)(?:\s+(?P<code>.*?))?\s*(?P<close>```|~~~)?\s*$")
_EMPTY_BLOCK = re.compile(r"^[ \t]*(?:```|~~~)[^\n]*\n(?:[ \t]*\n)*[ \t]*(?:```|~~~)[ \t]*$", re.M)


def _walk(lines: list[str]) -> Iterator[tuple[str, re.Match[str] | None, bool]]:
    """Each line, its fence (None for any other line), and whether a block was open before it.

    A fence toggles the block, except one that opens and closes on its own line (```` ```sh code``` ````).
    """
    inside = False
    for line in lines:
        match = _FENCE.match(line)
        yield line, match, inside
        if match is not None and not (match.group("code") and match.group("close") is not None and not inside):
            inside = not inside


def fenced_lines(text: str) -> list[tuple[str, bool]]:
    """The lines of ``text``, each with whether it is code (inside a fenced block; the fences are not).

    A fence with code after it on the same line ("```sh labops ask ...", as a small model writes them) is split
    into the fence and a line of code.
    """
    out: list[tuple[str, bool]] = []
    for line, match, inside in _walk(text.splitlines()):
        if match is None:
            out.append((line, inside))
        elif match.group("code") and not inside:
            out += [(match.group("fence"), False), (match.group("code"), True)]
            if match.group("close") is not None:
                out.append(("```", False))
        else:
            out.append((line, False))
    return out


def drop_empty_fences(text: str) -> str:
    """``text`` without the fenced blocks that hold nothing (every line of them was left out)."""
    return _EMPTY_BLOCK.sub("", text)


def not_prose(lines: list[str]) -> list[bool]:
    """For each of ``lines``, whether it is no sentence of prose: a fence, or a line inside a fenced block."""
    return [match is not None or inside for _line, match, inside in _walk(lines)]
