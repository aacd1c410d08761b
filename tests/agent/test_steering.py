"""Docs or tools: which questions are about how the lab works and which about its state right now.

The route never depends on whether the documentation is indexed (the ``docs_score`` the router is given
only decides when no rule applies and no model is asked).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.routing import Candidates, Router
from agent.steering import constraint
from core.config import load_settings
from policies.guard import Caller
from tools.registry import all_tools, toolsets

CALLER = Caller(user="researcher1", channel="cli")


class _Names:
    """The names a lab's listings would give (the real LabNames reads them through the guard)."""

    def named(self, text: str, caller: Any) -> dict[str, str]:
        return {n: "vm" for n in ("void-analysis", "qso-vae-dev", "proj-pg01", "monitoring") if n in text.lower()}

    def where(self, names: Any) -> tuple[frozenset[str], frozenset[str]]:
        return (frozenset({"vmid"}), frozenset({"vm.list"})) if names else (frozenset(), frozenset())

    def ids(self, names: Any) -> list[str]:
        return []


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
        "I need a VM called gpu-dev with 2 cores and 8 gigs on the GPU node.",
        "Spin up a VM called test-2 with 2 cores",
        "which VMs lack a recent backup?",
        "any jobs of mine on ray?",
        "do the vms have backups?",  # "does" asked the state already; its plural went to the model's choice
        "backups all good?",  # a terse check; the model sent it to the pages
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
        # Written for the sixth session's dev cases: "my" alone sent these to the tools (and ray.submit ran).
        "can my ray job pip install whatever it wants?",
        "any rules for naming a vm?",
        # A state's name asked for its meaning, not for the things in that state.
        "what does pending mean for a backup?",
        # A default or a limit is set down, whatever listing names the thing it is for.
        "whats the default template for new vms",
        "what's the max runtime for a ray job",
        # A wish, then whether it is permitted: the rule, not the change ("i need a vm" went to vm.provision).
        "i need a vm with a 1tb disk, is that ok?",
        # ... or what to know first (nineteenth session: vm.provision, then a question for the VM's name).
        "i need a vm with a 700gb disk, anything i should know?",
        "any tips before i submit a ray job with 4 gpus?",
        # What happens in a case, what one does about it, whether a limit exists (seventeenth session's explore9:
        # each went to the live listing of its family).
        "what happens if the backup disk fills up",
        "a snapshot failed verification, what do i do first",
        "is there a cap on how much log a job gives back",
        # Naming a VM does not make it a request to stop it: what would happen is written down.
        "what happens if I stop void-analysis",
    ],
)
@pytest.mark.parametrize("docs_score", [0.0, 0.95])
def test_questions_about_how_the_lab_works_go_to_the_docs(text: str, docs_score: float) -> None:
    assert _router().route(text, caller=CALLER, docs_score=docs_score).route == "docs", text


def test_a_named_thing_brings_the_tools_that_take_or_list_it() -> None:
    routed = _router().route("is void-analysis up?", caller=CALLER)
    # Not the whole VM family: vm.nodes lists nodes and takes no VM.
    assert routed.route == "lab" and routed.takes == {"vmid"} and routed.lists == {"vm.list"}


@pytest.mark.parametrize(
    ("text", "tool"),
    [
        # A dev request: "back up" (backup.run's phrase) ends it; the model, offered both, took backup.run.
        ("start qso-vae-dev back up", "vm.start"),
        ("please reboot proj-pg01", "vm.reboot"),
        ("can you stop void-analysis", "vm.stop"),  # "stop" is ray.stop's too, which takes no VM
        ("start a backup of qso-vae-dev", "backup.run"),  # the longest phrase at the opening
        ("is qso-vae-dev backed up? if not start it", None),  # a question opens it: the model chooses
        # "make" is vm.provision's, which takes no existing VM (its names are nodes'): the model chooses.
        ("make proj-pg01 faster", None),
    ],
)
def test_a_request_s_opening_verb_for_a_named_thing_is_the_action(text: str, tool: str | None) -> None:
    routed = _router().route(text, caller=CALLER)
    assert routed.route == "lab" and routed.tool == tool


