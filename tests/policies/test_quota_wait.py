"""A call in progress is counted twice for a moment (reserved, and visible in the lab): a quota refusal made
then waits for the user's calls in progress to land and decides again, so N calls get exactly the room."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.config import load_settings
from policies.guard import Caller, Guard
from policies.reservations import Reservations
from tools.context import ToolContext
from tools.registry import get_tool

USER = "researcher1"  # a researcher: 4 running Ray jobs at most (policies/lab.toml)


@pytest.fixture()
def guard(tmp_path: Path) -> tuple[Guard, dict[str, int]]:
    visible = {"ray_jobs": 0, "cpus": 0, "gpus": 0}

    def usage(_ctx: ToolContext, _user: str, wanted: set[str]) -> dict[str, int]:
        return {k: v for k, v in visible.items() if k in wanted}

    settings = load_settings(None, lab_dir=tmp_path / "lab")
    # A failing test should fail in seconds, not after the shipped five minutes.
    settings = settings.model_copy(update={"policy": settings.policy.model_copy(update={"quota_wait_timeout": 10.0})})
    return Guard(settings=settings, usage=usage), visible


def _submit() -> tuple[Any, Any]:
    tool = get_tool("ray.submit")
    return tool, tool.args_model.model_validate({"template": "heartbeat"})


def _reserve(reservations: Reservations, n: int) -> list[str]:
    with reservations.transaction() as tx:
        return [tx.add(USER, "ray.submit", {"ray_jobs": 1, "cpus": 1}) for _ in range(n)]


def test_a_double_count_is_waited_out_and_the_call_fits(guard: tuple[Guard, dict[str, int]]) -> None:
    g, visible = guard
    assert g.reservations is not None
    # Three submissions in progress; the first already shows in Ray but has not landed yet.
    first, *others = _reserve(g.reservations, 3)
    visible.update(ray_jobs=1, cpus=1)

    def land() -> None:
        time.sleep(0.3)
        g.reservations.release(first)  # type: ignore[union-attr]

    threading.Thread(target=land).start()
    tool, args = _submit()
    started = time.monotonic()
    decision, reservation = g._decide_and_reserve(tool, args, Caller(user=USER, channel="cli"))
    assert decision.decision == "allow" and reservation is not None  # 1 visible + 2 reserved + this one = 4
    assert time.monotonic() - started >= 0.3  # it waited for the first call to land
    for rid in [*others, reservation]:
        g.reservations.release(rid)


def test_a_real_overrun_is_refused_once_the_calls_in_progress_have_landed(
    guard: tuple[Guard, dict[str, int]],
) -> None:
    g, visible = guard
    assert g.reservations is not None
    ids = _reserve(g.reservations, 2)
    visible.update(ray_jobs=2, cpus=2)  # two running, both shown; both calls land soon after

    def land() -> None:
        time.sleep(0.2)
        visible.update(ray_jobs=4, cpus=4)
        for rid in ids:
            g.reservations.release(rid)  # type: ignore[union-attr]

    threading.Thread(target=land).start()
    tool, args = _submit()
    decision, reservation = g._decide_and_reserve(tool, args, Caller(user=USER, channel="cli"))
    assert decision.decision == "deny" and reservation is None
    assert "ray_jobs" in " ".join(decision.reasons) or "running Ray jobs" in " ".join(decision.reasons)


def test_a_refusal_with_nothing_in_progress_does_not_wait(guard: tuple[Guard, dict[str, int]]) -> None:
    g, visible = guard
    visible.update(ray_jobs=4, cpus=4)
    tool, args = _submit()
    started = time.monotonic()
    decision, _ = g._decide_and_reserve(tool, args, Caller(user=USER, channel="cli"))
    assert decision.decision == "deny" and time.monotonic() - started < 5


def test_waiting_is_bounded(tmp_path: Path) -> None:
    reservations = Reservations.from_settings(load_settings(None, lab_dir=tmp_path / "lab"))
    ids = set(_reserve(reservations, 1))
    assert reservations.wait_released(ids, deadline=time.monotonic() + 0.2) is False
    reservations.release(next(iter(ids)))
    assert reservations.wait_released(ids, deadline=time.monotonic()) is True


def test_one_landed_call_is_enough_to_decide_again(tmp_path: Path) -> None:
    reservations = Reservations.from_settings(load_settings(None, lab_dir=tmp_path / "lab"))
    first, second = _reserve(reservations, 2)
    reservations.release(first)
    assert reservations.wait_released({first, second}, deadline=time.monotonic() + 5) is True


def test_a_dead_process_s_reservation_is_not_waited_for(tmp_path: Path) -> None:
    reservations = Reservations.from_settings(load_settings(None, lab_dir=tmp_path / "lab"))
    dead = f"{socket.gethostname()}:{2**22 + 7}"  # above the kernel's pid_max default: no such process
    with reservations.db.session() as s:
        s.execute(
            "INSERT INTO reservations (id, username, tool, amounts, owner, created) VALUES (?, ?, ?, ?, ?, ?)",
            ("res_dead", USER, "ray.submit", '{"ray_jobs": 1}', dead, time.time()),
        )
        s.commit()
    assert reservations.wait_released({"res_dead"}, deadline=time.monotonic() + 5) is True
