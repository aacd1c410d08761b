"""What is left of an answer once sentences were left out: a lead-in whose content went is left out too.

The grounding check (:mod:`agent.grounding`) leaves out a model's sentences one by one. A sentence that only
announces what follows ("You can do this by running:", "For example:") then stands above nothing, or above
the next step, where it reads as if that step were the command it announced. And a sentence that opens by
pointing back ("This is because ...") at one left out points at nothing: the opening goes, the rest stays.
"""

from __future__ import annotations

import re
from typing import Literal

from agent.claims import sentences

__all__ = ["Line", "is_marker", "without_back_reference", "without_dangling_leads"]

# What became of a line of the answer: kept (some or all of its sentences), left out whole, or blank/a fence.
Line = tuple[str, Literal["kept", "dropped", "other"]]

_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*+])\s")
_LEAD = re.compile(r":\s*(?:\*\*|__)?\s*$")
_MARKER = re.compile(r"\d{1,2}[.)]|[-*+]")
# "This is because", "That's why", "This means that": an opening that says how the sentence follows from the one
# before it.
_BACK = re.compile(
    r"^(?:this|that|it)(?: is|'s| was)? (?:because|why|since)\s+|^(?:this|that) means(?: that)?\s+"
    # "So," with its comma only: "So far ..." and "So many ..." do not point back.
    r"|^(?:therefore|hence|thus),?\s+|^so,\s+",
    re.I,
)


def is_marker(text: str) -> bool:
    """Whether ``text`` is a list item's marker and nothing else ("2.", "-"): its item's text was left out."""
    return bool(_MARKER.fullmatch(text.strip()))


def without_dangling_leads(lines: list[Line]) -> list[Line]:
    """``lines``, each kept line's closing lead-in left out when what it led into was (the line then "dropped").

    A lead-in ends with a colon; it dangles when the next line with content was left out and no list item
    follows among the kept lines (a list whose first item went still has its lead). A line left with nothing
    but a list marker ("5.") is left out too.
    """
    out: list[Line] = []
    for at, (text, status) in enumerate(lines):
        if status == "kept" and _LEAD.search(text) and _dangles(lines[at + 1 :]):
            parts = sentences(text)
            text = " ".join(parts[:-1]) if len(parts) > 1 else ""
            if not text.strip() or is_marker(text):
                out.append(("", "dropped"))
                continue
        out.append((text, status))
    return out


def _dangles(after: list[Line]) -> bool:
    """Whether the lines after a lead-in start with one left out, and no kept list item follows."""
    following = [(t, s) for t, s in after if s != "other"]
    if not following or following[0][1] != "dropped":
        return False
    kept = next((t for t, s in following if s == "kept"), None)
    return kept is None or not _LIST_ITEM.match(kept)


def without_back_reference(sentence: str) -> str:
    """``sentence`` without an opening that points back at the sentence before ("This is because x" → "X").

    For a sentence whose predecessor was left out; unchanged when it opens otherwise.
    """
    match = _BACK.match(sentence)
    if match is None or not sentence[match.end() :].strip():
        return sentence
    rest = sentence[match.end() :]
    return rest[0].upper() + rest[1:]
