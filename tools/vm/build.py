"""The steps of ``vm.provision``, as a small saga: allocate an id, clone, configure, start.

Each step is written to the request key's journal before it runs. The clone carries the owner and the
request key in its description, so a half-made VM is always attributable (``vm_usage`` counts it, ``labops
vm reconcile`` lists it). A step that fails cleans up what was made; a call cut off half-way (the API
died, the process was killed) keeps its journal, and the retry with the same key resumes: it waits for
the pending task, finishes configuring and starting the VM the first attempt made, or cleans up and
starts over when PVE removed it.

Concurrent provisions may be handed the same ``/cluster/nextid``; a clash ("already exists") is retried
with a new id, as PVE clients do.
"""

from __future__ import annotations

import random
import time
from typing import Any

from core.errors import BackendUnavailable, InvalidArguments, ProxmoxError
from tools.base import ToolResult
from tools.context import ToolContext
from tools.proxmox import TaskResult, call, proxmox_errors, pve_client, wait_task
from tools.vm.inventory import _resources

__all__ = ["create", "find_by_key", "resume"]

_ID_ATTEMPTS = 8


def _config(api: Any, node: str, vmid: int) -> dict[str, Any]:
    config: dict[str, Any] = call("PVE", lambda: api.nodes(node).qemu(vmid).config.get(), action="reading a VM config")
    return config


def find_by_key(ctx: ToolContext, key: str, hint: int | None = None) -> dict[str, Any] | None:
    """The VM whose description carries request key ``key`` (the journal's id is tried first)."""
    api = ctx.client("pve", pve_client)
    vms = [v for v in _resources(ctx, "vm") if not v.get("template")]
    ordered = sorted(vms, key=lambda v: int(v["vmid"]) != hint)
    for vm in ordered:
        cfg = _config(api, vm["node"], int(vm["vmid"]))
        if f"request: {key}" in str(cfg.get("description", "")):
            return {**vm, "config": cfg}
    return None


def _cleanup(ctx: ToolContext, node: str, vmid: int, pending: str | None) -> list[str]:
    """Stop and destroy a half-made VM; returns what was done (for the message)."""
    api = ctx.client("pve", pve_client)
    done: list[str] = []
    timeout = max(ctx.settings.pve.task_timeout, 60.0)
    if pending:
        wait_task(api, pending, timeout=timeout)  # a timed-out task must end before its VM can go
    if not any(int(v["vmid"]) == vmid for v in _resources(ctx, "vm")):
        return ["nothing to clean up: PVE removed the failed clone"]
    status = call("PVE", lambda: api.nodes(node).qemu(vmid).status.current.get())
    if status.get("status") == "running":
        wait_task(api, call("PVE", lambda: api.nodes(node).qemu(vmid).status.stop.post()), timeout=timeout)
        done.append(f"stopped VM {vmid}")
    result = wait_task(api, call("PVE", lambda: api.nodes(node).qemu(vmid).delete(purge=1)), timeout=timeout)
    done.append(f"destroyed VM {vmid}" if result.ok else f"could NOT destroy VM {vmid}: {result.exitstatus}")
    return done


def _ip(ctx: ToolContext, node: str, vmid: int, attempts: int = 10) -> str | None:
    api = ctx.client("pve", pve_client)
    for _ in range(attempts):
        try:
            ifaces = call("PVE", lambda: api.nodes(node).qemu(vmid).agent("network-get-interfaces").get())
        except ProxmoxError:
            time.sleep(1)  # the guest agent answers a moment after boot
            continue
        for iface in ifaces.get("result", []):
            for addr in iface.get("ip-addresses", []):
                if addr.get("ip-address-type") == "ipv4" and not str(addr["ip-address"]).startswith("127."):
                    return str(addr["ip-address"])
    return None


def _clone(ctx: ToolContext, args: Any, *, node: str, template: dict[str, Any]) -> tuple[int, str]:
    """Allocate an id and start the clone; a clash with a concurrent call retries with another id."""
    api = ctx.client("pve", pve_client)
    key = ctx.request_key
    description = f"owner: {ctx.user}\ncreated by LabOps" + (f"\nrequest: {key}" if key else "")
    for attempt in range(_ID_ATTEMPTS):
        vmid = int(call("PVE", lambda: api.cluster.nextid.get(), action="asking for the next free VM id"))
        if attempt:
            vmid += random.randint(0, 2 * attempt)  # spread callers that keep colliding
        ctx.journal.record("allocate", vmid=vmid, node=node, attempt=attempt)
        params: dict[str, Any] = {"newid": vmid, "name": args.name, "target": node, "full": 1,
                                  "description": description}  # fmt: skip
        if ctx.settings.pve.storage:
            params["storage"] = ctx.settings.pve.storage
        try:
            with proxmox_errors("PVE", action="cloning the template"):
                upid = str(api.nodes(template["node"]).qemu(template["vmid"]).clone.post(**params))
        except (ProxmoxError, InvalidArguments) as exc:
            if "already exists" in str(exc):
                time.sleep(random.uniform(0.05, 0.3))
                continue
            raise
        ctx.journal.record("clone", vmid=vmid, node=node, upid=upid)
        return vmid, upid
    raise ProxmoxError(f"no free VM id after {_ID_ATTEMPTS} attempts (other provisions keep taking them); try again")


