"""Whether a text mentions a name on its own: "agn-fit" in "is agn-fit up?", not in "agn-fitter" or "my-agn-fit".

Names in the lab hold hyphens (``void-analysis``, ``rke2-01``), so a word boundary alone is not enough: a
hyphen or a word character on either side makes the name part of a longer one.
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["mention", "mentions", "spaced_names"]


def mention(name: object, *, spaced: bool = False) -> str:
    """The pattern of ``name`` mentioned on its own (its text, escaped, with no word character or hyphen around).

    With ``spaced``, a hyphen in the name may be written as a space: "run the redshift histogram" names
    ``redshift-histogram`` (see :func:`spaced_names`: only names a part of which is no English word).
    """
    escaped = re.escape(str(name))
    if spaced:
        escaped = escaped.replace(re.escape("-"), "[- ]")
    return rf"(?<![\w-]){escaped}(?![\w-])"


def mentions(text: str, name: object, *, spaced: bool = False) -> bool:
    """Whether ``text`` mentions ``name`` on its own (case as given: lower both for a case-blind test)."""
    return re.search(mention(name, spaced=spaced), text) is not None


def spaced_names(name: str, english: Collection[str]) -> bool:
    """Whether ``name`` written with spaces for its hyphens still names it: some part is no English word.

    "redshift histogram" names the template ``redshift-histogram``; "void analysis" is English words, and names
    the VM ``void-analysis`` no more than "the void analysis project" does.
    """
    parts = name.lower().split("-")
    return len(parts) > 1 and any(p.isalpha() and p not in english for p in parts)
