"""Users, roles and quotas from ``policies/lab.toml`` (or ``policy.lab_file``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import PolicyError

__all__ = ["AMOUNTS", "Directory", "User"]

AMOUNTS = ("vms", "cores", "memory_mib", "gpus", "ray_jobs", "rows")


@dataclass(kw_only=True, frozen=True)
class User:
    """A principal: name, roles, whether the lab knows them, and their quota."""

    name: str
    roles: tuple[str, ...]
    known: bool
    quota: dict[str, int] = field(default_factory=dict)


@dataclass(kw_only=True, frozen=True)
class Directory:
    """Everyone the lab knows."""

    users: dict[str, tuple[str, ...]]
    quotas: dict[str, dict[str, int]]
    unknown_users: Literal["read_only", "deny"]
    os_users: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Directory:
        """Parse the file; a mistake stops startup with the file and the reason."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: {exc}") from exc
        roles = data.get("roles") or {}
        quotas: dict[str, dict[str, int]] = {}
        for role, spec in roles.items():
            quota = dict(spec.get("quota") or {})
            bad = [k for k in quota if k not in AMOUNTS]
            if bad:
                raise PolicyError(f"{path}: role {role}: unknown quota keys {bad}; use {', '.join(AMOUNTS)}")
            quotas[role] = {k: int(v) for k, v in quota.items()}
        users: dict[str, tuple[str, ...]] = {}
        os_users: dict[str, str] = {}
        for name, spec in (data.get("users") or {}).items():
            user_roles = tuple(spec.get("roles") or ())
            unknown = [r for r in user_roles if r not in roles]
            if unknown:
                raise PolicyError(f"{path}: user {name}: unknown roles {unknown}; define them under [roles]")
            users[name] = user_roles
            for account in spec.get("os_users") or ():
                if account in os_users:
                    raise PolicyError(f"{path}: operating-system user {account!r} is mapped to two lab users")
                os_users[str(account)] = name
        mode = data.get("unknown_users", "read_only")
        if mode not in ("read_only", "deny"):
            raise PolicyError(f"{path}: unknown_users must be 'read_only' or 'deny', not {mode!r}")
        return cls(users=users, quotas=quotas, unknown_users=mode, os_users=os_users)

    def approvers(self, role: str, *, excluding: str | None = None) -> list[str]:
        """The users holding ``role`` (sorted), without ``excluding``."""
        return sorted(name for name, roles in self.users.items() if role in roles and name != excluding)

    def user(self, name: str) -> User:
        """The principal ``name`` (unknown users have no roles and a zero quota)."""
        roles = self.users.get(name)
        if roles is None:
            return User(name=name, roles=(), known=False, quota=dict.fromkeys(AMOUNTS, 0))
        quota = dict.fromkeys(AMOUNTS, 0)
        for role in roles:
            for key, value in self.quotas.get(role, {}).items():
                quota[key] = max(quota[key], value)
        quota["rows"] = max(quota["rows"], 10_000_000)
        return User(name=name, roles=roles, known=True, quota=quota)
