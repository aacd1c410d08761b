"""VMs that no finished request accounts for: what a cut-off provision left behind.

LabOps writes ``owner: <user>``, ``created by LabOps`` and ``request: <key>`` into every clone's description
before anything else happens to it. A VM carrying them is accounted for when its request finished, or is
still running in a live process. Anything else (an interrupted request, a request whose process died,
a clone never tagged with its owner) is listed with the reason, so an operator can finish it (repeat the
request with its key) or remove it. ``labops vm reconcile`` and ``labops doctor`` show the list.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings
from policies.owners import owner_alive
from policies.requests import RequestKeys
from tools.context import ToolContext
from tools.proxmox import proxmox_errors, pve_client
from tools.vm.inventory import _resources, owner_of

__all__ = ["orphans"]


def _labops_fields(description: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in description.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("owner", "request"):
            fields[key] = value.strip()
        elif line.strip() == "created by LabOps":
            fields["labops"] = "yes"
    return fields


def orphans(settings: Settings, keys: RequestKeys | None = None) -> list[dict[str, Any]]:
    """LabOps-made VMs that no finished (or live) request accounts for, with the reason."""
    keys = keys or RequestKeys.from_settings(settings)
    ctx = ToolContext(settings=settings)
    api = ctx.client("pve", pve_client)
    unfinished = {u["key"]: u for u in keys.unfinished("vm.provision")}
    found: list[dict[str, Any]] = []
    for vm in _resources(ctx, "vm"):
        if vm.get("template"):
            continue
        tags = [t for t in str(vm.get("tags", "")).split(";") if t]
        tagged_owner = owner_of(vm.get("tags"))
        if tagged_owner and "labops" not in tags:
            continue  # a VM the lab made by hand
        with proxmox_errors("PVE", action=f"reading VM {vm['vmid']}"):
            config = api.nodes(vm["node"]).qemu(vm["vmid"]).config.get()
        fields = _labops_fields(str(config.get("description", "")))
        if not fields.get("labops"):
            continue
        key = fields.get("request")
        reason = ""
        if key and key in unfinished:
            entry = unfinished[key]
            if entry["alive"] and owner_alive(entry["owner"]):
                continue  # its request is still running
            reason = "its request was interrupted; repeat it with the same request key to finish it, or delete the VM"
        elif key and keys.state_of(key, "vm.provision") is None and not tagged_owner:
            reason = "no request record accounts for it (expired or lost) and it was never finished"
        elif not tagged_owner:
            reason = "it was never tagged with its owner (the provision stopped half-way)"
        if reason:
            found.append(
                {
                    "vmid": int(vm["vmid"]),
                    "name": vm.get("name", ""),
                    "node": vm.get("node", ""),
                    "owner": tagged_owner or fields.get("owner", ""),
                    "request_key": key,
                    "status": vm.get("status", ""),
                    "reason": reason,
                }
            )
    return sorted(found, key=lambda o: o["vmid"])
