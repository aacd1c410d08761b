"""A name mentioned on its own (agent.mentions), the one test routing, names, grounding and compact share."""

from __future__ import annotations

import pytest

from agent.mentions import mentions, spaced_names
from agent.spelling import english_words


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("is agn-fit up?", "agn-fit", True),
        ("is agn-fitter up?", "agn-fit", False),  # part of a longer name
        ("is my-agn-fit up?", "agn-fit", False),
        ("show vm 132, please", 132, True),
        ("show vm 1320", 132, False),
        ("a.b (dots escaped)", "a.b", True),
        ("axb", "a.b", False),
    ],
)
def test_a_name_counts_only_on_its_own(text: str, name: object, expected: bool) -> None:
    assert mentions(text, name) is expected


def test_a_name_written_with_spaces_names_it_only_when_a_part_is_no_english_word() -> None:
    english = english_words()
    assert english, "the sentence model's vocabulary ships with the package"
    # "can you run the redshift histogram with 30 bins" went to desi.redshift_range: the template was not named.
    assert spaced_names("redshift-histogram", english)
    assert mentions("run the redshift histogram with 30 bins", "redshift-histogram", spaced=True)
    assert not mentions("run the redshift histogram with 30 bins", "redshift-histogram")
    # English words only: "the void analysis project" is a research project, not the VM void-analysis.
    assert not spaced_names("void-analysis", english) and not spaced_names("monitoring", english)
    assert not mentions("my void-analysis2 vm", "void-analysis", spaced=True)
