"""Whether a text mentions a name on its own: "agn-fit" in "is agn-fit up?", not in "agn-fitter" or "my-agn-fit".

Names in the lab hold hyphens (``void-analysis``, ``rke2-01``), so a word boundary alone is not enough: a
hyphen or a word character on either side makes the name part of a longer one.
"""

from __future__ import annotations

import re

__all__ = ["mention", "mentions"]


def mention(name: object) -> str:
    """The pattern of ``name`` mentioned on its own (its text, escaped, with no word character or hyphen around).

    A hyphen in the name may be written as a space: "run the redshift histogram" names ``redshift-histogram``.
    """
    return rf"(?<![\w-]){re.escape(str(name)).replace(re.escape('-'), '[- ]')}(?![\w-])"


def mentions(text: str, name: object) -> bool:
    """Whether ``text`` mentions ``name`` on its own (case as given: lower both for a case-blind test)."""
    return re.search(mention(name), text) is not None
