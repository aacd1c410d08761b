"""A local Ray head (dashboard and Jobs API on 127.0.0.1) for the embedded lab.

``ray start --head --block`` runs as the leader of its own process group, so stopping the lab kills
exactly this head and its daemons (``ray stop`` would kill every Ray on the machine, including a
second lab's). Every port is chosen free so two labs (a demo and the tests) can run side by side.
Ray's temp dir must be short (unix socket paths are limited to ~107 bytes), so it lives in
``/tmp/ray-<hash of the lab dir>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from simlab.daemons import pid_alive, spawn_detached

__all__ = ["ray_head_status", "start_ray_head", "stop_ray_head"]

# Token auth turns itself on when RAY_AUTH_MODE is unset and ~/.ray/auth_token exists; the local head
# listens on 127.0.0.1 only, so it runs without auth and clients must say so too.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _info_file(lab_dir: Path) -> Path:
    return lab_dir / "ray" / "head.json"


def _temp_dir(lab_dir: Path) -> Path:
    return Path("/tmp") / f"ray-{hashlib.sha1(str(lab_dir.resolve()).encode()).hexdigest()[:10]}"


# Ray's components that each need a port of their own (the dashboard's is chosen by the caller).
_PORT_FLAGS = ("port", "ray-client-server-port", "node-manager-port", "object-manager-port",
               "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
               "metrics-export-port")  # fmt: skip


def _free_ports(count: int, *, taken: set[int]) -> list[int]:
    """``count`` distinct free ports, none in ``taken``.

    Two binds in a row may be handed the same port, and Ray refuses to start when two of its components
    share one (seen: metrics export and the agent's HTTP port).
    """
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        # A zombie (exited, not yet reaped) is not alive.
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _dashboard_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _head_env() -> dict[str, str]:
    # Job entrypoints say `python ...`: on this head that must be the interpreter Ray runs in (the
    # project's virtualenv), as on a real cluster image where `python` is the one with Ray installed.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **RAY_ENV, "PATH": path}


def ray_head_status(lab_dir: Path) -> dict[str, Any] | None:
    """``{"url", "pid", ...}`` when the head's process group leader is alive, else None."""
    try:
        info: dict[str, Any] = json.loads(_info_file(lab_dir).read_text())
    except (OSError, ValueError):
        return None
    return info if _alive(int(info["pid"])) else None


def start_ray_head(lab_dir: Path, *, dashboard_port: int, num_cpus: int = 2, timeout: float = 90.0) -> dict[str, Any]:
    """Start the head (or return the running one) and wait until its dashboard answers."""
    running = ray_head_status(lab_dir)
    if running is not None:
        return running
    temp = _temp_dir(lab_dir)
    shutil.rmtree(temp, ignore_errors=True)
    (lab_dir / "ray").mkdir(parents=True, exist_ok=True)
    ray = Path(sys.executable).with_name("ray")
    cmd = [
        str(ray),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        *(
            f"--{flag}={port}"
            for flag, port in zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS), taken={dashboard_port}), strict=True)
        ),
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--temp-dir={temp}",
    ]
    log = lab_dir / "ray" / "head.log"
    pid = spawn_detached(cmd, log, _head_env())
    url = f"http://127.0.0.1:{dashboard_port}"
    info = {"url": url, "pid": pid, "temp_dir": str(temp)}
    _info_file(lab_dir).write_text(json.dumps(info))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise RuntimeError(f"ray start exited during start-up; see {log}")
        if _dashboard_up(url):
            return info
        time.sleep(0.5)
    stop_ray_head(lab_dir)
    raise RuntimeError(f"the Ray dashboard did not answer on {url} within {timeout:.0f} s; see {log}")


def _stop_jobs(url: str, *, wait: float = 8.0) -> None:
    """Ask the Jobs API to stop every job that has not ended, and wait a little for them to go."""
    try:
        with urllib.request.urlopen(f"{url}/api/jobs/", timeout=5) as resp:
            jobs = json.loads(resp.read() or b"[]")
    except (OSError, ValueError):
        return
    live = [j["submission_id"] for j in jobs if j.get("status") in ("PENDING", "RUNNING") and j.get("submission_id")]
    for sid in live:
        request = urllib.request.Request(f"{url}/api/jobs/{urllib.parse.quote(sid, safe='')}/stop", method="POST")
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:
            continue
    deadline = time.monotonic() + wait
    while live and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            with urllib.request.urlopen(f"{url}/api/jobs/", timeout=5) as resp:
                jobs = json.loads(resp.read() or b"[]")
        except (OSError, ValueError):
            return
        live = [j for j in jobs if j.get("status") in ("PENDING", "RUNNING")]


def _strays(temp_dir: Path) -> list[int]:
    """Processes still running from the head's session directory (job drivers and workers in new sessions)."""
    marker = str(temp_dir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if cwd.startswith(marker) or marker in cmdline:
            found.append(int(entry.name))
    return found


def stop_ray_head(lab_dir: Path, *, grace: float = 5.0) -> None:
    """Stop the lab's jobs, then the head's process group (TERM, then KILL: gcs_server can ignore TERM for seconds).

    Ray starts job drivers in sessions of their own, so stopping the head's group alone leaves them running
    (re-parented to init): their jobs are stopped through the Jobs API first, and anything still running
    from the head's session directory afterwards is killed.
    """
    try:
        info = json.loads(_info_file(lab_dir).read_text())
    except (OSError, ValueError):
        return
    if info.get("url"):
        _stop_jobs(str(info["url"]))
    pgid = int(info["pid"])
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.2)
        if not _group_alive(pgid):
            break
    temp = Path(info.get("temp_dir") or _temp_dir(lab_dir))
    for pid in _strays(temp):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _info_file(lab_dir).unlink(missing_ok=True)
    shutil.rmtree(temp, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().split(")")[-1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False
