"""``python -m simlab.server``: the PVE, PBS (and Kubernetes) API simulators in one process.

The TLS files are written before any port listens (``<lab_dir>/tls/ca.pem`` last), so a supervisor
can wait for the CA file and then connect with verification on.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from simlab import clock
from simlab.httpapi import HttpApp, serve
from simlab.pbs import PbsApp
from simlab.pve import PveApp
from simlab.secrets import ensure_secrets
from simlab.state import LabState
from simlab.tls import ensure_tls

__all__ = ["build_apps", "main"]

log = logging.getLogger("simlab")


def build_apps(lab_dir: Path, *, task_speed: float = 1.0, auth_delay: float = 3.0) -> dict[str, HttpApp]:
    """The simulators over one shared, persistent state (``pve``, ``pbs`` and, if available, ``kube``)."""
    secrets = ensure_secrets(lab_dir)
    state = LabState.open(lab_dir)
    apps: dict[str, HttpApp] = {
        "pve": PveApp(state, secrets, task_speed=task_speed, auth_delay=auth_delay),
        "pbs": PbsApp(state, secrets, auth_delay=auth_delay, task_speed=task_speed),
    }
    if importlib.util.find_spec("simlab.kube") is not None:
        from simlab.kube import KubeApp

        apps["kube"] = KubeApp(lab_dir=lab_dir, secrets=secrets)
    return apps


def main(argv: list[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m simlab.server", description=__doc__)
    parser.add_argument("--lab-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pve-port", type=int, required=True)
    parser.add_argument("--pbs-port", type=int, required=True)
    parser.add_argument("--kube-port", type=int, default=None)
    parser.add_argument("--task-speed", type=float, default=1.0, help="task durations are divided by this")
    parser.add_argument("--auth-delay", type=float, default=3.0, help="seconds before a 401 (PVE waits ~3 s)")
    parser.add_argument(
        "--now",
        default=os.environ.get("LABOPS_SIM_NOW") or None,
        help="start the simulator's clock at this ISO 8601 time (UTC) or epoch; default $LABOPS_SIM_NOW or real time",
    )
    opts = parser.parse_args(argv)
    if opts.now:
        try:
            clock.set_now(clock.parse_instant(opts.now))
        except ValueError as exc:
            parser.error(f"--now / LABOPS_SIM_NOW: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    lab_dir = opts.lab_dir.resolve()
    _ca, cert, key = ensure_tls(lab_dir)
    apps = build_apps(lab_dir, task_speed=opts.task_speed, auth_delay=opts.auth_delay)
    ports: dict[str, Any] = {"pve": opts.pve_port, "pbs": opts.pbs_port, "kube": opts.kube_port}
    servers = []
    for name, app in apps.items():
        if ports.get(name):
            server, _thread = serve(app, host=opts.host, port=int(ports[name]), cert_file=cert, key_file=key)
            servers.append(server)
            log.info("%s API on https://%s:%s", name, opts.host, ports[name])
    if opts.kube_port and "kube" not in apps:
        log.warning("simlab.kube is not installed: no Kubernetes API on port %s", opts.kube_port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    pve = apps["pve"]
    assert isinstance(pve, PveApp)
    with pve.state.lock:
        pve.state.save()
    log.info("simulator stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
