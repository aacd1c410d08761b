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


def _declared_only(args: list[Any], options: list[str]) -> bool:
    """Whether ``args`` are declared options with their values (``--bins 20``, ``--bins=20``).

    A value with no flag before it (``["20"]``: the small model dropped ``--bins``) is not: the job's argument
    parser would refuse it.
    """
    expects_value = False
    for arg in (str(a) for a in args):
        if arg.startswith("-"):
            flag, _, value = arg.partition("=")
            if not (flag.startswith("--") and flag[2:] in options):
                return False
            expects_value = not value
        elif expects_value:
            expects_value = False
        else:
            return False
    return True


def prepare_submit(ctx: ToolContext, args: dict[str, Any], said: str) -> dict[str, Any]:
    """``ray.submit``'s arguments with the template's options the user gave values for.

    The model's own ``args`` stand when every flag in them is a declared option; flags it made up ("-b" for
    ``bins``) are replaced by what the user's words give (nothing, when they give no option), since the job
    would only fail on them.
    """
    try:
        job = template(ctx.settings, str(args.get("template", "")))
    except InvalidArguments:
        return args  # an unknown template: the tool itself says which ones exist
    options = list(job.options)
    model_args = args.get("args")
    if model_args and isinstance(model_args, list) and _declared_only(model_args, options):
        return args
    given = options_in(said, options)
    if given or model_args:
        # Flags the model made up with no option said ("--heartbeat" for "run heartbeat on the gpu") are
        # dropped: the job's argument parser would refuse them and the job would fail at once.
        return {**args, "args": given}
    return args
