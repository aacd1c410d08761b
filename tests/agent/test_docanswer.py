"""A documentation answer against the sentences that best match its question (:mod:`agent.docanswer`).

The fact asked for, not another of the same page; a value from another line replaced by the line that answers,
unless the model's line is more about the question or the search's first page holds it; a yes or no nobody can
check left out. The examples are the ones real runs produced.
"""

from __future__ import annotations

from agent.claims import facts
from agent.docanswer import another_sentences_value, answers_asked, without_verdict
from agent.ranking import Ranked, best_sentences
from knowledge.embeddings import OnnxEmbedder


def test_the_fact_that_answers_is_the_one_asked_for() -> None:
    passages = [
        {"citation": "[backup-policy § Schedule]", "text": "- Daily backup job `backup-daily` at **09:00**.\n"
         "- The PBS verify job `verify-daily` checks new snapshots at **11:00**.\n"
         "- Garbage collection runs every night at 02:00. The last 14 daily snapshots of each VM are kept."},
        {"citation": "[backup-policy § Objectives]", "text": "LabOps flags a VM as stale when its newest backup is "
         "older than 26 hours, one missed daily run plus two hours."},
    ]  # fmt: skip
    question = "What is the verification schedule of the backups?"
    assert "11:00" in best_sentences(question, passages, k=1)[0].sentence
    quote = answers_asked("A VM counts as stale after 26 hours.", question, passages)
    assert quote is not None and "11:00" in quote and "[backup-policy § Schedule]" in quote
    assert answers_asked("The verify job runs at 11:00.", question, passages) is None
    assert facts("At 11 am, 14 snapshots of rke2-01") == {"11:00", "14", "rke2-01"}


def test_a_value_from_another_line_of_the_page_is_replaced_by_the_line_that_answers() -> None:
    embed = OnnxEmbedder().embed
    passages = [
        {"citation": "[backup-policy.md § Schedule]", "text": "- Daily backup job `backup-daily` at **09:00** "
         "(snapshot mode, zstd).\n- The PBS verify job `verify-daily` checks new snapshots at **11:00**.\n"
         "- Garbage collection runs every night at 02:00. The last 14 daily snapshots of each VM are kept."},
    ]  # fmt: skip
    # Found by asking in words nobody here had used: "nightly" drew the garbage collection's time.
    question = "when do the nightly backups kick off"
    quote = another_sentences_value("The nightly backups kick off at 02:00.", question, passages, embed=embed)
    assert quote is not None and "09:00" in quote and "[backup-policy.md § Schedule]" in quote
    assert another_sentences_value("They start at 9 am.", question, passages, embed=embed) is None
    # A value of no line (worked out, or a typo) is the grounding check's, not this one's; nor is a question
    # asking for no time or number.
    assert another_sentences_value("They start at 08:30.", question, passages, embed=embed) is None
    assert another_sentences_value("At 02:00.", "what runs every night?", passages, embed=embed) is None
    # How many snapshots are kept: the 14 of its line, not a clock time of another.
    kept = "how many daily snapshots are kept?"
    assert another_sentences_value("14 of them.", kept, passages, embed=embed) is None
    # A small number in words is a number: "one day" is the recovery point's, not how long backups are kept.
    objectives = {
        "citation": "[backup-policy.md § Objectives]",
        "section": "Objectives",
        "text": "| | target |\n|---|---|\n| RPO on premises, VM snapshots | one day (the daily backup) |",
    }
    how_long = "how long do we keep the daily backups"
    quote = another_sentences_value("They are kept for one day.", how_long, [*passages, objectives], embed=embed)
    assert quote is not None and "The last 14 daily snapshots of each VM are kept." in quote
    # A lesser line counting what the question counts answers it: the ranking put a node's table row first, and
    # "4" (the cluster "of four nodes") was the answer.
    nodes = [
        {"citation": "[cluster-overview.md § Nodes]", "section": "Nodes",
         "text": "| node | CPU | memory | role |\n|---|---|---|---|\n"
                 "| node02 | Intel i5-12600H | 94 GB | RKE2 Kubernetes, small services |"},
        {"citation": "[kubernetes-ray.md § Kubernetes and Ray]", "section": "Kubernetes and Ray",
         "text": "Distributed jobs run on Ray inside an RKE2 Kubernetes cluster of four nodes (about 80 cores)."},
    ]  # fmt: skip
    k8s = "How many nodes does the Kubernetes cluster have?"
    ranked = best_sentences(k8s, nodes, k=6, embed=embed)
    assert "node02" in ranked[0].sentence
    assert another_sentences_value("The Kubernetes cluster has 4 nodes.", k8s, nodes, ranked=ranked) is None
    assert another_sentences_value("It has four nodes.", k8s, nodes, ranked=ranked) is None


