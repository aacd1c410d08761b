"""Shared fixtures: the real simulator process, started once per test session on free ports."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from knowledge.embeddings import OnnxEmbedder
from simlab.desi import load_desi
from simlab.postgres import start_postgres, stop_postgres
from simlab.secrets import ensure_secrets


def pytest_configure(config: pytest.Config) -> None:
    """A terminated run (a CI timeout, a developer's kill) tears its fixtures down like an interrupted one.

    The session fixtures start daemons (PostgreSQL, a Ray head, the simulators); on a plain SIGTERM pytest
    dies without finalizers and leaves them running.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


class _MachineClock:
    """A ``time`` module stand-in for gRPC's server thread: the machine's clock, wherever a test travels.

    ``time.monotonic`` is one of the clocks time-machine leaves alone; the offset to the wall clock is taken
    before any test travels.
    """

    def __init__(self) -> None:
        self._offset = time.time() - time.monotonic()

    def time(self) -> float:
        """Seconds since the epoch on the machine's clock."""
        return time.monotonic() + self._offset


@pytest.fixture(scope="session", autouse=True)
def grpc_server_on_the_machine_clock() -> Iterator[None]:
    """Keep Milvus Lite's in-process gRPC server thread off the time a test travels to.

    Milvus Lite serves a directory from a gRPC server thread in this process (the first store opened starts
    it, and it lives until the process ends). That thread waits for work with deadlines of ``time.time() + 1``.
    Under time-machine that clock is the test's: travelled into the past, every deadline has passed and the
    thread spins a core (measured: 2.5 s of CPU in 3 s); and its clock read racing the moment a travel began
    or ended raised in that thread, which failed a CI run (2026-12-07). The lab's clock is the tests' business,
    not the gRPC library's.
    """
    import grpc._server

    patch = pytest.MonkeyPatch()
    patch.setattr(grpc._server, "time", _MachineClock())
    try:
        yield
    finally:
        patch.undo()


@pytest.fixture
def well_known_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held by a test that starts the embedded lab through its supervisor, until the lab is down again.

    The supervisor takes each part's well-known port when it is free (8006, 8265, 19530, ...). Two such tests in
    parallel workers (``make test`` runs pytest-xdist) would both find a port free, and the later part would then
    fail to bind it: they take turns. The lock file sits in the directory the run's workers share.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with open(shared / "well-known-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SIMULATOR_START = "2026-06-01T14:00:00Z"


@dataclass
class Simulator:
    """A running ``python -m simlab.server`` and how to reach it."""

    lab_dir: Path
    pve_port: int
    pbs_port: int
    kube_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> str:
        return str(self.lab_dir / "tls" / "ca.pem")

    @property
    def secrets(self) -> dict[str, dict[str, str]]:
        data: dict[str, dict[str, str]] = json.loads((self.lab_dir / "secrets.json").read_text())
        return data

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "simlab.server",
            "--lab-dir",
            str(self.lab_dir),
            "--pve-port",
            str(self.pve_port),
            "--pbs-port",
            str(self.pbs_port),
            "--kube-port",
            str(self.kube_port),
            "--task-speed",
            "20",
            "--auth-delay",
            "0.05",
            # A fixed afternoon: the lab's 09:00 backup and 11:00 verify jobs change what "the newest snapshot"
            # shows, so a suite started between them would see other answers (tests/tools/test_backup_clock.py
            # covers every hour of the day on purpose).
            "--now",
            SIMULATOR_START,
        ]
        with open(self.lab_dir.parent / f"simlab-{self.pve_port}.log", "ab") as log:
            # The child keeps its own copy of the descriptor; ours can close now.
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"https://127.0.0.1:{self.pve_port}/api2/json/version", verify=self.ca, timeout=1)
                return
            except (requests.ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError("simulator did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
            self.proc = None

    def write_lab_json(self) -> None:
        """Record the simulator where ``core.endpoints`` looks for the embedded lab."""
        path = self.lab_dir / "lab.json"
        state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"version": 1, "parts": {}}
        state["ca_file"] = self.ca
        for part, port in (("pve", self.pve_port), ("pbs", self.pbs_port), ("kube", self.kube_port)):
            state["parts"][part] = {
                "url": f"https://127.0.0.1:{port}" + ("" if part == "kube" else "/api2/json"),
                "host": "127.0.0.1",
                "port": port,
                "pid": self.proc.pid if self.proc else None,
            }
        path.write_text(json.dumps(state))


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    sim = Simulator(
        lab_dir=tmp_path_factory.mktemp("lab"), pve_port=free_port(), pbs_port=free_port(), kube_port=free_port()
    )
    try:  # set-up inside: an interrupted start is stopped too
        sim.start()
        sim.write_lab_json()
        yield sim
    finally:
        sim.stop()


DESI_ROWS = 20_000


@dataclass
class Desi:
    lab_dir: Path
    admin_dsn: str
    reader_dsn: str
    counts: dict[str, int]
    rows: int


@pytest.fixture(scope="session")
def desi_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desi]:
    lab_dir = tmp_path_factory.mktemp("desi-lab")
    secrets = ensure_secrets(lab_dir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:  # set-up inside: an interrupted start is stopped too
        info = start_postgres(lab_dir, port=port, secrets=secrets)
        # Where core.endpoints finds the embedded database.
        (lab_dir / "lab.json").write_text(json.dumps({"version": 1, "parts": {"postgres": info}}))
        c = secrets["postgres"]
        base = f"host=127.0.0.1 port={info['port']} dbname={info['dbname']}"
        admin = f"{base} user={c['admin_user']} password={c['admin_password']}"
        reader = f"{base} user={c['reader_user']} password={c['reader_password']}"
        counts = load_desi(admin, rows=DESI_ROWS, seed=3)
        yield Desi(lab_dir=lab_dir, admin_dsn=admin, reader_dsn=reader, counts=counts, rows=DESI_ROWS)
    finally:
        stop_postgres(lab_dir)


@pytest.fixture(scope="session")
def ray_lab(desi_db: Desi) -> Iterator[Path]:
    """A local Ray head sharing the DESI test database's lab directory (jobs can query the tables)."""
    from simlab.ray_head import start_ray_head, stop_ray_head

    try:  # set-up inside: stop_ray_head also finds a head whose start was interrupted
        info = start_ray_head(desi_db.lab_dir, dashboard_port=free_port(), num_cpus=2)
        state = json.loads((desi_db.lab_dir / "lab.json").read_text())
        state["parts"]["ray"] = info
        (desi_db.lab_dir / "lab.json").write_text(json.dumps(state))
        yield desi_db.lab_dir
    finally:
        stop_ray_head(desi_db.lab_dir)


@dataclass
class InProcessLab:
    """The PVE and PBS simulators served from threads of the test process (so ``time-machine`` moves their clock)."""

    lab_dir: Path
    apps: dict[str, Any]
    servers: list[Any]

    def settings(self) -> Any:
        from core.config import load_settings

        return load_settings(None, lab_dir=self.lab_dir)

    def close(self) -> None:
        for server in self.servers:
            if server is not None:
                server.shutdown()
                server.server_close()

    def stop_part(self, name: str) -> None:
        """Take one API down (its port refuses connections), as when the server dies."""
        index = ("pve", "pbs").index(name)
        server = self.servers[index]
        server.stopping = True  # kept-alive connections are dropped too
        server.shutdown()
        server.server_close()
        self.servers[index] = None

    def start_part(self, name: str) -> None:
        """Bring a stopped API back on the same port, over the same state."""
        from simlab.httpapi import serve

        index = ("pve", "pbs").index(name)
        port = json.loads((self.lab_dir / "lab.json").read_text())["parts"][name]["port"]
        tls = self.lab_dir / "tls"
        server, _thread = serve(
            self.apps[name], host="127.0.0.1", port=port, cert_file=tls / "server.pem", key_file=tls / "server.key"
        )
        self.servers[index] = server


def start_inprocess_lab(lab_dir: Path, *, task_speed: float = 50.0) -> InProcessLab:
    """Serve PVE and PBS on free ports in this process and record them in ``lab.json``.

    The TLS files are made first, on the machine's clock: OpenSSL checks certificates against the real
    time, whatever time the test travels to.
    """
    from simlab.httpapi import serve
    from simlab.server import build_apps
    from simlab.tls import ensure_tls

    ca, cert, key = ensure_tls(lab_dir)
    apps = build_apps(lab_dir, task_speed=task_speed, auth_delay=0.01)
    servers, parts = [], {}
    for name in ("pve", "pbs"):
        port = free_port()
        server, _thread = serve(apps[name], host="127.0.0.1", port=port, cert_file=cert, key_file=key)
        servers.append(server)
        parts[name] = {"url": f"https://127.0.0.1:{port}/api2/json", "host": "127.0.0.1", "port": port, "pid": None}
    (lab_dir / "lab.json").write_text(json.dumps({"version": 1, "ca_file": str(ca), "parts": parts}))
    return InProcessLab(lab_dir=lab_dir, apps=apps, servers=servers)


@pytest.fixture
def inprocess_lab() -> Iterator[Any]:
    """A factory: ``inprocess_lab(lab_dir)`` starts an in-process PVE/PBS lab, closed after the test."""
    labs: list[InProcessLab] = []

    def start(lab_dir: Path, **kwargs: Any) -> InProcessLab:
        lab = start_inprocess_lab(lab_dir, **kwargs)
        labs.append(lab)
        return lab

    yield start
    for lab in labs:
        lab.close()


@pytest.fixture(scope="module")
def module_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessLab]:
    """One in-process PVE/PBS lab shared by a module's tests (for tests that start servers over it)."""
    lab = start_inprocess_lab(tmp_path_factory.mktemp("module-lab") / "lab")
    yield lab
    lab.close()


@dataclass
class OllamaProcess:
    url: str
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def ollama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OllamaProcess]:
    """The embedded GPU node (``python -m simlab.ollama``) with the real model, on a free port."""
    from simlab.ollama.assets import default_model, models_dir, ready

    if not ready(default_model(), models_dir()):
        pytest.fail("the model is not assembled: run `python -m simlab.ollama.assets` (make install does)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("ollama") / "ollama.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlab.ollama", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:  # the model loads for seconds: an interrupted start is stopped too
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/version", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
            if proc.poll() is not None:
                pytest.fail(f"the Ollama server exited: {log_path.read_text()[-2000:]}")
        else:
            pytest.fail("the Ollama server did not start within 120 s")
        yield OllamaProcess(url=url, proc=proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    """The offline embedder, loaded once for the whole run (knowledge and agent tests)."""
    return OnnxEmbedder()
