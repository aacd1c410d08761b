"""The deployment files: Kubernetes manifests valid against the API schemas, and consistent with the code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.config import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "k8s"
# RKE2 releases in use around the lab's time, and the newest schema the validator knows.
VERSIONS = ["1.30.0", "1.33.0", kubernetes_validate.latest_version()]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _applied() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in _documents(K8S / name)]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    files = sorted(K8S.glob("*.yaml"))
    docs = [(f.name, d) for f in files if f.name != "kustomization.yaml" for d in _documents(f)]
    assert len(docs) >= 10
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']} is not valid for {version}: {exc.message}")


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    on_disk = {f.name for f in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk - {"secret.example.yaml"}
    # No password ships: the example secret's values are empty.
    secret = _documents(K8S / "secret.example.yaml")[0]
    assert secret["kind"] == "Secret" and all(v == "" for v in secret["stringData"].values())


def test_the_configmap_is_a_configuration_the_settings_accept(tmp_path: Path) -> None:
    config = next(d for d in _applied() if d["kind"] == "ConfigMap")
    path = tmp_path / "labops.toml"
    path.write_text(config["data"]["labops.toml"])
    settings = load_settings(path)
    assert isinstance(settings, Settings)
    assert settings.ray.backend == "kuberay" and settings.kubernetes.in_cluster
    assert settings.server.host == "0.0.0.0" and settings.audit.database_url is None, "the DSN comes from the secret"
    # Every secret the example names is a setting LabOps reads from the environment.
    secret = _documents(K8S / "secret.example.yaml")[0]
    for key in secret["stringData"]:
        section, field = key.removeprefix("LABOPS_").lower().split("__")
        assert field in type(getattr(settings, section)).model_fields, key


def test_the_deployment_runs_the_server_with_probes_and_shared_state() -> None:
    docs = _applied()
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["args"][0] == "serve" and deployment["spec"]["replicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] and spec["securityContext"]["runAsNonRoot"]
    assert container["envFrom"][0]["secretRef"]["name"] == "labops-secrets"
    port = container["ports"][0]["containerPort"]
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    config = tomllib.loads(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["labops.toml"])
    assert config["server"]["port"] == port
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == config["kubernetes"]["namespace"]
    assert any("rayjobs" in rule["resources"] for rule in role["rules"])


def test_the_image_and_the_front_ends_point_at_the_same_service() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["labops"]' in dockerfile and '"serve"' in dockerfile and "USER 10001" in dockerfile
    for package in ("agent", "channels", "core", "knowledge", "policies", "tools"):
        assert f"COPY {package} {package}" in dockerfile
    manifest = yaml.safe_load((DEPLOY / "slack" / "app-manifest.yaml").read_text())
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == load_settings(None).slack.command
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["request_url"] == command["url"]
    assert {"commands", "chat:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "openwebui" / "openwebui.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["OPENAI_API_BASE_URL"].endswith(":8000/v1") and env["ENABLE_FORWARD_USER_INFO_HEADERS"] == "true"


def test_the_alertmanager_receiver_points_at_the_webhook_with_credentials() -> None:
    from channels.server.alerts_http import router

    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    hook = config["receivers"][0]["webhook_configs"][0]
    assert hook["url"].endswith(next(r.path for r in router.routes if r.path.startswith("/alerts")))  # type: ignore[attr-defined]
    assert hook["send_resolved"] is True and hook["http_config"]["authorization"]["type"] == "Bearer"
    assert config["route"]["receiver"] == config["receivers"][0]["name"]
