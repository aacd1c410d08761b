"""`labops lab up|status|down|reset` start and stop the real embedded lab, leaving no stray process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from channels.cli.main import cli
from simlab import supervisor


def _labops(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def _descendant_free(pids: set[int]) -> bool:
    return not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)


@pytest.fixture
def lab_dir(tmp_path: Path, well_known_ports: None) -> Iterator[Path]:
    lab = tmp_path / "lab"
    yield lab
    # Whatever the test did, leave no processes behind (a no-op when the test already stopped the lab).
    if lab.exists():
        supervisor.lab_down(lab)


def test_lab_lifecycle_through_the_cli(tmp_path: Path, lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment variable is how a user picks another lab directory for every command.
    monkeypatch.setenv("LABOPS_LAB_DIR", str(lab_dir))

    code, out = _labops("lab", "status", "--json")
    assert code == 0
    assert {info["status"] for info in json.loads(out).values()} == {"down"}

    code, out = _labops("lab", "up", "--rows", "2000", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert set(status) == set(supervisor.PARTS)
    assert all(info["status"] == "up" for info in status.values()), status
    assert status["pve"]["address"].startswith("https://127.0.0.1:")
    assert status["ray"]["address"].startswith("http://127.0.0.1:")
    assert (lab_dir / "secrets.json").stat().st_mode & 0o077 == 0, "secrets must not be readable by others"
    # A new lab answers documentation questions at once: `lab up` indexed the lab's own pages.
    code, out = _labops("search", "when are backups verified?", "--json")
    assert code == 0 and any(h["source"] == "backup-policy.md" for h in json.loads(out)), out

    # Everything the lab started, with all children, to check that `down` leaves nothing behind.
    pids: set[int] = set()
    for info in status.values():
        proc = psutil.Process(int(info["pid"]))
        pids.add(proc.pid)
        pids.update(child.pid for child in proc.children(recursive=True))

    # A second `up` finds everything running and starts nothing new.
    code, out = _labops("lab", "up", "--rows", "2000", "--json")
    assert code == 0
    assert {p: i["pid"] for p, i in json.loads(out).items()} == {p: i["pid"] for p, i in status.items()}

    code, out = _labops("doctor", "--json")
    checks = {c["backend"]: c for c in json.loads(out)}
    assert code == 0, out
    for backend in ("pve", "pbs", "postgres", "ray", "milvus"):
        assert checks[backend]["ok"], checks[backend]
    assert checks["pve"]["version"].startswith("pve-manager 8.4")
    assert checks["docs index"]["ok"] and checks["docs index"]["version"].endswith("chunks")
    assert checks["postgres"]["version"].startswith("PostgreSQL 16")

    # --lab-dir wins over the environment: another directory has no lab.
    code, out = _labops("--lab-dir", str(tmp_path / "other"), "lab", "status", "--json")
    assert {info["status"] for info in json.loads(out).values()} == {"down"}

    code, out = _labops("lab", "down")
    assert code == 0, out
    assert _descendant_free(pids), [p for p in pids if psutil.pid_exists(p)]
    code, out = _labops("lab", "status", "--json")
    assert {info["status"] for info in json.loads(out).values()} == {"down"}

    # With the lab down the doctor fails and names what to fix.
    code, out = _labops("doctor", "--json")
    assert code == 1
    down = {c["backend"]: c for c in json.loads(out)}
    assert not down["pve"]["ok"] and "pve.host" in down["pve"]["fix"]
    assert not down["postgres"]["ok"] and "postgres.dsn" in down["postgres"]["fix"]

    code, out = _labops("lab", "reset", "--yes")
    assert code == 0
    assert not lab_dir.exists()
    assert os.environ["LABOPS_LAB_DIR"] == str(lab_dir)


def test_a_part_that_dies_while_the_others_start_is_reported_and_down_stops_them_all(lab_dir: Path) -> None:
    # The simulator and Milvus start side by side; Milvus cannot open a directory another process holds.
    milvus_dir = str(lab_dir / "milvus.db")
    hold = f"from milvus_lite import MilvusLite; db = MilvusLite({milvus_dir!r}); print('held', flush=True); input()"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(supervisor.LabStartError, match=r"milvus-lite server exited during start-up; see .*\.log"):
            supervisor.lab_up(lab_dir, parts=("pve", "pbs", "kube", "milvus"))
    finally:
        holder.communicate("\n", timeout=60)
    state = json.loads((lab_dir / "lab.json").read_text())
    pids = {int(info["pid"]) for info in state["parts"].values()}
    assert {"pve", "milvus"} <= set(state["parts"]) and len(pids) == 2  # both recorded, so `down` can stop both
    supervisor.lab_down(lab_dir)
    assert _descendant_free(pids)
    assert {info["status"] for info in supervisor.lab_status(lab_dir).values()} == {"down"}
