"""The answer after tool calls: the model's words when they answer, the tools' own words when they do not."""

from __future__ import annotations

from typing import Any

from agent.answers import fallback_answer, read_answer

QUESTION = "How much did the lab spend on hardware in 2024?"


def _entry(status: str, message: str, *, repairable: bool = False) -> dict[str, Any]:
    return {"name": "vm.provision", "args": {}, "status": status, "message": message, "repairable": repairable}


def test_a_prompt_given_back_after_a_refused_call_is_no_answer() -> None:
    # The model proposed a change nobody asked for (refused, then left to the model), then echoed the prompt.
    turn: Any = {"log": [_entry("denied", "not run: your message did not ask for it", repairable=True)]}
    text = read_answer(f"I am researcher1 (researcher). {QUESTION}", turn, question=QUESTION, user="researcher1")
    assert text.startswith("I could not find that") and "2024" not in text


def test_what_was_not_done_is_said_when_the_model_echoes() -> None:
    turn: Any = {"log": [_entry("error", "PVE is unreachable (pve.host)")]}
    text = read_answer(QUESTION, turn, question=QUESTION, user="researcher1")
    assert text == "Not done: PVE is unreachable (pve.host)"


def test_the_model_s_words_stand_when_they_answer() -> None:
    turn: Any = {"log": [_entry("error", "PVE is unreachable (pve.host)")]}
    said = "I could not reach the Proxmox API, so nothing was created."
    assert read_answer(said, turn, question="create a vm called x", user="researcher1") == said


def test_a_silent_model_after_refused_tries_gets_the_last_refusal() -> None:
    # "submit heartbeat with 2 gpus": two tries refused by validation, the model then said nothing. "I do not
    # know" would hide why nothing ran.
    why = "invalid arguments for ray.submit: num_gpus: Input should be less than or equal to 1"
    turn: Any = {"log": [_entry("error", why, repairable=True), _entry("error", why, repairable=True)]}
    assert fallback_answer({"turn": turn}) == f"Not done: {why}"
    assert fallback_answer({"turn": {"log": []}}).startswith("I do not know")
