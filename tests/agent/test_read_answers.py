"""A question the read tools answered ends with their own words, without a second model call (agent.read_answers)."""

from __future__ import annotations

from typing import Any

from agent.scripted import call, fenced_call
from policies.guard import Caller

R1 = Caller(user="researcher1", channel="cli")


def test_a_read_question_is_answered_from_the_result_with_one_model_call(make_agent: Any) -> None:
    agent = make_agent(replies=[fenced_call("vm_list", {"owner": "researcher1"})])
    result = agent.ask("what vms do i have", caller=R1)
    assert len(agent.model.calls) == 1, "the tool's summary is the answer; no model call phrases it"
    assert [c["name"] for c in result.tool_calls] == ["vm.list"]
    assert "void-analysis" in result.answer and "qso-vae-dev" in result.answer
    assert "- vm.list: 2 VMs" in result.answer, "each line names the tool it comes from"
    audit = result.grounding
    assert not audit["left_out"] and not audit["unsourced"] and not audit["contradictions"], audit


def test_the_rows_the_question_names_stand_under_the_summary(make_agent: Any) -> None:
    agent = make_agent(replies=[fenced_call("vm_nodes")])
    result = agent.ask("how much memory is free on node02?", caller=R1)
    assert len(agent.model.calls) == 1
    rows = [line for line in result.answer.splitlines() if line.startswith("  - ")]
    assert rows and all("node02" in line for line in rows), result.answer


def test_the_field_a_question_asks_about_stands_under_a_summary_that_leaves_it_out(make_agent: Any) -> None:
    # vm.show's line names cores and memory; the disk size is only in its record.
    agent = make_agent(replies=[fenced_call("vm_show", {"vmid": 132})])
    result = agent.ask("how big is the disk on qso-vae-dev", caller=R1)
    assert "  - disk_gib: 120" in result.answer.splitlines(), result.answer
    # What the line says already is not repeated (24.0 GiB of memory).
    agent = make_agent(replies=[fenced_call("vm_show", {"vmid": 132})])
    answer = agent.ask("how much memory does qso-vae-dev have", caller=R1).answer
    assert "24.0 GiB" in answer and "memory_gib" not in answer, answer


def test_a_follow_up_reads_the_answer_of_the_turn_before(make_agent: Any) -> None:
    # The answer built from the result is kept in the thread like a model's: the next question sees it.
    agent = make_agent(replies=[fenced_call("vm_list", {"owner": "researcher1"}), "It is stopped."])
    first = agent.ask("what vms do i have", caller=R1)
    agent.ask("is the second one running?", caller=R1, thread=first.thread)
    shown = "\n".join(str(m.content) for m in agent.model.calls[-1]["messages"])
    assert "qso-vae-dev" in shown


def test_a_message_that_also_asks_for_a_change_goes_back_to_the_model(make_agent: Any) -> None:
    agent = make_agent(replies=[call("vm_show", {"vmid": 132}), call("vm_start", {"vmid": 132})])
    result = agent.ask("show me VM 132 and start it", caller=R1)
    assert [c["name"] for c in result.tool_calls] == ["vm.show", "vm.start"]
    assert len(agent.model.calls) == 2, "the model makes the change the message asks for after the read"


def test_the_model_phrases_the_answer_when_configured(make_agent: Any) -> None:
    agent = make_agent(
        replies=[fenced_call("vm_list", {"owner": "researcher1"}), "You have void-analysis and qso-vae-dev."],
        agent={"read_answers": "model"},
    )
    result = agent.ask("what vms do i have", caller=R1)
    assert len(agent.model.calls) == 2
    assert result.answer.startswith("You have void-analysis and qso-vae-dev.")
    assert "From the lab:" in result.answer, "the tools' summaries stand under the model's sentence"


def _second_try(make_agent: Any, last_reply: str) -> Any:
    """A docs question the passages do not answer, tried on backup.status, then ``last_reply`` from the model."""
    agent = make_agent(replies=["I do not know: the passages do not say.", call("backup_status", {}), last_reply])
    result = agent.ask("How do I find out how much the lab spent on hardware last year?", caller=R1)
    assert [c["name"] for c in result.tool_calls] == ["backup.status"] and len(agent.model.calls) == 3
    return result


