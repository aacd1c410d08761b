"""An agent over a fresh lab per test: in-process PVE/PBS, the session's DESI database, the docs in Milvus Lite."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, load_settings
from knowledge.embeddings import OnnxEmbedder

DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "docs"


@pytest.fixture(scope="session")
def docs_index(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxEmbedder) -> Path:
    """The lab's documentation ingested once into a Milvus Lite directory shared by the tests."""
    from knowledge.ingest import ingest_paths

    lab_dir = tmp_path_factory.mktemp("docs-lab")
    settings = load_settings(None, lab_dir=lab_dir)
    ingest_paths(settings, [DOCS], embedder=embedder)
    return lab_dir / "milvus.db"


def merge_part(lab_dir: Path, other_lab: Path, part: str) -> None:
    """Add another lab directory's part (and its secrets) to ``lab_dir``'s records."""
    state = json.loads((lab_dir / "lab.json").read_text())
    other = json.loads((other_lab / "lab.json").read_text())
    state["parts"][part] = other["parts"][part]
    (lab_dir / "lab.json").write_text(json.dumps(state))
    secrets = json.loads((lab_dir / "secrets.json").read_text())
    theirs = json.loads((other_lab / "secrets.json").read_text())
    if part in theirs:
        secrets[part] = theirs[part]
        (lab_dir / "secrets.json").write_text(json.dumps(secrets))


@pytest.fixture
def lab(tmp_path: Path, inprocess_lab: Any, desi_db: Any) -> Path:
    lab_dir = tmp_path / "lab"
    inprocess_lab(lab_dir)
    merge_part(lab_dir, desi_db.lab_dir, "postgres")
    return lab_dir


@pytest.fixture
def make_agent(lab: Path, docs_index: Path, embedder: OnnxEmbedder) -> Iterator[Callable[..., Any]]:
    """``make_agent(replies=[...] | responder=fn, **settings)`` → an Agent with a scripted model."""
    from agent.runtime import Agent
    from agent.scripted import ScriptedChatModel

    agents: list[Any] = []

    def make(*, replies: list[Any] | None = None, responder: Any = None, settings: Settings | None = None,
             **overrides: Any) -> Any:  # fmt: skip
        cfg = settings or load_settings(
            None, lab_dir=lab, llm={"provider": "scripted"}, milvus={"uri": str(docs_index)}, **overrides
        )
        model = ScriptedChatModel(replies=replies or [], responder=responder)
        agent = Agent(cfg, model=model, embedder=embedder)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture
def add_part() -> Callable[[Path, Path, str], None]:
    """``add_part(lab_dir, other_lab, part)``: borrow a running part (e.g. the session's Ray head)."""
    return merge_part