def test_a_statement_only_one_tool_takes_goes_to_that_tool() -> None:
    # Found by the eval: an UPDATE statement went to the documentation, which then explained how to run it.
    routed = _router().route("Set zwarn to 0 everywhere: UPDATE desi_dr1.zpix SET zwarn = 0", caller=CALLER,
                             docs_score=0.9)  # fmt: skip
    assert routed.route == "lab" and routed.families == frozenset({"desi"}) and routed.tool == "desi.query"
    # Its first model call must be a call of that tool: the constrained choice has no "answer" branch.
    forced = constraint(load_settings(None, llm={"provider": "ollama"}), [{"function": {"name": "desi_query",
                        "parameters": {"type": "object"}}}], answer=False)  # fmt: skip
    assert [b["properties"]["tool"]["const"] for b in forced["format"]["oneOf"]] == ["desi_query"]
    assert _router().route("How do I write a SELECT ... FROM query?", caller=CALLER).route == "docs"


def test_words_of_several_families_favour_none_of_them() -> None:
    # "VMs" and "backup job": boosting the VM tools sent this to vm.list; tool retrieval picks backup.jobs.
    routed = _router().route("Which VMs are not in any enabled backup job?", caller=CALLER, tool_fit=1.0)
    assert routed.route == "lab" and routed.families == frozenset()


class _Chooser(BaseChatModel):
    """A model that answers the router with a fixed route and keeps what it was shown."""

    route: str
    seen: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "chooser"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        assert kwargs.get("format", {}).get("properties", {}).get("route"), "the choice is constrained by a schema"
        self.seen.append("\n".join(str(m.content) for m in messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=f'{{"route": "{self.route}"}}'))])


def _asking_router(route: str) -> tuple[Router, _Chooser]:
    chooser = _Chooser(route=route, seen=[])
    router = Router(settings=load_settings(None, llm={"provider": "ollama"}), tools=all_tools(),
                    toolsets=toolsets(), names=_Names(), model=lambda: chooser)  # type: ignore[arg-type]  # fmt: skip
    return router, chooser


def test_where_wording_and_scores_disagree_the_model_chooses_between_the_candidates() -> None:
    candidates = Candidates(tool="vm.nodes: Cluster nodes with their status.",
                            passage="cluster-overview.md § Kubernetes: four RKE2 nodes")  # fmt: skip
    # A family word ("nodes"), but a page beats every tool by far: the model is asked, and shown both.
    router, chooser = _asking_router("docs")
    routed = router.route("How many nodes does the Kubernetes cluster have?", caller=CALLER, docs_score=0.88,
                          tool_fit=0.7, candidates=candidates)  # fmt: skip
    assert routed.route == "docs" and "the model chose" in routed.why
    assert "vm.nodes" in chooser.seen[0] and "cluster-overview.md" in chooser.seen[0]
    # The same question where the tool fits as well as the page: the wording holds, no model call.
    router, chooser = _asking_router("docs")
    assert router.route("How many nodes does the Kubernetes cluster have?", caller=CALLER, docs_score=0.75,
                        tool_fit=0.74).route == "lab" and chooser.seen == []  # fmt: skip
    # A state only the live system knows ("healthy", "failed", "right now") is the tools' however well a page
    # matches: the model, asked, sent "is pbs healthy" to the backup pages.
    router, chooser = _asking_router("docs")
    routed = router.route("is pbs healthy", caller=CALLER, docs_score=0.88, tool_fit=0.5, candidates=candidates)
    assert routed.route == "lab" and chooser.seen == []
    # "Running on" and "goes down" say how things work as often as what state they are in: the model chooses.
    for text in ("what hardware is the backup server running on?", "what's the process if a node goes down"):
        router, chooser = _asking_router("docs")
        assert router.route(text, caller=CALLER, docs_score=0.88, tool_fit=0.5).route == "docs" and chooser.seen
    # A yes/no "can I" question a tool answers closely is the model's choice too; without a model the wording holds.
    router, chooser = _asking_router("lab")
    assert router.route("Can I run 10 ray jobs at once?", caller=CALLER, docs_score=0.8, tool_fit=0.84).route == "lab"
    assert chooser.seen, "the model was asked"
    assert _router().route("Can I run 10 ray jobs at once?", caller=CALLER, docs_score=0.8, tool_fit=0.84).route == (
        "docs"
    )


