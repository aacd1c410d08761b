"""The KubeRay backend: RayJob objects (``ray.io/v1``) through the official ``kubernetes`` client.

A job is a RayJob in ``kubernetes.namespace`` that runs on an existing Ray cluster
(``spec.clusterSelector`` from ``kubernetes.ray_cluster_selector``). Status comes from
``.status.jobStatus``/``jobDeploymentStatus``; logs come from the cluster's dashboard
(``.status.dashboardURL``) by the job id; stop sets ``spec.suspend: true`` as the KubeRay client does.
The job's code is uploaded to that cluster's dashboard as a ``gcs://`` package first, so the RayJob's
``working_dir`` is reachable from inside the cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from core.config import Settings
from core.endpoints import kube_endpoint
from core.errors import BackendUnavailable, InvalidArguments, RayError
from tools.ray.jobs_api import JobsApi

__all__ = ["KubeRayBackend", "kube_api_client"]

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
_SETTING = "kubernetes.kubeconfig"


def kube_api_client(settings: Settings) -> client.ApiClient:
    """A Kubernetes API client: kubeconfig, in-cluster, or the embedded stand-in (TLS verified)."""
    ep = kube_endpoint(settings)
    if ep.host is None:
        if ep.in_cluster:
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=str(ep.kubeconfig) if ep.kubeconfig else None, context=ep.context)
        return client.ApiClient()
    cfg = client.Configuration()
    cfg.host = ep.host
    cfg.ssl_ca_cert = ep.ca_file
    cfg.verify_ssl = True
    cfg.api_key = {"authorization": f"Bearer {ep.token}"}
    return client.ApiClient(cfg)


def _name(submission_id: str) -> str:
    # RayJob names are RFC 1123 labels; submission ids use '_'.
    return submission_id.replace("_", "-").lower()[:63]


class KubeRayBackend:
    """Ray jobs as KubeRay RayJobs; same interface as :class:`~tools.ray.jobs_api.JobsApi`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.namespace = kube_endpoint(settings).namespace
        self.api = client.CustomObjectsApi(kube_api_client(settings))
        self.dashboard = JobsApi(settings)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(GROUP, VERSION, self.namespace, PLURAL, *args, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status in (401, 403):
                raise BackendUnavailable(
                    "Kubernetes", f"{what}: {exc.reason}", setting="kubernetes.kubeconfig"
                ) from exc
            raise RayError(f"Kubernetes refused {what} ({exc.status} {exc.reason}): {str(exc.body)[:300]}") from exc
        except (Urllib3Error, OSError) as exc:
            raise BackendUnavailable(
                "Kubernetes", f"{what}: {type(exc).__name__}", setting="kubernetes.kubeconfig"
            ) from exc

    def upload_dir(self, directory: Path) -> str:
        """Upload the job code to the cluster's dashboard."""
        return self.dashboard.upload_dir(directory)

    def submit(self, body: dict[str, Any]) -> str:
        """Create the RayJob; returns the submission id."""
        sid = str(body["submission_id"])
        spec: dict[str, Any] = {
            "entrypoint": body["entrypoint"],
            "jobId": sid,
            "runtimeEnvYAML": yaml.safe_dump(body.get("runtime_env") or {}),
            "metadata": body.get("metadata") or {},
            "clusterSelector": dict(self.settings.kubernetes.ray_cluster_selector),
            "submissionMode": "HTTPMode",
        }
        if body.get("entrypoint_num_cpus") is not None:
            spec["entrypointNumCpus"] = body["entrypoint_num_cpus"]
        if body.get("entrypoint_num_gpus"):
            spec["entrypointNumGpus"] = body["entrypoint_num_gpus"]
        meta = body.get("metadata") or {}
        obj = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RayJob",
            "metadata": {
                "name": _name(sid),
                "labels": {"app.kubernetes.io/managed-by": "labops", "labops/owner": str(meta.get("owner", ""))},
            },
            "spec": spec,
        }
        self._call("creating the RayJob", self.api.create_namespaced_custom_object, obj)
        return sid

    def _details(self, obj: dict[str, Any]) -> dict[str, Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return {
            "type": "SUBMISSION",
            "submission_id": spec.get("jobId") or obj["metadata"]["name"],
            "status": status.get("jobStatus") or "PENDING",
            "message": status.get("message") or f"deployment {status.get('jobDeploymentStatus') or 'Initializing'}",
            "metadata": spec.get("metadata") or {},
            "entrypoint": spec.get("entrypoint"),
            "start_time": None,
            "end_time": None,
            "deployment_status": status.get("jobDeploymentStatus"),
            "rayjob": obj["metadata"]["name"],
        }

    def get(self, submission_id: str) -> dict[str, Any] | None:
        """The job as JobDetails-like fields, or None."""
        obj = self._call("reading the RayJob", self.api.get_namespaced_custom_object, _name(submission_id))
        return self._details(obj) if obj else None

    def logs(self, submission_id: str) -> str:
        """Logs from the cluster's dashboard."""
        return self.dashboard.logs(submission_id)

    def stop(self, submission_id: str) -> bool:
        """Suspend the RayJob (stops the job)."""
        obj = self._call(
            "suspending the RayJob",
            self.api.patch_namespaced_custom_object,
            _name(submission_id),
            {"spec": {"suspend": True}},
        )
        if obj is None:
            raise InvalidArguments(f"there is no RayJob for {submission_id!r}; list jobs with ray.list")
        return True

    def delete(self, submission_id: str) -> bool:
        """Delete the RayJob object."""
        return (
            self._call("deleting the RayJob", self.api.delete_namespaced_custom_object, _name(submission_id))
            is not None
        )

    def list(self) -> list[dict[str, Any]]:
        """Every RayJob in the namespace."""
        data = self._call("listing RayJobs", self.api.list_namespaced_custom_object) or {"items": []}
        return [self._details(o) for o in data.get("items", [])]
