"""Drafted tokens: what prompt lookup proposes, and that the real model writes the same with fewer evaluations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from simlab.ollama.drafts import PromptLookup


def _ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.intc)


def test_the_tokens_after_the_latest_earlier_occurrence_are_drafted() -> None:
    lookup = PromptLookup(tokens=3, min_match=2)
    # [7, 8] occurs twice before the end; the later occurrence (followed by 4, 5, 6) is the nearer text.
    drafted = lookup(_ids(7, 8, 1, 2, 7, 8, 4, 5, 6, 9, 7, 8))
    assert drafted.tolist() == [4, 5, 6]


def test_a_longer_match_wins_over_a_later_shorter_one() -> None:
    lookup = PromptLookup(tokens=2, min_match=2, max_match=3)
    drafted = lookup(_ids(1, 2, 3, 40, 41, 2, 3, 50, 51, 1, 2, 3))
    assert drafted.tolist() == [40, 41]


def test_drafts_stop_at_the_end_of_the_context() -> None:
    lookup = PromptLookup(tokens=8, min_match=2)
    assert lookup(_ids(5, 6, 9, 5, 6)).tolist() == [9, 5, 6]


def test_nothing_is_drafted_without_a_long_enough_match() -> None:
    lookup = PromptLookup(tokens=4, min_match=3)
    assert lookup(_ids(1, 2, 3, 9, 2, 3)).size == 0  # only two tokens repeat
    assert lookup(_ids(1)).size == 0


@pytest.mark.parametrize("kwargs", [{"tokens": 0}, {"min_match": 0}, {"min_match": 4, "max_match": 3}])
def test_impossible_sizes_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="min_match"):
        PromptLookup(**kwargs)


@pytest.mark.llm
def test_the_model_copies_a_passage_with_fewer_evaluations_when_drafting() -> None:
    from simlab.ollama.assets import default_model, models_dir, ready
    from simlab.ollama.engine import ChatEngine, Generation

    if not ready(default_model(), models_dir()):
        pytest.fail("the model is not assembled: run `python -m simlab.ollama.assets` (make install does)")
    engine = ChatEngine(models_dir() / default_model().file, n_ctx=2048, n_threads=None, cache_mb=0)
    sentence = "The verify job runs every day at 11:00 and reads each snapshot in store1 again to find bit rot."
    messages = [
        {"role": "system", "content": "You repeat text exactly as given, nothing else."},
        {"role": "user", "content": f"Repeat this sentence exactly:\n{sentence}"},
    ]
    calls: list[int] = []
    evaluate = engine.llm.eval

    def counted(tokens: Sequence[int]) -> None:
        calls.append(len(tokens))
        evaluate(tokens)

    engine.llm.eval = counted  # type: ignore[method-assign]

    def answer() -> tuple[str, int, int]:
        calls.clear()
        engine.llm.reset()
        gen = [p for p in engine.stream(messages, options={"temperature": 0, "num_predict": 64})][-1]
        assert isinstance(gen, Generation)
        return gen.content, gen.eval_count, len(calls)

    drafted_text, drafted_tokens, drafted_evals = answer()
    engine.drafts = None
    plain_text, plain_tokens, plain_evals = answer()

    assert sentence in plain_text and sentence in drafted_text
    # Without drafts one evaluation per written token (plus the prompt's); with them, several tokens a batch.
    assert plain_evals >= plain_tokens
    assert drafted_evals < plain_evals / 2, (drafted_evals, plain_evals, drafted_tokens)
