"""Where each backend is: the configured host, or the embedded lab's address.

The embedded lab (``labops lab up``) records its parts in ``<lab_dir>/lab.json`` and its generated
credentials in ``<lab_dir>/secrets.json``. This module only reads those files (it shares no code
with ``simlab``): a setting that names a real host always wins over the embedded lab.

``lab.json`` shape (written by ``simlab.supervisor``)::

    {"version": 1,
     "ca_file": "<abs path to tls/ca.pem>",
     "parts": {"pve": {"url": "https://127.0.0.1:P/api2/json", "host": "127.0.0.1", "port": P, "pid": N},
               "pbs": {"url": ..., "host": ..., "port": Q, "pid": N},
               "kube": {"url": "https://127.0.0.1:K", "host": ..., "port": K, "pid": N},
               "postgres": {"host": "127.0.0.1", "port": R, "dbname": "desi", "pid": N},
               "ray": {"url": "http://127.0.0.1:8265", "pid": N},
               "milvus": {"url": "http://127.0.0.1:M", "pid": N},
               "ollama": {"url": "http://127.0.0.1:O", "model": "qwen2.5-coder:1.5b", "pid": N}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config import Settings
from core.errors import ConfigError

__all__ = [
    "KubeEndpoint",
    "ProxmoxEndpoint",
    "kube_endpoint",
    "lab_secrets",
    "lab_state",
    "milvus_endpoint",
    "ollama_url",
    "pbs_endpoint",
    "postgres_dsn",
    "pve_endpoint",
    "ray_address",
]

PartName = Literal["pve", "pbs", "kube", "postgres", "ray", "milvus", "ollama"]


def lab_state(lab_dir: Path) -> dict[str, Any] | None:
    """The embedded lab's ``lab.json``, or None when it was never started."""
    path = lab_dir / "lab.json"
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); run `labops lab down` then `labops lab up`") from exc
    return data


def lab_secrets(lab_dir: Path) -> dict[str, Any]:
    """The embedded lab's generated credentials (``secrets.json``)."""
    path = lab_dir / "secrets.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no embedded lab in {lab_dir} (missing secrets.json): run `labops lab up`, "
            "or configure the real host in labops.toml"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable: {exc}") from exc
    return data


def _part(settings: Settings, name: PartName, setting: str) -> dict[str, Any]:
    state = lab_state(settings.lab_dir)
    part = (state or {}).get("parts", {}).get(name)
    if not part:
        raise ConfigError(
            f"{name} is not configured and the embedded lab in {settings.lab_dir} does not run it: "
            f"set {setting} (or LABOPS_{setting.upper().replace('.', '__')}) or run `labops lab up`",
            setting=setting,
        )
    return dict(part)


def _ca_file(settings: Settings) -> str:
    state = lab_state(settings.lab_dir) or {}
    ca = state.get("ca_file") or str(settings.lab_dir / "tls" / "ca.pem")
    return str(Path(ca).resolve())


@dataclass(kw_only=True, frozen=True)
class ProxmoxEndpoint:
    """Everything proxmoxer needs to reach a PVE or PBS API."""

    service: Literal["PVE", "PBS"]
    host: str
    port: int
    user: str
    password: str | None
    token_name: str | None
    token_value: str | None
    verify_ssl: bool | str
    timeout: float
    embedded: bool


def _proxmox(settings: Settings, service: Literal["PVE", "PBS"]) -> ProxmoxEndpoint:
    cfg = settings.pve if service == "PVE" else settings.pbs
    key: Literal["pve", "pbs"] = "pve" if service == "PVE" else "pbs"
    if cfg.host:
        if cfg.password is None and cfg.token_value is None:
            raise ConfigError(
                f"{key}.host is set but neither {key}.password nor {key}.token_name/{key}.token_value is",
                setting=f"{key}.password",
            )
        return ProxmoxEndpoint(
            service=service,
            host=cfg.host,
            port=cfg.port,
            user=cfg.user,
            password=cfg.password.get_secret_value() if cfg.password else None,
            token_name=cfg.token_name,
            token_value=cfg.token_value.get_secret_value() if cfg.token_value else None,
            verify_ssl=cfg.verify_ssl,
            timeout=cfg.timeout,
            embedded=False,
        )
    part = _part(settings, key, f"{key}.host")
    creds = lab_secrets(settings.lab_dir)[key]
    user, _, token_name = str(creds["token_id"]).partition("!")
    return ProxmoxEndpoint(
        service=service,
        host=part["host"],
        port=int(part["port"]),
        user=user,
        password=None,
        token_name=token_name,
        token_value=creds["token_secret"],
        verify_ssl=_ca_file(settings),
        timeout=cfg.timeout,
        embedded=True,
    )


