"""What the Ray tools need from a backend (the Jobs API or KubeRay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

__all__ = ["RayBackend"]


class RayBackend(Protocol):
    """Submit, follow, read and stop jobs; JobDetails-shaped dicts (``submission_id``, ``status``, ...)."""

    def upload_dir(self, directory: Path) -> str:
        """Upload job code; returns the ``working_dir`` URI."""
        ...

    def submit(self, body: dict[str, Any]) -> str:
        """Submit a Jobs-API-shaped request; returns the submission id."""
        ...

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The job, or None."""
        ...

    def logs(self, submission_id: str) -> str:
        """The job's log text."""
        ...

    def stop(self, submission_id: str) -> bool:
        """Stop the job."""
        ...

    def list(self) -> list[dict[str, Any]]:
        """All jobs."""
        ...
