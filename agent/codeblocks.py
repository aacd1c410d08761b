"""Fenced code blocks in an answer: which lines are code, and blocks left empty once their lines were dropped."""

from __future__ import annotations

import re

__all__ = ["drop_empty_fences", "fenced_lines", "not_prose"]

# An opening or closing fence, its language word, and anything written after it on the same line.
_FENCE = re.compile(r"^(?P<fence>\s*(?:```|~~~)[\w+.-]*)(?:\s+(?P<code>.*?))?\s*(?P<close>```|~~~)?\s*$")
_EMPTY_BLOCK = re.compile(r"^[ \t]*(?:```|~~~)[^\n]*\n(?:[ \t]*\n)*[ \t]*(?:```|~~~)[ \t]*$", re.M)


def fenced_lines(text: str) -> list[tuple[str, bool]]:
    """The lines of ``text``, each with whether it is code (inside a fenced block; the fences are not).

    A fence with code after it on the same line ("```sh labops ask ...", as a small model writes them) is split
    into the fence and a line of code.
    """
    out: list[tuple[str, bool]] = []
    inside = False
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match is None:
            out.append((line, inside))
            continue
        code, closes = match.group("code"), match.group("close") is not None
        if code and not inside:
            out.append((match.group("fence"), False))
            out.append((code, True))
            if closes:
                out.append(("```", False))
            else:
                inside = True
            continue
        out.append((line, False))
        inside = not inside
    return out


def drop_empty_fences(text: str) -> str:
    """``text`` without the fenced blocks that hold nothing (every line of them was left out)."""
    return _EMPTY_BLOCK.sub("", text)


def not_prose(lines: list[str]) -> list[bool]:
    """For each of ``lines``, whether it is no sentence of prose: a fence, or a line inside a fenced block."""
    out: list[bool] = []
    inside = False
    for line in lines:
        match = _FENCE.match(line)
        if match is not None:
            opens_and_closes = bool(match.group("code")) and match.group("close") is not None and not inside
            inside = inside if opens_and_closes else not inside
        out.append(match is not None or inside)
    return out
