"""How fast the agent is: its own overhead per turn, and end to end with the real model, old and new side by side.

Run by hand against a running embedded lab (``labops lab up`` indexes the documentation)::

    .venv/bin/python -m bench.agent [--turns 20] [--real 6] [--old /path/to/an/older/checkout] [--lab-dir .labops]

1. Overhead: a zero-latency scripted model, so what is measured is retrieval, tool selection, the graph,
   checkpoints, grounding and the guard (median and p95 per turn). A docs turn (no tool) and a tool turn
   (``vm.nodes``, whose own simulator round trips are reported separately).
2. Real model (the embedded GPU node through Ollama): end-to-end seconds, time to the first answer text and
   prompt tokens per turn, for documentation questions and read-tool questions. With ``--old``, an older
   checkout's agent answers in a process of its own beside this one. The model server keeps evaluated
   prompts, so a question asked twice says nothing: every question is asked once in the whole run, the two
   agents take alternate questions of each pool, in the order old, new, new, old (drift cancels out).
   ``--swap`` hands each agent the other half: a second run on a fresh lab completes a question-by-question
   comparison (``--each`` prints every turn).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent.scripted import ScriptedChatModel, fenced_call
from agent.services import build_services
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

    scripted = settings.model_copy(update={"llm": settings.llm.model_copy(update={"provider": "scripted"})})
    services = build_services(scripted, model=ScriptedChatModel(responder=responder))
    agent = services.agent
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
        services.close()


# Distinct questions, each asked once in a run (the model server caches prompts it has seen).
DOCS_QUESTIONS = [
    "When are backups verified?",
    "How do I get a GPU for training?",
    "Who approves a new VM?",
    "What is the data network subnet?",
    "How do I restore a VM from backup?",
    "What is our recovery point objective for databases?",
    "Where do the off-site backup copies go?",
    "Which tool does the lab use for endpoint detection?",
    "How long may a SQL statement run before it is cancelled?",
    "How many Ray jobs may a researcher run at once?",
    "What does the onboarding runbook ask a new member to read?",
    "How many nodes are in the Kubernetes cluster?",
]
TOOL_QUESTIONS = [
    "Which VMs do I own?",
    "Are our backups healthy?",
    "How many quasars are in DR1?",
    "Show me VM 110",
    "Which nodes have the most free memory?",
    "What is the backup status of VM 132?",
    "Which VMs are stopped?",
    "Which Ray job templates can I run?",
    "How full is the backup datastore?",
    "Which backup jobs are configured?",
    "Are any nodes offline?",
    "Show me VM 131",
]

# Drives one agent over given questions and prints one JSON line per turn. Passed to an older checkout's Python
# with -c, so it uses only what every version of the agent has: Agent(settings).stream(text, caller=...).
DRIVER = r"""
import json, sys, time
import httpx
from agent.runtime import Agent
from core.config import load_settings
from policies.guard import Caller
settings = load_settings(None, lab_dir=sys.argv[1])
agent = Agent(settings)
caller = Caller(user="researcher1", channel="cli")


class Counts(httpx.BaseTransport):
    # The ollama client drops the server's count of cached prompt tokens: it is read off the wire here, from
    # the reply's last NDJSON line, as the reply streams through unchanged.
    def __init__(self, inner):
        self.inner, self.cached = inner, 0

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        return httpx.Response(response.status_code, headers=response.headers, stream=Lines(response.stream, self),
                              extensions=response.extensions)

    def close(self):
        self.inner.close()


class Lines(httpx.SyncByteStream):
    def __init__(self, inner, counts):
        self.inner, self.counts, self.tail = inner, counts, b""

    def __iter__(self):
        for chunk in self.inner:
            self.tail = (self.tail + chunk)[-4096:]
            yield chunk
        last = self.tail.strip().rsplit(b"\n", 1)[-1]
        try:
            self.counts.cached += int(json.loads(last).get("prompt_eval_cached_count") or 0)
        except ValueError:
            pass

    def close(self):
        self.inner.close()


http = getattr(getattr(agent.model, "_client", None), "_client", None)
counts = Counts(http._transport) if isinstance(http, httpx.Client) else None
if counts is not None:
    http._transport = counts
warm = getattr(agent, "warm_up", None)  # older agents have none: their first question pays for any prefix
if warm is not None:
    started = time.perf_counter()
    done = warm()
    print(json.dumps({"kind": "warm", "end": time.perf_counter() - started, "done": done is not None}), flush=True)
try:
    for kind, text in json.loads(sys.argv[2]):
        started = time.perf_counter()
        first = None
        result = None
        before = counts.cached if counts is not None else 0
        for event in agent.stream(text, caller=caller):
            if event["type"] == "token" and first is None:
                first = time.perf_counter() - started
            if event["type"] == "done":
                result = event["result"]
        end = time.perf_counter() - started
        row = {"kind": kind, "text": text, "end": end, "first": first if first is not None else end,
               "tokens_in": getattr(result, "tokens_in", 0), "tokens_cached": (counts.cached if counts else 0) - before,
               "model_calls": getattr(result, "model_calls", 0),
               "tools": [c["name"] for c in getattr(result, "tool_calls", [])]}
        print(json.dumps(row), flush=True)