def create(ctx: ToolContext, args: Any, *, node: str, template: dict[str, Any]) -> ToolResult:
    """A new VM: clone, configure, start, report (cleaning up what a failed step made)."""
    api = ctx.client("pve", pve_client)
    vmid, upid = _clone(ctx, args, node=node, template=template)
    pending: str | None = upid
    try:
        clone = wait_task(api, upid, timeout=ctx.settings.pve.task_timeout)
        if not clone.ok:
            return _failed(ctx, node, vmid, upid if clone.timed_out else None, "clone", clone)
        pending = None
        return _finish(ctx, args, node=node, vmid=vmid, steps=[f"cloned template {template['vmid']} to VM {vmid}"])
    except BackendUnavailable:
        raise  # the API is gone: the journal lets the retry with this request key resume
    except BaseException as exc:
        cleanup = _cleanup(ctx, node, vmid, pending)
        if isinstance(exc, ProxmoxError | InvalidArguments):
            raise type(exc)(f"{exc} (cleanup: {'; '.join(cleanup)})") from exc
        raise


def _finish(ctx: ToolContext, args: Any, *, node: str, vmid: int, steps: list[str]) -> ToolResult:
    """Configure (owner tag first) and start a cloned VM; both steps are idempotent."""
    api = ctx.client("pve", pve_client)
    ctx.journal.record("configure", vmid=vmid)
    call(
        "PVE",
        lambda: (
            api.nodes(node)
            .qemu(vmid)
            .config.put(tags=f"labops;owner-{ctx.user}", cores=args.cores, memory=args.memory_gib * 1024)
        ),
        action="configuring the VM",
    )
    ctx.landed()  # the VM now shows with its owner tag, cores and memory, so quota usage counts it
    steps.append(f"set owner {ctx.user}, {args.cores} cores, {args.memory_gib} GiB")
    status = call("PVE", lambda: api.nodes(node).qemu(vmid).status.current.get(), action="reading the VM status")
    if status.get("status") != "running":
        upid = call("PVE", lambda: api.nodes(node).qemu(vmid).status.start.post(), action="starting the VM")
        ctx.journal.record("start", vmid=vmid, upid=upid)
        start = wait_task(api, upid, timeout=ctx.settings.pve.task_timeout)
        if not start.ok:
            return _failed(ctx, node, vmid, upid if start.timed_out else None, "start", start)
    ip = _ip(ctx, node, vmid)
    steps.append("started" + (f", IP {ip}" if ip else ", no IP from the guest agent yet"))
    ctx.journal.record("done", vmid=vmid)
    data = {"vmid": vmid, "name": args.name, "node": node, "cores": args.cores, "memory_gib": args.memory_gib,
            "ip": ip, "owner": ctx.user, "steps": steps}  # fmt: skip
    return ToolResult.ok(f"VM {vmid} '{args.name}' is running on {node}" + (f" at {ip}" if ip else ""), data=data)


def resume(ctx: ToolContext, args: Any) -> ToolResult | None:
    """Finish what a cut-off attempt with this request key started; None when it made nothing (start over)."""
    assert ctx.request_key is not None
    api = ctx.client("pve", pve_client)
    steps = ctx.journal.steps()
    hint = next((int(s["vmid"]) for s in reversed(steps) if "vmid" in s), None)
    for step in reversed(steps):
        if step.get("upid"):
            wait_task(api, str(step["upid"]), timeout=ctx.settings.pve.task_timeout)  # let the cut-off task end
            break
    vm = find_by_key(ctx, ctx.request_key, hint)
    if vm is None:
        return None  # PVE removed the failed clone, or the clone never started
    node, vmid = str(vm["node"]), int(vm["vmid"])
    if vm.get("lock") or vm["config"].get("lock"):
        # Still locked by a task nobody follows any more: wait for it to end.
        deadline = time.monotonic() + ctx.settings.pve.task_timeout
        while time.monotonic() < deadline and _config(api, node, vmid).get("lock"):
            time.sleep(0.5)
    result = _finish(ctx, args, node=node, vmid=vmid, steps=[f"resumed request {ctx.request_key}: VM {vmid}"])
    result.message = f"{result.message} (resumed an interrupted request)"
    return result


def _failed(ctx: ToolContext, node: str, vmid: int, pending: str | None, step: str, task: TaskResult) -> ToolResult:
    cleanup = _cleanup(ctx, node, vmid, pending)
    tail = " | ".join(task.log_tail[-4:])
    return ToolResult.error(
        f"provisioning failed at the {step} step: {task.exitstatus}. Task log: {tail}. Cleanup: {'; '.join(cleanup)}. "
        "Nothing was left behind; try another node or less memory.",
        data={"vmid": vmid, "node": node, "step": step, "exitstatus": task.exitstatus, "log_tail": task.log_tail,
              "cleanup": cleanup},
    )  # fmt: skip
