"""How a message is read: what "the stopped one" stands for, another language, ids nobody gave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from agent.language import foreign_language
from agent.referents import resolve, things_of
from agent.scripted import call
from policies.guard import Caller

R1 = Caller(user="researcher1", channel="cli")

VMS = {
    "name": "vm.list",
    "status": "ok",
    "data": [
        {"vmid": 130, "name": "void-analysis", "status": "running", "node": "node02", "owner": "researcher1"},
        {"vmid": 132, "name": "qso-vae-dev", "status": "stopped", "node": "node03", "owner": "researcher1"},
        {"vmid": 140, "name": "sky-sim", "status": "running", "node": "node02", "owner": "researcher1"},
    ],
}


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("À quelle heure les sauvegardes sont-elles vérifiées ?", "French"),
        ("Welche GPU hat das Labor?", "German"),
        ("¿Cuándo se hace la copia de seguridad?", "Spanish"),
        ("cuantos cores tiene proj-pg01", "Spanish"),
        # Requests: an imperative, the thing's name and a "please".
        ("Apaga la VM void-analysis, por favor", "Spanish"),
        ("Starte bitte die VM qso-vae-dev, danke", "German"),
        ("Riavvia la VM agn-fit, per favore", "Italian"),
        # One function word, joined to its verb ("peux-tu"), and a word spelt with a letter English does not use.
        ("Peux-tu arrêter qso-vae-dev ?", "French"),
        # Short German with few function words (fresh dev cases read as English, so never translated).
        ("Wie viel Speicher hat agn-fit?", "German"),
        ("In welchem Namespace liegen die RayJob-Objekte?", "German"),
        ("Starte bitte die VM qso-vae-dev", "German"),
        # A verb and a name, between the marks only Spanish opens a question or an exclamation with.
        ("¿puedes reiniciar agn-fit?", "Spanish"),
        ("¡apaga void-analysis!", "Spanish"),
        ("the café VM is down, is that normal?", None),
        ("do me a favor and list my vms", None),
        ("When are backups verified?", None),
        ("is void-analysis running", None),
        ("restart VM 132 on node03 pls", None),
        ("Tailscale", None),
    ],
)
def test_the_language_of_a_message_is_told_by_its_function_words(text: str, language: str | None) -> None:
    assert foreign_language(text) == language


def test_things_of_a_turn_keep_their_ids_names_and_one_word_values() -> None:
    things = things_of([VMS, {"name": "vm.nodes", "status": "error", "data": [{"node": "node09"}]}])
    assert [t["label"] for t in things] == ["VM 130", "VM 132", "VM 140"]  # failed results are no evidence
    assert things[1]["name"] == "qso-vae-dev" and "stopped" in things[1]["traits"]


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("is the stopped one backed up?", ["VM 132"]),
        ("start the stopped VM", ["VM 132"]),
        ("and the running ones?", ["VM 130", "VM 140"]),
        ("show me the second one", ["VM 132"]),
        ("what about the last one", ["VM 140"]),
        ("are they backed up?", ["VM 130", "VM 132", "VM 140"]),
        # Words that fit nothing or several things a singular asks for, or a message naming its own id: unresolved.
        ("is the running one backed up?", None),
        ("is the failed one backed up?", None),
        ("is it backed up?", None),
        ("is VM 131 backed up?", None),
    ],
)
def test_referring_words_resolve_among_the_last_things(text: str, labels: list[str] | None) -> None:
    found = resolve(text, things_of([VMS]))
    assert (None if found is None else [t["label"] for t in found.things]) == labels


def test_that_one_is_the_one_thing_with_a_value_the_earlier_message_asked_for() -> None:
    # "show me my stopped vms" listed all three (the listing has no state filter); "that one" is the stopped one.
    found = resolve("when was that one last backed up?", things_of([VMS]), before="show me my stopped vms")
    assert found is not None and found.note() == "(that one: VM 132 qso-vae-dev)"
    # Two running ones: still not one reading.
    assert resolve("is that one backed up?", things_of([VMS]), before="which of my VMs are running?") is None
    assert resolve("is that one backed up?", things_of([VMS]), before="list my VMs") is None


def test_a_state_word_of_the_earlier_message_picks_the_thing_the_tools_call_so() -> None:
    # "Which of my VMs are off?" listed a running and a stopped VM; "start it" is the stopped one ("off").
    two = things_of([{**VMS, "data": VMS["data"][:2]}])
    found = resolve("start it", two, before="which of my vms are off?")
    assert found is not None and found.note() == "(it: VM 132 qso-vae-dev)"
    assert resolve("start it", two, before="which of my vms are on node02?") is None


def test_which_of_the_following_refers_to_the_things_listed() -> None:
    # How the 1.5B model translated "Und welche davon läuft gerade nicht?".
    found = resolve("Which of the following is currently not running?", things_of([VMS]))
    assert found is not None and len(found.things) == 3


def test_it_is_the_one_thing_of_the_last_answer() -> None:
    one = things_of([{"name": "vm.show", "status": "ok", "data": VMS["data"][1]}])
    found = resolve("please start it", one)
    assert found is not None and found.note() == "(it: VM 132 qso-vae-dev)"


def _last_human(messages: list[BaseMessage]) -> str:
    return next(str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage))


def test_a_follow_up_in_one_thread_acts_on_the_thing_it_refers_to(make_agent: Any, lab: Path) -> None:
    seen: list[str] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        asked = _last_human(messages)
        seen.append(asked)
        if "stopped one" not in asked:
            if any("Result of" in str(m.content) for m in messages[-2:]):
                return "qso-vae-dev is stopped."
            return call("vm_list", {"status": "stopped"})
        if "Result of" in str(messages[-1].content):
            return "Its last backup is listed above."
        # The model reads the id in the message: the follow-up's referent was written after it.
        return call("backup_status", {"vmid": 132} if "VM 132" in asked else {})

    agent = make_agent(responder=responder)
    first = agent.ask("which of my VMs are stopped?", caller=R1)
    assert first.tool_calls[0]["name"] == "vm.list"
    second = agent.ask("is the stopped one backed up?", caller=R1, thread=first.thread)
    assert "(the stopped one: VM 132 qso-vae-dev)" in seen[-1]
    assert second.tool_calls[0]["name"] == "backup.status"
    assert second.tool_calls[0]["args"].get("vmid") == 132


def test_a_read_by_an_id_nobody_gave_is_not_made(make_agent: Any, lab: Path) -> None:
    # The 1.5B model, offered the tools for a question no tool answers, read a made-up DESI target.
    agent = make_agent(replies=[call("desi_object", {"targetid": 1234567890}), "I do not know."])
    result = agent.ask("what's in the lab's secret archive?", caller=R1)
    assert [c["status"] for c in result.tool_calls] == ["error"]
    assert "a guess" in result.tool_calls[0]["message"]
    # The same id given by the user is read.
    agent = make_agent(replies=[call("desi_object", {"targetid": 1234567890}), "No such target."])
    result = agent.ask("what do we know about DESI target 1234567890?", caller=R1)
    assert result.tool_calls[0]["status"] in ("ok", "no_data")


def test_a_message_in_another_language_keeps_the_user_s_words_as_evidence(make_agent: Any) -> None:
    # The scripted model cannot translate (no constrained output): the message is read as written, nothing fails.
    agent = make_agent(replies=["Je ne sais pas."])
    result = agent.ask("Quelle est la carte graphique du labo ?", caller=R1)
    assert result.read_as == "Quelle est la carte graphique du labo ?" and result.answer


def test_a_read_of_one_thing_by_a_guessed_id_lists_those_things_instead(make_agent: Any) -> None:
    # "show me my stopped vms": the 1.5B model called vm.show with a made-up vmid, then said it did not know.
    # vm.show's vmid resolves through vm.list (its named_by), so that listing answers instead.
    agent = make_agent(replies=[call("vm_show", {"vmid": 12345}), "qso-vae-dev is stopped."])
    result = agent.ask("show me my stopped vms", caller=R1)
    assert [(c["name"], c["args"], c["status"]) for c in result.tool_calls] == [
        ("vm.list", {"owner": "researcher1"}, "ok")
    ]
    assert "qso-vae-dev" in result.answer and "12345" not in result.answer


def test_it_after_an_answer_from_the_pages_is_the_vm_the_answer_named(make_agent: Any, lab: Path) -> None:
    # "which vm has the gpu" was answered from a page ("The GPU VM is `gpu-ollama`."); "is it running?" then read
    # a made-up VM id.
    seen: list[str] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        asked = _last_human(messages)
        seen.append(asked)
        if "running" not in asked:
            return "The GPU VM is `gpu-ollama`."
        if "Result of" in str(messages[-1].content):
            return "It is running."
        return call("vm_show", {"vmid": 120} if "VM 120" in asked else {"vmid": 1})

    agent = make_agent(responder=responder)
    first = agent.ask("which vm holds the gpu, per the docs?", caller=R1)
    assert not first.tool_calls
    second = agent.ask("is it running?", caller=R1, thread=first.thread)
    assert "(it: VM 120 gpu-ollama)" in seen[-1]
    assert [(c["name"], c["args"], c["status"]) for c in second.tool_calls] == [("vm.show", {"vmid": 120}, "ok")]


def test_a_short_reply_to_a_question_back_completes_the_request(make_agent: Any, lab: Path) -> None:
    # "i want a new vm with 2 cores and 4 gb" → "Which name?" → "call it hod-test": the change is asked for
    # with the name (it had gone to the documentation).
    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        asked = _last_human(messages)
        name = "hod-test" if "hod-test" in asked else "researcher1-vm2"
        return call("vm_provision", {"name": name, "cores": 2, "memory_gib": 4})

    agent = make_agent(responder=responder)
    first = agent.ask("i want a new vm with 2 cores and 4 gb", caller=R1)
    assert first.answer.startswith("Before I provision anything")
    second = agent.ask("call it hod-test", caller=R1, thread=first.thread)
    assert second.route["route"] == "lab"
    assert second.status == "needs_approval" and second.pending is not None
    assert "'hod-test'" in second.answer, second.answer
    # A question is no reply: it is read on its own.
    third = agent.ask("i want a new vm with 2 cores and 4 gb", caller=R1)
    fourth = agent.ask("what names are allowed?", caller=R1, thread=third.thread)
    assert "i want a new vm" not in fourth.read_as
