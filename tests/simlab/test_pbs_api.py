"""The PBS simulator through proxmoxer (service PBS, ``PBSAPIToken=id:secret`` and tickets)."""

from __future__ import annotations

from typing import Any

import pytest
from proxmoxer import ProxmoxAPI, ResourceException


def _pbs(sim, *, token: bool = True) -> ProxmoxAPI:  # type: ignore[no-untyped-def]
    creds = sim.secrets["pbs"]
    if token:
        return ProxmoxAPI(
            "127.0.0.1",
            port=sim.pbs_port,
            service="PBS",
            user="root@pam",
            token_name="labops",
            token_value=creds["token_secret"],
            verify_ssl=sim.ca,
        )
    return ProxmoxAPI(
        "127.0.0.1", port=sim.pbs_port, service="PBS", user="root@pam", password=creds["password"], verify_ssl=sim.ca
    )


def test_both_auth_modes(simulator) -> None:  # type: ignore[no-untyped-def]
    for api in (_pbs(simulator), _pbs(simulator, token=False)):
        assert [d["store"] for d in api.admin.datastore.get()] == ["store1"]


def test_snapshots_carry_verification_and_the_seeded_problems(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _pbs(simulator)
    snaps = api.admin.datastore("store1").snapshots.get()
    by_vm: dict[str, list[dict[str, Any]]] = {}
    for snap in snaps:
        assert {"backup-type", "backup-id", "backup-time", "size", "protected", "files"} <= set(snap)
        by_vm.setdefault(snap["backup-id"], []).append(snap)
    latest = {vm: max(s, key=lambda x: x["backup-time"]) for vm, s in by_vm.items()}
    # Ages on the simulator's clock (a setting of the fixture), never the machine's.
    now = int(api.nodes("localhost").time.get()["time"])
    # Hour-independent facts: the newest snapshot may be waiting for the 11:00 verify job.
    results_132 = [
        s["verification"]["state"] for s in sorted(by_vm["132"], key=lambda x: x["backup-time"]) if "verification" in s
    ]
    assert results_132[-1] == "failed"
    assert not any("verification" in s for s in by_vm["131"])
    assert now - latest["151"]["backup-time"] > 2.5 * 86400
    assert "140" not in latest
    fresh = [vm for vm in latest if vm not in {"131", "132", "151"}]
    assert fresh and all(
        latest[vm]["verification"]["state"] == "ok" for vm in fresh if now - latest[vm]["backup-time"] > 3 * 3600
    )
    groups = api.admin.datastore("store1").groups.get()
    assert {g["backup-id"] for g in groups} == set(by_vm)


def test_usage_gc_and_verify_status(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _pbs(simulator)
    status = api.admin.datastore("store1").status.get()
    assert status["total"] == status["used"] + status["avail"]
    assert api.admin.datastore("store1").gc.get()["disk-bytes"] == status["used"]
    assert api.status("datastore-usage").get()[0]["store"] == "store1"
    assert api.admin.verify.get()[0]["schedule"] == "11:00"


def test_unknown_datastore_is_a_400_with_the_message(simulator) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ResourceException) as exc:
        _pbs(simulator).admin.datastore("nope").snapshots.get()
    # As with real PBS, the message is the plain-text body: proxmoxer files it under errors["errors"].
    assert exc.value.status_code == 400 and b"does not exist" in exc.value.errors["errors"]
