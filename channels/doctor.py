"""``labops doctor``: is every configured backend reachable, which version, and what to fix.

Each probe asks its backend for its version with the same client and credentials the tools use, so a
green doctor means the tools can connect. A probe never raises: a failure becomes a row with the
setting to change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import psycopg

from core.config import Settings
from core.endpoints import (
    kube_endpoint,
    lab_state,
    milvus_endpoint,
    ollama_url,
    pbs_endpoint,
    postgres_dsn,
    pve_endpoint,
    ray_address,
)
from core.errors import ConfigError, LabOpsError
from tools.proxmox import call, pbs_client, pve_client

__all__ = ["BackendCheck", "audit_check", "run_checks"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True, frozen=True)
class BackendCheck:
    """One row of the doctor's table."""

    backend: str
    required: bool
    ok: bool
    address: str
    version: str
    detail: str
    fix: str


@dataclass(kw_only=True, frozen=True)
class _Probe:
    backend: str
    setting: str
    address: Callable[[Settings], str]
    version: Callable[[Settings], str]
    required: Callable[[Settings], bool]


def _pve_version(settings: Settings) -> str:
    info = call("PVE", lambda: pve_client(settings).version.get(), action="reading the version")
    return f"pve-manager {info.get('version', '?')}"


def _pbs_version(settings: Settings) -> str:
    info = call("PBS", lambda: pbs_client(settings).version.get(), action="reading the version")
    return f"proxmox-backup {info.get('version', '?')}"


def _pg_version(settings: Settings) -> str:
    with psycopg.connect(postgres_dsn(settings), connect_timeout=int(settings.postgres.connect_timeout)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def _pg_address(settings: Settings) -> str:
    if settings.postgres.dsn is not None:
        return "postgres.dsn"
    part = ((lab_state(settings.lab_dir) or {}).get("parts") or {}).get("postgres") or {}
    return f"{part.get('host', '?')}:{part.get('port', '?')}" if part else "embedded (not started)"


def _ray_version(settings: Settings) -> str:
    from tools.ray.jobs_api import JobsApi

    return f"Ray {JobsApi(settings).version()}"


def _kube_version(settings: Settings) -> str:
    # The same client constructor the KubeRay tools use (TLS verified against the cluster's CA).
    from kubernetes import client

    from tools.ray.kuberay import kube_api_client

    with kube_api_client(settings) as api_client:
        info = client.VersionApi(api_client).get_code(_request_timeout=5)
    return f"Kubernetes {info.git_version}"


def _kube_configured(settings: Settings) -> bool:
    k = settings.kubernetes
    return bool(k.kubeconfig or k.in_cluster or ((lab_state(settings.lab_dir) or {}).get("parts") or {}).get("kube"))


def _milvus_version(settings: Settings) -> str:
    uri, token = milvus_endpoint(settings)
    if not uri.startswith(("http://", "https://", "tcp://")):
        # Milvus Lite in a local directory: nothing to reach, the directory is opened on first use.
        return "Milvus Lite (local directory)"
    from pymilvus import MilvusClient

    from knowledge.reads import client_options

    client = MilvusClient(uri=uri, token=token or "", timeout=5, **client_options(uri))
    try:
        return f"Milvus {client.get_server_version()}"
    finally:
        client.close()


def _docs_version(settings: Settings) -> str:
    """How many chunks the documentation index holds; an empty index is a failure naming the fix."""
    from knowledge.service import DocsService

    docs = DocsService(settings)
    try:
        chunks = docs.chunks()
    finally:
        docs.close()
    if not chunks:
        raise ConfigError("the documentation index is empty: run `labops ingest knowledge/docs` (or `labops lab up`)")
    return f"{chunks} chunks"


def _llm_version(settings: Settings) -> str:
    """Reachable, which version, and whether the configured model is there."""
    model = settings.llm.model
    if settings.llm.provider == "openai":
        base = (settings.llm.openai_base_url or "").rstrip("/")
        key = settings.llm.openai_api_key.get_secret_value() if settings.llm.openai_api_key else ""
        resp = httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=5.0)
        resp.raise_for_status()
        names = [m.get("id") for m in resp.json().get("data", [])]
        if model not in names:
            raise ConfigError(f"the server has no model {model!r} (it has {', '.join(map(str, names))}): set llm.model")
        return f"OpenAI-compatible, model {model}"
    url = ollama_url(settings)
    version = httpx.get(f"{url}/api/version", timeout=5.0).raise_for_status().json().get("version", "?")
    tags = httpx.get(f"{url}/api/tags", timeout=5.0).raise_for_status().json().get("models", [])
    known = {m.get("name") for m in tags} | {m.get("model") for m in tags}
    if model not in known and f"{model}:latest" not in known:
        raise ConfigError(
            f"Ollama {version} has no model {model!r} (it has {', '.join(sorted(map(str, known)))}): "
            f"`ollama pull {model}` on the GPU node, or set llm.model"
        )
    return f"Ollama {version}, model {model}"


def _llm_address(settings: Settings) -> str:
    if settings.llm.provider == "openai":
        return settings.llm.openai_base_url or "llm.openai_base_url unset"
    return ollama_url(settings)


def _safe_address(fn: Callable[[Settings], str]) -> Callable[[Settings], str]:
    def wrapped(settings: Settings) -> str:
        try:
            return fn(settings)
        except LabOpsError:
            return "embedded (not started)"

    return wrapped