finally:
    agent.close()
"""


def _drive(code: Path, lab_dir: Path, questions: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Ask ``questions`` with the agent of the checkout at ``code`` (a process of its own)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(lab_dir), json.dumps(questions)],
        cwd=code, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the agent at {code} failed:\n{done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _summary(label: str, rows: list[dict[str, Any]]) -> None:
    warm = [r["end"] for r in rows if r["kind"] == "warm" and r.get("done")]
    if warm:
        print(f"{label:4} warm-up (the prompt start every tool turn shares, once per model server start): "
              f"{', '.join(f'{w:.1f} s' for w in warm)}")  # fmt: skip
    for kind in ("docs", "tool"):
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        ends = [r["end"] for r in mine]
        firsts = [r["first"] for r in mine]
        calls = [r for r in mine if r["model_calls"]]
        prompt = [r["tokens_in"] / r["model_calls"] for r in calls]
        # What the server had to evaluate: the prompt less what it served from its cache (the server says).
        fresh = [(r["tokens_in"] - r.get("tokens_cached", 0)) / r["model_calls"] for r in calls]
        print(f"{label:4} {kind:4} n={len(mine):2}  end to end median {statistics.median(ends):5.1f} s "
              f"p95 {_pct(ends, 0.95):5.1f} s   first answer text median {statistics.median(firsts):5.1f} s   "
              f"prompt tokens per model call median {statistics.median(prompt) if prompt else 0:6.0f} "
              f"(evaluated, not from cache: {statistics.median(fresh) if fresh else 0:5.0f})   "
              f"model calls per turn median {statistics.median(r['model_calls'] for r in mine):.0f}")  # fmt: skip


def _each(label: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["kind"] == "warm":
            continue
        fresh = r["tokens_in"] - r.get("tokens_cached", 0)
        print(f"{label:4} {r['kind']:4} {r['end']:5.1f} s  evaluated {fresh:5d}  calls {r['model_calls']}  "
              f"{','.join(r['tools']) or '-':24} {r['text']}")  # fmt: skip


def _real(lab_dir: Path, runs: int, old: Path | None, *, swap: bool = False, each: bool = False) -> None:
    """Each pool split between the agents (alternate questions), asked in the order old, new, new, old.

    ``swap`` gives each agent the other half of the questions: two runs, each on a fresh lab (a new model
    server, nothing cached), have both agents answer every question, so they compare question by question.
    """
    here = Path(__file__).resolve().parents[1]
    docs = [("docs", q) for q in DOCS_QUESTIONS[: 2 * runs]]
    tools = [("tool", q) for q in TOOL_QUESTIONS[: 2 * runs]]
    if old is None:
        rows = _drive(here, lab_dir, docs[:runs] + tools[:runs])
        _summary("new", rows)
        return
    mine = docs[1::2] + tools[1::2]
    theirs = docs[0::2] + tools[0::2]
    if swap:
        mine, theirs = theirs, mine
    half_mine, half_theirs = len(mine) // 2, len(theirs) // 2
    old_rows = _drive(old, lab_dir, theirs[:half_theirs])
    new_rows = _drive(here, lab_dir, mine[:half_mine])
    new_rows += _drive(here, lab_dir, mine[half_mine:])
    old_rows += _drive(old, lab_dir, theirs[half_theirs:])
    if each:
        _each("old", old_rows)
        _each("new", new_rows)
    _summary("old", old_rows)
    _summary("new", new_rows)


def _server_memory(settings: Settings) -> None:
    """The embedded model server's resident memory (from /proc: no extra dependency)."""
    state_file = settings.lab_dir / "lab.json"
    if not state_file.is_file():
        return
    pid = (json.loads(state_file.read_text()).get("parts", {}).get("ollama") or {}).get("pid")
    if not pid:
        print("model server: not the embedded one (llm.ollama_url is set)")
        return
    try:
        status = Path(f"/proc/{int(pid)}/status").read_text()
    except OSError:
        print(f"model server (pid {pid}): not running")
        return
    rss_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    print(f"model server (pid {pid}) resident memory {rss_kib / 1024**2:.2f} GiB")


def main() -> None:
    """Print the numbers."""
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__)
    parser.add_argument("--turns", type=int, default=20, help="turns per overhead measurement (0: skip)")
    parser.add_argument("--real", type=int, default=6, help="distinct real-model questions per kind and agent")
    parser.add_argument("--old", type=Path, default=None, help="an older checkout to measure beside this one")
    parser.add_argument("--lab-dir", type=Path, default=Path(".labops"))
    parser.add_argument("--swap", action="store_true", help="give each agent the other half of the questions")
    parser.add_argument("--each", action="store_true", help="print every turn: seconds, tokens, tools, question")
    opts = parser.parse_args()
    settings = load_settings(None, lab_dir=opts.lab_dir)
    if opts.turns:
        _overhead(settings, opts.turns)
    if opts.real:
        _real(opts.lab_dir.resolve(), opts.real, opts.old.resolve() if opts.old else None, swap=opts.swap,
              each=opts.each)  # fmt: skip
        _server_memory(settings)


if __name__ == "__main__":
    main()