def pve_endpoint(settings: Settings) -> ProxmoxEndpoint:
    """The PVE API to talk to (configured host, else the embedded simulator with its API token)."""
    return _proxmox(settings, "PVE")


def pbs_endpoint(settings: Settings) -> ProxmoxEndpoint:
    """The PBS API to talk to (configured host, else the embedded simulator with its API token)."""
    return _proxmox(settings, "PBS")


def postgres_dsn(settings: Settings, *, role: Literal["reader", "admin"] = "reader") -> str:
    """Libpq DSN of the DESI database; the agent always uses the SELECT-only ``reader`` role."""
    if settings.postgres.dsn is not None:
        if role == "admin":
            raise ConfigError("the admin role exists only in the embedded lab", setting="postgres.dsn")
        return settings.postgres.dsn.get_secret_value()
    part = _part(settings, "postgres", "postgres.dsn")
    creds = lab_secrets(settings.lab_dir)["postgres"]
    user = creds["reader_user"] if role == "reader" else creds["admin_user"]
    password = creds["reader_password"] if role == "reader" else creds["admin_password"]
    return (
        f"host={part['host']} port={part['port']} dbname={part.get('dbname', 'desi')} "
        f"user={user} password={password} connect_timeout={int(settings.postgres.connect_timeout)}"
    )


def ray_address(settings: Settings) -> str:
    """Ray dashboard (Jobs API) URL."""
    if settings.ray.address:
        return settings.ray.address.rstrip("/")
    return str(_part(settings, "ray", "ray.address")["url"]).rstrip("/")


def milvus_endpoint(settings: Settings) -> tuple[str, str | None]:
    """Milvus URI and token: configured, else the embedded server, else Milvus Lite in the lab dir."""
    if settings.milvus.uri:
        token = settings.milvus.token.get_secret_value() if settings.milvus.token else None
        return settings.milvus.uri, token
    state = lab_state(settings.lab_dir) or {}
    part = state.get("parts", {}).get("milvus")
    if part:
        return str(part["url"]), None
    # Milvus Lite wants a path ending in .db; `labops lab up` serves the same directory over gRPC.
    return str((settings.lab_dir / "milvus.db").resolve()), None


def ollama_url(settings: Settings) -> str:
    """The Ollama API (the lab's GPU node): ``llm.ollama_url``, else the embedded lab's server."""
    if settings.llm.ollama_url:
        return settings.llm.ollama_url.rstrip("/")
    return str(_part(settings, "ollama", "llm.ollama_url")["url"]).rstrip("/")


@dataclass(kw_only=True, frozen=True)
class KubeEndpoint:
    """How to reach the Kubernetes API: a kubeconfig, in-cluster, or the embedded stand-in."""

    kubeconfig: Path | None
    context: str | None
    in_cluster: bool
    host: str | None
    token: str | None
    ca_file: str | None
    namespace: str


def kube_endpoint(settings: Settings) -> KubeEndpoint:
    """The Kubernetes API for KubeRay RayJobs."""
    k = settings.kubernetes
    if k.kubeconfig or k.in_cluster:
        return KubeEndpoint(
            kubeconfig=k.kubeconfig,
            context=k.context,
            in_cluster=k.in_cluster,
            host=None,
            token=None,
            ca_file=None,
            namespace=k.namespace,
        )
    part = _part(settings, "kube", "kubernetes.kubeconfig")
    return KubeEndpoint(
        kubeconfig=None,
        context=None,
        in_cluster=False,
        host=str(part["url"]),
        token=lab_secrets(settings.lab_dir)["kube"]["token"],
        ca_file=_ca_file(settings),
        namespace=k.namespace,
    )
