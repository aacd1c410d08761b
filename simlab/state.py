"""The simulated lab's state: one JSON document in ``<lab_dir>/simlab/state.json``.

Every request runs under one lock and mutating requests save the document atomically, so state
survives a restart of the simulator and two requests never see half an update.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from simlab import clock

__all__ = ["LabState"]


class LabState:
    """The persistent document plus the lock that serialises access to it."""

    def __init__(self, lab_dir: Path, data: dict[str, Any]) -> None:
        self.path = lab_dir / "simlab" / "state.json"
        self.data = data
        self.lock = threading.RLock()

    @classmethod
    def open(cls, lab_dir: Path) -> LabState:
        """Load the state, seeding a new lab on first start."""
        from simlab.seed import seed_state

        path = lab_dir / "simlab" / "state.json"
        if path.is_file():
            return cls(lab_dir, json.loads(path.read_text()))
        state = cls(lab_dir, seed_state(clock.now()))
        state.save()
        return state

    def save(self) -> None:
        """Write the document atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    # Convenience accessors used by the API modules.
    @property
    def vms(self) -> dict[str, dict[str, Any]]:
        """VMs by vmid (as a string key)."""
        vms: dict[str, dict[str, Any]] = self.data["vms"]
        return vms

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """Nodes by name."""
        nodes: dict[str, dict[str, Any]] = self.data["nodes"]
        return nodes

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Tasks by UPID."""
        tasks: dict[str, dict[str, Any]] = self.data["tasks"]
        return tasks
