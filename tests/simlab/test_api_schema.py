"""Every endpoint the simulators serve answers as the published API schema says, errors included.

``apischema/pve.json`` is extracted from pve-docs' api-viewer data (``extract_pve.py``) and
``apischema/pbs.json`` is transcribed from PBS's ``#[api]`` schemas. Each served route gets a real
request; its answer is checked against the schema's ``returns``, then its error cases (no credentials,
a malformed path parameter, an unknown parameter) against the servers' conventions. A route without a
sample request fails the test, so a new simulator endpoint cannot skip the check.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import requests

SCHEMAS = Path(__file__).with_name("apischema")

# Where the real servers send something other than their own published schema, the simulator sends
# what the servers send (and says so here).
KNOWN_DEVIATIONS = {
    # PVE serialises the next free VMID as a JSON string although its schema says integer.
    ("pve", "GET", "/cluster/nextid"): "string instead of integer",
}


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Problems of ``value`` against a PVE/PBS-style schema (``optional``, ``properties``, ``items``...)."""
    kind = schema.get("type")
    problems: list[str] = []
    if kind in (None, "any"):
        return problems
    if value is None:
        return [] if kind == "null" else [f"{where}: null, expected {kind}"]
    if kind == "null":
        return [f"{where}: expected null, got {type(value).__name__}"]
    if kind == "boolean":
        if not (isinstance(value, bool) or value in (0, 1)):
            problems.append(f"{where}: {value!r} is not a boolean")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: {value!r} is not an integer")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: {value!r} is not a number")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{where}: {value!r} is not a string")
        elif "enum" in schema and value not in schema["enum"]:
            problems.append(f"{where}: {value!r} not in {schema['enum']}")
        elif "pattern" in schema and not re.match(schema["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array"]
        for i, item in enumerate(value):
            problems += validate(item, schema.get("items", {}), f"{where}[{i}]")
    elif kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value:
                if not sub.get("optional"):
                    problems.append(f"{where}.{name}: missing")
                continue
            problems += validate(value[name], sub, f"{where}.{name}")
        if schema.get("additionalProperties") == 0:
            problems += [f"{where}.{k}: not in the schema" for k in value if k not in props]
    if isinstance(value, int | float) and not isinstance(value, bool):
        # PVE's published schema writes some bounds as strings ("minimum": "0" in prune-backups).
        if "minimum" in schema and value < float(schema["minimum"]):
            problems.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > float(schema["maximum"]):
            problems.append(f"{where}: {value} > maximum {schema['maximum']}")
    return problems


class Api:
    """Raw HTTP to one simulated server with its API token (status codes and bodies as sent)."""

    def __init__(self, service: str, port: int, lab_dir: Path) -> None:
        secrets = json.loads((lab_dir / "secrets.json").read_text())[service]
        sep = "=" if service == "pve" else ":"
        self.base = f"https://127.0.0.1:{port}/api2/json"
        self.auth = {"Authorization": f"{service.upper()}APIToken={secrets['token_id']}{sep}{secrets['token_secret']}"}
        self.ca = str(lab_dir / "tls" / "ca.pem")

    def __call__(self, method: str, path: str, params: dict[str, Any] | None = None, *, auth: bool = True) -> Any:
        kwargs: dict[str, Any] = {"headers": self.auth if auth else {}, "verify": self.ca, "timeout": 10}
        if method == "GET":
            kwargs["params"] = params
        else:
            kwargs["data"] = params
        return requests.request(method, self.base + path, **kwargs)


def _wait(api: Api, node: str, upid: str) -> None:
    for _ in range(200):
        if api("GET", f"/nodes/{node}/tasks/{upid}/status").json()["data"]["status"] == "stopped":
            return
        time.sleep(0.02)
    raise AssertionError(f"task {upid} did not stop")


def _schema(service: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{service}.json").read_text())["paths"]
    return data


def _check(service: str, method: str, pattern: str, resp: requests.Response, seen: set[tuple[str, str]]) -> None:
    assert resp.status_code == 200, f"{method} {pattern}: {resp.status_code} {resp.reason} {resp.text[:200]}"
    spec = _schema(service)[pattern][method]
    value = resp.json()["data"]
    problems = validate(value, spec["returns"])
    if (service, method, pattern) in KNOWN_DEVIATIONS:
        problems = [p for p in problems if "is not an integer" not in p]
    assert not problems, f"{service} {method} {pattern}: " + "; ".join(problems[:5])
    seen.add((method, pattern))


def test_pve_answers_match_the_published_schema(tmp_path: Path, inprocess_lab) -> None:  # type: ignore[no-untyped-def]
    lab = inprocess_lab(tmp_path / "lab")
    port = json.loads((lab.lab_dir / "lab.json").read_text())["parts"]["pve"]["port"]
    api = Api("pve", port, lab.lab_dir)
    seen: set[tuple[str, str]] = set()

    def ok(method: str, pattern: str, path: str, params: dict[str, Any] | None = None) -> Any:
        resp = api(method, path, params)
        _check("pve", method, pattern, resp, seen)
        return resp.json()["data"]

    ok("GET", "/version", "/version")
    ok("GET", "/access/domains", "/access/domains")
    secrets = json.loads((lab.lab_dir / "secrets.json").read_text())["pve"]
    ok("POST", "/access/ticket", "/access/ticket", {"username": secrets["user"], "password": secrets["password"]})
    ok("GET", "/nodes", "/nodes")
    ok("GET", "/nodes/{node}/status", "/nodes/node01/status")
    ok("GET", "/nodes/{node}/time", "/nodes/node01/time")
    gpu = ok("GET", "/nodes/{node}/hardware/pci", "/nodes/node07/hardware/pci")
    assert [d["device_name"] for d in gpu if d["class"].startswith("0x03")] == ["GA104GL [RTX A4000]"]
    plain = ok("GET", "/nodes/{node}/hardware/pci", "/nodes/node01/hardware/pci", {"verbose": 0})
    assert plain and not any(d["class"].startswith(("0x03", "0x06")) for d in plain) and "device_name" not in plain[0]
    ok("GET", "/cluster/status", "/cluster/status")
    for kind in (None, "vm", "node", "storage"):
        ok("GET", "/cluster/resources", "/cluster/resources", {"type": kind} if kind else None)
    ok("GET", "/cluster/nextid", "/cluster/nextid")
    ok("GET", "/cluster/backup", "/cluster/backup")
    ok("GET", "/cluster/backup/{id}", "/cluster/backup/backup-daily")
    ok("GET", "/cluster/backup-info/not-backed-up", "/cluster/backup-info/not-backed-up")
    ok("GET", "/nodes/{node}/storage", "/nodes/node01/storage")
    ok("GET", "/nodes/{node}/storage/{storage}/status", "/nodes/node01/storage/pbs01/status")
    ok("GET", "/nodes/{node}/storage/{storage}/content", "/nodes/node01/storage/pbs01/content", {"vmid": 130})
    ok("GET", "/nodes/{node}/storage/{storage}/content", "/nodes/node01/storage/ceph-nvme/content")
    ok("GET", "/nodes/{node}/qemu", "/nodes/node03/qemu")
    ok("GET", "/nodes/{node}/qemu/{vmid}/config", "/nodes/node03/qemu/130/config")
    ok("GET", "/nodes/{node}/qemu/{vmid}/status/current", "/nodes/node03/qemu/130/status/current")
    ok(
        "GET",
        "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
        "/nodes/node03/qemu/130/agent/network-get-interfaces",
    )
    upid = ok("POST", "/nodes/{node}/qemu", "/nodes/node03/qemu", {"vmid": 500, "name": "schema-a", "memory": 1024})
    _wait(api, "node03", upid)
    upid = ok(
        "POST",
        "/nodes/{node}/qemu/{vmid}/clone",
        "/nodes/node01/qemu/9000/clone",
        {"newid": 501, "name": "schema-b", "target": "node03"},
    )
    ok("GET", "/nodes/{node}/tasks/{upid}/status", f"/nodes/node01/tasks/{upid}/status")
    _wait(api, "node01", upid)
    ok("GET", "/nodes/{node}/tasks/{upid}/log", f"/nodes/node01/tasks/{upid}/log")
    ok("GET", "/nodes/{node}/tasks", "/nodes/node01/tasks")
    ok("PUT", "/nodes/{node}/qemu/{vmid}/config", "/nodes/node03/qemu/501/config", {"cores": 2, "tags": "labops"})
    _wait(
        api, "node03", ok("POST", "/nodes/{node}/qemu/{vmid}/config", "/nodes/node03/qemu/501/config", {"memory": 2048})
    )
    _wait(api, "node03", ok("POST", "/nodes/{node}/qemu/{vmid}/status/start", "/nodes/node03/qemu/501/status/start"))
    _wait(api, "node03", ok("POST", "/nodes/{node}/qemu/{vmid}/status/reboot", "/nodes/node03/qemu/501/status/reboot"))
    _wait(
        api, "node03", ok("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", "/nodes/node03/qemu/501/status/shutdown")
    )
    _wait(api, "node03", ok("POST", "/nodes/{node}/qemu/{vmid}/status/start", "/nodes/node03/qemu/501/status/start"))
    running = ok("POST", "/nodes/{node}/qemu/{vmid}/status/stop", "/nodes/node03/qemu/501/status/stop")
    ok("DELETE", "/nodes/{node}/tasks/{upid}", f"/nodes/node03/tasks/{running}")
    _wait(api, "node03", ok("POST", "/nodes/{node}/qemu/{vmid}/status/stop", "/nodes/node03/qemu/501/status/stop"))
    ok("DELETE", "/nodes/{node}/qemu/{vmid}", "/nodes/node03/qemu/500")
    _wait(api, "node03", ok("POST", "/nodes/{node}/vzdump", "/nodes/node03/vzdump", {"vmid": 130, "storage": "pbs01"}))

    served = set(lab.apps["pve"].router.patterns)
    assert served == seen, f"served but not checked: {sorted(served - seen)}"
    assert served <= {(m, p) for p, methods in _schema("pve").items() for m in methods}


def test_pve_error_cases_follow_pve_conventions(tmp_path: Path, inprocess_lab) -> None:  # type: ignore[no-untyped-def]
    lab = inprocess_lab(tmp_path / "lab")
    port = json.loads((lab.lab_dir / "lab.json").read_text())["parts"]["pve"]["port"]
    api = Api("pve", port, lab.lab_dir)
    no_auth = {("GET", "/access/domains"), ("POST", "/access/ticket")}
    for method, pattern in lab.apps["pve"].router.patterns:
        path = pattern.replace("{node}", "node03").replace("{vmid}", "130").replace("{storage}", "pbs01")
        path = path.replace("{id}", "backup-daily").replace(
            "{upid}", "UPID:node03:00000001:00000001:00000001:x:1:u@pam:"
        )
        if (method, pattern) not in no_auth:
            # Auth errors are plain strings in pve-http-server: empty body, the reason in the status line.
            resp = api(method, path, auth=False)
            assert resp.status_code == 401 and resp.reason == "No ticket" and resp.content == b"", (method, pattern)
        if "{vmid}" in pattern:
            bad = api(method, pattern.replace("{node}", "node03").replace("{vmid}", "abc"))
            assert bad.status_code == 400, (method, pattern, bad.status_code)
            assert "vmid" in bad.json()["errors"] and bad.reason == "Parameter verification failed."
        if "{node}" in pattern:
            bad = api(method, pattern.replace("{node}", "no_such!node").replace("{vmid}", "130"))
            assert bad.status_code == 400 and "node" in bad.json()["errors"], (method, pattern)
    # An unknown parameter, and a known one with a bad value: 400 with the parameter named.
    extra = api("GET", "/cluster/resources", {"type": "vm", "colour": "red"})
    assert extra.status_code == 400 and "colour" in extra.json()["errors"]
    bad_type = api("GET", "/cluster/resources", {"type": "vms"})
    assert bad_type.status_code == 400 and "type" in bad_type.json()["errors"]
    taken = api("GET", "/cluster/nextid", {"vmid": 130})
    assert taken.status_code == 400 and taken.json()["errors"] == {"vmid": "VM 130 already exists"}
    unknown = api("GET", "/nodes/node03/qemu/4242/config")
    assert unknown.status_code == 500 and "4242" in unknown.reason
    assert api("GET", "/no/such/path").status_code == 501


def test_pbs_answers_match_the_schema(tmp_path: Path, inprocess_lab) -> None:  # type: ignore[no-untyped-def]
    lab = inprocess_lab(tmp_path / "lab")
    port = json.loads((lab.lab_dir / "lab.json").read_text())["parts"]["pbs"]["port"]
    api = Api("pbs", port, lab.lab_dir)
    seen: set[tuple[str, str]] = set()

    def ok(method: str, pattern: str, path: str, params: dict[str, Any] | None = None) -> Any:
        resp = api(method, path, params)
        _check("pbs", method, pattern, resp, seen)
        return resp.json()["data"]

    secrets = json.loads((lab.lab_dir / "secrets.json").read_text())["pbs"]
    ok("POST", "/access/ticket", "/access/ticket", {"username": secrets["user"], "password": secrets["password"]})
    ok("GET", "/version", "/version")
    assert ok("GET", "/nodes", "/nodes") == [{"node": "pbs01"}]
    ok("GET", "/nodes/{node}/time", "/nodes/localhost/time")
    listing = ok("GET", "/admin/datastore", "/admin/datastore")
    assert listing[0]["backend-type"] == "filesystem" and listing[0]["mount-status"] == "nonremovable"
    ok("GET", "/admin/datastore/{store}/status", "/admin/datastore/store1/status")
    ok("GET", "/status/datastore-usage", "/status/datastore-usage")
    ok("GET", "/admin/datastore/{store}/groups", "/admin/datastore/store1/groups")
    ok("GET", "/admin/datastore/{store}/snapshots", "/admin/datastore/store1/snapshots", {"backup-type": "vm"})
    assert ok("GET", "/admin/datastore/{store}/gc", "/admin/datastore/store1/gc")["store"] == "store1"
    ok("GET", "/admin/gc", "/admin/gc")
    ok("GET", "/admin/verify", "/admin/verify")
    ok("GET", "/config/verify", "/config/verify")
    gc = ok("POST", "/admin/datastore/{store}/gc", "/admin/datastore/store1/gc")
    verify = ok("POST", "/admin/datastore/{store}/verify", "/admin/datastore/store1/verify", {"backup-id": "130"})
    for upid in (gc, verify):
        ok("GET", "/nodes/{node}/tasks/{upid}/status", f"/nodes/localhost/tasks/{upid}/status")
        ok("GET", "/nodes/{node}/tasks/{upid}/log", f"/nodes/pbs01/tasks/{upid}/log")
    ok("GET", "/nodes/{node}/tasks", "/nodes/localhost/tasks")
    # The scheduled runs the server reports are finished tasks too (their status used to be a 400).
    verify_job = ok("GET", "/admin/verify", "/admin/verify")[0]
    gc_status = ok("GET", "/admin/datastore/{store}/gc", "/admin/datastore/store1/gc")
    for upid in (verify_job["last-run-upid"], gc_status["upid"]):
        finished = ok("GET", "/nodes/{node}/tasks/{upid}/status", f"/nodes/localhost/tasks/{upid}/status")
        assert finished["status"] == "stopped" and finished["exitstatus"] in ("OK", "verification failed")
        assert ok("GET", "/nodes/{node}/tasks/{upid}/log", f"/nodes/localhost/tasks/{upid}/log")[-1]["t"].startswith(
            "TASK"
        )
    status = ok("GET", "/admin/datastore/{store}/status", "/admin/datastore/store1/status")
    usage = ok("GET", "/status/datastore-usage", "/status/datastore-usage")
    assert status["backend-type"] == usage[0]["backend-type"] == "filesystem"

    served = set(lab.apps["pbs"].router.patterns)
    assert served == seen, f"served but not checked: {sorted(served - seen)}"


def test_pbs_error_cases_follow_pbs_conventions(tmp_path: Path, inprocess_lab) -> None:  # type: ignore[no-untyped-def]
    lab = inprocess_lab(tmp_path / "lab")
    port = json.loads((lab.lab_dir / "lab.json").read_text())["parts"]["pbs"]["port"]
    api = Api("pbs", port, lab.lab_dir)
    for method, pattern in lab.apps["pbs"].router.patterns:
        if pattern == "/access/ticket":
            continue
        path = pattern.replace("{node}", "localhost").replace("{store}", "store1").replace("{upid}", "x")
        assert api(method, path, auth=False).status_code == 401, (method, pattern)
    # PBS checks parameters against the endpoint's schema: plain-text body naming each parameter.
    bad = api("GET", "/admin/gc", {"store": "!"})
    assert bad.status_code == 400 and bad.text.startswith("parameter verification errors")
    assert "parameter 'store'" in bad.text
    extra = api("GET", "/admin/datastore/store1/snapshots", {"colour": "red"})
    assert extra.status_code == 400 and "parameter 'colour'" in extra.text
    bad_kind = api("GET", "/admin/datastore/store1/snapshots", {"backup-type": "vms"})
    assert bad_kind.status_code == 400 and "backup-type" in bad_kind.text
    missing = api("GET", "/admin/datastore/nope/status")
    assert missing.status_code == 400 and "does not exist" in missing.text
    assert api("GET", "/nodes/localhost/tasks/UPID:nope/status").status_code == 400
    assert api("GET", "/no/such/path").status_code == 404