def _orphans(settings: Settings) -> str:
    from policies.reconcile import orphans

    found = orphans(settings)
    if found:
        names = ", ".join(f"{o['vmid']} {o['name']}" for o in found)
        raise ConfigError(f"{len(found)} VMs left behind by interrupted requests ({names}): see `labops vm reconcile`")
    return "no VM left behind"


_PROBES: tuple[_Probe, ...] = (
    _Probe(
        backend="pve",
        setting="pve.host",
        address=_safe_address(lambda s: f"{pve_endpoint(s).host}:{pve_endpoint(s).port}"),
        version=_pve_version,
        required=lambda s: True,
    ),
    _Probe(
        backend="pbs",
        setting="pbs.host",
        address=_safe_address(lambda s: f"{pbs_endpoint(s).host}:{pbs_endpoint(s).port}"),
        version=_pbs_version,
        required=lambda s: True,
    ),
    _Probe(
        backend="postgres",
        setting="postgres.dsn",
        address=_pg_address,
        version=_pg_version,
        required=lambda s: True,
    ),
    _Probe(
        backend="ray",
        setting="ray.address",
        address=_safe_address(ray_address),
        version=_ray_version,
        required=lambda s: s.ray.backend == "jobs",
    ),
    _Probe(
        backend="kubernetes",
        setting="kubernetes.kubeconfig",
        address=_safe_address(lambda s: str(kube_endpoint(s).host or kube_endpoint(s).kubeconfig or "in-cluster")),
        version=_kube_version,
        required=lambda s: s.ray.backend == "kuberay",
    ),
    _Probe(
        backend="milvus",
        setting="milvus.uri",
        address=lambda s: milvus_endpoint(s)[0],
        version=_milvus_version,
        required=lambda s: True,
    ),
    _Probe(
        backend="docs index",
        setting="labops ingest knowledge/docs",
        address=lambda s: milvus_endpoint(s)[0],
        version=_docs_version,
        required=lambda s: False,
    ),
    _Probe(
        backend="vms made",
        setting="labops vm reconcile",
        address=lambda s: "PVE VMs tagged labops",
        version=_orphans,
        required=lambda s: False,
    ),
    _Probe(
        backend="llm",
        setting="llm.ollama_url",
        address=_safe_address(_llm_address),
        version=_llm_version,
        required=lambda s: s.llm.provider != "scripted",
    ),
)


def audit_check(settings: Settings) -> BackendCheck:
    """The audit log: its chain and anchor verify, and whether the anchor sits where the database's users write.

    Nothing runs while the chain is broken, so this row is required. The default anchor (and its key) sit in
    the lab directory beside the SQLite store: whoever can rewrite the database can then remove the anchor
    too, which the row says.
    """
    from core.store import Database
    from policies.audit import AuditLog

    where = Database.from_settings(settings).where
    try:
        log = AuditLog.from_settings(settings)
        report = log.verify()
    except LabOpsError as exc:
        return BackendCheck(backend="audit log", required=True, ok=False, address=where, version="-",
                            detail=str(exc)[:300], fix="see `labops audit verify`")  # fmt: skip
    if not report.ok:
        return BackendCheck(backend="audit log", required=True, ok=False, address=where, version="-",
                            detail=report.message[:400],
                            fix="`labops audit verify`, then `labops audit acknowledge --reason ...`")  # fmt: skip
    version = f"{report.entries} entries, chain intact"
    anchor = log.anchor.path.resolve() if log.anchor is not None else None
    if anchor is not None and settings.audit.database_url is None and anchor.parent == settings.lab_dir.resolve():
        version += (
            f"; note: the anchor {anchor} sits beside the database, so whoever can rewrite the database can remove "
            "it too: set audit.anchor_file (and audit.anchor_key) to a place the database's users cannot write"
        )
    return BackendCheck(backend="audit log", required=True, ok=True, address=where, version=version,
                        detail="verified", fix="")  # fmt: skip


def run_checks(settings: Settings) -> list[BackendCheck]:
    """Probe every backend; never raises."""
    rows: list[BackendCheck] = [audit_check(settings)]
    for probe in _PROBES:
        if probe.backend == "kubernetes" and not probe.required(settings) and not _kube_configured(settings):
            continue  # only needed for ray.backend = "kuberay"
        if probe.backend == "llm" and settings.llm.provider == "scripted":
            continue  # a scripted model has no server to probe
        address = probe.address(settings)
        try:
            version = probe.version(settings)
        except LabOpsError as exc:
            rows.append(_failed(probe, settings, address, str(exc)))
        except Exception as exc:  # boundary: any client failure is a row in the table, not a crash
            log.debug("doctor probe %s failed", probe.backend, exc_info=True)
            rows.append(_failed(probe, settings, address, f"{type(exc).__name__}: {exc}"))
        else:
            rows.append(
                BackendCheck(
                    backend=probe.backend,
                    required=probe.required(settings),
                    ok=True,
                    address=address,
                    version=version,
                    detail="reachable",
                    fix="",
                )
            )
    return rows


def _failed(probe: _Probe, settings: Settings, address: str, detail: str) -> BackendCheck:
    first_line = detail.strip().splitlines()[0] if detail.strip() else "failed"
    return BackendCheck(
        backend=probe.backend,
        required=probe.required(settings),
        ok=False,
        address=address,
        version="-",
        detail=first_line[:200],
        fix=f"run `{probe.setting}`"
        if probe.setting.startswith("labops ")
        else f"check {probe.setting} (or run `labops lab up` for the embedded lab)",
    )
