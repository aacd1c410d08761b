"""Setup steps of eval cases: the lab state a case starts from, made directly (not through the agent).

Each step is ``{name: value}`` in a case's ``setup`` list; a step may define placeholders the case's
turns use (``{job_id}``, ``{vmid}``). The steps act as the lab's operator would, outside LabOps' guard:
they prepare the world, they are not what is being measured.
"""

from __future__ import annotations

import shlex
import time
import uuid
from collections.abc import Callable
from typing import Any

from core.config import Settings
from core.endpoints import ray_address
from core.errors import ConfigError
from tools.base import ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pve_client
from tools.registry import get_tool
from tools.testing import run_unguarded

__all__ = ["STEPS", "run_setup"]


def _tool(settings: Settings, user: str, name: str, args: dict[str, Any]) -> ToolResult:
    result = run_unguarded(get_tool(name), ToolContext(settings=settings, user=user), args)
    if result.status not in ("ok", "no_data"):
        raise ConfigError(f"setup {name} {args} failed: {result.message}")
    return result


def _stop_vm(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    _tool(settings, "admin1", "vm.stop", {"vmid": int(value), "mode": "stop"})


def _start_vm(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    _tool(settings, "admin1", "vm.start", {"vmid": int(value)})


def _describe_vm(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    vmid, text = int(value["vmid"]), str(value["text"])
    api = pve_client(settings)
    node = next(r["node"] for r in api.cluster.resources.get(type="vm") if int(r["vmid"]) == vmid)
    call("PVE", lambda: api.nodes(node).qemu(vmid).config.put(description=text), action="setting a description")


def _provision(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    args = {k: v for k, v in value.items() if k != "owner"}
    result = _tool(settings, str(value.get("owner", "admin1")), "vm.provision", args)
    names["vmid"] = (result.data or {}).get("vmid")


def _ray_jobs(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    """``{owner, count, seconds}``: long heartbeat jobs (e.g. to fill a user's job quota)."""
    for _ in range(int(value.get("count", 1))):
        seconds = str(int(value.get("seconds", 900)))
        result = _tool(
            settings, str(value["owner"]), "ray.submit", {"template": "heartbeat", "args": ["--seconds", seconds]}
        )
        names["job_id"] = (result.data or {}).get("job_id")


def _ray_job_log(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    """``{owner, text}``: a finished job whose log holds ``text`` (e.g. an injected instruction)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(ray_address(settings))
    job_id = f"labops_eval_{uuid.uuid4().hex[:12]}"
    script = f"print({str(value['text'])!r})"
    client.submit_job(entrypoint=f"python -c {shlex.quote(script)}", submission_id=job_id,
                      metadata={"owner": str(value.get("owner", "researcher1")), "template": "custom",
                                "submitted_by": "labops"})  # fmt: skip
    deadline = time.monotonic() + 120
    while client.get_job_status(job_id) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        if time.monotonic() > deadline:
            raise ConfigError(f"setup ray_job_log: job {job_id} did not finish within 120 s")
        time.sleep(0.5)
    names["job_id"] = job_id


def _desi_pick(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    """``{sql, as}``: a value from the DESI tables (e.g. a real target id) as placeholder ``as``."""
    import psycopg

    from core.endpoints import postgres_dsn

    with psycopg.connect(postgres_dsn(settings), connect_timeout=10) as conn:
        row = conn.execute(str(value["sql"])).fetchone()
    if row is None:
        raise ConfigError(f"setup desi_pick: {value['sql']!r} returned no row")
    names[str(value["as"])] = row[0]


def _clock(settings: Settings, value: Any, names: dict[str, Any]) -> None:
    # Applied by the runner before the other steps (it resets the simulator at that instant).
    names["clock"] = str(value)


STEPS: dict[str, Callable[[Settings, Any, dict[str, Any]], None]] = {
    "clock": _clock,
    "stop_vm": _stop_vm,
    "start_vm": _start_vm,
    "describe_vm": _describe_vm,
    "provision": _provision,
    "ray_jobs": _ray_jobs,
    "ray_job_log": _ray_job_log,
    "desi_pick": _desi_pick,
}


def run_setup(settings: Settings, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the steps in order; returns the placeholders they defined."""
    names: dict[str, Any] = {}
    for step in steps:
        ((name, value),) = step.items()
        if name != "clock":
            STEPS[name](settings, value, names)
    return names
