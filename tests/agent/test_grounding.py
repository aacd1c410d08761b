"""No fact without a source: the deterministic check of answers against a turn's evidence.

The examples are the ones real runs produced (issue 22): an invented VM, "both running" when one is stopped,
an extinction value given as the g-band flux, a raw epoch, a VM id that exists nowhere, the right page's
wrong fact. The check knows no lab facts: names, fields and values come from the evidence alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from agent.claims import facts, sentences
from agent.docanswer import answers_asked
from agent.epochs import readable
from agent.evidence import bounded_data
from agent.grounding import check, prune
from agent.haystack import Evidence
from agent.ranking import best_sentences, focused
from knowledge.embeddings import OnnxEmbedder
from policies.guard import Caller

VMS = [
    {"vmid": 130, "name": "void-analysis", "node": "node03", "status": "running", "cores": 4, "memory_gib": 16.0},
    {"vmid": 132, "name": "qso-vae-dev", "node": "node07", "status": "stopped", "cores": 8, "memory_gib": 24.0},
]
LISTED = Evidence.build(
    results=[("2 VMs: 130 void-analysis (running), 132 qso-vae-dev (stopped)", VMS)],
    user_texts=["are void-analysis and qso-vae-dev both running?"],
)


@pytest.mark.parametrize(
    ("answer", "kind", "claim"),
    [
        ("Yes, both are running.", "contradiction", "running"),
        ("void-analysis is stopped.", "contradiction", "stopped"),
        ("void-analysis is not running.", "contradiction", "running"),
        ("VM 132 is running.", "contradiction", "running"),
        ("You also have ray-worker-3 with 8 cores and 32 GB.", "unsourced", "ray-worker-3"),
        ("void-analysis has 8 cores.", "contradiction", "8"),
        ("The stopped VM with id 3 is not backed up.", "unsourced", "id 3"),
        ("void-analysis was started on 2026-11-20.", "unsourced", "2026-11-20"),
        ("It moved to node05 last night.", "unsourced", "node05"),
        ("Its address is 10.25.60.99.", "unsourced", "10.25.60.99"),
    ],
)
def test_statements_without_a_source_or_against_the_data_are_found(answer: str, kind: str, claim: str) -> None:
    problems = check(answer, LISTED)
    assert any(p.kind == kind and p.claim == claim for p in problems), [p.as_dict() for p in problems]


@pytest.mark.parametrize(
    "answer",
    [
        "void-analysis is running and qso-vae-dev is stopped.",
        "You have 2 VMs: void-analysis (running) and qso-vae-dev (stopped).",
        "qso-vae-dev is not running; void-analysis is up.",
        "void-analysis has 4 cores and 16 GiB of memory, qso-vae-dev has 24 GB.",
        "VM 132 runs on node07.",
        "No, only one of them runs.",
        # A count of things in a state is not the state of the thing named after it (a tool's own summary line).
        "vm.list: 2 VMs (1 running): 130 void-analysis (running), 132 qso-vae-dev (stopped)",
    ],
)
def test_statements_the_evidence_supports_pass(answer: str) -> None:
    assert check(answer, LISTED) == []


def test_a_number_given_as_the_wrong_field_is_a_contradiction() -> None:
    target = [{"targetid": 39627000000126704, "spectype": "QSO", "z": 2.31, "flux_g": 1.52, "ebv": 0.0213}]
    evidence = Evidence.build(results=[("target 39627000000126704: QSO at z 2.31", target)])
    wrong = check("Target 39627000000126704 is a QSO at redshift 2.31 with a g-band flux of 0.0213.", evidence)
    assert [p.kind for p in wrong] == ["contradiction"] and "ebv" in wrong[0].detail
    assert check("Its g-band flux is 1.52 and its extinction (ebv) is 0.0213.", evidence) == []


def test_numbers_match_by_value_rounding_and_unit_steps() -> None:
    data = {"total_bytes": 4_000_000_000_000, "used_fraction": 0.622, "used_gib": 2317.3, "snapshots": 14}
    evidence = Evidence.build(results=[("datastore store1", data)])
    for said in ("62.2% used", "62% used", "2317 GiB used", "about 2.3 TiB", "4 TB in all", "14 snapshots"):
        assert check(f"The datastore has {said}.", evidence) == [], said
    assert check("The datastore has 71% used.", evidence)


def test_counts_a_reader_derives_from_the_data_are_sourced() -> None:
    rows = [{"name": f"vm-{n}", "status": "running" if n % 3 else "stopped"} for n in range(7)]
    evidence = Evidence.build(results=[("seven VMs", rows)])
    assert check("There are 7 VMs, 3 of them stopped.", evidence) == []
    assert check("There are 12 VMs.", evidence)


def test_times_dates_and_epochs() -> None:
    passages = ["The PBS verify job verify-daily checks new snapshots at 11:00 every day."]
    evidence = Evidence.build(passages=passages, user_texts=["when are backups verified"])
    assert check("Backups are verified at 11:00.", evidence) == []
    assert check("Backups are verified at 11 am.", evidence) == []
    assert check("Backups are verified at 10:00.", evidence)
    rows = [{"vmid": 132, "last_backup": 1796375205}]
    timed = Evidence.build(results=[("VM 132: last backup 8.5 h ago", rows)])
    assert readable("The last backup was at 1796375205.", timed) == "The last backup was at 2026-12-04 09:06 UTC."
    assert check("It was last backed up on 2026-12-04.", timed) == [], "a date the data holds as an epoch"


def test_prune_keeps_sourced_sentences_and_list_items() -> None:
    answer = "You have 2 VMs.\n- void-analysis (running)\n- ray-worker-3 (running)\nqso-vae-dev is stopped."
    pruned = prune(answer, LISTED)
    assert pruned.text == "You have 2 VMs.\n- void-analysis (running)\nqso-vae-dev is stopped."
    assert [p.claim for p in pruned.dropped] == ["ray-worker-3"]


def test_sentences_keep_decimals_versions_and_abbreviations_whole() -> None:
    assert sentences("Proxmox VE 8.4.1 runs, e.g. on node01. It has 38.8 GiB. Next") == [
        "Proxmox VE 8.4.1 runs, e.g. on node01.", "It has 38.8 GiB.", "Next"
    ]  # fmt: skip
    assert sentences("See [runbook.md § 2. Restore]. Then ask.") == ["See [runbook.md § 2. Restore].", "Then ask."]


def test_a_citation_after_a_sentence_s_end_is_that_sentence_s() -> None:
    quoted = 'The documentation says: "VM 151 sits in the disabled `backup-legacy` job." [stale.md § Example]'
    assert sentences(quoted) == [quoted]
    assert sentences("It runs at 09:00. [a.md § B], [c.md § D] Ask first.") == [
        "It runs at 09:00. [a.md § B], [c.md § D]", "Ask first."
    ]  # fmt: skip


def test_a_sentence_pointing_back_at_one_left_out_keeps_only_what_it_says() -> None:
    page = Evidence.build(passages=["Daily snapshots of the same VM cost far less than their full size."],
                          user_texts=["does a backup take the full size?"])  # fmt: skip
    pruned = prune("No, each backup is 300 GiB. This is because daily snapshots of the same VM cost far less "
                   "than their full size.", page)  # fmt: skip
    assert pruned.text == "Daily snapshots of the same VM cost far less than their full size."
    kept = prune("Daily snapshots cost far less than their full size. This is because of the same VM.", page)
    assert kept.text.endswith("This is because of the same VM.")


def test_a_page_quoted_under_a_tool_answer_is_sourced_by_its_citation() -> None:
    # A live answer with the page's advice under it: the quote's ids ("backup-legacy") are the page's, and the
    # grounding audit of a test run counted them as unsourced while the citation stood split off the quote.
    evidence = Evidence.build(
        results=[("VM 151 (monitoring): last backup 85.8 h ago; stale", [{"vmid": 151, "name": "monitoring"}])],
        passages=["VM 151 (`monitoring`) sits only in the disabled `backup-legacy` job, so it is stale."],
        user_texts=["the monitoring vm has no recent backup, what now?"],
        sources=["runbook-stale-backup.md"],
    )
    answer = (
        'VM 151 (monitoring): last backup 85.8 h ago; stale\n\nThe documentation says: "VM 151 (`monitoring`) sits '
        'only in the disabled `backup-legacy` job, so it is stale." [runbook-stale-backup.md § Example]'
    )
    assert check(answer, evidence, cite=True) == []
    uncited = answer.rsplit(" [", 1)[0]
    assert [p.claim for p in check(uncited, evidence, cite=True)] == ["backup-legacy"]


PAGE = Evidence.build(
    passages=["Tell LabOps what you need: a VM called ray-worker-3 with 8 cores. Names are DNS labels."],
    user_texts=["which printer should i use on the 3rd floor?"],
    sources=["runbook-request-vm.md"],
)


def test_a_citation_of_a_page_that_was_not_found_is_unsourced() -> None:
    problems = check("It is set up on the wiki [printers.md § 2. Setup].", PAGE)
    assert [p.claim for p in problems] == ["[printers.md § 2. Setup]"]
    # The page's name with or without ".md", and any section: the model shortens headings.
    assert check("Names are DNS labels [runbook-request-vm § Ask].", PAGE) == []


def test_a_documentation_answer_must_be_about_what_its_passages_say() -> None:
    invented = "To use the printer on the 3rd floor, connect to its IP address with a network cable."
    pruned = prune(f"{invented} VM names are DNS labels.", PAGE, support=True)
    assert pruned.text == "VM names are DNS labels."
    assert [p.sentence for p in pruned.dropped] == [invented]
    # Without ``support`` (a tool's answer) the sentence holds no unsourced claim, so it stands; and a short
    # sentence adding few words ("Yes, it does.") is not judged.
    assert prune(invented, PAGE).text == invented
    assert prune("Yes, on the third floor.", PAGE, support=True).dropped == []
    # A numbered step whose text was left out leaves no bare number behind.
    steps = f"1. VM names are DNS labels.\n2. **Cabling**: {invented}\n3."
    assert prune(steps, PAGE, support=True).text == "1. VM names are DNS labels."


def test_a_lead_in_whose_content_was_left_out_goes_too() -> None:
    # Seen in a dev run: "3. You can do this by running:" stood above the next answer once its command went.
    answer = (
        "VM names are DNS labels. You can check one by running:\n\n```\nlabops-check-name --strict\n```\n\n"
        "Names are DNS labels."
    )
    assert prune(answer, PAGE, support=True).text == "VM names are DNS labels.\n\nNames are DNS labels."
    # A lead-in whose list lost only its first item still leads the rest.
    steps = "VM names are DNS labels:\n1. Reboot the router in room 42 first.\n2. Names are DNS labels."
    assert prune(steps, PAGE, support=True).text == "VM names are DNS labels:\n2. Names are DNS labels."


def test_the_answering_sentence_is_found_by_its_heading_its_page_s_rank_and_a_role_for_who() -> None:
    subnets = [
        {"citation": "[networks § Data network]", "section": "Data network", "text": "Subnet 10.25.60.0/24."},
        {"citation": "[networks § Management network]", "section": "Management network",
         "text": "Subnet 10.16.207.0/24."},
    ]  # fmt: skip
    assert "10.16.207.0" in best_sentences("What is the subnet of the management network?", subnets, k=1)[0].sentence
    writes = [
        {"citation": "[databases § Access]",
         "text": "Write access is given per project by the platform administrator."},
        {"citation": "[queries § Limits]", "text": "Export a result table to CSV with `out_csv`."},
    ]  # fmt: skip
    question = "need to write a result table into postgres, who sorts that out?"
    assert "administrator" in best_sentences(question, writes, k=1)[0].sentence
    # The best sentence states no fact: the quote is that sentence, not a lesser one's `out_csv`.
    quote = answers_asked("The agent can sort the table out.", question, writes)
    assert quote is not None and "platform administrator" in quote


def test_a_verb_s_irregular_past_meets_its_present(embedder: OnnxEmbedder) -> None:
    schedule = [
        {"citation": "[backup-policy § Schedule]", "section": "Schedule",
         "text": "- Daily backup job `backup-daily` at 09:00 (snapshot mode, zstd).\n"
                 "- Garbage collection runs every night at 02:00. The last 14 daily snapshots of each VM are kept."},
    ]  # fmt: skip
    # "keep" and "kept" share no first five letters, and the schedule line's 09:00 counted as the number "how long"
    # asks for: it won on "daily" and "backup", and the model answered with the recovery point's "one day".
    best = best_sentences("how long do we keep the daily backups", schedule, k=1, embed=embedder.embed)[0].sentence
    assert best == "The last 14 daily snapshots of each VM are kept."


def test_an_abbreviation_spelled_out_is_a_name_that_needs_a_source() -> None:
    pages = Evidence.build(passages=["Backups go to the Proxmox Backup Server pbs01 (datastore store1)."])
    problems = check("To see whether the PBS (Portable Batch System) is healthy, open its web UI.", pages)
    assert [(p.kind, p.claim) for p in problems] == [("unsourced", "Portable Batch System")]
    assert check("The Proxmox Backup Server (PBS) is pbs01.", pages) == []
    # Brackets that spell nothing out are no claim of this kind.
    assert check("The backup server (pbs01) holds store1.", pages) == []
    # A standard expansion whose words the pages use, though not in that order, stands.
    objectives = Evidence.build(passages=["## Objectives\nRPO on premises: the recovery point is one day."])
    assert check("The RPO (Recovery Point Objective) is one day.", objectives) == []


def test_the_model_is_shown_the_sentences_that_answer_in_document_order() -> None:
    passages = [
        {"citation": "[backup-policy § Schedule]", "text": "- Daily backup job `backup-daily` at **09:00**.\n"
         "- The PBS verify job `verify-daily` checks new snapshots at **11:00**.\n"
         "- Garbage collection runs every night at 02:00. The last 14 daily snapshots of each VM are kept."},
        {"citation": "[gpu-node § Booking]", "text": "The GPU is shared. Long runs are booked in the calendar. " * 8},
        {"citation": "[gpu-node § Card]", "text": "The GPU node has one RTX A4000."},
    ]  # fmt: skip
    passages[0]["text"] += " Old snapshots are pruned by the prune job, which keeps what the retention says." * 4
    shown = focused("When does the verify job check new snapshots?", passages)
    assert [p["citation"] for p in shown] == ["[backup-policy § Schedule]", "[gpu-node § Card]"], (
        "a long passage with nothing kept goes; a short one is shown whole"
    )
    text = shown[0]["text"]
    assert "11:00" in text and "GPU" not in text and len(text) < len(passages[0]["text"])
    assert text.index("backup-daily") < text.index("verify-daily"), "what is kept keeps the page's order"
    assert focused("When does the verify job run?", []) == []


# Passages whose answering sentence holds no number or time: only its words answer.
WORDS = [
    {"text": "- **Cloudflare Zero Trust** for web apps such as Grafana.\n- **Tailscale** for remote SSH and database "
             "access from your laptop.", "citation": "[access § Getting in from outside]"},
    {"text": "Templates: `parallel-sum` (a smoke test) and `heartbeat` (prints a line once a second until stopped).",
     "citation": "[ray § Job templates]"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("question", "answer", "quoted"),
    [
        # The answer names what the question already named: the quote says what the template does.
        ("What's the heartbeat template for?", "The heartbeat template is `heartbeat`.", "once a second"),
        ("How do I reach the databases from my laptop?", "Use the vm.nodes tool to ping the node.", "Tailscale"),
        # It says what the best sentence adds ("tailscale", "remote", "ssh"): no quote.
        ("How do I reach the databases from my laptop?", "Install Tailscale; it gives remote SSH access.", None),
        # Nothing in the passages is about the question, and the model said so: its answer stands alone.
        ("What is the guest wifi password?", "I don't know: the documentation does not say.", None),
    ],
)
def test_an_answer_without_what_the_best_sentence_adds_gets_its_quote(
    question: str, answer: str, quoted: str | None
) -> None:
    quote = answers_asked(answer, question, WORDS)
    if quoted is None:
        assert quote is None
    else:
        assert quote is not None and quote.startswith("The documentation says:") and quoted in quote


def test_tool_data_is_kept_bounded() -> None:
    rows = [{"n": i, "text": "x" * 100} for i in range(1000)]
    kept = bounded_data(rows)
    assert isinstance(kept, list) and 0 < len(kept) <= 200
    assert bounded_data({"rows": rows})["rows"][:1] == rows[:1]


# --- in the agent -------------------------------------------------------------------------------------------
R1 = Caller(user="researcher1", channel="cli")


def test_an_invented_vm_never_reaches_the_user(make_agent: Any) -> None:
    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        from agent.scripted import call

        if not any(getattr(m, "type", "") == "tool" for m in messages):
            return call("vm_list", {"owner": "researcher1"})
        return "You have void-analysis, qso-vae-dev and ray-worker-3 (8 cores, 32 GB). Both of the first are running."

    # The model writes a sentence after the result (agent.read_answers = model): the check that guards it.
    agent = make_agent(responder=responder, agent={"read_answers": "model"})
    result = agent.ask("what vms do i have", caller=R1)
    # Not even in the note saying what was left out: a name shown under the answer is read as said.
    assert "ray-worker-3" not in result.answer
    assert "the lab reports:" in result.answer and "void-analysis" in result.answer
    assert "Left out" in result.answer and "a name or id" in result.answer, "people see what kind of statement, and why"
    assert any(p["claim"] == "ray-worker-3" for p in result.grounding["left_out"]), "the statement is kept aside"
    assert "Both of the first are running" not in result.answer, "qso-vae-dev is stopped"


def test_a_model_asking_again_for_a_read_it_has_is_answered_from_the_result(make_agent: Any) -> None:
    calls: list[int] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        from agent.scripted import call

        calls.append(1)
        return call("vm_list", {"owner": "researcher1"})  # every time: a small model that loops

    agent = make_agent(responder=responder, agent={"read_answers": "model"})
    result = agent.ask("what vms do i have", caller=R1)
    assert len(calls) == 2, "the repeat ends the turn; a third model call would only ask again"
    assert [c["name"] for c in result.tool_calls] == ["vm.list"]
    assert "void-analysis" in result.answer and "qso-vae-dev" in result.answer


def test_a_docs_answer_with_another_fact_of_the_page_gets_the_asked_one(make_agent: Any) -> None:
    agent = make_agent(replies=["A backup counts as stale after 26 hours [backup-policy.md § Objectives]."])
    result = agent.ask("When does the verify job check the backups?", caller=R1)
    # The model's sentence stays if the passages hold it, the asked-for fact is quoted in any case.
    assert "11:00" in result.answer and "The documentation says" in result.answer
    assert "**" not in result.answer, "quoted as text, not as Markdown source"


def test_a_docs_answer_with_nothing_sourced_is_replaced_by_the_documentation_s_words(make_agent: Any) -> None:
    agent = make_agent(replies=["Backups are verified at 03:30 by the night shift."])
    result = agent.ask("When are backups verified?", caller=R1)
    assert "03:30" not in result.answer.replace("“03:30”", "") and "11:00" in result.answer
    assert "Sources:" in result.answer


def test_a_docs_answer_s_yes_is_no_answer(make_agent: Any) -> None:
    # The small model said yes to half of a dev run's yes-or-no questions whose page said no.
    agent = make_agent(replies=["Yes, that is fine."])
    result = agent.ask("can i get the verify job moved to 03:00, is that ok?", caller=R1)
    assert "fine" not in result.answer and "a yes or no" in result.answer
    assert [p["about"] for p in result.grounding["left_out"]] == ["verdict"]


def test_a_question_no_page_answers_gets_no_quote_of_an_unrelated_page(make_agent: Any) -> None:
    agent = make_agent(replies=["Use the HP printer by the door, IP 10.1.2.3 [printers.md § Floor 3]."])
    result = agent.ask("which printer should i use on the 3rd floor?", caller=R1)
    assert "could not find" in result.answer and "The documentation says" not in result.answer
    assert "Sources:" not in result.answer, "the pages searched are no source of a not-found"
    assert "10.1.2.3" not in result.answer.replace("“10.1.2.3”", "")


def test_an_empty_documentation_index_is_named_in_the_answer(make_agent: Any, tmp_path: Any) -> None:
    from core.config import load_settings

    settings = load_settings(None, lab_dir=tmp_path / "lab", llm={"provider": "scripted"},
                             milvus={"uri": str(tmp_path / "empty" / "milvus.db")})  # fmt: skip
    agent = make_agent(replies=["Backups are verified at 11:00."], settings=settings)
    result = agent.ask("When are backups verified?", caller=R1)
    assert "index is empty" in result.answer and "labops ingest knowledge/docs" in result.answer
    assert "11:00" not in result.answer.replace("“11:00”", ""), "nothing to source it from"


# --- false alarms the eval's grounding audit raised on sourced answers ---------------------------------------
NODES = [
    {"node": "node01", "status": "online", "memory_gib": 94, "memory_free_gib": 30.0},
    {"node": "node07", "status": "online", "memory_gib": 128, "memory_free_gib": 12.0},
]


def test_a_value_is_read_as_the_field_named_by_more_words() -> None:
    listed = Evidence.build(results=[("7 nodes", NODES)], user_texts=["which node has the most free memory?"])
    assert check("Most free memory: node01 (30.0 GiB unallocated).", listed) == []
    # The plain field still counts where it is the one named.
    assert [p.kind for p in check("node01 has 30 GiB of memory.", listed)] == ["contradiction"]


def test_a_declination_is_no_date() -> None:
    found = Evidence.build(results=[("no rows: within 5.0 arcmin of RA 150.1, Dec 2.2", [])], user_texts=[])
    assert check("No objects within 5.0 arcmin of RA 150.1, Dec 2.2.", found) == []
    assert "dec 2" not in facts("RA 150.1, Dec 2.2") and "dec 2, 2026" in facts("It failed on Dec 2, 2026.")


def test_a_backup_stated_verified_against_its_verification_is_a_contradiction() -> None:
    rows = [
        {"vmid": 131, "name": "agn-fit", "verification": "unverified", "last_result": None, "stale": False},
        {"vmid": 130, "name": "void-analysis", "verification": "ok", "last_result": "ok", "stale": False},
    ]
    evidence = Evidence.build(results=[("2 VMs; 0 without a backup within the 26 h RPO", rows)],
                              user_texts=["are agn-fit's backups verified?"])  # fmt: skip
    # Said of VM 131 by the model, with the tool's "skipped by the verify job" right below it (a real run).
    problems = check("The backup of VM 131 (agn-fit) is verified.", evidence)
    assert {p.claim for p in problems if p.kind == "contradiction"} == {"verified"}, problems
    assert check("void-analysis is verified; agn-fit is unverified.", evidence) == []
    assert check("agn-fit is not verified.", evidence) == []
    # backup.check's own line (every dev run's audit flagged it before "no ... was" counted as a negation).
    line = "- UNVERIFIED 131 agn-fit (owner researcher2): no snapshot of the last 7 days was verified (7 skipped)"
    assert [p for p in check(line, evidence) if p.kind == "contradiction"] == []


def test_a_command_no_page_holds_is_left_out_whole_and_a_documented_one_stays() -> None:
    evidence = Evidence.build(
        passages=[
            'Submit a job: `labops tool call ray.submit --args \'{"template": "heartbeat"}\'`. '
            "The database VM proj-pg01 sits on node05."
        ],
        user_texts=["I'd like a VM for notebooks - call it nb-01"],
    )
    # Found by the eval: each word of these had a source (node05, ray.submit's template), the commands none.
    invented = "The command would be `ssh researcher1@node05`."
    assert [p.claim for p in check(invented, evidence)] == ["ssh researcher1@node05"]
    # The fence with the command on its own line, as the model wrote it.
    block = (
        'Run this:\n```sh labops tool call ray.submit --args \'{"template": "nb-01"}\'\n```\nproj-pg01 is on node05.'
    )
    pruned = prune(block, evidence)
    # "Run this:" led into the command only, and goes with it.
    assert pruned.text == "proj-pg01 is on node05."
    assert [p.detail for p in pruned.dropped] == ["the code line is in no tool result, passage or message of the user"]
    documented = 'Run this:\n```\nlabops tool call ray.submit --args \'{"template": "heartbeat"}\'\n```'
    assert prune(documented, evidence).text == documented and check(documented, evidence) == []
    # A code span around a claim is that claim: `node05` needs no more than node05 does.
    assert check("It runs on `node05`.", evidence) == []


def test_a_docs_answer_saying_the_pages_do_not_tell_is_a_plain_not_found(make_agent: Any) -> None:
    # The model's "The passage ... does not provide any information about ..." read as an answer, with the
    # passages searched listed as its sources.
    agent = make_agent(replies=["The passage describes LabOps but does not provide any information about the PI."])
    result = agent.ask("who is the lab's principal investigator?", caller=R1)
    assert result.answer.startswith("I could not find that"), result.answer
    assert "Sources:" not in result.answer and "does not provide" not in result.answer


def test_a_not_found_beside_a_sentence_of_the_pages_keeps_both(make_agent: Any) -> None:
    # The quoted sentence may be the best of unrelated pages: the model's doubt is not replaced by it.
    agent = make_agent(replies=["The documentation does not say when the backups are verified."])
    result = agent.ask("When are backups verified?", caller=R1)
    assert "11:00" in result.answer and "does not say" in result.answer and "could not find" not in result.answer
