"""Running an authorized call, as the guard does it: policy again, the approval used once, audit around it.

A mixin of :class:`policies.guard.Guard` (it uses the guard's engine, approval store, request keys, quota
reservations and audit log). Between ``authorize`` and ``execute`` time may pass (an approval), so the call is
decided again here, with the amounts of the caller's calls in progress reserved in the same transaction; the
audit entry is written before the side effect (no entry, no call) and the result after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.errors import ApprovalError, AuditError, BackendUnavailable, ConfigError, ToolError
from policies.approvals import ApprovalService
from policies.calls import Authorization, one_line
from policies.engine import Decision, PolicyEngine
from policies.requests import KeyJournal, RequestKeys, request_binding
from policies.reservations import Reservations, total
from tools.base import Tool, ToolArgs, ToolResult
from tools.context import ToolContext

if TYPE_CHECKING:
    from policies.calls import Caller

__all__ = ["Execution"]


class Execution:
    """The execute half of the guard's authorize/execute pair."""

    settings: Settings
    engine: PolicyEngine | None
    approvals: ApprovalService | None
    keys: RequestKeys | None
    reservations: Reservations | None
    context: ToolContext

    def _record(self, caller: Caller, tool: str, args: Any, **fields: Any) -> int:  # provided by Guard
        raise NotImplementedError

    def decide(  # provided by Guard
        self, tool: Tool[Any], args: ToolArgs, caller: Caller, *, reserved: dict[str, int] | None = None
    ) -> Decision:
        """Ask the policies about one call (the guard's)."""
        raise NotImplementedError

    def execute(self, authorization: Authorization) -> ToolResult:
        """Run an authorized call: policy again with quota reservations, the approval used once, audit around it."""
        assert self.engine is not None and self.approvals is not None and self.keys is not None
        tool, args, caller = authorization.tool, authorization.args, authorization.caller
        dumped = args.model_dump(mode="json")
        key = authorization.call_id if tool.risk != "read" else None
        resuming = False
        if key is not None:
            claim = self.keys.claim(key, tool.name, request_binding(tool.name, caller.user, dumped))
            if claim.state == "done" and claim.result is not None:
                return ToolResult.model_validate(claim.result)
            if claim.state in ("running", "conflict"):
                why = (
                    f"a call with request key {key!r} is still running; ask again in a minute"
                    if claim.state == "running"
                    else f"request key {key!r} was already used for a different call; use a new request key"
                )
                self._record(caller, tool.name, dumped, event="refused", message=why, request_key=key)
                return ToolResult.error(why)
            resuming = claim.state == "resume"
        reservation: str | None = None
        try:
            decision, reservation = self._decide_and_reserve(tool, args, caller)
            refused = self._refusal_at_execution(authorization, decision, dumped)
            if refused is not None:
                if key is not None:
                    self.keys.release(key, tool.name)
                return refused
            try:
                seq = self._record(
                    caller,
                    tool.name,
                    dumped,
                    event="started",
                    approval_id=authorization.approval_id,
                    summary=tool.summary(args),
                    request_key=key,
                    resuming=resuming or None,
                )
            except AuditError as exc:
                if key is not None:
                    self.keys.release(key, tool.name)
                return ToolResult.error(f"not run: {exc}")
            journal = KeyJournal(self.keys, key, tool.name) if key is not None else None
            ctx = self.context.for_call(
                user=caller.user,
                request_key=key,
                audit_seq=seq,
                resuming=resuming,
                journal=journal,
                landed=self._landed(reservation),
            )
            result, interrupted = self._run(tool, ctx, args, caller, dumped, seq)
        finally:
            if reservation is not None:
                assert self.reservations is not None
                self.reservations.release(reservation)
        if key is not None:
            if result.status in ("ok", "no_data"):
                self.keys.finish(key, tool.name, result.model_dump(mode="json"))
            elif interrupted and self.keys.steps(key, tool.name):
                # Cut off half-way by a backend that went away: the retry with this key resumes the steps.
                self.keys.interrupt(key, tool.name)
                result = result.model_copy(
                    update={"message": f"{result.message}. The request was interrupted half-way; repeat it with "
                                       f"the same request key ({key}) to finish it once the backend is back."}
                )  # fmt: skip
            else:
                self.keys.release(key, tool.name)  # tools leave nothing behind when they fail
        return result

    def _landed(self, reservation: str | None) -> Callable[[], None] | None:
        """The tool's "it shows in the lab now" hook: the reservation goes at once (released again at the end)."""
        if reservation is None:
            return None
        reservations = self.reservations
        assert reservations is not None
        return lambda: reservations.release(reservation)

    def _decide_and_reserve(self, tool: Tool[Any], args: ToolArgs, caller: Caller) -> tuple[Decision, str | None]:
        """Decide, counting calls in progress, and reserve this call's amounts in the same transaction.

        A call in progress counts as reserved and, once its job or VM shows, in the live usage too, until it
        lands (``ToolContext.landed``) or ends. So a quota refusal while the user has calls in progress may be
        that double count: wait for one of them to land, then decide again (bounded by
        ``policy.quota_wait_timeout``; after it the refusal stands).
        """
        numbers = {k: v for k, v in tool.numbers(args).items() if v and k != "rows"}
        if tool.risk == "read" or not numbers:
            return self.decide(tool, args, caller), None
        assert self.reservations is not None
        deadline = time.monotonic() + self.settings.policy.quota_wait_timeout
        while True:
            with self.reservations.transaction() as tx:
                active = tx.active(caller.user)
                decision = self.decide(tool, args, caller, reserved=total(active))
                if decision.decision != "deny":
                    return decision, tx.add(caller.user, tool.name, numbers)
            over_quota = any(p.endswith("quota") for p in decision.policies)
            if not (over_quota and active and self.reservations.wait_released(set(active), deadline=deadline)):
                return decision, None

    def _refusal_at_execution(
        self, authorization: Authorization, decision: Decision, dumped: dict[str, Any]
    ) -> ToolResult | None:
        """The envelope when policy (again) refuses, or the approval cannot be used; None when the call may run."""
        assert self.engine is not None and self.approvals is not None
        tool, caller = authorization.tool, authorization.caller
        if decision.decision == "deny":
            self._record(caller, tool.name, dumped, event="denied_at_execution", reasons=decision.reasons)
            return ToolResult(status="denied", message="; ".join(decision.reasons), data=decision.as_dict())
        if decision.decision == "needs_approval":
            if authorization.approval_id is None:
                return ToolResult.error(f"{tool.name} now needs an approval; call again to request one")
            try:
                self.approvals.consume(
                    authorization.approval_id,
                    tool=tool.name,
                    args=dumped,
                    requester=caller.user,
                    policy_version=self.engine.version,
                )
            except ApprovalError as exc:
                self._record(caller, tool.name, dumped, event="approval_refused", message=str(exc))
                return ToolResult.error(str(exc))
        return None

    def _run(
        self, tool: Tool[Any], ctx: ToolContext, args: ToolArgs, caller: Caller, dumped: dict[str, Any], seq: int
    ) -> tuple[ToolResult, bool]:
        """The tool's result, and whether a backend went away during the call."""
        started = time.monotonic()
        interrupted = False
        try:
            result = tool.run(ctx, args)
        except BackendUnavailable as exc:
            result, interrupted = ToolResult.error(one_line(str(exc))), True
            # The next call resolves the backend again: an embedded lab's part may have restarted elsewhere.
            self.context.forget_clients()
        except (ToolError, ConfigError) as exc:
            result = ToolResult.error(one_line(str(exc)))
        except Exception as exc:
            # A bug: record it, then let it raise (a request key stays claimed: a retry resumes).
            self._record(caller, tool.name, dumped, event="crashed", started_seq=seq, error=repr(exc)[:2000])
            raise
        self._record(
            caller,
            tool.name,
            dumped,
            event="finished",
            started_seq=seq,
            result=result.status,
            message=result.message[:500],
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return result, interrupted
