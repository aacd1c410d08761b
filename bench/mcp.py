"""What MCP adds to a guarded read: the same call direct, over stdio and over streamable HTTP, side by side.

Run by hand against a running embedded lab (``labops lab up``)::

    .venv/bin/python -m bench.mcp [--lab-dir .labops] [--repeat 30] [--tool vm.list]

Three ways to make one read call as the same lab user, each ``--repeat`` times after one warm-up call:

- direct: ``Guard.call`` in this process (policy, audit log, the tool against the lab);
- stdio: ``tools/call`` to a ``labops mcp`` process over one open session (what a desktop assistant does);
- http: ``tools/call`` to ``/mcp`` on a ``labops serve`` process, one session (stateless JSON mode: every call is
  a POST with the API key checked).

Printed: median and p95 per call and the median's overhead over direct. The session's start-up (process start,
``initialize``) is printed separately, since a client pays it once.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Timed = tuple[list[float], float]  # per-call seconds, session start-up seconds


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _direct(lab_dir: Path, tool: str, user: str, repeat: int) -> Timed:
    from agent.services import build_services
    from core.config import load_settings
    from policies.guard import Caller

    started = time.perf_counter()
    services = build_services(load_settings(None, lab_dir=lab_dir))
    caller = Caller(user=user, channel="cli", request_text="bench.mcp")
    try:
        services.guard.call(tool, {}, caller=caller)
        setup = time.perf_counter() - started
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = services.guard.call(tool, {}, caller=caller)
            samples.append(time.perf_counter() - t0)
            if result.status != "ok":
                raise SystemExit(f"direct {tool} answered {result.status}: {result.message}")
    finally:
        services.close()
    return samples, setup


async def _session_calls(session: Any, name: str, repeat: int) -> list[float]:
    first = await session.call_tool(name, {})
    if first.is_error:
        raise SystemExit(f"MCP {name} failed: {first.content}")
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await session.call_tool(name, {})
        samples.append(time.perf_counter() - t0)
    return samples


def _run(work: Callable[[], Awaitable[Timed]]) -> Timed:
    import anyio

    return anyio.run(work)


def _stdio(lab_dir: Path, name: str, user: str, repeat: int) -> Timed:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=str(Path(sys.executable).parent / "labops"), args=["--lab-dir", str(lab_dir), "mcp", "--as", user]
    )

    async def work() -> Timed:
        started = time.perf_counter()
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            setup = time.perf_counter() - started
            return await _session_calls(session, name, repeat), setup

    return _run(work)


def _start_server(lab_dir: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "port"
    log = workdir / "serve.log"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "labops"), "--lab-dir", str(lab_dir), "serve", "--port", "0",
         "--port-file", str(port_file)], stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit(f"labops serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"


def _http(lab_dir: Path, name: str, user: str, repeat: int) -> Timed:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from core.config import load_settings
    from policies.apikeys import ApiKeys

    keys = ApiKeys.from_settings(load_settings(None, lab_dir=lab_dir))
    record, key = keys.create("bench-mcp", user=user)
    with tempfile.TemporaryDirectory(prefix="labops-bench-mcp-") as tmp:
        proc, url = _start_server(lab_dir, Path(tmp))

        async def work() -> Timed:
            started = time.perf_counter()
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
                streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                setup = time.perf_counter() - started
                return await _session_calls(session, name, repeat), setup

        try:
            return _run(work)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            keys.revoke(record.id)


def main() -> None:
    """Time the three ways and print them side by side."""
    parser = argparse.ArgumentParser(prog="python -m bench.mcp", description=__doc__)
    parser.add_argument("--lab-dir", type=Path, default=Path(".labops"))
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--tool", default="vm.list", help="a read tool that needs no arguments")
    parser.add_argument("--as", dest="user", default="researcher1", help="the lab user making the calls")
    opts = parser.parse_args()
    lab_dir = opts.lab_dir.resolve()
    if not (lab_dir / "lab.json").is_file():
        raise SystemExit(f"no embedded lab in {lab_dir}: run `labops lab up` first")
    name = opts.tool.replace(".", "_")
    rows = [
        ("direct (Guard.call)", _direct(lab_dir, opts.tool, opts.user, opts.repeat)),
        ("MCP stdio", _stdio(lab_dir, name, opts.user, opts.repeat)),
        ("MCP streamable HTTP", _http(lab_dir, name, opts.user, opts.repeat)),
    ]
    base = _summary(rows[0][1][0])[0]
    print(f"{opts.tool} as {opts.user}, {opts.repeat} calls each after one warm-up call")
    print(f"{'path':22} {'median ms':>10} {'p95 ms':>8} {'overhead ms':>12} {'session start s':>16}")
    for label, (samples, setup) in rows:
        median, p95 = _summary(samples)
        print(f"{label:22} {median * 1000:10.1f} {p95 * 1000:8.1f} {(median - base) * 1000:12.1f} {setup:16.2f}")


if __name__ == "__main__":
    main()
