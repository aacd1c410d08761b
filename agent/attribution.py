"""Where each line of a documentation answer comes from: the passage it draws on, cited at its end.

The small model seldom cites what it writes. An answer whose own sentences carry no citation, followed by a
quoted sentence that does, showed only the quote's page as its source, while the answer itself was drawn from
another ("how do I get into the cluster from home?": the answer from the access page, the sources line naming
only the Kubernetes page of the quote). Each uncited line is given the citation of the passage whose words it
shares most, when it shares enough of them to say so; a line sharing little with every passage (a greeting, a
sentence the grounding check judges) is left as it is. Consecutive lines drawn from one passage are cited once,
after the last of them.
"""

from __future__ import annotations

from typing import Any

from agent.claims import CITATION, content_terms
from agent.codeblocks import not_prose

__all__ = ["cite_lines"]

# A line is attributed to a passage when it shares at least this many of its content words with it, and this
# share of them. Lower, a line about something else that names "VM" and "backup" would be put on a page.
MIN_SHARED = 3
MIN_SHARE = 0.5


def _source_of(line: str, passages: list[tuple[str, set[str]]]) -> str | None:
    terms = set(content_terms(line))
    if len(terms) < MIN_SHARED:
        return None
    best, shared = None, 0
    for citation, words in passages:
        n = len(terms & words)
        if n > shared:
            best, shared = citation, n
    if shared >= MIN_SHARED and shared >= MIN_SHARE * len(terms):
        return best
    return None


def cite_lines(answer: str, passages: list[dict[str, Any]]) -> str:
    """``answer`` with each uncited line that draws on one of ``passages`` followed by that passage's citation.

    Lines inside code blocks, lines that cite already, and the agent's own notes (``_(...)_``) stay as written.
    """
    pool = [(str(p.get("citation", "")), set(content_terms(str(p.get("text", ""))))) for p in passages]
    pool = [(c, words) for c, words in pool if c]
    if not pool:
        return answer
    lines = answer.split("\n")
    sources: list[str | None] = []
    for line, code in zip(lines, not_prose(lines), strict=True):
        plain = line.strip()
        if code or not plain or CITATION.search(line) or plain.startswith("_("):
            sources.append(None)
            continue
        sources.append(_source_of(plain, pool))
    out = []
    for i, (line, source) in enumerate(zip(lines, sources, strict=True)):
        following = sources[i + 1] if i + 1 < len(sources) else None
        out.append(f"{line.rstrip()} {source}" if source is not None and following != source else line)
    return "\n".join(out)