def test_a_value_of_a_line_saying_more_of_the_question_s_words_stands() -> None:
    # "How big is the Kubernetes cluster?": the ranking's first, a node's table row, only just beat the line the
    # model used, which names the cluster; its right answer was replaced by the row. Scores as measured then.
    rows = [
        Ranked(sentence="node: node01; memory: 94 GB; role: RKE2 Kubernetes", citation="[nodes]", score=2.20),
        Ranked(sentence="a Kubernetes cluster of four nodes (80 cores, 375 GB of RAM)", citation="[k8s]", score=2.09),
        Ranked(sentence="Garbage collection keeps 14 snapshots.", citation="[gc]", score=1.0),
    ]
    how_big = "how big is the kubernetes cluster"
    assert another_sentences_value("It has about 80 cores and 375 GB of RAM.", how_big, [], ranked=rows) is None
    # A value of a line saying no more of the question than the first is still replaced by the first's.
    quote = another_sentences_value("It keeps 14.", how_big, [], ranked=rows)
    assert quote is not None and "94 GB" in quote


def test_a_yes_or_no_the_passages_do_not_state_is_left_out() -> None:
    pages = [{"text": "Only administrators reach it. Ask the platform administrator to pull a new model."}]
    # The verdict alone, or with the question turned round, goes with its citation.
    text, problem = without_verdict(
        "Yes, you can SSH into the hosts. [networks.md § Management]\n\nOnly administrators reach it.",
        "can i ssh into the hosts", pages)  # fmt: skip
    assert text == "Only administrators reach it." and problem is not None and problem.about == "verdict"
    # What the sentence adds from the pages stays, without its verdict.
    text, _ = without_verdict("No, ask the platform administrator to pull it.", "can i pull a model myself?", pages)
    assert text == "Ask the platform administrator to pull it."
    assert without_verdict("Nobody may pull models.", "can i pull a model?", pages) == (
        "Nobody may pull models.", None)  # fmt: skip
    # "No" as a determiner is no verdict: without it the sentence would say the opposite.
    assert without_verdict("No VM is stopped.", "is any vm stopped?", pages) == ("No VM is stopped.", None)


def test_a_sentence_pointing_back_at_a_left_out_verdict_keeps_only_what_it_says() -> None:
    # explore18's first run: "No, ..." left out, and the answer opened "This is because daily snapshots ...".
    pages = [
        {"text": "Backups are deduplicated, so daily snapshots of the same VM cost far less than their full size."}
    ]
    text, problem = without_verdict(
        "No, they do not.\n\nThis is because daily snapshots of the same VM cost far less than their full size.",
        "does every daily backup take up the full disk size again?", pages)  # fmt: skip
    assert text == "Daily snapshots of the same VM cost far less than their full size." and problem is not None
    # A sentence that opens otherwise stays as written.
    text, _ = without_verdict("Yes. This page is about backups.", "is it about backups?", pages)
    assert text == "This page is about backups."


def test_a_value_of_the_passage_the_search_put_first_stands_against_another_passage_s_line() -> None:
    # Asked in Spanish how long a DESI query may run: the model answered from the databases page, the search's
    # first; the sentence ranking put a restore page's "take several hours" first and replaced the answer.
    access, restore = "[databases.md § Access]", "[runbook-restore.md § From off-site]"
    timeout, glacier = "Statements time out after 15 seconds by default.", "Glacier retrievals take 12 hours."
    passages = [{"citation": access, "text": timeout}, {"citation": restore, "text": glacier}]
    ranked = [Ranked(sentence=glacier, citation=restore, score=1.6), Ranked(sentence=timeout, citation=access, score=1)]
    question = "how long can a query to the DESI database take before it is cut off?"
    assert another_sentences_value("It may run 15 seconds.", question, passages, ranked=ranked) is None
    # The same value in a lesser passage than the first line's is still replaced.
    assert another_sentences_value("It may run 15 seconds.", question, passages[::-1], ranked=ranked) is not None
    # Nor is the first line quoted under it as the fact asked for.
    assert answers_asked("It may run 15 seconds.", question, passages, ranked=ranked) is None
    assert answers_asked("It may run 15 seconds.", question, passages[::-1], ranked=ranked) is not None
