"""Kubernetes API stand-in: ``/version`` and ``ray.io/v1`` ``rayjobs`` (create, get, list, patch, delete, status).

Strict enough for the official ``kubernetes`` client: bearer-token auth, Kubernetes ``Status`` objects
for errors (401, 404 NotFound, 409 AlreadyExists, 422 Invalid, 415 for an unsupported patch type), object
metadata with uid/resourceVersion/generation/creationTimestamp. Instead of an operator with a submitter
pod, the stand-in submits the job to the lab's Ray head through the Jobs REST API (the head's address is
re-read from ``lab.json`` on each call) and reports Ray's status in ``.status.jobStatus`` and
``.status.jobDeploymentStatus``. ``spec.suspend: true`` stops the job, like the KubeRay client's stop.
Objects persist in ``<lab_dir>/simlab/kube.json``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from simlab import clock
from simlab.httpapi import HttpApp, Request, Response

__all__ = ["KubeApp"]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_BASE = "/apis/ray.io/v1/namespaces/{ns}/rayjobs"
_PATHS = [
    (re.compile(r"^/apis/ray\.io/v1/namespaces/(?P<ns>[^/]+)/rayjobs/?$"), "collection"),
    (re.compile(r"^/apis/ray\.io/v1/namespaces/(?P<ns>[^/]+)/rayjobs/(?P<name>[^/]+)/?$"), "object"),
    (re.compile(r"^/apis/ray\.io/v1/namespaces/(?P<ns>[^/]+)/rayjobs/(?P<name>[^/]+)/status/?$"), "status"),
]
_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def _now() -> str:
    return datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms_to_time(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else None


class _KubeError(Exception):
    def __init__(self, code: int, reason: str, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.name = code, reason, message, name


class KubeApp(HttpApp):
    """The ``ray.io/v1`` RayJob API over the lab's Ray head."""

    name = "kube-apiserver"

    def __init__(self, *, lab_dir: Path, secrets: dict[str, Any]) -> None:
        self.lab_dir = lab_dir
        self.token = str(secrets["kube"]["token"])
        self.path = lab_dir / "simlab" / "kube.json"
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.version = max((int(o["metadata"]["resourceVersion"]) for o in self.objects.values()), default=1000)

    # --- plumbing ------------------------------------------------------------------------------------
    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.objects, indent=1))
        os.replace(tmp, self.path)

    def _ray_url(self) -> str:
        try:
            state = json.loads((self.lab_dir / "lab.json").read_text())
            return str(state["parts"]["ray"]["url"]).rstrip("/")
        except (OSError, ValueError, KeyError) as exc:
            raise _KubeError(503, "ServiceUnavailable", "the Ray head of this lab is not running") from exc

    def _ray(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            with httpx.Client(base_url=self._ray_url(), timeout=30) as http:
                return http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _KubeError(503, "ServiceUnavailable", f"cannot reach the Ray head: {exc}") from exc

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    @staticmethod
    def _status(code: int, reason: str, message: str, name: str | None = None) -> Response:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        if name:
            body["details"] = {"name": name, "group": "ray.io", "kind": "rayjobs"}
        return Response(status=code, body=json.dumps(body).encode(), content_type="application/json")

    @staticmethod
    def _json(value: Any, status: int = 200) -> Response:
        return Response(status=status, body=json.dumps(value).encode(), content_type="application/json")

    # --- request handling ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Route one request."""
        if request.headers.get("authorization", "") != f"Bearer {self.token}":
            return self._status(401, "Unauthorized", "Unauthorized")
        try:
            with self.lock:
                return self._route(request)
        except _KubeError as exc:
            return self._status(exc.code, exc.reason, exc.message, exc.name)

    def _route(self, req: Request) -> Response:
        path = req.path
        if path in ("/version", "/version/") and req.method == "GET":
            return self._json(
                {
                    "major": "1",
                    "minor": "31",
                    "gitVersion": "v1.31.4+rke2r1",
                    "gitCommit": "a78aa47129b8",
                    "gitTreeState": "clean",
                    "buildDate": "2024-12-11T00:00:00Z",
                    "goVersion": "go1.22.9",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        if path.rstrip("/") == "/apis/ray.io/v1" and req.method == "GET":
            return self._json(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "ray.io/v1",
                    "resources": [
                        {
                            "name": "rayjobs",
                            "singularName": "rayjob",
                            "namespaced": True,
                            "kind": "RayJob",
                            "verbs": ["create", "delete", "get", "list", "patch"],
                        },
                        {
                            "name": "rayjobs/status",
                            "singularName": "",
                            "namespaced": True,
                            "kind": "RayJob",
                            "verbs": ["get"],
                        },
                    ],
                }
            )
        for regex, kind in _PATHS:
            m = regex.match(path)
            if m:
                return self._dispatch(req, kind, m.group("ns"), m.groupdict().get("name"))
        return self._status(404, "NotFound", "the server could not find the requested resource")

    def _dispatch(self, req: Request, kind: str, ns: str, name: str | None) -> Response:
        if kind == "collection" and req.method == "GET":
            items = [self._refresh(o) for k, o in sorted(self.objects.items()) if k.startswith(f"{ns}/")]
            return self._json(
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayJobList",
                    "items": items,
                    "metadata": {"resourceVersion": str(self.version)},
                }
            )
        if kind == "collection" and req.method == "POST":
            return self._create(req, ns)
        assert name is not None
        key = f"{ns}/{name}"
        obj = self.objects.get(key)
        if obj is None:
            raise _KubeError(404, "NotFound", f'rayjobs.ray.io "{name}" not found', name)
        if req.method == "GET":
            return self._json(self._refresh(obj))
        if kind == "object" and req.method == "PATCH":
            return self._patch(req, obj)
        if kind == "object" and req.method == "DELETE":
            job = obj.get("status", {}).get("jobId")
            if job and obj["status"].get("jobStatus") not in _TERMINAL:
                self._ray("POST", f"/api/jobs/{job}/stop")
            del self.objects[key]
            self._save()
            return self._json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "group": "ray.io", "kind": "rayjobs", "uid": obj["metadata"]["uid"]},
                }
            )
        return self._status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _create(self, req: Request, ns: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise _KubeError(400, "BadRequest", "the body of the request was in an unknown format")
        meta = body.get("metadata") or {}
        name = str(meta.get("name", ""))
        spec = body.get("spec") or {}
        problems = []
        if body.get("apiVersion") != "ray.io/v1" or body.get("kind") != "RayJob":
            problems.append("apiVersion/kind: must be ray.io/v1 RayJob")
        if not _NAME.match(name) or len(name) > 63:
            problems.append(
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 label must consist of '
                "lower case alphanumeric characters or '-'"
            )
        if not isinstance(spec.get("entrypoint"), str) or not spec.get("entrypoint"):
            problems.append("spec.entrypoint: Required value")
        if problems:
            raise _KubeError(422, "Invalid", f'RayJob.ray.io "{name}" is invalid: ' + "; ".join(problems), name or None)
        key = f"{ns}/{name}"
        if key in self.objects:
            raise _KubeError(409, "AlreadyExists", f'rayjobs.ray.io "{name}" already exists', name)
        obj = {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": {
                **meta,
                "name": name,
                "namespace": ns,
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "creationTimestamp": _now(),
            },
            "spec": spec,
            "status": {"jobDeploymentStatus": "Initializing", "jobStatus": ""},
        }
        self._bump(obj)
        self._submit(obj)
        self.objects[key] = obj
        self._save()
        return self._json(obj, status=201)

    def _submit(self, obj: dict[str, Any]) -> None:
        spec = obj["spec"]
        job_id = spec.get("jobId") or f"{obj['metadata']['name']}-{uuid.uuid4().hex[:6]}"
        submit: dict[str, Any] = {
            "entrypoint": spec["entrypoint"],
            "submission_id": job_id,
            "metadata": {k: str(v) for k, v in (spec.get("metadata") or {}).items()},
        }
        if spec.get("runtimeEnvYAML"):
            submit["runtime_env"] = yaml.safe_load(spec["runtimeEnvYAML"]) or {}
        for src, dst in (("entrypointNumCpus", "entrypoint_num_cpus"), ("entrypointNumGpus", "entrypoint_num_gpus")):
            if spec.get(src) is not None:
                submit[dst] = spec[src]
        cluster = (spec.get("clusterSelector") or {}).get("ray.io/cluster", f"{obj['metadata']['name']}-raycluster")
        resp = self._ray("POST", "/api/jobs/", json=submit)
        status = obj["status"]
        status.update(jobId=job_id, rayClusterName=cluster, dashboardURL=self._ray_url(), startTime=_now())
        if resp.status_code != 200:
            status.update(
                jobDeploymentStatus="Failed",
                jobStatus="FAILED",
                reason="SubmissionFailed",
                message=resp.text.strip()[:500],
                endTime=_now(),
            )

    def _refresh(self, obj: dict[str, Any]) -> dict[str, Any]:
        status = obj["status"]
        job_id = status.get("jobId")
        if not job_id or status.get("jobDeploymentStatus") in {"Complete", "Failed", "Suspended"}:
            return obj
        resp = self._ray("GET", f"/api/jobs/{job_id}")
        if resp.status_code != 200:
            return obj
        info = resp.json()
        ray_status = info.get("status", "")
        deployment = {
            "PENDING": "Initializing",
            "RUNNING": "Running",
            "SUCCEEDED": "Complete",
            "FAILED": "Failed",
            "STOPPED": "Suspended" if obj["spec"].get("suspend") else "Failed",
        }
        new = {
            "jobStatus": ray_status,
            "jobDeploymentStatus": deployment.get(ray_status, "Running"),
            "message": info.get("message", ""),
            "rayJobInfo": {
                "startTime": _ms_to_time(info.get("start_time")),
                "endTime": _ms_to_time(info.get("end_time")),
            },
        }
        if ray_status in _TERMINAL:
            new["endTime"] = _ms_to_time(info.get("end_time")) or _now()
            new["succeeded" if ray_status == "SUCCEEDED" else "failed"] = 1
        if any(status.get(k) != v for k, v in new.items()):
            status.update(new)
            status["observedGeneration"] = obj["metadata"]["generation"]
            self._bump(obj)
            self._save()
        return obj

    def _patch(self, req: Request, obj: dict[str, Any]) -> Response:
        ctype = req.headers.get("content-type", "")
        if not any(t in ctype for t in ("merge-patch+json", "strategic-merge-patch+json", "json-patch+json")):
            raise _KubeError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json",
            )
        patch = req.json()
        if not isinstance(patch, dict):
            raise _KubeError(422, "Invalid", "only merge patches of spec are supported by this API server")
        suspend_before = bool(obj["spec"].get("suspend"))
        obj["spec"].update(patch.get("spec") or {})
        obj["metadata"]["generation"] += 1
        if obj["spec"].get("suspend") and not suspend_before:
            job = obj["status"].get("jobId")
            if job and obj["status"].get("jobStatus") not in _TERMINAL:
                self._ray("POST", f"/api/jobs/{job}/stop")
            obj["status"].update(jobDeploymentStatus="Suspending")
            self._wait_stopped(obj)
        self._bump(obj)
        self._save()
        return self._json(obj)

    def _wait_stopped(self, obj: dict[str, Any], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        job = obj["status"].get("jobId")
        while job and time.monotonic() < deadline:
            info = self._ray("GET", f"/api/jobs/{job}").json()
            if info.get("status") in _TERMINAL:
                obj["status"].update(
                    jobStatus=info["status"],
                    jobDeploymentStatus="Suspended",
                    endTime=_ms_to_time(info.get("end_time")) or _now(),
                )
                return
            time.sleep(0.5)
