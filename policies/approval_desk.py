"""Approvals as the guard handles them: requesting one for a call, and deciding one (approve or deny).

A mixin of :class:`policies.guard.Guard` (it uses the guard's engine, approval store and audit log):
deciding an approval is itself a guarded action (Cedar ``approval.approve`` / ``approval.deny``), recorded
before anything changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import ApprovalError, BackendUnavailable, ConfigError, PolicyError, ToolError
from policies.approvals import Approval, ApprovalService, mismatch
from policies.engine import Decision, PolicyEngine
from tools.base import ResourceRef, Tool, ToolArgs, ToolResult

if TYPE_CHECKING:
    from policies.calls import Caller

__all__ = ["ApprovalDesk"]


class ApprovalDesk:
    """Approval handling shared by the guard's call path and its approve/deny entry points."""

    engine: PolicyEngine | None
    approvals: ApprovalService | None
    context: Any

    def _record(self, caller: Caller, tool: str, args: Any, **fields: Any) -> int:  # provided by Guard
        raise NotImplementedError

    def _request_approval(self, tool: Tool[Any], args: ToolArgs, caller: Caller, decision: Decision) -> ToolResult:
        assert self.engine is not None and self.approvals is not None and decision.approval is not None
        dumped = args.model_dump(mode="json")
        plan = None
        if tool.plan is not None:
            try:
                planned = tool.dry_run(self.context.for_call(user=caller.user, request_key=None), args)
            except (ToolError, BackendUnavailable, ConfigError) as exc:
                plan = {"error": str(exc)}
            else:
                plan = planned.model_dump(mode="json")
                if not planned.feasible:
                    # Nobody is asked to approve a call that cannot run: the requester is told what to change.
                    why = "; ".join(c.detail for c in planned.checks if not c.passed)
                    self._record(caller, tool.name, dumped, event="not_feasible", reasons=[why])
                    return ToolResult.error(
                        f"{tool.summary(args)} cannot run as asked, so no approval was requested: {why}",
                        data={"plan": plan},
                    )
        approval = self.approvals.create(
            tool=tool.name,
            args=dumped,
            summary=tool.summary(args),
            requester=caller.user,
            policy_version=self.engine.version,
            rule=decision.approval,
        )
        self._record(caller, tool.name, dumped, event="approval_requested", approval_id=approval.id)
        approvers = self.engine.directory.approvers(
            approval.role, excluding=caller.user if approval.four_eyes else None
        )
        who = f"a user with role {approval.role}" + (" other than you" if approval.four_eyes else "")
        if approvers:
            who += f" ({', '.join(approvers)})"
        example = approvers[0] if approvers else "<approver>"
        return ToolResult(
            status="needs_approval",
            message=f"{tool.summary(args)} needs approval by {who}: approval {approval.id}, expires in "
            f"{int(approval.expires - approval.created) // 60} min. An approver runs "
            f"`labops approvals approve {approval.id} --as {example}`; then repeat this request with "
            f"`--approval {approval.id}`.",
            data={"approval": approval.as_dict(), "plan": plan, "reasons": decision.reasons, "approvers": approvers},
        )

    def _find(self, approval_id: str) -> Approval | None:
        assert self.approvals is not None
        try:
            return self.approvals.get(approval_id)
        except ApprovalError:
            return None

    def _approval_problem(
        self,
        approval_id: str,
        approval: Approval | None,
        bound: str,
        *,
        tool: str,
        args: dict[str, Any],
        caller: Caller,
    ) -> str:
        assert self.engine is not None
        if approval is None:
            return f"there is no approval {approval_id!r}; list them with `labops approvals list`"
        if approval.binding != bound:
            return mismatch(approval, tool=tool, args=args, requester=caller.user, policy_version=self.engine.version)
        if approval.state == "denied":
            return f"approval {approval.id} was denied: {approval.reason}"
        return f"approval {approval.id} is {approval.state}" + (
            " (waiting for an approver)" if approval.state == "pending" else ""
        )

    # --- deciding approvals --------------------------------------------------------------------------
    def approve(self, approval_id: str, *, caller: Caller, reason: str = "") -> ToolResult:
        """Approve a request: Cedar decides who may, the audit log records it before anything changes."""
        return self._decide_approval("approval.approve", approval_id, caller=caller, reason=reason)

    def deny(self, approval_id: str, *, caller: Caller, reason: str) -> ToolResult:
        """Deny a request with a reason the requester sees (same checks as :meth:`approve`)."""
        return self._decide_approval("approval.deny", approval_id, caller=caller, reason=reason)

    def _decide_approval(self, action: str, approval_id: str, *, caller: Caller, reason: str) -> ToolResult:
        assert self.engine is not None and self.approvals is not None
        args = {"approval_id": approval_id, "reason": reason}
        try:
            approval = self.approvals.get(approval_id)
        except ApprovalError as exc:
            self._record(caller, action, args, event="decision", decision="deny", reasons=[str(exc)])
            return ToolResult.error(str(exc))
        args["approval_id"] = approval.id
        resource = ResourceRef(
            type="Approval",
            id=approval.id,
            attrs={"requester": approval.requester, "tool": approval.tool, "role": approval.role},
        )
        user = self.engine.user(caller.user)
        context = self.engine.context(channel=caller.channel, numbers={}, usage={}, user=user)
        try:
            decision = self.engine.decide(user=caller.user, action=action, resources=[resource], context=context)
        except PolicyError as exc:
            decision = Decision(decision="deny", reasons=[f"policy evaluation failed: {exc}"])
        self._record(
            caller,
            action,
            args,
            event="decision",
            decision=decision.decision,
            reasons=decision.reasons,
            call=approval.tool,
        )
        if decision.decision != "allow":
            return ToolResult(status="denied", message="; ".join(decision.reasons), data=decision.as_dict())
        try:
            if action == "approval.approve":
                done = self.approvals.approve(approval.id, approver=caller.user, reason=reason)
            else:
                done = self.approvals.deny(approval.id, approver=caller.user, reason=reason)
        except ApprovalError as exc:
            self._record(caller, action, args, event="approval_refused", message=str(exc))
            return ToolResult.error(str(exc), data={"approval": approval.as_dict()})
        self._record(caller, action, args, event="approved" if done.state != "denied" else "denied", state=done.state)
        if done.state == "denied":
            message = f"{done.id} denied: {done.requester} is told: {done.reason}"
        elif done.state == "approved":
            message = f"{done.id} is approved: {done.requester} may now run {done.summary} (with --approval {done.id})"
        else:
            message = f"{done.id} has {len(done.approvers)} of {done.required} approvals; it needs more"
        return ToolResult.ok(message, data={"approval": done.as_dict()})
