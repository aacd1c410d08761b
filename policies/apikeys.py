"""API keys of the HTTP channels: who a bearer token is, and whether it may speak for forwarded users.

``labops keys create NAME --as USER`` prints a key once; only its sha256 is stored (in the store shared
with approvals and the audit log, so replicas see the same keys). A key acts as its owner, or, when it is
marked as a *trusted front-end* (OpenWebUI with ``ENABLE_FORWARD_USER_INFO_HEADERS``), as the user the
front-end forwards; a forwarded user on any other key is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from core.config import Settings
from core.errors import IdentityError
from core.store import Database
from policies.identity import valid_user_name

__all__ = ["ApiKey", "ApiKeys"]

PREFIX = "lops_"


@dataclass(kw_only=True, frozen=True)
class ApiKey:
    """A key as stored (never the key itself)."""

    id: str
    name: str
    user: str
    trusted_frontend: bool
    created: float
    revoked: float | None
    last_used: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """Create, find, list and revoke keys."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.db.ensure_schema()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """The lab's store."""
        return cls(Database.from_settings(settings))

    def create(self, name: str, *, user: str, trusted_frontend: bool = False) -> tuple[ApiKey, str]:
        """A new key for ``user``; returns the record and the key (shown once, never stored)."""
        if not valid_user_name(user):
            raise IdentityError(f"{user!r} is not a user name (letters, digits and . _ @ -, up to 64 characters)")
        if not name.strip() or len(name) > 100:
            raise IdentityError("give the key a name of 1 to 100 characters, e.g. 'openwebui'")
        key_id = "key_" + secrets.token_hex(6)
        key = f"{PREFIX}{key_id[4:]}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            id=key_id, name=name.strip(), user=user, trusted_frontend=trusted_frontend, created=time.time(),
            revoked=None, last_used=None,
        )  # fmt: skip
        with self.db.transaction() as s:
            s.execute(
                "INSERT INTO api_keys (id, name, digest, username, trusted, created) VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, record.name, _digest(key), user, int(trusted_frontend), record.created),
            )
        return record, key

    def _row(self, row: Any) -> ApiKey:
        key_id, name, _digest_value, user, trusted, created, revoked, last_used = row
        return ApiKey(id=key_id, name=name, user=user, trusted_frontend=bool(trusted), created=created,
                      revoked=revoked, last_used=last_used)  # fmt: skip

    def check(self, key: str) -> ApiKey | None:
        """The live key ``key`` is, or None (unknown or revoked)."""
        if not key.startswith(PREFIX):
            return None
        key_id = "key_" + key[len(PREFIX) :].split("_", 1)[0]
        with self.db.transaction() as s:
            row = s.execute(
                "SELECT id, name, digest, username, trusted, created, revoked, last_used FROM api_keys WHERE id = ?",
                (key_id,),
            ).fetchone()
            if row is None or row[6] is not None or not hmac.compare_digest(row[2], _digest(key)):
                return None
            s.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (time.time(), key_id))
        return self._row(row)

    def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        with self.db.session() as s:
            rows = s.execute(
                "SELECT id, name, digest, username, trusted, created, revoked, last_used FROM api_keys"
            ).fetchall()
        return sorted((self._row(r) for r in rows), key=lambda k: -k.created)

    def find(self, key_id: str) -> ApiKey:
        """The key whose id is ``key_id`` or starts with it (a unique prefix is enough, as for approvals)."""
        wanted = key_id.strip()
        matches = [k for k in self.list() if k.id == wanted] or [
            k for k in self.list() if len(wanted) >= 5 and k.id.startswith(wanted)
        ]
        if not matches:
            raise IdentityError(f"there is no key {key_id!r}; list them with `labops keys list`")
        if len(matches) > 1:
            raise IdentityError(
                f"{key_id!r} matches {len(matches)} keys ({', '.join(k.id for k in matches)}); give more of the id"
            )
        return matches[0]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (``key_...``) or a unique prefix of it."""
        key_id = self.find(key_id).id
        with self.db.transaction() as s:
            found = s.execute("SELECT id FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if found is None:
                raise IdentityError(f"there is no key {key_id!r}; list them with `labops keys list`")
            s.execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), key_id))
        return next(k for k in self.list() if k.id == key_id)
