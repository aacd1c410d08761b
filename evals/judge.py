"""The optional model-as-judge check: the model under test grades an answer against a rubric.

It runs last, only when every deterministic check passed, and only where a case gives a rubric; it never
decides a case on its own. A judge that cannot answer PASS or FAIL counts as a failed check.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

__all__ = ["judge"]

_SYSTEM = ("You grade answers of a lab operations assistant. Read the question, the answer and the criterion. "
           "Reply with one word: PASS if the answer meets the criterion, FAIL otherwise.")  # fmt: skip


def judge(model: Any, rubric: str, question: str, answer: str) -> tuple[bool, str]:
    """(verdict, what the judge said)."""
    prompt = f"Question: {question}\n\nAnswer: {answer}\n\nCriterion: {rubric}\n\nPASS or FAIL?"
    reply = model.invoke([SystemMessage(content=_SYSTEM), HumanMessage(content=prompt)])
    text = str(getattr(reply, "content", reply)).strip()
    verdict = text.upper().lstrip("*# ").split()[0] if text else ""
    return verdict.startswith("PASS"), text[:200]
