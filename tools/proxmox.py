"""proxmoxer clients for PVE and PBS, error translation at the edge, and the task waiter.

Every call to the Proxmox APIs goes through :func:`pve_call`/:func:`pbs_call` so client-library
exceptions become LabOps errors that name what to fix (``pve.host``, ``pve.token_value``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import requests
from proxmoxer import AuthenticationError, ProxmoxAPI, ResourceException

from core.config import Settings
from core.endpoints import ProxmoxEndpoint, pbs_endpoint, pve_endpoint
from core.errors import BackendUnavailable, ConfigError, InvalidArguments, ProxmoxError

__all__ = ["TaskResult", "pbs_client", "proxmox_api", "proxmox_errors", "pve_client", "wait_task"]

T = TypeVar("T")


def proxmox_api(endpoint: ProxmoxEndpoint) -> ProxmoxAPI:
    """A proxmoxer client for one endpoint (API token when configured, else password/ticket)."""
    key = endpoint.service.lower()
    common: dict[str, Any] = {
        "host": endpoint.host,
        "port": endpoint.port,
        "service": endpoint.service,
        "user": endpoint.user,
        "verify_ssl": endpoint.verify_ssl,
        "timeout": endpoint.timeout,
    }
    with proxmox_errors(endpoint.service):
        if endpoint.token_name and endpoint.token_value:
            return ProxmoxAPI(token_name=endpoint.token_name, token_value=endpoint.token_value, **common)
        if endpoint.password:
            return ProxmoxAPI(password=endpoint.password, **common)
    raise ConfigError(
        f"no credentials for {endpoint.service}: set {key}.token_value or {key}.password", setting=f"{key}.token_value"
    )


def pve_client(settings: Settings) -> ProxmoxAPI:
    """The PVE API of the configured cluster (or the embedded simulator)."""
    return proxmox_api(pve_endpoint(settings))


def pbs_client(settings: Settings) -> ProxmoxAPI:
    """The PBS API of the configured backup server (or the embedded simulator)."""
    return proxmox_api(pbs_endpoint(settings))


@contextmanager
def proxmox_errors(service: Literal["PVE", "PBS"], *, action: str = "") -> Iterator[None]:
    """Translate proxmoxer/requests exceptions into LabOps errors (the edge of the client library)."""
    key = service.lower()
    what = f" while {action}" if action else ""
    try:
        yield
    except AuthenticationError as exc:
        raise ConfigError(
            f"{service} rejected the credentials{what}: check {key}.user and {key}.token_name/{key}.token_value "
            f"(or {key}.password)",
            setting=f"{key}.token_value",
        ) from exc
    except requests.exceptions.SSLError as exc:
        raise ConfigError(
            f"{service} TLS certificate not trusted{what}: set {key}.verify_ssl to the cluster's CA file",
            setting=f"{key}.verify_ssl",
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise BackendUnavailable(
            service, f"cannot reach the API{what} ({type(exc).__name__})", setting=f"{key}.host"
        ) from exc
    except ResourceException as exc:
        raise _resource_error(service, exc, what) from exc


def _resource_error(service: str, exc: ResourceException, what: str) -> Exception:
    message = str(exc.content or exc.status_message).strip()
    errors = exc.errors or {}
    if isinstance(errors, dict) and "errors" in errors and isinstance(errors["errors"], bytes | str):
        # PBS sends the message as a plain-text body, which proxmoxer files under errors["errors"].
        text = errors["errors"]
        message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        errors = {}
    if errors:
        details = "; ".join(f"{k}: {v}" for k, v in errors.items())
        return InvalidArguments(f"{service} refused the parameters{what}: {details}")
    if exc.status_code == 401:
        return ConfigError(
            f"{service} authentication failed{what}: {message}", setting=f"{service.lower()}.token_value"
        )
    if exc.status_code == 403:
        return ConfigError(
            f"{service} permission denied{what}: {message} (give the API token the privilege)",
            setting=f"{service.lower()}.token_name",
        )
    if exc.status_code == 595:
        return BackendUnavailable(service, f"{message}{what}", setting=f"{service.lower()}.host")
    return ProxmoxError(f"{service} error {exc.status_code}{what}: {message}")


def call(service: Literal["PVE", "PBS"], fn: Callable[[], T], *, action: str = "") -> T:
    """Run one API call with error translation."""
    with proxmox_errors(service, action=action):
        return fn()


@dataclass(kw_only=True, frozen=True)
class TaskResult:
    """How a PVE worker task ended."""

    upid: str
    ok: bool
    exitstatus: str
    log_tail: list[str]
    timed_out: bool = False


def wait_task(api: ProxmoxAPI, upid: str, *, timeout: float, poll: float = 0.5) -> TaskResult:
    """Follow a task by its UPID until it stops (or ``timeout`` seconds pass); failures carry the log tail."""
    node = upid.split(":")[1]
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = call("PVE", lambda: api.nodes(node).tasks(upid).status.get(), action="following a task")
        if status.get("status") == "stopped":
            break
        time.sleep(poll)
    else:
        return TaskResult(
            upid=upid, ok=False, exitstatus="timeout", log_tail=_log_tail(api, node, upid), timed_out=True
        )
    exit_status = str(status.get("exitstatus", "unknown"))
    ok = exit_status == "OK" or exit_status.startswith("WARNINGS:")
    return TaskResult(upid=upid, ok=ok, exitstatus=exit_status, log_tail=[] if ok else _log_tail(api, node, upid))


def _log_tail(api: ProxmoxAPI, node: str, upid: str, lines: int = 8) -> list[str]:
    entries = call("PVE", lambda: api.nodes(node).tasks(upid).log.get(start=0, limit=500), action="reading a task log")
    return [str(e.get("t", "")) for e in entries][-lines:]
