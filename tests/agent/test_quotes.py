"""Documentation answers quoted: the model picks numbered sentences, the answer shows them with their sources."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agent.node_model import ModelNodes
from agent.quotes import MOST, NONE_LINE, NOT_FOUND, QUOTE_PROMPT, quotable
from agent.ranking import best_sentences
from agent.steering import UNSURE
from core.config import load_settings
from policies.guard import Caller

CALLER = Caller(user="researcher1", channel="cli")

SCHEDULE = {
    "citation": "[backup-policy.md § Schedule]",
    "section": "Schedule",
    "text": "- Daily backup job `backup-daily` at **09:00** (snapshot mode, zstd).\n"
    "- The PBS verify job `verify-daily` checks new snapshots at **11:00**.\n"
    "- Garbage collection runs every night at 02:00.",
}
QUOTAS = {
    "citation": "[labops-guide.md § Quotas]",
    "section": "Quotas",
    "text": "| role | VMs | cores | memory |\n|---|---|---|---|\n| researcher | 3 | 16 | 64 GiB |\n"
    "| admin | 20 | 128 | 512 GiB |\n\nUsage is counted from the lab itself.",
}


def test_a_table_row_is_read_with_its_column_names() -> None:
    ranked = best_sentences("How many VMs may a researcher have?", [QUOTAS], k=5)
    rows = [r.sentence for r in ranked]
    assert "role: researcher; VMs: 3; cores: 16; memory: 64 GiB" in rows
    # The header line and the separator are no sentences of their own.
    assert not any(r.startswith("role | VMs") or set(r) <= set("|-: ") for r in rows)


def test_the_model_is_shown_numbered_sentences_and_may_pick_only_those() -> None:
    offer = quotable("when are new snapshots verified?", [SCHEDULE])
    assert offer is not None
    system, human = offer.messages("researcher1 (researcher)")
    assert isinstance(system, SystemMessage) and system.content == QUOTE_PROMPT
    assert isinstance(human, HumanMessage)
    lines = re.findall(r"^(\d+)\. (\[[^\]]+\]) (.*)$", str(human.content), re.M)
    assert [int(n) for n, *_ in lines] == list(range(1, len(offer.ranked) + 1))
    assert str(human.content).splitlines()[len(lines) + 1] == f"0. {NONE_LINE}"
    assert "Question from researcher1 (researcher): when are new snapshots verified?" in str(human.content)
    items = offer.schema()["properties"]["sentences"]
    assert items["items"]["enum"] == list(range(len(offer.ranked) + 1)) and items["maxItems"] == MOST


def test_the_reply_is_read_strictly() -> None:
    offer = quotable("when are new snapshots verified?", [SCHEDULE])
    assert offer is not None
    n = len(offer.ranked)
    assert offer.chosen('{"sentences": [2, 2, 1]}') == [offer.ranked[1], offer.ranked[0]]
    assert offer.chosen('```json\n{"sentences": [1]}\n```') == [offer.ranked[0]]
    # Out of range, booleans and strings are no sentence numbers; a reply in prose is no choice at all.
    assert offer.chosen(json.dumps({"sentences": [n + 1, True, "1"]})) == []
    # 0 first is "none of these answers it"; a 0 after a sentence number is only not a sentence.
    assert offer.chosen('{"sentences": [0, 1]}') == []
    assert offer.chosen('{"sentences": [1, 0]}') == [offer.ranked[0]]
    assert offer.chosen("The verify job runs at 11:00.") is None
    assert offer.chosen('{"answer": "11:00"}') is None


def test_the_answer_quotes_the_chosen_sentences_with_their_sources() -> None:
    offer = quotable("when are new snapshots verified?", [SCHEDULE, QUOTAS])
    assert offer is not None
    verify = next(r for r in offer.ranked if "11:00" in r.sentence)
    one = offer.answer([verify])
    assert one == f'The documentation says: "{verify.sentence}" [backup-policy.md § Schedule]'
    two = offer.answer(offer.ranked[:2])
    assert two.count("\n- ") == 2 and all(r.citation in two for r in offer.ranked[:2])
    # None chosen reads as the model not knowing: the tools are tried, else the turn says it found nothing.
    assert offer.answer([]) == NOT_FOUND and UNSURE.search(NOT_FOUND)


def _sentence_picker(fact: str, calls: list[str]) -> Any:
    """A model that, shown numbered sentences, picks the one holding ``fact`` (none when no line holds it)."""

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        if messages and messages[0].content == QUOTE_PROMPT:
            calls.append(str(messages[-1].content))
            picked = [int(n) for n, line in re.findall(r"^(\d+)\. (.*)$", str(messages[-1].content), re.M)
                      if fact in line]  # fmt: skip
            return json.dumps({"sentences": picked[:1] or [0]})
        return "ok"  # the router's own helper calls: no JSON, so its rules decide

    return responder


def _agent(make_agent: Any, lab: Path, docs_index: Path, responder: Any) -> Any:
    # provider ollama with a scripted model handed in: the agent constrains and quotes as with the real server.
    settings = load_settings(
        None, lab_dir=lab, llm={"provider": "ollama"}, milvus={"uri": str(docs_index)}, agent={"docs_answers": "quote"}
    )
    return make_agent(responder=responder, settings=settings)


def test_a_documentation_question_is_answered_with_the_sentence_the_model_picked(
    make_agent: Any, lab: Path, docs_index: Path
) -> None:
    calls: list[str] = []
    agent = _agent(make_agent, lab, docs_index, _sentence_picker("11:00", calls))
    result = agent.ask("At what time does the verify job check new snapshots?", caller=CALLER)
    assert len(calls) == 1
    assert result.status == "answered"
    assert re.search(r'The documentation says: ".*11:00.*" \[backup-policy\.md § Schedule\]', result.answer)
    assert "26 hours" not in result.answer  # another fact of the same page is not the answer


def test_no_sentence_picked_is_no_answer(make_agent: Any, lab: Path, docs_index: Path) -> None:
    calls: list[str] = []
    agent = _agent(make_agent, lab, docs_index, _sentence_picker("no line holds this", calls))
    result = agent.ask("Which printer should I use on the third floor of the institute?", caller=CALLER)
    assert "The documentation says" not in result.answer
    assert "could not find" in result.answer.lower() or "don't know" in result.answer.lower()


@pytest.mark.parametrize(
    ("provider", "answers", "mode"),
    [("ollama", None, "docs"), ("ollama", "quote", "quote"), ("scripted", "quote", "docs")],
)
def test_quoting_is_chosen_by_setting_and_needs_a_constraining_provider(
    make_agent: Any, lab: Path, docs_index: Path, provider: str, answers: str | None, mode: str
) -> None:
    agent_settings = {"docs_answers": answers} if answers else {}
    settings = load_settings(
        None, lab_dir=lab, llm={"provider": provider}, milvus={"uri": str(docs_index)}, agent=agent_settings
    )
    nodes = ModelNodes(deps=make_agent(responder=lambda m, t: "ok", settings=settings).deps)
    assert nodes.mode_of({"model_calls": 0, "asks_docs": True, "log": []}) == mode
