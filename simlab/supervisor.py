"""The embedded lab's supervisor: start, inspect and stop its parts in the background.

Parts and what runs them:

=========  ==========================================================  ==================
part       process                                                     address
=========  ==========================================================  ==================
pve        ``python -m simlab.server`` (PVE, PBS and Kubernetes APIs)  https://127.0.0.1
pbs        (same process as pve)                                       https://127.0.0.1
kube       (same process as pve: the RayJob API stand-in)              https://127.0.0.1
postgres   PostgreSQL 16 from the ``pgserver`` wheel                   127.0.0.1 (TCP)
ray        ``ray start --head`` (dashboard + Jobs API)                 http://127.0.0.1
milvus     ``milvus-lite server`` over the lab's Milvus directory      http://127.0.0.1
ollama     ``python -m simlab.ollama`` (the GPU node's Ollama API)     http://127.0.0.1
=========  ==========================================================  ==================

Everything lives in one lab directory; ``lab.json`` records each started part (address, pid) so
that ``down`` stops exactly what ``up`` started, from any later process. The file is rewritten
after every part starts, so a failure half-way still leaves a record of what to stop.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from simlab import postgres as pg
from simlab import ray_head
from simlab.daemons import (
    LabStartError,
    http_ok,
    kill_group,
    pick_port,
    pid_alive,
    port_open,
    spawn_detached,
    wait_until,
)
from simlab.desi import desi_row_count, load_desi
from simlab.secrets import ensure_secrets

__all__ = ["PARTS", "LabStartError", "Part", "lab_down", "lab_reset", "lab_status", "lab_up"]

log = logging.getLogger(__name__)

Part = Literal["pve", "pbs", "kube", "postgres", "ray", "milvus", "ollama"]
# The Kubernetes API stand-in (for KubeRay RayJobs) is part of the lab once ``simlab.kube`` exists.
_HAS_KUBE = importlib.util.find_spec("simlab.kube") is not None
PARTS: tuple[Part, ...] = ("pve", "pbs", *(("kube",) if _HAS_KUBE else ()), "postgres", "ray", "milvus", "ollama")

# Well-known ports are used when free so a person can remember them; otherwise any free port.
_PREFERRED_PORTS: dict[str, int] = {
    "pve": 8006,
    "pbs": 8007,
    "kube": 6443,
    "postgres": 54320,
    "ray": 8265,
    "milvus": 19530,
    "ollama": 11434,
}

Progress = Callable[[str], None]
Wait = Callable[[], None]  # returns once a spawned part answers; raises LabStartError if it does not


def _noop(_: str) -> None:
    return None


def _state_path(lab_dir: Path) -> Path:
    return lab_dir / "lab.json"


def _read_state(lab_dir: Path) -> dict[str, Any]:
    path = _state_path(lab_dir)
    if not path.is_file():
        return {"version": 1, "parts": {}}
    data: dict[str, Any] = json.loads(path.read_text())
    data.setdefault("parts", {})
    return data


def _write_state(lab_dir: Path, state: dict[str, Any]) -> None:
    tmp = _state_path(lab_dir).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, _state_path(lab_dir))


def _claim_port(part: str, taken: set[int]) -> int:
    """A port for ``part`` (its well-known one when free), added to ``taken``."""
    port = pick_port(_PREFERRED_PORTS[part], taken)
    taken.add(port)
    return port


def _start_simlab(lab_dir: Path, state: dict[str, Any], taken: set[int], task_speed: float) -> Wait:
    sim_parts = [p for p in ("pve", "pbs", "kube") if p in PARTS]
    ports = {p: _claim_port(p, taken) for p in sim_parts}
    log_file = lab_dir / "logs" / "simlab.log"
    cmd = [
        sys.executable,
        "-m",
        "simlab.server",
        "--lab-dir",
        str(lab_dir),
        "--pve-port",
        str(ports["pve"]),
        "--pbs-port",
        str(ports["pbs"]),
        *(["--kube-port", str(ports["kube"])] if "kube" in ports else []),
        "--task-speed",
        str(task_speed),
    ]
    pid = spawn_detached(cmd, log_file)
    ca_file = lab_dir / "tls" / "ca.pem"
    state["ca_file"] = str(ca_file.resolve())
    urls = {
        "pve": f"https://127.0.0.1:{ports['pve']}/api2/json",
        "pbs": f"https://127.0.0.1:{ports['pbs']}/api2/json",
        **({"kube": f"https://127.0.0.1:{ports['kube']}"} if "kube" in ports else {}),
    }
    for part in sim_parts:
        state["parts"][part] = {"url": urls[part], "host": "127.0.0.1", "port": ports[part], "pid": pid}
    _write_state(lab_dir, state)
    return functools.partial(
        wait_until,
        lambda: ca_file.is_file() and all(http_ok(f"{u}/version", ca_file) for u in urls.values()),
        what="the PVE/PBS/Kubernetes simulator",
        log_file=log_file,
        pid=pid,
    )


def _start_postgres(lab_dir: Path, state: dict[str, Any], taken: set[int], secrets: dict[str, Any]) -> None:
    port = _claim_port("postgres", taken)
    state["parts"]["postgres"] = pg.start_postgres(lab_dir, port=port, secrets=secrets)
    _write_state(lab_dir, state)


def _ensure_desi(lab_dir: Path, state: dict[str, Any], secrets: dict[str, Any], rows: int, progress: Progress) -> None:
    """Load the synthetic DESI tables unless they already hold ``rows`` objects."""
    info = state["parts"]["postgres"]
    creds = secrets["postgres"]
    admin_dsn = (
        f"host={info['host']} port={info['port']} dbname={info['dbname']} "
        f"user={creds['admin_user']} password={creds['admin_password']}"
    )
    if desi_row_count(admin_dsn) != rows:
        progress(f"loading {rows:,} synthetic DESI DR1 objects into PostgreSQL")
        load_desi(admin_dsn, rows=rows)
    info["desi_rows"] = rows
    _write_state(lab_dir, state)


def _start_ray(lab_dir: Path, state: dict[str, Any], taken: set[int], num_cpus: int) -> None:
    port = _claim_port("ray", taken)
    info = ray_head.start_ray_head(lab_dir, dashboard_port=port, num_cpus=num_cpus)
    state["parts"]["ray"] = info
    _write_state(lab_dir, state)


def _start_milvus(lab_dir: Path, state: dict[str, Any], taken: set[int]) -> Wait:
    port = _claim_port("milvus", taken)
    log_file = lab_dir / "logs" / "milvus.log"
    exe = Path(sys.executable).with_name("milvus-lite")
    cmd = [str(exe), "server", "--data-dir", str((lab_dir / "milvus.db").resolve()), "--host", "127.0.0.1"]
    pid = spawn_detached([*cmd, "--port", str(port)], log_file)
    state["parts"]["milvus"] = {"url": f"http://127.0.0.1:{port}", "host": "127.0.0.1", "port": port, "pid": pid}
    _write_state(lab_dir, state)
    ready = functools.partial(port_open, "127.0.0.1", port)
    return functools.partial(wait_until, ready, what="milvus-lite server", log_file=log_file, pid=pid)


def _start_ollama(lab_dir: Path, state: dict[str, Any], taken: set[int]) -> Wait:
    from simlab.ollama.assets import default_model, models_dir, ready

    asset = default_model()
    if not ready(asset, models_dir()):
        raise LabStartError(
            f"the GPU node's model is not assembled in {models_dir()}: run `python -m simlab.ollama.assets` "
            "(make install does), or point llm.ollama_url at a real Ollama"
        )
    port = _claim_port("ollama", taken)
    log_file = lab_dir / "logs" / "ollama.log"
    pid = spawn_detached([sys.executable, "-m", "simlab.ollama", "--host", "127.0.0.1", "--port", str(port)], log_file)
    url = f"http://127.0.0.1:{port}"
    state["parts"]["ollama"] = {"url": url, "host": "127.0.0.1", "port": port, "pid": pid, "model": asset.name}
    _write_state(lab_dir, state)
    ready = functools.partial(http_ok, f"{url}/api/version")
    return functools.partial(wait_until, ready, what="the Ollama server", log_file=log_file, pid=pid)


def _part_up(lab_dir: Path, part: str, info: dict[str, Any] | None) -> bool:
    if not info:
        return False
    if part == "postgres":
        return pg.postgres_status(lab_dir) is not None and port_open(info["host"], int(info["port"]))
    if part == "ray":
        return ray_head.ray_head_status(lab_dir) is not None and http_ok(f"{info['url']}/api/version")
    return pid_alive(info.get("pid")) and port_open(info.get("host", "127.0.0.1"), int(info["port"]))


def lab_up(
    lab_dir: Path,
    *,
    parts: tuple[Part, ...] = PARTS,
    rows: int = 200_000,
    ray_cpus: int = 2,
    task_speed: float = 1.0,
    progress: Progress = _noop,
) -> dict[str, Any]:
    """Start every requested part that is not already running; returns :func:`lab_status`.

    Raises:
        LabStartError: a part did not come up (what did start stays recorded for ``lab_down``).
    """
    lab_dir.mkdir(parents=True, exist_ok=True)
    secrets = ensure_secrets(lab_dir)
    state = _read_state(lab_dir)
    taken = {int(p["port"]) for p in state["parts"].values() if "port" in p}

    # The daemons that need nothing else are spawned first and come up while PostgreSQL loads its tables
    # and the Ray head starts; each is waited for at the end (a fresh lab: 38 s -> 29 s on two cores).
    waits: list[Wait] = []
    sim_parts = {"pve", "pbs", "kube"} & set(parts) & set(PARTS)
    if sim_parts and not all(_part_up(lab_dir, p, state["parts"].get(p)) for p in sim_parts):
        old = state["parts"].get("pve", {}).get("pid")
        if old and pid_alive(old):
            kill_group(old)
        progress("starting the PVE/PBS/Kubernetes simulator")
        waits.append(_start_simlab(lab_dir, state, taken, task_speed))
    if "milvus" in parts and not _part_up(lab_dir, "milvus", state["parts"].get("milvus")):
        progress("starting the Milvus Lite server")
        waits.append(_start_milvus(lab_dir, state, taken))
    if "ollama" in parts and not _part_up(lab_dir, "ollama", state["parts"].get("ollama")):
        progress("starting the GPU node's Ollama server (loading the model)")
        waits.append(_start_ollama(lab_dir, state, taken))
    if "postgres" in parts:
        if not _part_up(lab_dir, "postgres", state["parts"].get("postgres")):
            progress("starting PostgreSQL")
            _start_postgres(lab_dir, state, taken, secrets)
        _ensure_desi(lab_dir, state, secrets, rows, progress)
    if "ray" in parts and not _part_up(lab_dir, "ray", state["parts"].get("ray")):
        progress("starting the Ray head")
        _start_ray(lab_dir, state, taken, ray_cpus)
    for wait in waits:
        wait()
    return lab_status(lab_dir)


def lab_status(lab_dir: Path) -> dict[str, Any]:
    """Each part as ``{"status": "up"|"down", "address": ..., "pid": ...}`` (``kube`` too)."""
    state = _read_state(lab_dir)
    result: dict[str, Any] = {}
    for part in PARTS:
        info = state["parts"].get(part)
        address = None
        if info:
            address = info.get("url") or f"{info.get('host')}:{info.get('port')}"
        result[part] = {
            "status": "up" if _part_up(lab_dir, part, info) else "down",
            "address": address,
            "pid": info.get("pid") if info else None,
        }
    return result


def _best_effort(what: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # boundary: one part failing to stop must not leave the others running
        log.warning("stopping %s failed", what, exc_info=True)


def lab_down(lab_dir: Path, *, progress: Progress = _noop) -> list[str]:
    """Stop every part ``lab_up`` started (by pid / process group); returns the parts stopped.

    Best effort per part: a part that fails to stop is logged and the others are still stopped.
    """
    state = _read_state(lab_dir)
    stopped: list[str] = []
    parts = state["parts"]
    stops: list[tuple[str, Callable[[], None]]] = []
    if "ray" in parts or ray_head.ray_head_status(lab_dir) is not None:
        stops.append(("the Ray head", functools.partial(ray_head.stop_ray_head, lab_dir)))
        stopped.append("ray")
    # Also when lab.json lost track of it (a start that failed half-way).
    if "postgres" in parts or pg.postgres_status(lab_dir) is not None:
        stops.append(("PostgreSQL", functools.partial(pg.stop_postgres, lab_dir)))
        stopped.append("postgres")
    seen: set[int] = set()
    for part in ("ollama", "milvus", "pve", "pbs", "kube"):
        pid = parts.get(part, {}).get("pid")
        if pid and pid not in seen:
            stops.append((f"{part} (pid {pid})", functools.partial(kill_group, int(pid))))
            seen.add(int(pid))
        if part in parts:
            stopped.append(part)
    # Side by side: each stop mostly waits for its processes to exit (Ray's GCS ignores TERM for ~5 s, each
    # server takes ~2 s), and none needs another one gone first. 12 s -> ~6 s on two cores.
    with ThreadPoolExecutor(max_workers=max(len(stops), 1), thread_name_prefix="lab-down") as pool:
        for what, stop in stops:
            progress(f"stopping {what}")
            pool.submit(_best_effort, what, stop)
    state["parts"] = {}
    if lab_dir.is_dir():
        _write_state(lab_dir, state)
    return stopped


def lab_reset(lab_dir: Path, *, progress: Progress = _noop) -> None:
    """Stop everything and delete the lab directory (all simulated state, data and secrets)."""
    if lab_dir.exists():
        lab_down(lab_dir, progress=progress)
        shutil.rmtree(lab_dir)
