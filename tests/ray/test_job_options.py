"""Job options in words become the command-line arguments a template declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from tools.context import ToolContext
from tools.ray.options import options_in, prepare_submit


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


@pytest.mark.parametrize(
    ("model_args", "expected"),
    [
        (None, ["--bins", "20"]),  # the model left them out: taken from the words
        (["-b", "20"], ["--bins", "20"]),  # a flag the template does not declare: replaced
        (["--nbins", "20"], ["--bins", "20"]),
        (["--bins", "25"], ["--bins", "25"]),  # declared flags stand as the model wrote them
        (["--bins=25"], ["--bins=25"]),
        (["20"], ["--bins", "20"]),  # a value without its flag (the job's parser refuses it): from the words
        (["--bins", "25", "7"], ["--bins", "20"]),
        (["--bins=25", "7"], ["--bins", "20"]),
    ],
)
def test_submit_arguments_keep_declared_flags_and_replace_made_up_ones(
    tmp_path: Path, model_args: list[str] | None, expected: list[str]
) -> None:
    ctx = ToolContext(settings=load_settings(None, lab_dir=tmp_path))
    args: dict[str, object] = {"template": "redshift-histogram"}
    if model_args is not None:
        args["args"] = model_args
    prepared = prepare_submit(ctx, args, "Submit the redshift-histogram job with 20 bins.")
    assert prepared["args"] == expected


def test_flags_the_model_made_up_are_dropped_when_the_words_give_no_option(tmp_path: Path) -> None:
    # "run heartbeat on the gpu" became args ["--heartbeat"]: the job's parser would refuse it and fail at once.
    ctx = ToolContext(settings=load_settings(None, lab_dir=tmp_path))
    args = {"template": "heartbeat", "args": ["--heartbeat"]}
    assert prepare_submit(ctx, args, "run heartbeat on the gpu")["args"] == []
    kept = {"template": "heartbeat", "args": ["--seconds", "30"]}
    assert prepare_submit(ctx, kept, "run heartbeat on the gpu for a bit") == kept