def test_a_read_tried_after_the_passages_did_not_answer_is_judged_by_the_model(make_agent: Any) -> None:
    result = _second_try(make_agent, "I do not know how much the lab spent on hardware.")
    assert result.answer.startswith("I do not know how much the lab spent")
    assert "From the lab:\n- backup.status:" in result.answer, "what was tried stays visible under it"


def test_a_second_try_whose_model_answer_says_nothing_sourced_is_not_presented_as_the_answer(make_agent: Any) -> None:
    result = _second_try(make_agent, "The lab spent 48250 EUR on node09.")
    assert result.answer.startswith("That is not in the lab's documentation."), result.answer
    assert "- backup.status:" in result.answer and "Left out" in result.answer, "the invented sentence is left out"
    assert "48250" not in result.answer and "node09" not in result.answer


def test_a_second_try_that_no_call_answers_is_a_plain_not_found(make_agent: Any) -> None:
    # Asked who the lab's PI is, the model, after the pages, made up a table: "Not done: query refused" was shown.
    agent = make_agent(
        replies=[
            "I do not know: the passages do not say.",
            call("desi_query", {"sql": "SELECT name FROM lab_people WHERE role = 'PI'"}),
        ]
    )
    result = agent.ask("who is the lab's principal investigator?", caller=R1)
    assert [c["name"] for c in result.tool_calls] == ["desi.query"], result.tool_calls
    assert result.answer.startswith("I could not find that"), result.answer


def test_a_live_question_asking_what_now_gets_the_page_s_sentence_under_the_tools(make_agent: Any) -> None:
    # "qso-vae-dev backup failed, what now?" got the failed state and nothing on what to do about it.
    agent = make_agent(replies=[fenced_call("backup_status", {"vmid": 132})])
    result = agent.ask("qso-vae-dev backup failed, what now?", caller=R1)
    assert [c["name"] for c in result.tool_calls] == ["backup.status"]
    assert result.answer.index("backup.status:") < result.answer.index("The documentation says:"), result.answer
    assert "runbook-stale-backup.md" in result.answer.split("The documentation says:")[1]
    shown = "\n".join(str(m.content) for m in agent.model.calls[0]["messages"])
    assert "runbook-stale-backup" not in shown, "the passages are not in the model's prompt"
    # The quoted page is among the turn's sources: the audit finds its citation sourced, people see it listed.
    assert any("runbook-stale-backup.md" in c for c in result.citations), result.citations
    assert not result.grounding["unsourced"] and not result.grounding["contradictions"], result.grounding
    # Without the "what now", the same question is answered from the tools alone.
    plain = make_agent(replies=[fenced_call("backup_status", {"vmid": 132})]).ask("did qso-vae-dev's backup fail?",
                                                                                 caller=R1)  # fmt: skip
    assert "The documentation says" not in plain.answer


def test_a_lab_member_named_in_a_question_is_the_owner_filter(make_agent: Any) -> None:
    # The model filtered by state only; the owner named in the message is one the listing shows.
    agent = make_agent(replies=[fenced_call("vm_list", {"status": "running"})])
    result = agent.ask("what does researcher2 have running", caller=R1)
    assert result.route["route"] == "lab", result.route
    assert [c["args"] for c in result.tool_calls] == [{"status": "running", "owner": "researcher2"}]
    assert "agn-fit" in result.answer and "void-analysis" not in result.answer
    # A page retrieved beside the tools and not cited is not listed as a source of the answer.
    assert "Sources:" not in result.answer, result.answer


def test_a_datastore_named_by_the_backup_server_is_a_question_for_the_lab(make_agent: Any) -> None:
    agent = make_agent(replies=[fenced_call("backup_datastore", {})])
    result = agent.ask("is store1 ok?", caller=R1)
    assert result.route["route"] == "lab" and "store1" in result.route["why"], result.route
    assert [(c["name"], c["args"]) for c in result.tool_calls] == [("backup.datastore", {"store": "store1"})]
    assert "% used" in result.answer
