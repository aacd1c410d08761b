"""The README's "Using it" commands run as written on a fresh lab, with the exit codes it promises.

Each line of the block is run by ``bash`` from the repository root against a fresh lab directory. The
only change made to a line is the approval id: the README shows ``apr_1a2b3c`` where a reader pastes the
id printed by the request before it. A trailing ``# exit N`` comment is the exit code that line promises;
every other line must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "apr_1a2b3c"


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.slow
@pytest.mark.usefixtures("well_known_ports")
def test_the_readme_walk_through_runs_as_written(tmp_path: Path) -> None:
    labops = ROOT / ".venv" / "bin" / "labops"
    if not labops.exists():
        pytest.skip("the README's commands use .venv/bin/labops; run `make install` first")
    env = {**os.environ, "LABOPS_LAB_DIR": str(tmp_path / "lab"), "COLUMNS": "80"}
    approval_id: str | None = None
    outputs: list[tuple[str, str]] = []
    try:
        for line in _commands():
            expect = int(m.group(1)) if (m := re.search(r"#\s*exit (\d+)", line)) else 0
            command = line.replace(PLACEHOLDER, approval_id or PLACEHOLDER)
            done = subprocess.run(
                ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
            )
            out = done.stdout + done.stderr
            outputs.append((command, out))
            assert done.returncode == expect, f"{command}\nexit {done.returncode}, expected {expect}:\n{out[-3000:]}"
            assert "Traceback" not in out, f"{command}\n{out[-3000:]}"
            if (found := re.search(r"approval (apr_[0-9a-f]{12})", out)) and approval_id is None:
                approval_id = found.group(1)
    finally:
        subprocess.run([str(labops), "lab", "down"], cwd=ROOT, env=env, capture_output=True, timeout=300)
    joined = "\n".join(out for _command, out in outputs)
    # What the walk-through promises in words.
    assert approval_id is not None and f"labops approvals approve {approval_id} --as admin1" in joined
    listing = next(out for command, out in outputs if "approvals list" in command)
    assert approval_id in listing, "ids are never cut short, even at 80 columns"
    assert "repeated request analysis-1" in joined
    assert "researcher1 uses" in joined and "this VM needs 8 more" in joined
