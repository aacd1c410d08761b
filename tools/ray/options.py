"""A job's options said in words ("with 20 bins", "for 30 seconds") as the command-line args ray.submit takes.

The small model leaves ``args`` empty (or invents flags); the template declares its options (``[options]``
in job.toml), so a number the user put next to an option's name is taken as that option's value. This is
``ray.submit``'s ``prepare`` hook: the agent calls it with the user's words before the call is validated.
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import InvalidArguments
from tools.context import ToolContext
from tools.ray.templates import template

__all__ = ["options_in", "prepare_submit"]


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


def prepare_submit(ctx: ToolContext, args: dict[str, Any], said: str) -> dict[str, Any]:
    """``ray.submit``'s arguments with the template's options the user gave values for, when the model gave none."""
    if args.get("args"):
        return args
    try:
        job = template(ctx.settings, str(args.get("template", "")))
    except InvalidArguments:
        return args  # an unknown template: the tool itself says which ones exist
    given = options_in(said, list(job.options))
    return {**args, "args": given} if given else args
