"""A change the message does not ask for is not offered to the model (the intent gate would refuse it anyway)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from agent.intent import asked_for, asks_in_words
from agent.scripted import fenced_call
from agent.toolselect import listed
from policies.guard import Caller
from tools.base import EXAMPLE_NAME
from tools.registry import all_tools

CALLER = Caller(user="admin1", channel="cli")


def _shown(make_agent: Any, question: str) -> set[str]:
    seen: set[str] = set()

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        seen.update(t["function"]["name"].replace("_", ".", 1) for t in tools)
        return "Nothing to add."

    make_agent(responder=responder).ask(question, caller=CALLER)
    return seen


def test_a_question_is_offered_read_tools_only(make_agent: Any) -> None:
    writes = {t.name for t in all_tools(None) if t.risk != "read"}
    # It names backups and VMs and counts something: the backup tools fit, "back up now" among them.
    shown = _shown(make_agent, "How many daily snapshots of a VM does the backup server keep?")
    assert shown and not shown & writes, shown


def test_a_request_for_the_change_is_offered_it(make_agent: Any) -> None:
    assert "backup.run" in _shown(make_agent, "Please back up VM 132 now.")


def test_tools_are_matched_with_the_lab_s_vm_names_replaced_by_the_examples_name(make_agent: Any) -> None:
    agent = make_agent(responder=lambda m, t: "ok")
    names = agent.deps.router.names
    assert names is not None
    # A VM's name is free-form (it stands for a vmid); a node's name is its id and stays.
    assert names.masked("how much RAM does Agn-Fit have on node07?", CALLER) == (
        f"how much RAM does {EXAMPLE_NAME} have on node07?"
    )
    assert names.masked("is agn-fitter up?", CALLER) == "is agn-fitter up?"  # not a VM of the lab
    assert "vm.show" in _shown(make_agent, "is agn-fit up?")


def test_a_change_is_ranked_up_only_when_asked_for_in_whole_words() -> None:
    stop = next(t for t in all_tools(None) if t.name == "vm.stop")
    # The gate is broad on purpose (it catches actions nobody asked for, not unusual wording) ...
    assert asked_for(stop, "show me my stopped vms") and asked_for(stop, "stop VM 130")
    # ... the ranking is not: a state word asks for nothing.
    assert not asks_in_words(stop, "show me my stopped vms") and asks_in_words(stop, "please stop VM 130")


def test_a_named_thing_points_at_the_tools_that_take_or_list_it(make_agent: Any) -> None:
    names = make_agent(responder=lambda m, t: "ok").deps.router.names
    assert names is not None
    # A VM's name stands for a vmid and vm.list lists it; vm.nodes (the VM family too) takes no VM.
    assert names.where(names.named("is agn-fit up?", CALLER)) == (frozenset({"vmid"}), frozenset({"vm.list"}))
    assert names.where(names.named("room on node07?", CALLER)) == (frozenset({"node"}), frozenset({"vm.nodes"}))


def test_a_distinctive_part_of_a_name_names_the_thing_and_the_id_it_stands_for(make_agent: Any) -> None:
    names = make_agent(responder=lambda m, t: "ok").deps.router.names
    assert names is not None
    # "sandbox" is no English word and part of one VM's name only; "analysis" is English and names nothing.
    assert set(names.named("is my sandbox vm on?", CALLER)) == {"scratch-sandbox"}
    assert names.named("what's the analysis plan?", CALLER) == {}
    # A part of three letters is a word of its own too ("gpu"): it names a VM only as "the gpu vm".
    assert set(names.named("is the gpu vm running?", CALLER)) == {"gpu-ollama"}
    assert names.named("how many gpu jobs may I run?", CALLER) == {}
    assert names.ids(["scratch-sandbox", "node07"]) == ["scratch-sandbox: vmid 140"]


def test_a_look_alike_that_fits_better_than_the_tool_a_word_names_stays_on_offer(make_agent: Any) -> None:
    agent = make_agent(responder=lambda m, t: "ok")
    selector = agent.deps.selector
    question = "which vms have never been backed up"
    # "backed up" is backup.status's word, but the question is backup.check's (the VMs with a problem): the
    # words and the meaning disagree, and the model is shown both.
    assert "backup.status" in selector.decisive(question)
    offered = {t.name for t in selector.select(question, 4)}
    assert {"backup.status", "backup.check"} <= offered, offered
    # Where the meaning agrees with the word, the look-alikes go ("which backup jobs are configured?").
    offered = {t.name for t in selector.select("which backup jobs are configured?", 4)}
    assert "backup.jobs" in offered and "backup.status" not in offered, offered
    # ... and where it fits about as well: "keep" is backup.jobs's word, backup.status fits no better.
    offered = {t.name for t in selector.select("How many daily snapshots of a VM does the backup server keep?", 4)}
    assert "backup.jobs" in offered and "backup.status" not in offered, offered


def test_a_read_by_id_is_not_offered_when_nothing_in_a_new_thread_stands_for_an_id(make_agent: Any) -> None:
    # ray.status needs a job_id: offered for "any of my ray jobs still going?", the model called it with
    # "your_job_id". ray.list answers it; ray.status stays for a message that gives an id.
    assert "ray.status" not in _shown(make_agent, "any of my ray jobs still going?")
    assert "ray.list" in _shown(make_agent, "any of my ray jobs still going?")
    assert "ray.status" in _shown(make_agent, "what is the status of ray job labops_1a2b3c?")
    # An id of several underscored parts whose random hex has no two digits in a row is an id too (the eval's
    # job ids: whether ray.logs was offered depended on the id drawn).
    assert "ray.logs" in _shown(make_agent, "What did Ray job labops_eval_a0f0e8bdc6cf print?")


def test_a_question_about_a_job_is_not_offered_a_submission(make_agent: Any) -> None:
    # "job" alone asks for nothing: every question about one holds it.
    shown = _shown(make_agent, "my ray job has been sitting in PENDING forever, what's going on?")
    assert "ray.submit" not in shown and "ray.list" in shown, shown


def test_whether_a_named_vm_could_be_restored_is_a_question_for_its_backups(make_agent: Any) -> None:
    assert "backup.status" in _shown(make_agent, "if scratch-sandbox died today could we restore it?")


def test_a_job_template_named_in_a_message_points_at_the_tool_that_runs_it(make_agent: Any) -> None:
    # The templates are read from the lab (ray.templates, which ray.submit's `template` argument is named by),
    # not from a word list: "launch" was read as creating a VM, "redshift" as the DESI tables.
    names = make_agent(responder=lambda m, t: "ok").deps.router.names
    assert names is not None
    assert names.named("launch the heartbeat job on the cluster", CALLER) == {"heartbeat": "ray"}
    assert names.where(["heartbeat"]) == (frozenset({"template"}), frozenset({"ray.templates"}))
    # The model is told what the name is (the listing calls it `name`, the tool that runs it `template`).
    assert names.ids(["heartbeat"]) == ["heartbeat: template heartbeat"]
    assert names.ids(["node07"]) == []  # a node's name is the node argument itself
    assert "ray.submit" in _shown(make_agent, "launch the heartbeat job on the cluster")
    assert "ray.submit" in _shown(make_agent, "run redshift-histogram using 2 cpus")


def test_what_a_question_lists_is_read_from_the_tools_rows() -> None:
    tools = all_tools(None)
    assert listed("how many vms does the cluster have in total", tools) == {"vm.list"}
    assert listed("which of my vms are stopped", tools) == {"vm.list"}
    assert listed("any nodes down?", tools) == {"vm.nodes"}
    # The longest phrase at a place wins: backup jobs are not Ray jobs.
    assert listed("which backup jobs are disabled", tools) == {"backup.jobs"}
    assert listed("list ray jobs", tools) == {"ray.list"}
    # A question about one thing lists nothing; a node in the singular is where a VM is, not the node listing.
    assert listed("What is the state of the VM monitoring?", tools) == set()
    assert listed("which node is void-analysis on", tools) == set()


def test_a_count_of_vms_is_not_offered_the_node_listing(make_agent: Any) -> None:
    # "cluster" fits vm.nodes' words better than vm.list's; the small model, shown both, counted nodes.
    shown = _shown(make_agent, "how many vms does the cluster have in total")
    assert "vm.list" in shown and "vm.nodes" not in shown, shown
    shown = _shown(make_agent, "which nodes are offline")
    assert "vm.nodes" in shown and "vm.list" not in shown, shown
    # A tool its own words name stays: "which jobs can I run?" lists jobs, and is ray.templates' question.
    selector = make_agent(responder=lambda m, t: "ok").deps.selector
    assert "ray.templates" in [t.name for t in selector.select("which jobs can I run?", 4)]


def test_a_word_inside_the_listed_phrase_does_not_offer_another_family_s_listing(make_agent: Any) -> None:
    # "vm templates" is vm.list's; ray.templates' "templates" is a part of it (the model, offered both, listed the
    # job templates). Asked for job templates, ray.templates is still offered.
    shown = _shown(make_agent, "what vm templates are there to clone from")
    assert "vm.list" in shown and "ray.templates" not in shown, shown
    assert "ray.templates" in _shown(make_agent, "which ray job templates are there")


def test_a_named_vm_is_not_offered_the_reads_that_neither_take_nor_list_it(make_agent: Any) -> None:
    # The model, offered vm.nodes beside vm.show for this translated French question, called vm.nodes.
    shown = _shown(make_agent, "What is the state of the VM monitoring?")
    assert "vm.show" in shown and "vm.nodes" not in shown, shown
    # A named node is listed by vm.nodes, and vm.list takes it: both stay.
    shown = _shown(make_agent, "is node05 busy")
    assert {"vm.nodes", "vm.list"} <= shown, shown


def test_a_read_of_one_of_two_named_vms_is_made_of_both(make_agent: Any) -> None:
    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        if type(messages[-1]).__name__ == "ToolMessage" or not tools:
            return "Done."
        return fenced_call("vm_show", {"vmid": 110})

    agent = make_agent(responder=responder)
    result = agent.ask("are proj-pg01 and proj-pg02 on the same host?", caller=CALLER)
    assert [(c["name"], c["args"]["vmid"]) for c in result.tool_calls] == [("vm.show", 110), ("vm.show", 111)]
    assert "proj-pg02" in result.answer and "node05" in result.answer
    # One named VM: the model's call stands alone.
    result = agent.ask("how much ram does proj-pg01 have", caller=CALLER)
    assert [(c["name"], c["args"]["vmid"]) for c in result.tool_calls] == [("vm.show", 110)]


def test_a_phrasal_verb_asks_with_its_object_between_verb_and_particle() -> None:
    tools = {t.name: t for t in all_tools(None)}
    assert asks_in_words(tools["vm.start"], "actually turn it back on")
    assert asks_in_words(tools["vm.stop"], "please shut the vm down")
    assert asks_in_words(tools["vm.stop"], "turn off 130")
    assert asks_in_words(tools["vm.stop"], "pull the plug on void-analysis")  # an idiom the tool declares
    # The particle must be a word of its own, and close to its verb.
    assert not asks_in_words(tools["vm.start"], "turn to the online docs")
    assert not asks_in_words(tools["vm.start"], "turn the page and read what it says on backups")


def test_the_latest_request_is_offered_before_an_earlier_one(make_agent: Any) -> None:
    offered: list[list[str]] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        if type(messages[-1]).__name__ == "ToolMessage" or not tools:
            return "Done."
        offered.append([t["function"]["name"].replace("_", ".", 1) for t in tools])
        return fenced_call("vm_stop", {"vmid": 130}) if len(offered) == 1 else "Nothing to add."

    agent = make_agent(responder=responder)
    agent.ask("turn off VM 130", caller=CALLER, thread="t-on-off")
    agent.ask("actually turn it back on", caller=CALLER, thread="t-on-off")
    # The model called vm.stop again: "turn it back on" asked for nothing it knew, so vm.start was not offered.
    second = offered[-1]
    assert "vm.start" in second, second
    assert "vm.stop" not in second or second.index("vm.start") < second.index("vm.stop"), second


def test_a_listed_value_written_with_other_separators_is_that_value(make_agent: Any) -> None:
    # The model wrote the template "submit the redshift histogram job" names as redshift_histogram.
    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        if type(messages[-1]).__name__ == "ToolMessage" or not tools:
            return "Done."
        return fenced_call("ray_submit", {"template": "redshift_histogram"})

    result = make_agent(responder=responder).ask("submit the redshift histogram job", caller=CALLER)
    assert [(c["name"], c["args"].get("template")) for c in result.tool_calls] == [("ray.submit", "redshift-histogram")]
