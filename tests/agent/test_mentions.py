"""A name mentioned on its own (agent.mentions), the one test routing, names, grounding and compact share."""

from __future__ import annotations

import pytest

from agent.mentions import mentions


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
