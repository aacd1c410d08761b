"""``labops serve`` under load: throughput and latency of ``/v1/chat/completions`` with the scripted model.

Run by hand against a running embedded lab (``labops lab up``)::

    .venv/bin/python -m bench.server [--lab-dir .labops] [--levels 1,10,50] [--threads 200]

It starts a ``labops serve`` process with a scripted model (every question is a ``vm.list`` tool turn
against the lab's PVE API, so the numbers are the service, the graph, the guard, the audit log and the
simulator, not a language model), then prints for each number of concurrent clients: requests/s, median
and p95 latency, and how many requests were refused with 429; the time to the first SSE event and to
the first answer text; and the server's memory per open conversation thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from core.config import load_settings
from policies.apikeys import ApiKeys

SCRIPT = {"rules": [{"when": "which vms", "reply": {"call": "vm_list", "args": {}}},
                    {"after": "vm_list", "reply": "The lab has these VMs: {result}"},
                    {"reply": "Ask me about the lab."}]}  # fmt: skip


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _start(lab_dir: Path, workdir: Path, running: int, queued: int) -> tuple[subprocess.Popen[bytes], str]:
    script = workdir / "script.json"
    script.write_text(json.dumps(SCRIPT))
    config = workdir / "labops.toml"
    config.write_text(f'[llm]\nprovider = "scripted"\nscript = "{script}"\n[agent]\ndocs_k = 0\n'
                      f"[server]\nmax_concurrent_turns = {running}\nmax_queued_turns = {queued}\n")  # fmt: skip
    port_file = workdir / "port"
    labops = str(Path(sys.executable).parent / "labops")
    proc = subprocess.Popen(
        [labops, "--config", str(config), "--lab-dir", str(lab_dir), "serve", "--port", "0", "--port-file",
         str(port_file)], stdout=subprocess.DEVNULL, stderr=(workdir / "serve.log").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"labops serve did not start: {(workdir / 'serve.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"


def _ask(client: httpx.Client, url: str, text: str, chat: str | None = None) -> tuple[int, float]:
    headers = {"X-OpenWebUI-Chat-Id": chat} if chat else {}
    started = time.perf_counter()
    r = client.post(f"{url}/v1/chat/completions", headers=headers, timeout=300,
                    json={"model": "labops", "messages": [{"role": "user", "content": text}]})  # fmt: skip
    return r.status_code, time.perf_counter() - started


def _level(url: str, key: str, clients: int, per_client: int) -> None:
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as client:
            for _ in range(per_client):
                # A fresh question each time: a repeated one would be answered from the reply store.
                outcome = _ask(client, url, f"which vms exist? ({uuid.uuid4().hex[:8]})")
                with lock:
                    results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ok = [s for code, s in results if code == 200]
    refused = sum(1 for code, _ in results if code == 429)
    others = sum(1 for code, _ in results if code not in (200, 429))
    print(f"{clients:3d} clients  {len(ok) / wall:6.1f} answered/s   median {statistics.median(ok) if ok else 0:6.3f} s"
          f"   p95 {_pct(ok, 0.95):6.3f} s   429: {refused:3d}   other errors: {others}")  # fmt: skip


def _first_chunk(url: str, key: str, runs: int) -> None:
    firsts, texts = [], []
    for _ in range(runs):
        body = {"model": "labops", "stream": True, "messages": [{"role": "user", "content":
                f"which vms exist? ({uuid.uuid4().hex[:8]})"}]}  # fmt: skip
        started = time.perf_counter()
        first = text = None
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {key}"}) as r:  # fmt: skip
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                first = first or time.perf_counter() - started
                delta = json.loads(line[6:])["choices"]
                if text is None and delta and delta[0]["delta"].get("content"):
                    text = time.perf_counter() - started
        firsts.append(first or 0.0)
        texts.append(text or 0.0)
    print(
        f"streaming: first SSE event median {statistics.median(firsts) * 1000:6.1f} ms, "
        f"first answer text median {statistics.median(texts) * 1000:6.1f} ms ({runs} runs)"
    )


def _memory_per_thread(proc: subprocess.Popen[bytes], url: str, key: str, threads: int, lab_dir: Path) -> None:
    import psutil

    server = psutil.Process(proc.pid)

    def store_bytes() -> int:
        # The agent's checkpoints (agent.sqlite) and approvals, audit, replies (labops.sqlite), with their journals.
        return sum(p.stat().st_size for p in lab_dir.glob("*.sqlite*") if p.name.split(".")[0] in ("agent", "labops"))

    with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as client:
        _ask(client, url, "which vms exist? (warm-up)", chat="bench-warm")
        rss0, size0 = server.memory_info().rss, store_bytes()
        for i in range(threads):
            _ask(client, url, f"which vms exist? ({i})", chat=f"bench-{uuid.uuid4().hex[:8]}")
        rss1, size1 = server.memory_info().rss, store_bytes()
    print(f"{threads} new threads: server memory {rss0 / 2**20:.0f} → {rss1 / 2**20:.0f} MiB "
          f"({(rss1 - rss0) / threads / 1024:.1f} KiB per thread); store {(size1 - size0) / threads / 1024:.1f} KiB "
          "per thread (checkpoints, audit entries, reply records)")  # fmt: skip


def main() -> None:
    """Start the server, print the numbers, stop it."""
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__)
    parser.add_argument("--lab-dir", type=Path, default=Path(".labops"))
    parser.add_argument("--levels", default="1,10,50", help="numbers of concurrent clients")
    parser.add_argument("--requests", type=int, default=100, help="requests per level (at least 2 per client)")
    parser.add_argument("--threads", type=int, default=200, help="conversations opened for the memory figure")
    parser.add_argument("--running", type=int, default=4, help="server.max_concurrent_turns")
    parser.add_argument("--queued", type=int, default=64, help="server.max_queued_turns")
    opts = parser.parse_args()
    lab_dir = opts.lab_dir.resolve()
    if not (lab_dir / "lab.json").is_file():
        raise SystemExit(f"no embedded lab in {lab_dir}: run `labops lab up` first")
    key = ApiKeys.from_settings(load_settings(None, lab_dir=lab_dir)).create("bench", user="admin1")[1]
    with tempfile.TemporaryDirectory(prefix="labops-bench-") as tmp:
        proc, url = _start(lab_dir, Path(tmp), opts.running, opts.queued)
        try:
            print(f"labops serve at {url}; scripted model; turns: {opts.running} running, {opts.queued} queued")
            for clients in (int(c) for c in opts.levels.split(",")):
                _level(url, key, clients, max(2, opts.requests // clients))
            _first_chunk(url, key, 10)
            _memory_per_thread(proc, url, key, opts.threads, lab_dir)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
