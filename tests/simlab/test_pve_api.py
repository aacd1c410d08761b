"""The PVE simulator, driven through the unmodified proxmoxer client over verified HTTPS."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from proxmoxer import AuthenticationError, ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks

from simlab.seed import SEEDED_BACKUP_PROBLEMS


def _password_api(sim, password: str | None = None) -> ProxmoxAPI:  # type: ignore[no-untyped-def]
    return ProxmoxAPI(
        "127.0.0.1",
        port=sim.pve_port,
        user="root@pam",
        password=password or sim.secrets["pve"]["password"],
        verify_ssl=sim.ca,
    )


def _token_api(sim) -> ProxmoxAPI:  # type: ignore[no-untyped-def]
    return ProxmoxAPI(
        "127.0.0.1",
        port=sim.pve_port,
        user="root@pam",
        token_name="labops",
        token_value=sim.secrets["pve"]["token_secret"],
        verify_ssl=sim.ca,
    )


def _wait(api: ProxmoxAPI, upid: str) -> dict[str, Any]:
    status = Tasks.blocking_status(api, upid, timeout=30, polling_interval=0.1)
    assert status is not None, "task did not finish"
    return status


def test_both_auth_modes_reach_the_api(simulator) -> None:  # type: ignore[no-untyped-def]
    for api in (_password_api(simulator), _token_api(simulator)):
        assert api.version.get()["version"] == "8.4.1"
        nodes = {n["node"]: n for n in api.nodes.get()}
        assert sorted(nodes) == [f"node0{i}" for i in range(1, 8)]
        assert nodes["node07"]["maxmem"] == 128 * 1024**3
        assert nodes["node04"]["status"] == "offline"


def test_wrong_password_is_an_authentication_error(simulator) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthenticationError):
        _password_api(simulator, password="not-the-password")


def test_ticket_writes_need_the_csrf_token(simulator) -> None:  # type: ignore[no-untyped-def]
    base = f"https://127.0.0.1:{simulator.pve_port}/api2/json"
    login = requests.post(
        f"{base}/access/ticket",
        verify=simulator.ca,
        timeout=5,
        data={"username": "root@pam", "password": simulator.secrets["pve"]["password"]},
    ).json()["data"]
    cookies = {"PVEAuthCookie": login["ticket"]}
    no_csrf = requests.post(
        f"{base}/nodes/node01/qemu/130/status/reboot", cookies=cookies, verify=simulator.ca, timeout=5
    )
    assert no_csrf.status_code == 401 and "csrf" in no_csrf.reason.lower()
    no_ticket = requests.get(f"{base}/nodes", verify=simulator.ca, timeout=5)
    assert (no_ticket.status_code, no_ticket.reason, no_ticket.content) == (401, "No ticket", b"")


def test_unknown_path_is_501_and_bad_parameters_are_400_with_errors(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _token_api(simulator)
    with pytest.raises(ResourceException) as unknown:
        api.nodes("node01").nonsense.get()
    assert unknown.value.status_code == 501
    with pytest.raises(ResourceException) as bad:
        api.nodes("node01").qemu(9000).clone.post(newid="abc", name="bad name!")
    assert bad.value.status_code == 400
    assert set(bad.value.errors) == {"newid", "name"}
    with pytest.raises(ResourceException) as taken:
        api.cluster.nextid.get(vmid=110)
    assert taken.value.errors == {"vmid": "VM 110 already exists"}


def test_clone_start_stop_delete(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _token_api(simulator)
    vmid = int(api.cluster.nextid.get())
    upid = api.nodes("node01").qemu(9000).clone.post(newid=vmid, name="test-clone", full=1, target="node01")
    assert upid.startswith("UPID:node01:") and upid.endswith(":root@pam!labops:")
    assert _wait(api, upid)["exitstatus"] == "OK"
    api.nodes("node01").qemu(vmid).config.put(cores=2, memory=2048, tags="owner-researcher1;labops")
    cfg = api.nodes("node01").qemu(vmid).config.get()
    assert (cfg["cores"], cfg["memory"], cfg["tags"]) == (2, "2048", "labops;owner-researcher1")
    resources = {r["vmid"]: r for r in api.cluster.resources.get(type="vm")}
    assert resources[vmid]["maxmem"] == 2048 * 1024**2

    assert _wait(api, api.nodes("node01").qemu(vmid).status.start.post())["exitstatus"] == "OK"
    assert api.nodes("node01").qemu(vmid).status.current.get()["status"] == "running"
    ifaces = api.nodes("node01").qemu(vmid).agent("network-get-interfaces").get()["result"]
    assert any(a["ip-address"].startswith("10.25.60.") for i in ifaces for a in i["ip-addresses"])
    with pytest.raises(ResourceException) as running:
        api.nodes("node01").qemu(vmid).delete()
    assert running.value.status_code == 500 and "running" in running.value.content

    assert _wait(api, api.nodes("node01").qemu(vmid).status.stop.post())["exitstatus"] == "OK"
    assert _wait(api, api.nodes("node01").qemu(vmid).delete())["exitstatus"] == "OK"
    assert vmid not in {r["vmid"] for r in api.cluster.resources.get(type="vm")}


def test_clone_without_memory_fails_and_leaves_no_vm(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _token_api(simulator)
    # Fill node02 (94 GiB, 76 GiB allocated by the seed) with a big VM, then clone onto it.
    big = int(api.cluster.nextid.get())
    _wait(api, api.nodes("node02").qemu.post(vmid=big, name="filler", memory=18 * 1024, cores=1))
    clone_id = int(api.cluster.nextid.get())
    upid = api.nodes("node01").qemu(9000).clone.post(newid=clone_id, name="wont-fit", target="node02")
    status = _wait(api, upid)
    assert status["exitstatus"] != "OK" and "not enough memory" in status["exitstatus"]
    log = [line["t"] for line in api.nodes("node01").tasks(upid).log.get()]
    assert log[-1].startswith("TASK ERROR: clone failed")
    assert clone_id not in {r["vmid"] for r in api.cluster.resources.get(type="vm")}
    _wait(api, api.nodes("node02").qemu(big).delete())


def test_protected_vm_cannot_be_deleted(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _token_api(simulator)
    _wait(api, api.nodes("node02").qemu(150).status.stop.post())
    with pytest.raises(ResourceException) as exc:
        api.nodes("node02").qemu(150).delete()
    assert "protection mode enabled" in exc.value.content
    _wait(api, api.nodes("node02").qemu(150).status.start.post())


def test_backups_show_the_seeded_problems(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _token_api(simulator)
    content = api.nodes("node01").storage("pbs01").content.get(content="backup")
    latest: dict[int, dict[str, Any]] = {}
    for item in content:
        if item["vmid"] not in latest or item["ctime"] > latest[item["vmid"]]["ctime"]:
            latest[item["vmid"]] = item
    assert latest[132]["verification"]["state"] == "failed"
    assert "verification" not in latest[131]
    assert 140 not in latest
    ages = {vmid: max(i["ctime"] for i in content if i["vmid"] == vmid) for vmid in latest}
    assert min(ages.values()) == ages[151] or ages[151] < max(ages.values()) - 2 * 86400
    assert [g["vmid"] for g in api.cluster("backup-info")("not-backed-up").get()] == SEEDED_BACKUP_PROBLEMS["no_job"]
    jobs = {j["id"]: j for j in api.cluster.backup.get()}
    assert jobs["backup-daily"]["schedule"] == "09:00" and not jobs["backup-legacy"]["enabled"]


def test_state_survives_a_restart(simulator) -> None:  # type: ignore[no-untyped-def]
    api = _token_api(simulator)
    vmid = int(api.cluster.nextid.get())
    _wait(api, api.nodes("node03").qemu.post(vmid=vmid, name="persisted", memory=1024))
    simulator.stop()
    simulator.start()
    api = _token_api(simulator)
    assert api.nodes("node03").qemu(vmid).config.get()["name"] == "persisted"
    _wait(api, api.nodes("node03").qemu(vmid).delete())
