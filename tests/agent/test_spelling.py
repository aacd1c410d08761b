"""Misspelt words are read as the words meant; names, ids, code and English words are left as written."""

from __future__ import annotations

import pytest

from agent.intent import requests
from agent.spelling import Speller, one_edit
from agent.toolselect import vocabulary
from tools.registry import all_tools, toolsets


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller(vocabulary(all_tools(None), toolsets(None)))


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("whcih vms r stoped", "which vms are stopped"),
        ("wat time do the daily bakups run", "wat time do the daily backups run"),  # "wat": an English word
        ("lsit my vms", "list my vms"),
        ("r any nodes down?", "are any nodes down?"),
        ("how r my jobs", "how are my jobs"),
        ("shwo me vm 130 pls", "show me vm 130 please"),
        ("is the verifed backup ok", "is the verified backup ok"),
        ("how big is the k8s cluster", "how big is the kubernetes cluster"),
        ("is the db up", "is the database up"),
        ("is proj-pg01 a postgres-16 box", "is proj-pg01 a postgres-16 box"),  # a name stays as written
    ],
)
def test_typos_are_read_as_the_words_meant(speller: Speller, typed: str, read: str) -> None:
    assert speller.correct(typed) == read


@pytest.mark.parametrize(
    "text",
    [
        "what node is void-analysis sitting on",  # English words stay, even one edit from another
        "status of raysubmit_AbcDef12",  # an id
        "Run this SQL: SELECT spectyp, count(*) FROM desi_dr1.zpix GROUP BY spectyp",  # code is verbatim
        "is r installed on the vm?",  # "r" that is not "are"
        "which r packages are installed",
        "Is the QSOO table there?",  # capitals: an acronym or a name
        "mgmt net subnet?",  # terms of the trade one edit from an English word ("subset") stay
    ],
)
def test_names_ids_code_and_english_stay_as_written(speller: Speller, text: str) -> None:
    assert speller.correct(text) == text


def test_the_lab_s_names_are_words_too(speller: Speller) -> None:
    assert speller.correct("is my sandbx vm on") == "is my sandbx vm on"
    assert speller.correct("is my sandbx vm on", known=["scratch-sandbox"]) == "is my sandbox vm on"
    assert speller.correct("is wazuhh up", known=["wazuh-manager"]) == "is wazuh up"


def test_a_typo_in_a_vm_name_is_read_as_the_one_name_a_letter_away(speller: Speller) -> None:
    names = ["void-analysis", "proj-pg01", "proj-pg02", "agn-fit"]
    assert speller.correct("pls stop void-anlysis", known=names) == "please stop void-analysis"
    # Two names a letter away: neither is guessed.
    assert speller.correct("is proj-pg03 up", known=names) == "is proj-pg03 up"
    assert speller.correct("show agn-fit", known=names) == "show agn-fit"


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("turn of void-analysis for the weekend", "turn off void-analysis for the weekend"),
        ("switch of 132", "switch off 132"),
        ("what happened at the turn of the year", "what happened at the turn of the year"),
        ("a turn of events", "a turn of events"),
    ],
)
def test_off_missing_a_letter_before_what_is_switched(speller: Speller, typed: str, read: str) -> None:
    assert speller.correct(typed, known=["void-analysis"]) == read


def test_one_edit() -> None:
    assert one_edit("whcih", "which") and one_edit("stoped", "stopped") and one_edit("stopd", "stoped")
    assert not one_edit("which", "which") and not one_edit("stop", "stopped") and not one_edit("halt", "what")


def test_a_misspelt_question_asks_for_no_action() -> None:
    # "stoped" starts with "stop": read as a request, a question about stopped VMs proposed vm.stop.
    assert requests("whcih vms r stoped") == ""
    assert requests("wich ones are running") == ""
    assert requests("that one, stop it") == "that one, stop it"
    assert requests("then stop it") == "then stop it"


def test_a_question_opening_with_any_asks_for_no_action() -> None:
    # "jobs" is one of ray.submit's asking words; the sentence asks whether any job is still running.
    assert requests("any of my ray jobs still going?") == ""
    assert requests("any chance you can start vm 132") == "any chance you can start vm 132"
    assert requests("can my ray job pip install whatever it wants?") == ""
    assert requests("can you start vm 132") == "can you start vm 132"


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        # A tool's asking phrases are written out ("would like a vm"): the dev request "I'd like a VM for
        # notebooks - call it nb-01" matched none of vm.provision's and went to the documentation.
        ("I'd like a VM for notebooks", "I would like a VM for notebooks"),
        ("we\u2019d like two more cores", "we would like two more cores"),
        ("I'd started it already", "I had started it already"),
        ("I'm out of quota", "I am out of quota"),
        ("we're waiting on job 12", "we are waiting on job 12"),
        ("they've stopped it", "they have stopped it"),
    ],
)
def test_a_pronoun_s_contraction_is_read_in_full(speller: Speller, typed: str, read: str) -> None:
    assert speller.correct(typed) == read