def test_a_question_about_one_s_own_things_that_a_page_answers_far_better_is_the_model_s_choice() -> None:
    # "my" opens it, but the page (databases.md § Access) beats every tool by far: the model is asked.
    text = "my query got killed after a bit, whats the statement timeout on the desi db?"
    router, chooser = _asking_router("docs")
    assert router.route(text, caller=CALLER, docs_score=0.8, tool_fit=0.68).route == "docs" and chooser.seen
    # "Which VMs do I own?": the tools fit nearly as well as any page, so the wording holds without a model call.
    router, chooser = _asking_router("docs")
    assert router.route("Which VMs do I own?", caller=CALLER, docs_score=0.78, tool_fit=0.7).route == "lab"
    assert chooser.seen == []


@pytest.mark.parametrize(
    "text", ["What job templates can I run?", "which templates may I use on ray", "What VMs can I delete?"]
)
def test_a_question_for_the_things_one_may_use_goes_to_the_tool_that_lists_them(text: str) -> None:
    # Phrased like a permission question, but it asks for a list, and a tool lists exactly that: no model call.
    router, chooser = _asking_router("docs")
    routed = router.route(text, caller=CALLER, docs_score=0.8, tool_fit=0.9)
    assert routed.route == "lab" and chooser.seen == [], text
    # A tool that fits loosely ("what GPU can I use?") leaves it with the documentation.
    assert router.route("What GPU can I use?", caller=CALLER, docs_score=0.78, tool_fit=0.23).route == "docs"


def test_when_and_why_questions_go_to_the_docs_however_well_a_tool_fits() -> None:
    # A German "when are the backups checked?", translated: backup.check fits "checked", and the model, asked,
    # sent it to the tools. A tool lists what is; it cannot say when something is scheduled or why.
    router, chooser = _asking_router("lab")
    for text in ("When are the backups checked?", "Why was my backup marked stale?", "how often are VMs checked"):
        routed = router.route(text, caller=CALLER, docs_score=0.6, tool_fit=0.95)
        assert routed.route == "docs", text
    assert chooser.seen == []


def test_a_follow_up_about_an_earlier_thing_goes_to_the_tools_of_its_own_words() -> None:
    routed = _router().route("is the stopped one backed up?", caller=CALLER, docs_score=0.95,
                             refers="(the stopped one: VM 132 qso-vae-dev)")  # fmt: skip
    assert routed.route == "lab" and routed.families == frozenset({"backup"})
    # Asked how to do something with it, the documentation answers.
    routed = _router().route("how do I restore it?", caller=CALLER, refers="(it: VM 132 qso-vae-dev)")
    assert routed.route == "docs"


def test_a_question_for_a_property_no_tool_lists_is_the_model_s_choice() -> None:
    # "Which port ...?" holds "ray", but no Ray tool lists ports: ray.templates answered it with the job templates.
    candidates = Candidates(tool="ray.templates: Job templates.", passage="kubernetes-ray.md § Dashboard: port 8265")
    router, chooser = _asking_router("docs")
    routed = router.route("which port is the ray dashboard on?", caller=CALLER, docs_score=0.8, tool_fit=0.74,
                          candidates=candidates)  # fmt: skip
    assert routed.route == "docs" and "port" in routed.why and "kubernetes-ray.md" in chooser.seen[0]
    # Without a model, the better score of the two holds.
    assert _router().route("what hardware is pbs01?", caller=CALLER, docs_score=0.8, tool_fit=0.7).route == "docs"
    assert _router().route("what hardware is pbs01?", caller=CALLER, docs_score=0.6, tool_fit=0.7).route == "lab"
    # What the tools list or read, a state, what happened, or "right now" stays with the tools, unasked.
    for text in (
        "which VMs are stopped?",
        "what templates are there for ray jobs?",
        "what state is the datastore in?",
        "what time did the backup run last night?",
        "which port is the ray job using right now?",
        "what share of the vms are backed up?",
    ):
        router, chooser = _asking_router("docs")
        assert router.route(text, caller=CALLER, docs_score=0.9, tool_fit=0.85).route == "lab", text
        assert chooser.seen == [], text


