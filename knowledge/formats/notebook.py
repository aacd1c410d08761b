"""Jupyter notebooks as Markdown: their Markdown cells as written, their code cells as fenced code.

Research groups keep much of their know-how in notebooks ("how to query the redshift catalog"). A notebook
is JSON (nbformat 4; version 3 kept cells under ``worksheets``); read raw, its text is buried in escapes
and base64 images. Outputs are left out: they are results of one run (tables of numbers, plots, progress
bars), not documentation, and they would crowd the cells that explain.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["NotANotebook", "notebook_to_markdown"]


class NotANotebook(ValueError):
    """The text is not a Jupyter notebook (the message says why)."""


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", cell.get("input", ""))
    return "".join(str(line) for line in source) if isinstance(source, list) else str(source or "")


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: a hand-edited notebook may hold anything anywhere."""
    return value if isinstance(value, dict) else {}


def _level(cell: dict[str, Any]) -> int:
    try:
        return min(max(int(cell.get("level") or 1), 1), 6)
    except (TypeError, ValueError):
        return 1


def notebook_to_markdown(text: str) -> str:
    """The notebook ``text`` (its JSON) as Markdown."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotANotebook(f"it is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise NotANotebook("its JSON is not an object with cells")
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list):  # nbformat 3
        cells = [c for sheet in data["worksheets"] for c in _dict(sheet).get("cells") or []]
    if not isinstance(cells, list):
        raise NotANotebook("it has no list of cells")
    meta = _dict(data.get("metadata"))
    kernel = _dict(meta.get("language_info")).get("name") or _dict(meta.get("kernelspec")).get("language")
    language = kernel if isinstance(kernel, str) and re.fullmatch(r"[\w+#-]+", kernel) else ""
    parts: list[str] = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        body = _source(cell).strip("\n")
        if not body.strip():
            continue
        kind = cell.get("cell_type")
        if kind == "markdown":
            parts.append(body)
        elif kind == "code":
            fence = "````" if "```" in body else "```"
            parts.append(f"{fence}{language}\n{body}\n{fence}")
        elif kind == "heading":  # nbformat 3 heading cells
            parts.append("#" * _level(cell) + " " + " ".join(body.split()))
        else:  # raw cells: text as written
            parts.append(body)
    return "\n\n".join(parts)
