"""The per-user quota lock: one user's quota-counted calls decide one at a time, other users never wait."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import PolicyError
from policies.reservations import QuotaHold, Reservations
from policies.stores import Database


@pytest.fixture()
def reservations(tmp_path: Path) -> Reservations:
    return Reservations(Database.sqlite(tmp_path / "labops.sqlite"))


def test_a_second_call_of_the_same_user_waits_until_the_first_has_landed(reservations: Reservations) -> None:
    first = QuotaHold(reservations, reservations.user_lock("alice", timeout=5))
    with reservations.transaction() as tx:
        first.reservation = tx.add("alice", "ray.submit", {"ray_jobs": 1})
    acquired = threading.Event()

    def second() -> None:
        reservations.user_lock("alice", timeout=30).release()
        acquired.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not acquired.wait(0.5)  # still held by the first call
    first.landed()
    waiter.join(10)
    assert acquired.is_set()
    assert reservations.list() == []  # landing let the reservation go with the lock
    first.landed()  # harmless to repeat (the guard calls it again when the call ends)


def test_other_users_never_wait(reservations: Reservations) -> None:
    held = reservations.user_lock("alice", timeout=5)
    try:
        reservations.user_lock("bob", timeout=0.2).release()
    finally:
        held.release()


def test_a_call_that_cannot_get_the_lock_is_told_what_to_do(reservations: Reservations) -> None:
    held = reservations.user_lock("alice", timeout=5)
    try:
        with pytest.raises(PolicyError, match=r"policy\.quota_lock_timeout"):
            reservations.user_lock("alice", timeout=0.2)
    finally:
        held.release()


def test_a_killed_process_does_not_keep_the_lock(reservations: Reservations, tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from policies.reservations import Reservations\n"
        "from policies.stores import Database\n"
        f"r = Reservations(Database.sqlite(__import__('pathlib').Path({str(tmp_path / 'labops.sqlite')!r})))\n"
        "r.user_lock('alice', timeout=5)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(PolicyError):
            reservations.user_lock("alice", timeout=0.2)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    started = time.monotonic()
    reservations.user_lock("alice", timeout=10).release()
    assert time.monotonic() - started < 10
