"""Per-tool latency against the embedded lab, and cone-search latency at 200k and 5M rows.

Run by hand (the embedded lab must be up, ``labops lab up``)::

    .venv/bin/python -m bench.tools [--repeat 15] [--big-rows 5000000] [--skip-big]

Each read tool is called ``--repeat`` times through ``Tool.run`` (no policy, no audit: that is
``bench/policy.py``); the median and p95 wall times are printed. The cone search is then timed on the
lab's DESI table and on a second embedded PostgreSQL in ``.labops-bench/`` loaded with
``--big-rows`` objects (loaded once, reused by later runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.endpoints import postgres_dsn
from tools.context import ToolContext
from tools.registry import get_tool
from tools.testing import run_unguarded

# Representative calls of every read tool; mutating tools are timed by the demo, not repeated here
# (each provision creates a VM).
READ_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("vm.nodes", {}),
    ("vm.list", {}),
    ("vm.show", {"vmid": 101}),
    ("backup.status", {}),
    ("backup.jobs", {}),
    ("backup.datastore", {}),
    ("backup.check", {}),
    ("desi.object", {"targetid": 0}),
    ("desi.count_by_spectype", {}),
    ("desi.redshift_range", {"spectype": "QSO", "z_min": 2.0, "z_max": 2.5, "limit": 100}),
    ("desi.cone_search", {"ra": 150.0, "dec": 2.2, "radius_arcmin": 30.0}),
    ("desi.query", {"sql": "SELECT spectype, count(*) FROM desi_dr1.zpix GROUP BY spectype"}),
    ("ray.templates", {}),
    ("ray.list", {}),
]

BIG_LAB = Path(".labops-bench")
CONE = {"ra": 185.0, "dec": 15.0, "radius_arcmin": 30.0}


def _time(fn: Any, repeat: int) -> tuple[float, float, str]:
    samples: list[float] = []
    status = "?"
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - start) * 1000)
        status = result.status
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, status


def _first_targetid(settings: Settings) -> int:
    import psycopg

    with psycopg.connect(postgres_dsn(settings)) as conn:
        row = conn.execute(f"SELECT targetid FROM {settings.postgres.schema_name}.zpix LIMIT 1").fetchone()
    return int(row[0]) if row else 0


def bench_tools(settings: Settings, repeat: int) -> None:
    """Median/p95 of each read tool."""
    ctx = ToolContext(settings=settings, user="researcher1")
    print(f"{'tool':28} {'median ms':>10} {'p95 ms':>10}  status")
    for name, raw in READ_CALLS:
        if name == "desi.object":
            raw = {"targetid": _first_targetid(settings)}
        tool = get_tool(name)
        # The tool's own cost: explicitly without the guard (bench/policy.py times the guard).
        median, p95, status = _time(lambda tool=tool, raw=raw: run_unguarded(tool, ctx, raw), repeat)
        print(f"{name:28} {median:10.1f} {p95:10.1f}  {status}")


def _cone(settings: Settings, repeat: int) -> tuple[float, float, str, int]:
    ctx = ToolContext(settings=settings, user="researcher1")
    tool = get_tool("desi.cone_search")
    median, p95, status = _time(lambda: run_unguarded(tool, ctx, CONE), repeat)
    rows = (run_unguarded(tool, ctx, CONE).data or {}).get("row_count", 0)
    return median, p95, status, rows


def _big_lab(rows: int) -> Settings:
    """A second embedded PostgreSQL holding ``rows`` objects (loaded once, reused by later runs)."""
    from simlab.supervisor import lab_up

    lab_dir = BIG_LAB.resolve()
    start = time.perf_counter()
    lab_up(lab_dir, parts=("postgres",), rows=rows, progress=lambda msg: print(f"  {msg}", flush=True))
    print(f"  {lab_dir} ready in {time.perf_counter() - start:.0f} s", flush=True)
    return load_settings(None, lab_dir=lab_dir)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--skip-big", action="store_true", help="skip the 5M-row cone search")
    opts = parser.parse_args(argv)

    settings = load_settings(None)
    bench_tools(settings, opts.repeat)

    from simlab.desi import desi_row_count

    n = desi_row_count(postgres_dsn(settings, role="admin")) or 0
    print(f"\ncone search (radius {CONE['radius_arcmin']} arcmin)")
    print(f"{'rows':>12} {'median ms':>10} {'p95 ms':>10} {'hits':>6}")
    median, p95, _, hits = _cone(settings, opts.repeat)
    print(f"{n:12,} {median:10.1f} {p95:10.1f} {hits:6}")
    if not opts.skip_big:
        big = _big_lab(opts.big_rows)
        median, p95, _, hits = _cone(big, opts.repeat)
        print(f"{opts.big_rows:12,} {median:10.1f} {p95:10.1f} {hits:6}")
        from simlab.supervisor import lab_down

        lab_down(BIG_LAB.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
