"""Approvals: bound to one exact call, single-use, expiring, given by someone policy allows.

An approval stores the hash of (tool, canonical validated arguments, requester, policy version); the call
that runs must produce the same hash. States: ``pending`` → ``approved`` → ``used``, or ``denied`` /
``expired``. Stored in SQLite next to the audit log (``<lab_dir>/labops.sqlite``).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config import Settings
from core.errors import ApprovalError
from core.store import Database, Session
from policies.directory import Directory
from policies.engine import ApprovalRule

__all__ = ["Approval", "ApprovalService", "binding", "mismatch"]

State = Literal["pending", "approved", "used", "denied", "expired"]


def binding(tool: str, args: dict[str, Any], requester: str, policy_version: str) -> str:
    """The hash an approval is bound to."""
    text = json.dumps(
        {"tool": tool, "args": args, "requester": requester, "policy": policy_version}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def mismatch(approval: Approval, *, tool: str, args: dict[str, Any], requester: str, policy_version: str) -> str:
    """Why ``approval`` does not cover this call, in words that say what to do (it is bound to all four)."""
    if approval.requester != requester:
        return (
            f"approval {approval.id} belongs to {approval.requester}'s request, and an approval covers only the call "
            "of the user who asked for it; ask for your own (make the call without --approval)"
        )
    if approval.tool != tool:
        return f"approval {approval.id} was given for {approval.tool} ({approval.summary}), not for {tool}"
    if approval.args != args:
        return (
            f"approval {approval.id} was given for a different call ({approval.summary}); "
            "changed arguments need a new approval"
        )
    if approval.policy_version != policy_version:
        return (
            f"the policies changed since approval {approval.id} was given, so it no longer applies; "
            "make the call again to request a new approval"
        )
    return f"approval {approval.id} was given for a different call ({approval.summary})"


@dataclass(kw_only=True, frozen=True)
class Approval:
    """One approval request."""

    id: str
    tool: str
    args: dict[str, Any]
    summary: str
    requester: str
    binding: str
    policy_version: str
    role: str
    four_eyes: bool
    required: int
    approvers: list[str]
    state: State
    created: float
    expires: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


class ApprovalService:
    """Create, decide and consume approvals."""

    def __init__(self, store: Database | Path, directory: Directory, *, ttl_seconds: int) -> None:
        self.db = store if isinstance(store, Database) else Database.sqlite(store)
        self.directory, self.ttl = directory, ttl_seconds
        self.db.ensure_schema()

    @classmethod
    def from_settings(cls, settings: Settings, directory: Directory | None = None) -> ApprovalService:
        """The lab's approval store."""
        if directory is None:
            from policies.engine import PolicyEngine

            directory = PolicyEngine.from_settings(settings).directory
        return cls(Database.from_settings(settings), directory, ttl_seconds=settings.policy.approval_ttl_seconds)

    def _save(self, db: Session, approval: Approval) -> None:
        db.execute(
            "INSERT INTO approvals (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            (approval.id, json.dumps(approval.as_dict())),
        )

    def _load(self, db: Session, approval_id: str) -> Approval:
        row = db.execute("SELECT data FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        if row is None and len(approval_id) >= 6 and approval_id.replace("_", "").isalnum():
            # A unique prefix is enough (people copy ids from narrow terminals and chat messages).
            like = approval_id.replace("%", "").replace("_", "\\_") + "%"
            rows = db.execute("SELECT data FROM approvals WHERE id LIKE ? ESCAPE '\\'", (like,)).fetchall()
            if len(rows) > 1:
                raise ApprovalError(f"{approval_id!r} matches {len(rows)} approvals; give more of the id")
            row = rows[0] if rows else None
        if row is None:
            raise ApprovalError(f"there is no approval {approval_id!r}; list them with `labops approvals list`")
        approval = Approval(**json.loads(row[0]))
        if approval.state in ("pending", "approved") and time.time() > approval.expires:
            approval = Approval(**{**approval.as_dict(), "state": "expired"})
            self._save(db, approval)
        return approval

    def create(
        self, *, tool: str, args: dict[str, Any], summary: str, requester: str, policy_version: str, rule: ApprovalRule
    ) -> Approval:
        """A pending approval for exactly this call."""
        now = time.time()
        approval = Approval(
            id="apr_" + uuid.uuid4().hex[:12],
            tool=tool,
            args=args,
            summary=summary,
            requester=requester,
            binding=binding(tool, args, requester, policy_version),
            policy_version=policy_version,
            role=rule.role,
            four_eyes=rule.four_eyes,
            required=rule.required,
            approvers=[],
            state="pending",
            created=now,
            expires=now + (rule.expires_seconds or self.ttl),
            reason="",
        )
        with self.db.transaction() as db:
            self._save(db, approval)
        return approval

    def get(self, approval_id: str) -> Approval:
        """One approval."""
        with self.db.transaction() as db:
            approval = self._load(db, approval_id)
            return approval

    def list(self, *, state: State | None = None) -> list[Approval]:
        """Approvals, newest first."""
        with self.db.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM approvals").fetchall()]
            items = [self._load(db, i) for i in ids]
        items = [a for a in items if state is None or a.state == state]
        return sorted(items, key=lambda a: -a.created)

    def approve(self, approval_id: str, *, approver: str, reason: str = "") -> Approval:
        """Record an approval by ``approver``; raises ApprovalError naming what is wrong."""
        with self.db.transaction(lock="approvals") as db:
            a = self._load(db, approval_id)
            if a.state != "pending":
                raise ApprovalError(f"approval {a.id} is {a.state}; only pending approvals can be approved")
            if a.role not in self.directory.user(approver).roles:
                raise ApprovalError(f"{approver} cannot approve {approval_id}: it needs a user with role {a.role!r}")
            if a.four_eyes and approver == a.requester:
                raise ApprovalError(f"{approver} asked for this call and cannot approve it: a second person must")
            if approver in a.approvers:
                raise ApprovalError(f"{approver} already approved {approval_id}")
            approvers = [*a.approvers, approver]
            state: State = "approved" if len(approvers) >= a.required else "pending"
            a = Approval(**{**a.as_dict(), "approvers": approvers, "state": state, "reason": reason})
            self._save(db, a)
            return a

    def deny(self, approval_id: str, *, approver: str, reason: str) -> Approval:
        """Refuse a request, with a reason that goes back to the requester."""
        with self.db.transaction(lock="approvals") as db:
            a = self._load(db, approval_id)
            if a.state not in ("pending", "approved"):
                raise ApprovalError(f"approval {approval_id} is {a.state}; it can no longer be denied")
            if a.role not in self.directory.user(approver).roles:
                raise ApprovalError(f"{approver} cannot decide {approval_id}: it needs a user with role {a.role!r}")
            a = Approval(
                **{
                    **a.as_dict(),
                    "state": "denied",
                    "reason": reason or "denied",
                    "approvers": [*a.approvers, approver],
                }
            )
            self._save(db, a)
            return a

    def consume(
        self, approval_id: str, *, tool: str, args: dict[str, Any], requester: str, policy_version: str
    ) -> Approval:
        """Use an approved approval for exactly this call (atomically, exactly once)."""
        bound_to = binding(tool, args, requester, policy_version)
        with self.db.transaction(lock="approvals") as db:
            a = self._load(db, approval_id)
            if a.binding != bound_to:
                raise ApprovalError(
                    mismatch(a, tool=tool, args=args, requester=requester, policy_version=policy_version)
                )
            if a.state != "approved":
                detail = f": {a.reason}" if a.state == "denied" and a.reason else ""
                raise ApprovalError(f"approval {approval_id} is {a.state}{detail}")
            a = Approval(**{**a.as_dict(), "state": "used"})
            self._save(db, a)
            return a
