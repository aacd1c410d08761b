"""A job's options said in words ("with 20 bins", "for 30 seconds") as the command-line args ray.submit takes.

The small model leaves ``args`` empty (or invents flags); the template declares its options (``[options]``
in job.toml), so a number the user put next to an option's name is taken as that option's value.
"""

from __future__ import annotations

import re

__all__ = ["options_in"]


def _forms(name: str) -> str:
    word = re.escape(name)
    return rf"{word}s?" if not name.endswith("s") else rf"{word}?"


def options_in(text: str, options: list[str]) -> list[str]:
    """``["--bins", "20"]`` for "with 20 bins" when ``bins`` is an option; options not given are left out."""
    out: list[str] = []
    for name in options:
        forms = _forms(name)
        m = (
            re.search(rf"--{re.escape(name)}[ =](\d+(?:\.\d+)?)\b", text)
            or re.search(rf"(?<![\w.])(\d+(?:\.\d+)?)\s+{forms}\b", text, re.I)
            or re.search(rf"\b{forms}\s*(?:=|:|of|to)?\s*(\d+(?:\.\d+)?)(?![\w.])", text, re.I)
        )
        if m:
            out += [f"--{name}", m.group(1)]
    return out