@pytest.mark.parametrize(
    ("text", "family"),
    [("what hardware is pbs01?", None), ("is vm132 ok?", "vm"), ("job #3", "ray"), ("restore backup #7", "backup")],
)
def test_a_word_with_a_zero_padded_number_is_a_host_not_an_id(text: str, family: str | None) -> None:
    assert _router()._id_reference(text) == family


def test_a_question_about_any_such_thing_is_the_model_s_choice() -> None:
    # "A vm i just made": no VM there is, so no listing answers; backup.status answered with the lab's backups.
    for text in ("does a vm i just made get backups on its own?", "if I stop a VM, do its backups go on?",
                 "which template id are new vms cloned from"):  # fmt: skip
        router, chooser = _asking_router("docs")
        assert router.route(text, caller=CALLER, docs_score=0.8, tool_fit=0.77).route == "docs" and chooser.seen
    # The things there are: asked for, checked on, or right now.
    for text in ("are the vms backed up?", "check if a backup failed", "does a job run right now?"):
        router, chooser = _asking_router("docs")
        assert router.route(text, caller=CALLER, docs_score=0.8, tool_fit=0.77).route == "lab", text
        assert chooser.seen == [], text


def test_what_a_family_s_tools_list_names_the_family_and_down_after_are_is_a_state() -> None:
    # "Hypervisors" is vm.nodes's rows, no VM family word: the model, asked, sent this to a security page.
    router, chooser = _asking_router("docs")
    routed = router.route("are any hypervisors down", caller=CALLER, docs_score=0.74, tool_fit=0.36)
    assert routed.route == "lab" and routed.families == frozenset({"vm"}) and chooser.seen == []
    # "Goes down" says what happens: still the model's choice when a page fits far better.
    router, chooser = _asking_router("docs")
    assert router.route("what's the process if a node goes down", caller=CALLER, docs_score=0.8,
                        tool_fit=0.5).route == "docs" and chooser.seen  # fmt: skip


@pytest.mark.parametrize(
    ("text", "route"),
    [
        # Naming the thing to be made makes "can I get ..." a request for it, not a question about the rules.
        ("can i get a vm named cosmo-nb, 2 cores 4gb", "lab"),
        ("could we get a new vm called lens-2 with 4 cores?", "lab"),
        ("can i get a vm with 64 cores?", "docs"),
        ("can i name my vm anything I like?", "docs"),
    ],
)
def test_a_permission_question_that_names_what_it_makes_is_a_request(text: str, route: str) -> None:
    routed = _router().route(text, caller=CALLER, docs_score=0.8, tool_fit=0.7)
    assert routed.route == route, routed.why


def test_a_change_on_bare_numbers_is_about_the_ids_its_tools_take() -> None:
    # "start 130 and 132" fitted no tool's words and was answered as small talk.
    routed = _router().route("start 130 and 132", caller=CALLER, docs_score=0.3, tool_fit=0.29)
    assert routed.route == "lab" and routed.takes == frozenset({"vmid"}) and routed.families == frozenset({"vm"})
    # Amounts are no ids.
    assert _router().route("start a vm with 512 gb", caller=CALLER, docs_score=0.3, tool_fit=0.29).takes == frozenset()


@pytest.mark.parametrize(
    ("text", "must_call"),
    [
        # The model read the VM list for this and answered with it; made to call the change, it is asked back
        # for the name (a change on a value nobody gave is not made).
        ("give me a vm with 2 cores", "vm.provision"),
        ("give me a vm called nb-2 with 2 cores", None),
        # The thing acted on is looked up by its id or name: no name of something new is needed.
        ("start 130 and 132", None),
        ("launch parallel-sum", None),
    ],
)
def test_a_request_to_make_something_without_its_name_must_call_the_change(text: str, must_call: str | None) -> None:
    routed = _router().route(text, caller=CALLER, docs_score=0.3, tool_fit=0.6)
    assert routed.route == "lab" and routed.tool == must_call, routed.why
