"""The PVE API as an :class:`~simlab.httpapi.HttpApp`: envelope, errors, auth and state handling."""

from __future__ import annotations

import json
import re
from typing import Any

from simlab import clock
from simlab.auth import Authenticator
from simlab.httpapi import ApiError, HttpApp, Request, Response, Router
from simlab.pve import cluster, qemu, vzdump
from simlab.schedule import run_schedule
from simlab.state import LabState
from simlab.tasks import finish_due

__all__ = ["PveApp"]

PREFIX = "/api2/json"
_NO_AUTH = {("POST", "/access/ticket"), ("GET", "/access/domains")}


class PveApp(HttpApp):
    """Proxmox VE ``/api2/json`` over the shared lab state."""

    name = "pve-api-daemon/3.0"

    def __init__(
        self, state: LabState, secrets: dict[str, Any], *, task_speed: float = 1.0, auth_delay: float = 3.0
    ) -> None:
        self.state = state
        self.task_speed = task_speed
        self.auth = Authenticator("PVE", secrets["pve"], fail_delay=auth_delay)
        self.router = Router()
        cluster.register(self.router, lambda: self.state.data)
        qemu.register(self.router, lambda: self.state.data, lambda: self.task_speed)
        vzdump.register(self.router, lambda: self.state.data, lambda: self.task_speed)
        self.router.add("POST", "/access/ticket", self._login)
        self.router.add(
            "GET",
            "/access/domains",
            lambda req: [
                {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
                {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"},
            ],
        )

    def _login(self, req: Request) -> Any:
        ticket = self.auth.login(req)
        return {**ticket, "clustername": self.state.data["cluster"], "cap": {"vms": {"VM.Allocate": 1}}}

    def advance(self) -> bool:
        """Finish due tasks and run due scheduled jobs."""
        now = clock.now()
        changed = finish_due(self.state.data, {**qemu.EFFECTS, **vzdump.EFFECTS}, now)
        return run_schedule(self.state.data, now) or changed

    def handle(self, request: Request) -> Response:
        """Answer one request with PVE's envelope and error conventions."""
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return _error(ApiError(501, "no such uri"))
        path = request.path[len(PREFIX) :] or "/"
        found = self.router.match(request.method, path.rstrip("/") or "/")
        try:
            if found is None:
                raise ApiError(501, f"Method '{request.method} {path}' not implemented")
            handler, params = found
            request.params = params
            if (request.method, path.rstrip("/")) not in _NO_AUTH:
                request.auth = self.auth.authenticate(request)
            _check_path_params(params)
            with self.state.lock:
                changed = self.advance()
                try:
                    result = handler(request)
                finally:
                    if changed or request.method != "GET":
                        self.state.save()
        except ApiError as exc:
            return _error(exc)
        return Response(body=json.dumps({"data": result}).encode())


_NODE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$")
_STORAGE_ID = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)


def _check_path_params(params: dict[str, str]) -> None:
    """PVE validates path parameters against the endpoint's schema before the handler runs (400, ``errors``)."""
    errors: dict[str, str] = {}
    vmid = params.get("vmid")
    if vmid is not None:
        if not re.fullmatch(r"[+-]?\d+", vmid):
            errors["vmid"] = f"type check ('integer') failed - got '{vmid}'"
        elif int(vmid) < 100:
            errors["vmid"] = "value must have a minimum value of 100"
        elif int(vmid) > 999999999:
            errors["vmid"] = "value may not exceed 999999999"
    node = params.get("node")
    if node is not None and not _NODE.match(node):
        errors["node"] = f"invalid format - value does not look like a valid node name ({node!r})"
    storage = params.get("storage")
    if storage is not None and not _STORAGE_ID.match(storage):
        errors["storage"] = f"invalid format - storage ID '{storage}' contains illegal characters"
    if errors:
        raise ApiError(400, "Parameter verification failed.", errors=errors)


def _error(exc: ApiError) -> Response:
    reason = exc.message.splitlines()[0] if exc.message else "error"
    if exc.status == 401:
        # Auth failures are plain strings in pve-http-server: the body is empty, the reason is the message.
        return Response(status=401, reason=reason, body=b"")
    body: dict[str, Any] = {"data": None, "message": exc.message + "\n"}
    if exc.errors:
        body["errors"] = exc.errors
    return Response(status=exc.status, reason=reason, body=json.dumps(body).encode())
