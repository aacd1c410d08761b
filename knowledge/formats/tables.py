"""A table as the chunker reads it: pipe rows under a header and a separator."""

from __future__ import annotations

import re

__all__ = ["cell_text", "pipe_table"]


def cell_text(text: str) -> str:
    """A cell's text as a pipe table holds it: on one line, its own pipes escaped."""
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def pipe_table(rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table of ``rows`` (cells on one line, pipes escaped); ``[]`` when all are empty.

    The first row is the header whether or not the source marked it: the chunker repeats it above every row,
    and the first row of a table without a marked header usually names the columns anyway. Short rows are
    padded, so every row has the header's cells.
    """
    rows = [r for r in rows if any(c for c in r)]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    head = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in range(width)) + "|"]
    return head + ["| " + " | ".join(r) + " |" for r in rows[1:]]
