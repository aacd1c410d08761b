"""Credentials of the embedded lab, generated once into ``<lab_dir>/secrets.json`` (mode 0600).

Nothing has a default password: every secret is random per lab directory. LabOps reads the file
through ``core.endpoints``; the simulators read it to check what clients send.
"""

from __future__ import annotations

import json
import os
import secrets as _random
import uuid
from pathlib import Path
from typing import Any

__all__ = ["ensure_secrets", "load_secrets"]


def _password() -> str:
    return _random.token_urlsafe(18)


def _generate() -> dict[str, Any]:
    def proxmox() -> dict[str, str]:
        return {
            "user": "root@pam",
            "password": _password(),
            "token_id": "root@pam!labops",
            "token_secret": str(uuid.uuid4()),
        }

    return {
        "pve": proxmox(),
        "pbs": proxmox(),
        "postgres": {
            "admin_user": "labops_admin",
            "admin_password": _password(),
            "reader_user": "desi_reader",
            "reader_password": _password(),
        },
        "kube": {"token": _random.token_urlsafe(32)},
    }


def load_secrets(lab_dir: Path) -> dict[str, Any]:
    """The lab's secrets (they must exist)."""
    data: dict[str, Any] = json.loads((lab_dir / "secrets.json").read_text())
    return data


def ensure_secrets(lab_dir: Path) -> dict[str, Any]:
    """Create ``secrets.json`` the first time (owner-only permissions) and return its content."""
    path = lab_dir / "secrets.json"
    if path.is_file():
        return load_secrets(lab_dir)
    lab_dir.mkdir(parents=True, exist_ok=True)
    data = _generate()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    return data
