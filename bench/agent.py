"""How fast the agent is: its own overhead per turn, and end to end with the real model.

Run by hand against a running embedded lab (``labops lab up``; the docs ingested with ``labops ingest
knowledge/docs``)::

    .venv/bin/python -m bench.agent [--turns 20] [--real 5] [--lab-dir .labops]

1. Overhead: a zero-latency scripted model, so what is measured is retrieval, tool selection, the graph,
   checkpoints and the guard (median and p95 per turn; target under 30 ms). A docs turn (no tool) and a
   tool turn (``vm.nodes``, whose own simulator round trips are reported separately).
2. Real model (the embedded GPU node through Ollama): time to first answer token, generation speed,
   end-to-end seconds for a docs question and a read-tool question (target: median under 8 s), and the
   model server's resident memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from agent.runtime import Agent
from agent.scripted import ScriptedChatModel, fenced_call
from core.config import Settings, load_settings
from policies.guard import Caller

CALLER = Caller(user="researcher1", channel="cli")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _overhead(settings: Settings, turns: int) -> None:
    def responder(messages: list[Any], tools: list[dict[str, Any]]) -> str:
        last = messages[-1]
        if type(last).__name__ == "ToolMessage" or not tools:
            return "Done."
        return fenced_call("vm_nodes")

    model = ScriptedChatModel(responder=responder)
    agent = Agent(settings.model_copy(update={"llm": settings.llm.model_copy(update={"provider": "scripted"})}),
                  model=model)  # fmt: skip
    spent: list[float] = []
    execute = agent.guard.execute

    def timed_execute(authorization: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(authorization)
        finally:
            spent.append((time.perf_counter() - started) * 1000)

    agent.guard.execute = timed_execute  # type: ignore[method-assign]
    try:
        agent.ask("warm up: which node has room?", caller=CALLER)
        for label, text in (("docs turn", "How do I get a GPU for training?"),
                            ("tool turn", "Which nodes have free memory?")):  # fmt: skip
            totals, tool_ms = [], []
            for _ in range(turns):
                spent.clear()
                started = time.perf_counter()
                agent.ask(text, caller=CALLER)
                totals.append((time.perf_counter() - started) * 1000)
                tool_ms.append(sum(spent))
            own = [t - m for t, m in zip(totals, tool_ms, strict=True)]
            print(f"{label:10} agent overhead  median {statistics.median(own):6.1f} ms  p95 {_pct(own, 0.95):6.1f} ms"
                  f"   (the tool call itself, guard included: median {statistics.median(tool_ms):.1f} ms)")  # fmt: skip
    finally:
        agent.close()


DOCS_QUESTIONS = [
    "When are backups verified?",
    "How do I get a GPU for training?",
    "Who approves a new VM?",
    "What is the data network subnet?",
    "How do I restore a VM from backup?",
    "What is our recovery point objective for databases?",
]
TOOL_QUESTIONS = [
    "Which VMs do I own?",
    "Are our backups healthy?",
    "How many quasars are in DR1?",
    "Show me VM 110",
    "Which nodes have the most free memory?",
    "What is the backup status of VM 132?",
]


def _real(settings: Settings, runs: int) -> None:
    """Distinct questions (each asked once), so the server reuses only the shared prompt prefix."""
    agent = Agent(settings)
    print(f"model: {agent.model_info.get('model')} at {agent.model_info.get('url')}")
    try:
        for label, questions in (
            ("docs questions", DOCS_QUESTIONS[:runs]),
            ("read-tool questions", TOOL_QUESTIONS[:runs]),
        ):
            ends, firsts, speeds = [], [], []
            for text in questions:
                started = time.perf_counter()
                first: float | None = None
                result = None
                for event in agent.stream(text, caller=CALLER):
                    if event["type"] == "token" and first is None:
                        first = time.perf_counter() - started
                    if event["type"] == "done":
                        result = event["result"]
                end = time.perf_counter() - started
                ends.append(end)
                firsts.append(first or end)
                if result is not None and result.tokens:
                    speeds.append(result.tokens / end)
            print(f"{label:19} end to end median {statistics.median(ends):5.1f} s  p95 {_pct(ends, 0.95):5.1f} s"
                  f"   first token median {statistics.median(firsts):5.1f} s"
                  f"   tokens/s (in+out over the turn) {statistics.median(speeds) if speeds else 0:6.0f}")  # fmt: skip
    finally:
        agent.close()


def _server_memory(settings: Settings) -> None:
    state_file = settings.lab_dir / "lab.json"
    if not state_file.is_file():
        return
    pid = (json.loads(state_file.read_text()).get("parts", {}).get("ollama") or {}).get("pid")
    if not pid:
        print("model server: not the embedded one (llm.ollama_url is set)")
        return
    import psutil

    rss = psutil.Process(int(pid)).memory_info().rss / 1024**3
    print(f"model server (pid {pid}) resident memory {rss:.2f} GiB")


def main() -> None:
    """Print the numbers."""
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__)
    parser.add_argument("--turns", type=int, default=20, help="turns per overhead measurement")
    parser.add_argument("--real", type=int, default=6, help="distinct real-model questions per kind (0: skip)")
    parser.add_argument("--lab-dir", type=Path, default=Path(".labops"))
    opts = parser.parse_args()
    settings = load_settings(None, lab_dir=opts.lab_dir)
    _overhead(settings, opts.turns)
    if opts.real:
        _real(settings, opts.real)


if __name__ == "__main__":
    main()
