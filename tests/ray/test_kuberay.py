"""The KubeRay path: RayJobs through the official kubernetes client against the lab's Kubernetes API stand-in."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from core.config import load_settings
from policies.guard import Caller, Guard
from tools.ray.kuberay import kube_api_client

CALLER = Caller(user="researcher2", channel="cli")


@pytest.fixture(scope="module")
def kube_lab(simulator: Any, ray_lab: Path) -> Path:
    # The simulator's Kubernetes API runs jobs on the lab's Ray head: share the test head with it.
    state = json.loads((simulator.lab_dir / "lab.json").read_text())
    state["parts"]["ray"] = json.loads((ray_lab / "lab.json").read_text())["parts"]["ray"]
    (simulator.lab_dir / "lab.json").write_text(json.dumps(state))
    return Path(simulator.lab_dir)


def _guard(lab_dir: Path) -> Guard:
    settings = load_settings(None, lab_dir=lab_dir)
    return Guard.from_settings(
        settings.model_copy(update={"ray": settings.ray.model_copy(update={"backend": "kuberay"})})
    )


def test_a_rayjob_runs_through_the_kubernetes_client(kube_lab: Path) -> None:
    guard = _guard(kube_lab)
    submitted = guard.call(
        "ray.submit", {"template": "parallel-sum", "args": ["--n", "5000"]}, caller=CALLER, call_id="kube-1"
    )
    assert submitted.status == "ok", submitted.message
    job_id = submitted.data["job_id"]
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = guard.call("ray.status", {"job_id": job_id}, caller=CALLER).data
        if status["status"] in {"SUCCEEDED", "FAILED", "STOPPED"}:
            break
        time.sleep(1)
    assert status["status"] == "SUCCEEDED", status
    assert "RESULT OK" in guard.call("ray.logs", {"job_id": job_id, "tail": 3}, caller=CALLER).message
    assert job_id in [j["job_id"] for j in guard.call("ray.list", {"owner": "researcher2"}, caller=CALLER).data]

    # The same object as the official client sees it.
    api = client.CustomObjectsApi(kube_api_client(load_settings(None, lab_dir=kube_lab)))
    name = job_id.replace("_", "-")
    obj = cast(dict[str, Any], api.get_namespaced_custom_object_status("ray.io", "v1", "ray", "rayjobs", name))
    assert obj["status"]["jobStatus"] == "SUCCEEDED" and obj["status"]["jobDeploymentStatus"] == "Complete"
    with pytest.raises(ApiException) as dup:
        api.create_namespaced_custom_object(
            "ray.io",
            "v1",
            "ray",
            "rayjobs",
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayJob",
                "metadata": {"name": name},
                "spec": {"entrypoint": "python -V"},
            },
        )
    assert dup.value.status == 409
    with pytest.raises(ApiException) as invalid:
        api.create_namespaced_custom_object(
            "ray.io",
            "v1",
            "ray",
            "rayjobs",
            {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "Bad_Name"}, "spec": {}},
        )
    assert invalid.value.status == 422
    api.delete_namespaced_custom_object("ray.io", "v1", "ray", "rayjobs", name)
    with pytest.raises(ApiException) as gone:
        api.get_namespaced_custom_object("ray.io", "v1", "ray", "rayjobs", name)
    assert gone.value.status == 404


def test_suspend_stops_a_rayjob(kube_lab: Path) -> None:
    guard = _guard(kube_lab)
    job_id = guard.call("ray.submit", {"template": "heartbeat", "args": ["--seconds", "300"]}, caller=CALLER).data[
        "job_id"
    ]
    deadline = time.monotonic() + 60
    while guard.call("ray.status", {"job_id": job_id}, caller=CALLER).data["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert guard.call("ray.stop", {"job_id": job_id}, caller=CALLER).status == "ok"
    final = guard.call("ray.status", {"job_id": job_id}, caller=CALLER).data
    assert final["status"] == "STOPPED"


def test_a_wrong_token_is_reported(kube_lab: Path, tmp_path: Path) -> None:
    secrets = json.loads((kube_lab / "secrets.json").read_text())
    secrets["kube"]["token"] = "wrong"
    other = tmp_path / "lab"
    other.mkdir()
    (other / "secrets.json").write_text(json.dumps(secrets))
    (other / "lab.json").write_text((kube_lab / "lab.json").read_text())
    result = _guard(other).call("ray.list", {}, caller=CALLER)
    assert result.status == "error" and "kubernetes.kubeconfig" in result.message
