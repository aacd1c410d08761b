"""Docs or tools: which questions are about how the lab works and which about its state right now."""

from __future__ import annotations

import pytest

from agent.steering import asks_docs


@pytest.mark.parametrize(
    "text",
    [
        # `make demo` on a fresh clone: answered from the backup policy page, this got "Yes, our backups are
        # healthy" while one backup had failed. A state question must reach the tools even when passages match.
        "Are our backups healthy?",
        "Is the Ray cluster working?",
        "Which VMs are stopped at the moment?",
        "Is VM 132 backed up properly?",
        "Reboot proj-pg01.",
    ],
)
def test_questions_about_the_labs_state_go_to_the_tools(text: str) -> None:
    assert not asks_docs(text, passages=True)


@pytest.mark.parametrize(
    "text",
    [
        "How does the backup verification work?",
        "When are backups verified?",
        "Who approves deleting a VM?",
        "What is our recovery point objective?",
    ],
)
def test_questions_about_how_the_lab_works_go_to_the_docs(text: str) -> None:
    assert asks_docs(text, passages=True)
