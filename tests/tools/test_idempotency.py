"""The request-key store: first result wins, in-progress is visible, keys expire after their TTL."""

from __future__ import annotations

from pathlib import Path

from tools.idempotency import IdempotencyStore


def test_claim_finish_release_and_expiry(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "keys.sqlite")
    assert store.claim("k1", "vm.provision").state == "new"
    assert store.claim("k1", "vm.provision").state == "in_progress"
    assert store.claim("k1", "ray.submit").state == "new", "keys are per tool"
    store.finish("k1", "vm.provision", {"status": "ok", "data": {"vmid": 104}, "message": "made"})
    done = store.claim("k1", "vm.provision")
    assert done.state == "done" and done.result == {"status": "ok", "data": {"vmid": 104}, "message": "made"}
    store.release("k1", "ray.submit")
    assert store.claim("k1", "ray.submit").state == "new"

    expired = IdempotencyStore(tmp_path / "keys.sqlite", ttl_seconds=0.0)
    assert expired.claim("k1", "vm.provision").state == "new"
