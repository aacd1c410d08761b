"""Docs or tools: which questions are about how the lab works and which about its state right now.

The route never depends on whether the documentation is indexed (the ``docs_score`` the router is given
only decides when no rule applies and no model is asked).
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.routing import Router
from core.config import load_settings
from policies.guard import Caller
from tools.registry import all_tools, toolsets

CALLER = Caller(user="researcher1", channel="cli")


class _Names:
    """The names a lab's listings would give (the real LabNames reads them through the guard)."""

    def named(self, text: str, caller: Any) -> dict[str, str]:
        return {n: "vm" for n in ("void-analysis", "qso-vae-dev", "proj-pg01", "monitoring") if n in text.lower()}


def _router() -> Router:
    return Router(settings=load_settings(None, llm={"provider": "scripted"}), tools=all_tools(),
                  toolsets=toolsets(), names=_Names())  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        # `make demo` on a fresh clone: answered from the backup policy page, this got "Yes, our backups are
        # healthy" while one backup had failed. A state question must reach the tools even when passages match.
        "Are our backups healthy?",
        "Which VMs are stopped at the moment?",
        "Is VM 132 backed up properly?",
        "Reboot proj-pg01.",
        "is void-analysis running?",
        "what vms do i have",
        "Spin up a VM called test-2 with 2 cores",
        "which VMs lack a recent backup?",
        "any jobs of mine on ray?",
    ],
)
@pytest.mark.parametrize("docs_score", [0.0, 0.95])
def test_questions_about_the_labs_state_go_to_the_tools(text: str, docs_score: float) -> None:
    assert _router().route(text, caller=CALLER, docs_score=docs_score).route == "lab", text


@pytest.mark.parametrize(
    "text",
    [
        "How does the backup verification work?",
        "When are backups verified?",
        "Who approves deleting a VM?",
        "What is our recovery point objective?",
        "how often are backups verified",
        "may I run 10 Ray jobs at once?",
    ],
)
@pytest.mark.parametrize("docs_score", [0.0, 0.95])
def test_questions_about_how_the_lab_works_go_to_the_docs(text: str, docs_score: float) -> None:
    assert _router().route(text, caller=CALLER, docs_score=docs_score).route == "docs", text


def test_a_named_thing_brings_its_family_s_tools() -> None:
    routed = _router().route("is void-analysis up?", caller=CALLER)
    assert routed.route == "lab" and routed.families == {"vm"}
