"""Job options in words become the command-line arguments a template declares."""

from __future__ import annotations

import pytest

from tools.ray.options import options_in


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("Submit the redshift-histogram job with 20 bins.", ["bins"], ["--bins", "20"]),
        ("run it with bins=7", ["bins"], ["--bins", "7"]),
        ("use --bins 30 please", ["bins"], ["--bins", "30"]),
        ("heartbeat for 1 second", ["seconds"], ["--seconds", "1"]),
        ("parallel sum with n=1000 and 4 chunks", ["n", "chunks"], ["--n", "1000", "--chunks", "4"]),
        ("run parallel-sum on 2 CPUs", ["n", "chunks"], []),  # CPUs are a resource, not an option
        ("run the redshift histogram", ["bins"], []),
    ],
)
def test_options_in_words(text: str, options: list[str], expected: list[str]) -> None:
    assert options_in(text, options) == expected
