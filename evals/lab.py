"""The lab the eval cases run in: fresh for every case, without restarting the heavy parts.

The PVE and PBS simulators run inside the eval process over a state seeded once at the eval clock (by
default 12:00 UTC, after the day's backup and verify jobs) and restored from that snapshot before each
case. PostgreSQL (the DESI tables), the Ray head and the GPU node's Ollama are the running embedded
lab's (``labops lab up``), shared read-only or cleaned after each case (the case's Ray jobs are stopped).
Each case gets its own directory for LabOps' state (approvals, audit log, checkpoints), so nothing a
case did is visible to the next. The documentation index is the lab's docs plus ``evals/corpus`` (which
holds the poisoned pages of the prompt-injection cases), in a Milvus Lite file of the eval's own.
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.errors import ConfigError
from simlab import clock
from simlab.httpapi import serve
from simlab.secrets import ensure_secrets
from simlab.server import build_apps
from simlab.tls import ensure_tls

__all__ = ["EVAL_CLOCK", "EvalLab"]

EVAL_CLOCK = "2026-11-25T12:00:00Z"
CORPUS = Path(__file__).parent / "corpus"
DOCS = Path(__file__).resolve().parents[1] / "knowledge" / "docs"
SHARED_PARTS = ("postgres", "ray", "ollama", "kube")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EvalLab:
    """In-process PVE/PBS over a restorable state, plus the running lab's shared parts."""

    def __init__(self, base: Settings, work: Path, *, at: str = EVAL_CLOCK, need_shared: bool = True) -> None:
        self.base, self.work = base, work
        self.sim_dir = work / "sim"
        self.at = clock.parse_instant(at)
        base_state = base.lab_dir / "lab.json"
        parts: dict[str, Any] = {}
        if base_state.is_file():
            parts = json.loads(base_state.read_text()).get("parts", {})
        missing = [p for p in ("postgres", "ray") if p not in parts]
        if need_shared and missing:
            raise ConfigError(f"the eval needs the embedded lab's {', '.join(missing)}: run `labops lab up` "
                              f"(lab dir {base.lab_dir})")  # fmt: skip
        self.shared = {k: v for k, v in parts.items() if k in SHARED_PARTS}
        base_secrets = base.lab_dir / "secrets.json"
        self.shared_secrets = (
            {k: v for k, v in json.loads(base_secrets.read_text()).items() if k in ("postgres", "kube")}
            if base_secrets.is_file()
            else {}
        )
        if self.sim_dir.exists():
            shutil.rmtree(self.sim_dir)
        self.sim_dir.mkdir(parents=True)
        clock.set_now(self.at)
        self.ca, cert, key = ensure_tls(self.sim_dir)
        self.apps = build_apps(self.sim_dir, task_speed=50.0, auth_delay=0.01)
        self.state = self.apps["pve"].state  # type: ignore[attr-defined]
        self.snapshot = copy.deepcopy(self.state.data)
        self.servers = []
        self.parts: dict[str, Any] = {}
        for name in ("pve", "pbs"):
            port = _free_port()
            server, _thread = serve(self.apps[name], host="127.0.0.1", port=port, cert_file=cert, key_file=key)
            self.servers.append(server)
            self.parts[name] = {"url": f"https://127.0.0.1:{port}/api2/json", "host": "127.0.0.1", "port": port,
                                "pid": None}  # fmt: skip
        self.sim_secrets = ensure_secrets(self.sim_dir)

    def reset(self, *, at: str | None = None) -> None:
        """Back to the seeded state, at the eval clock (or ``at``)."""
        clock.set_now(clock.parse_instant(at) if at else self.at)
        with self.state.lock:
            self.state.data.clear()
            self.state.data.update(copy.deepcopy(self.snapshot))
            self.state.save()

    def case_dir(self, name: str) -> Path:
        """A fresh directory for one case's LabOps state, wired to this lab."""
        path = self.work / "cases" / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        (path / "lab.json").write_text(json.dumps({"version": 1, "ca_file": str(self.ca),
                                                   "parts": {**self.shared, **self.parts}}))  # fmt: skip
        secrets = {**self.sim_secrets, **self.shared_secrets}
        (path / "secrets.json").write_text(json.dumps(secrets))
        (path / "secrets.json").chmod(0o600)
        return path

    def settings_for(
        self, case_dir: Path, *, llm: dict[str, Any], docs_uri: str, overrides: dict[str, Any]
    ) -> Settings:
        """Settings of one case: its own state directory, the eval index, the model under test."""
        base = self.base.model_dump(exclude={"lab_dir", "llm", "milvus", "audit"}, by_alias=True)
        merged: dict[str, Any] = {
            **base,
            "llm": llm,
            "milvus": {**self.base.milvus.model_dump(by_alias=True), "uri": docs_uri},
        }
        for section, values in overrides.items():
            merged[section] = {**merged.get(section, {}), **values}
        return load_settings(None, lab_dir=case_dir, **merged)

    def close(self) -> None:
        """Stop the simulators and give the clock back."""
        for server in self.servers:
            server.shutdown()
            server.server_close()
        clock.set_now(None)


def index_settings(work: Path, base: Settings) -> Settings:
    """Where the eval's documentation index lives (built by :func:`build_index`)."""
    return load_settings(None, lab_dir=work / "index", milvus={**base.milvus.model_dump(by_alias=True),
                                                               "uri": str(work / "index" / "milvus.db")})  # fmt: skip


def build_index(work: Path, base: Settings, *, embedder: Any, corpus: list[Path] | None = None) -> Settings:
    """Ingest the lab's docs and the eval corpus (incremental: unchanged files are skipped)."""
    from knowledge.ingest import ingest_paths

    settings = index_settings(work, base)
    ingest_paths(settings, corpus if corpus is not None else [DOCS, CORPUS], embedder=embedder)
    return settings
