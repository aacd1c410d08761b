"""Median and p99 time of one policy decision and of one audited guarded call (excluding the tool).

Run by hand (no lab needed: the call is a trivial in-process read tool)::

    .venv/bin/python -m bench.policy [--n 2000]

"Decision" is one Cedar evaluation through :class:`policies.engine.PolicyEngine` (context built, entities
built, evaluated). "Guarded call" is :meth:`policies.guard.Guard.call` around a tool that returns at once:
argument validation, the decision, and the three audit entries (decision, started, finished) in SQLite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import load_settings
from policies.approvals import ApprovalService
from policies.audit import AuditLog
from policies.engine import PolicyEngine
from policies.guard import Caller, Guard
from tools.base import ResourceRef, Tool, ToolArgs, ToolResult
from tools.context import ToolContext


class _NoArgs(ToolArgs):
    """No arguments."""


def _instant(ctx: ToolContext, args: _NoArgs) -> ToolResult:
    """Return at once (stands in for a tool so only the guard is timed)."""
    return ToolResult.ok("done")


TOOL: Tool[Any] = Tool(name="vm.nodes", args_model=_NoArgs, fn=_instant, risk="read", summary=lambda a: "nothing")


def _stats(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, lab_dir=Path(tmp))
        engine = PolicyEngine.from_settings(settings)
        user = engine.user("researcher1")
        vm = ResourceRef(type="VM", id="130", attrs={"owner": "researcher1", "tags": ["owner-researcher1"]})
        ctx = engine.context(channel="cli", numbers={}, usage={}, user=user)
        med, p99 = _stats(
            lambda: engine.decide(user="researcher1", action="vm.stop", resources=[vm], context=ctx), opts.n
        )
        print(f"policy decision          median {med:7.3f} ms   p99 {p99:7.3f} ms   (n={opts.n})")
        db = Path(tmp) / "labops.sqlite"
        guard = Guard(
            settings=settings,
            engine=engine,
            lookup=lambda name: TOOL,
            audit=AuditLog(db),
            approvals=ApprovalService(db, engine.directory, ttl_seconds=3600),
        )
        caller = Caller(user="researcher1", channel="cli")
        n = max(50, opts.n // 4)
        med, p99 = _stats(lambda: guard.call("vm.nodes", {}, caller=caller), n)
        print(f"audited guarded call     median {med:7.3f} ms   p99 {p99:7.3f} ms   (n={n}, 3 audit entries each)")
        print(f"audit chain: {guard.audit.verify().message if guard.audit else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
