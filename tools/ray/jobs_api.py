"""The Ray Jobs REST API (dashboard port 8265), spoken with httpx.

The REST API is used directly rather than ``ray.job_submission``: importing Ray costs seconds and
hundreds of MB per process, and the client is a thin wrapper over these calls (package upload
included: ``GET/PUT /api/packages/gcs/<name>``, as ``dashboard_sdk.py`` does).
"""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import httpx

from core.config import Settings
from core.endpoints import ray_address
from core.errors import BackendUnavailable, InvalidArguments, RayError

__all__ = ["JobsApi"]

log = logging.getLogger(__name__)


def _segment(value: str) -> str:
    """A value as one URL path segment ('/' and '..' cannot reach another endpoint)."""
    return urllib.parse.quote(value, safe="")


class JobsApi:
    """A Ray cluster's Jobs API."""

    def __init__(self, settings: Settings) -> None:
        self.address = ray_address(settings)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            # A client per request: the dashboard is local to the cluster and calls are few, and nothing
            # keeps a pooled connection open after the tool call ends.
            with httpx.Client(base_url=self.address, timeout=30.0) as http:
                resp = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                "Ray", f"cannot reach the Jobs API at {self.address} ({type(exc).__name__})", setting="ray.address"
            ) from exc
        return resp

    def _ok(self, resp: httpx.Response, what: str) -> Any:
        if resp.status_code == 404:
            raise InvalidArguments(f"{what}: {resp.text.strip() or 'not found'}; list jobs with ray.list")
        if resp.status_code >= 400:
            # The dashboard answers errors with a whole Python traceback: its last line is the message.
            lines = [line for line in resp.text.strip().splitlines() if line.strip()]
            if len(lines) > 1:
                log.info("Ray dashboard error for %s: %s", what, resp.text[:5000])
            message = lines[-1][:300] if lines else ""
            raise RayError(f"{what} failed ({resp.status_code}): {message}")
        if "json" not in resp.headers.get("content-type", ""):
            return resp.text  # e.g. the package upload answers with plain text
        return resp.json()

    def version(self) -> str:
        """The cluster's Ray version (``GET /api/version``)."""
        data = self._ok(self._request("GET", "/api/version"), "reading the Ray version")
        return str(data.get("ray_version", "?")) if isinstance(data, dict) else "?"

    def upload_dir(self, directory: Path) -> str:
        """Upload ``directory`` as a working_dir package (once per content) and return its ``gcs://`` URI."""
        buf = io.BytesIO()
        digest = hashlib.sha1()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                rel = path.relative_to(directory).as_posix()
                data = path.read_bytes()
                digest.update(rel.encode() + b"\0" + data)
                zf.writestr(zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0)), data)
        name = f"_ray_pkg_{digest.hexdigest()[:16]}.zip"
        exists = self._request("GET", f"/api/packages/gcs/{name}")
        if exists.status_code == 404:
            self._ok(
                self._request("PUT", f"/api/packages/gcs/{name}", content=buf.getvalue()), "uploading the job code"
            )
        elif exists.status_code != 200:
            self._ok(exists, "checking the job package")
        return f"gcs://{name}"

    def submit(self, body: dict[str, Any]) -> str:
        """Submit a job; returns its submission id."""
        data = self._ok(self._request("POST", "/api/jobs/", json=body), "submitting the job")
        return str(data["submission_id"])

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """JobDetails, or None when there is no such job."""
        resp = self._request("GET", f"/api/jobs/{_segment(submission_id)}")
        if resp.status_code == 404:
            return None
        details: dict[str, Any] = self._ok(resp, f"reading job {submission_id}")
        return details

    def logs(self, submission_id: str) -> str:
        """The job's whole log text."""
        return str(
            self._ok(self._request("GET", f"/api/jobs/{_segment(submission_id)}/logs"), f"job {submission_id}")["logs"]
        )

    def stop(self, submission_id: str) -> bool:
        """Ask the job to stop; True if it was running."""
        return bool(
            self._ok(self._request("POST", f"/api/jobs/{_segment(submission_id)}/stop"), f"job {submission_id}")[
                "stopped"
            ]
        )

    def list(self) -> list[dict[str, Any]]:
        """Every job the cluster knows."""
        jobs: list[dict[str, Any]] = self._ok(self._request("GET", "/api/jobs/"), "listing jobs")
        return jobs
