"""The system turn's model state on disk: a restarted model server answers as if it had evaluated it itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.llm

# Long enough to be kept (the store's threshold is lowered below), short enough to evaluate in seconds.
SYSTEM = "You answer questions about the lab's backups in one short sentence. " + "Be exact. " * 30
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "backups.status",
            "description": "The last backup of each VM and whether it was verified.",
            "parameters": {"type": "object", "properties": {"vm": {"type": "string"}}},
        },
    }
]


def _engine(state_dir: Path | None, *, n_ctx: int = 2048) -> Any:
    from simlab.ollama.assets import default_model, models_dir, ready
    from simlab.ollama.engine import ChatEngine

    if not ready(default_model(), models_dir()):
        pytest.fail("the model is not assembled: run `python -m simlab.ollama.assets` (make install does)")
    engine = ChatEngine(models_dir() / default_model().file, n_ctx=n_ctx, cache_mb=0, state_dir=state_dir)
    if engine.heads is not None:
        engine.heads.min_tokens = 64
    return engine


def _ask(engine: Any, question: str) -> Any:
    from simlab.ollama.engine import Generation

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    with engine.lock:
        gen = list(engine.stream(messages, tools=TOOLS, options={"temperature": 0, "num_predict": 24}))[-1]
    assert isinstance(gen, Generation)
    return gen


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """A server that evaluated the system turn itself: the folder it wrote, its answers to two questions."""
    folder = tmp_path_factory.mktemp("states")
    engine = _engine(folder)
    one = _ask(engine, "When did vm 130 last get backed up?")
    two = _ask(engine, "Is the backup of void-analysis verified?")
    return folder, one, two


def test_a_restarted_server_reads_the_system_turn_and_answers_the_same(first: tuple[Path, Any, Any]) -> None:
    folder, _one, two = first
    assert len(list(folder.glob("*.state"))) == 1  # one head, written once for both questions
    restarted = _engine(folder)
    gen = _ask(restarted, "Is the backup of void-analysis verified?")
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "x"}]
    head = restarted.head(messages, TOOLS, restarted.tokenize(restarted.render(messages, TOOLS)))
    assert head > 64 and gen.cached_tokens == head  # nothing of the system turn evaluated again
    # The state read from disk is the one the first server computed: the same tokens come out.
    assert (gen.content, gen.tool_calls) == (two.content, two.tool_calls)


def test_a_damaged_file_is_removed_and_costs_only_the_evaluation(first: tuple[Path, Any, Any]) -> None:
    folder, one, _two = first
    damaged = next(folder.glob("*.state"))
    raw = bytearray(damaged.read_bytes())
    raw[-1000] ^= 0xFF  # one byte of the state itself
    copy = damaged.parent.parent / "damaged"
    copy.mkdir(exist_ok=True)
    (copy / damaged.name).write_bytes(bytes(raw))
    gen = _ask(_engine(copy), "When did vm 130 last get backed up?")
    assert gen.cached_tokens == 0 and gen.content == one.content
    # Replaced by a whole one from this run.
    assert (copy / damaged.name).read_bytes() == damaged.read_bytes()


def test_a_state_is_not_read_into_another_context_size(first: tuple[Path, Any, Any], tmp_path: Path) -> None:
    folder, _one, _two = first
    # A copy of the folder, so that the other tests see only the first server's file whatever the order.
    for state in folder.glob("*.state"):
        (tmp_path / state.name).write_bytes(state.read_bytes())
    other = _engine(tmp_path, n_ctx=1024)
    gen = _ask(other, "When did vm 130 last get backed up?")
    assert gen.cached_tokens == 0
    assert len(list(tmp_path.glob("*.state"))) == 2  # its own head, beside the other size's


def test_the_oldest_files_go_past_the_capacity(tmp_path: Path) -> None:
    from simlab.ollama.states import HeadStore

    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    store = HeadStore(tmp_path / "states", model_path=model, n_ctx=2048, capacity_bytes=2500)
    store.folder.mkdir()
    for i in range(4):  # 0 is the oldest
        f = store.folder / f"{i}.state"
        f.write_bytes(b"x" * 1000)
        os.utime(f, ns=(i * 10**9, i * 10**9))
    # A server killed while writing left a temporary file; one still being written (just now) is not touched.
    dead, live = store.folder / ".x.state.1.tmp", store.folder / ".y.state.2.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    old = live.stat().st_mtime - 3600  # the file system's clock, which a controlled clock does not move
    os.utime(dead, (old, old))
    store.prune(keep=store.folder / "0.state")  # the file just written stays, however old its clock says it is
    assert sorted(p.name for p in store.folder.glob("*.state")) == ["0.state", "3.state"]
    assert not dead.exists() and live.exists()
