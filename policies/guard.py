"""The guard: the single entry point for tool calls from every channel.

``authorize`` validates the arguments, asks the Cedar policies, and either returns an
:class:`Authorization`, creates an approval (``needs_approval``), or refuses (``denied``). ``execute``
evaluates policy again (a quota used up or a tag added since stops the call), consumes the approval
exactly once, writes the audit entry *before* the side effect (no entry, no call) and the result after.
The guard does not know the agent graph: an agent can authorize in one node and execute in a later one,
after an approval interrupt, so a resumed graph never repeats a side effect; the CLI calls both at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from core.config import Settings
from core.errors import ApprovalError, AuditError, BackendUnavailable, ConfigError, InvalidArguments, ToolError
from policies.approvals import ApprovalService, binding
from policies.audit import AuditLog
from policies.engine import Decision, PolicyEngine
from tools.base import ResourceRef, Tool, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.registry import get_tool

__all__ = ["Authorization", "Caller", "Guard", "UsageProvider", "live_usage"]

log = logging.getLogger(__name__)

Channel = Literal["cli", "chat", "slack", "eval", "api"]
# (context, user, the amounts the call asks for) -> the user's current usage of those amounts
UsageProvider = Callable[[ToolContext, str, set[str]], dict[str, int]]


@dataclass(kw_only=True, frozen=True)
class Caller:
    """Who is calling, and from where."""

    user: str
    channel: Channel
    request_text: str | None = None


@dataclass(kw_only=True, frozen=True)
class Authorization:
    """A validated, allowed (or approved) call that :meth:`Guard.execute` may run."""

    tool: Tool[Any]
    args: ToolArgs
    caller: Caller
    call_id: str | None = None
    approval_id: str | None = None
    decision: Decision | None = None


def live_usage(ctx: ToolContext, user: str, needs: set[str]) -> dict[str, int]:
    """The user's current VMs and/or Ray jobs, counted from the lab (only what the call needs)."""
    from tools.ray.usage import ray_usage
    from tools.vm.usage import vm_usage

    usage: dict[str, int] = {}
    if needs & {"vms", "cores", "memory_mib"}:
        usage.update(vm_usage(ctx, user))
    if "ray_jobs" in needs:
        usage.update(ray_usage(ctx, user))
    return usage


def _validation_message(tool: Tool[Any], exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors()]
    return f"invalid arguments for {tool.name}: " + "; ".join(problems) + " (see `labops tool list --json`)"


@dataclass(kw_only=True)
class Guard:
    """Policy, approvals and audit around every tool call."""

    settings: Settings
    lookup: Callable[[str], Tool[Any]] = get_tool
    engine: PolicyEngine | None = None
    approvals: ApprovalService | None = None
    audit: AuditLog | None = None
    usage: UsageProvider = live_usage
    context: ToolContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = ToolContext(settings=self.settings)
        self.engine = self.engine or PolicyEngine.from_settings(self.settings)
        self.approvals = self.approvals or ApprovalService.from_settings(self.settings, self.engine.directory)
        self.audit = self.audit or AuditLog.from_settings(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """A guard over the registered toolsets and the configured policies."""
        return cls(settings=settings)

    # --- helpers -------------------------------------------------------------------------------------
    def _record(self, caller: Caller, tool: str, args: Any, **fields: Any) -> int:
        assert self.audit is not None
        entry = {
            "user": caller.user,
            "channel": caller.channel,
            "request": caller.request_text,
            "tool": tool,
            "args": args,
            **fields,
        }
        return self.audit.append(entry)

    def _parse(self, tool_name: str, raw: dict[str, Any]) -> tuple[Tool[Any], ToolArgs] | ToolResult:
        try:
            tool = self.lookup(tool_name)
        except InvalidArguments as exc:
            return ToolResult.error(str(exc))
        try:
            return tool, tool.parse(raw)
        except ValidationError as exc:
            return ToolResult.error(_validation_message(tool, exc), data={"errors": exc.errors(include_url=False)})

    def decide(self, tool: Tool[Any], args: ToolArgs, caller: Caller) -> Decision:
        """Ask the policies about one call (resources and usage read from the lab)."""
        assert self.engine is not None
        ctx = self.context.for_call(user=caller.user, request_key=None)
        try:
            resources: list[ResourceRef] = tool.resources(ctx, args)
        except InvalidArguments:
            raise
        except (ToolError, BackendUnavailable, ConfigError) as exc:
            return Decision(decision="deny", reasons=[f"cannot read what {tool.name} touches: {exc}"])
        numbers = tool.numbers(args)
        usage: dict[str, int] = {}
        if tool.risk != "read" and numbers:
            try:
                usage = self.usage(ctx, caller.user, {k for k, v in numbers.items() if v})
            except (ToolError, BackendUnavailable, ConfigError) as exc:
                # Quota-checked calls fail closed when usage cannot be counted.
                return Decision(decision="deny", reasons=[f"current usage could not be determined: {exc}"])
        user = self.engine.user(caller.user)
        context = self.engine.context(channel=caller.channel, numbers=numbers, usage=usage, user=user)
        return self.engine.decide(user=caller.user, action=tool.name, resources=resources, context=context)

    # --- the API -------------------------------------------------------------------------------------
    def check(self, tool_name: str, raw_args: dict[str, Any], *, caller: Caller) -> Decision | ToolResult:
        """Policy only (``labops policy check``)."""
        parsed = self._parse(tool_name, raw_args)
        if isinstance(parsed, ToolResult):
            return parsed
        try:
            return self.decide(*parsed, caller)
        except InvalidArguments as exc:
            return ToolResult.error(str(exc))

    def authorize(
        self,
        tool_name: str,
        raw_args: dict[str, Any],
        *,
        caller: Caller,
        call_id: str | None = None,
        approval_id: str | None = None,
    ) -> Authorization | ToolResult:
        """Validate and decide; an Authorization to execute, or the envelope to return."""
        assert self.engine is not None and self.approvals is not None
        parsed = self._parse(tool_name, raw_args)
        if isinstance(parsed, ToolResult):
            self._record(caller, tool_name, raw_args, event="invalid", result="error", message=parsed.message)
            return parsed
        tool, args = parsed
        dumped = args.model_dump(mode="json")
        try:
            decision = self.decide(tool, args, caller)
        except InvalidArguments as exc:
            self._record(caller, tool.name, dumped, event="invalid", result="error", message=str(exc))
            return ToolResult.error(str(exc))
        self._record(
            caller,
            tool.name,
            dumped,
            event="decision",
            decision=decision.decision,
            reasons=decision.reasons,
            approval_id=approval_id,
        )
        if decision.decision == "deny":
            return ToolResult(status="denied", message="; ".join(decision.reasons), data=decision.as_dict())
        if decision.decision == "allow":
            return Authorization(tool=tool, args=args, caller=caller, call_id=call_id, decision=decision)
        bound = binding(tool.name, dumped, caller.user, self.engine.version)
        if approval_id is not None:
            approval = self.approvals.get(approval_id) if self._exists(approval_id) else None
            if approval is not None and approval.binding == bound and approval.state == "approved":
                return Authorization(
                    tool=tool, args=args, caller=caller, call_id=call_id, approval_id=approval_id, decision=decision
                )
            why = self._approval_problem(approval_id, approval, bound)
            return ToolResult.error(why, data={"approval_id": approval_id})
        assert decision.approval is not None
        approval = self.approvals.create(
            tool=tool.name,
            args=dumped,
            summary=tool.summary(args),
            requester=caller.user,
            policy_version=self.engine.version,
            rule=decision.approval,
        )
        plan = None
        if tool.plan is not None:
            try:
                plan = tool.dry_run(self.context.for_call(user=caller.user, request_key=None), args).model_dump(
                    mode="json"
                )
            except (ToolError, BackendUnavailable, ConfigError) as exc:
                plan = {"error": str(exc)}
        self._record(caller, tool.name, dumped, event="approval_requested", approval_id=approval.id)
        who = f"a user with role {approval.role}" + (" other than you" if approval.four_eyes else "")
        return ToolResult(
            status="needs_approval",
            message=f"{tool.summary(args)} needs approval by {who}: approval {approval.id}, expires in "
            f"{int(approval.expires - approval.created) // 60} min. "
            f"Ask them to run `labops approvals approve {approval.id}`.",
            data={"approval": approval.as_dict(), "plan": plan, "reasons": decision.reasons},
        )

    def _exists(self, approval_id: str) -> bool:
        assert self.approvals is not None
        try:
            self.approvals.get(approval_id)
        except ApprovalError:
            return False
        return True

    @staticmethod
    def _approval_problem(approval_id: str, approval: Any, bound: str) -> str:
        if approval is None:
            return f"there is no approval {approval_id!r}"
        if approval.binding != bound:
            return (
                f"approval {approval_id} was given for a different call ({approval.summary}); "
                "changed arguments need a new approval"
            )
        if approval.state == "denied":
            return f"approval {approval_id} was denied: {approval.reason}"
        return f"approval {approval_id} is {approval.state}" + (
            " (waiting for an approver)" if approval.state == "pending" else ""
        )

    def execute(self, authorization: Authorization) -> ToolResult:
        """Run an authorized call: policy again, the approval used once, audit before and after."""
        assert self.engine is not None and self.approvals is not None
        tool, args, caller = authorization.tool, authorization.args, authorization.caller
        dumped = args.model_dump(mode="json")
        decision = self.decide(tool, args, caller)
        if decision.decision == "deny":
            self._record(caller, tool.name, dumped, event="denied_at_execution", reasons=decision.reasons)
            return ToolResult(status="denied", message="; ".join(decision.reasons), data=decision.as_dict())
        if decision.decision == "needs_approval":
            if authorization.approval_id is None:
                return ToolResult.error(f"{tool.name} now needs an approval; call again to request one")
            try:
                self.approvals.consume(
                    authorization.approval_id, bound_to=binding(tool.name, dumped, caller.user, self.engine.version)
                )
            except ApprovalError as exc:
                self._record(caller, tool.name, dumped, event="approval_refused", message=str(exc))
                return ToolResult.error(str(exc))
        try:
            seq = self._record(
                caller,
                tool.name,
                dumped,
                event="started",
                approval_id=authorization.approval_id,
                summary=tool.summary(args),
            )
        except AuditError as exc:
            return ToolResult.error(f"not run: {exc}")
        ctx = self.context.for_call(user=caller.user, request_key=authorization.call_id)
        started = time.monotonic()
        try:
            result = tool.run(ctx, args)
        except (ToolError, BackendUnavailable, ConfigError) as exc:
            result = ToolResult.error(str(exc))
        except Exception as exc:
            # A bug: record it, then let it raise.
            self._record(caller, tool.name, dumped, event="crashed", started_seq=seq, error=repr(exc))
            raise
        ms = (time.monotonic() - started) * 1000
        self._record(
            caller,
            tool.name,
            dumped,
            event="finished",
            started_seq=seq,
            result=result.status,
            message=result.message[:500],
            duration_ms=round(ms, 1),
        )
        return result

    def call(
        self,
        tool_name: str,
        raw_args: dict[str, Any],
        *,
        caller: Caller,
        call_id: str | None = None,
        approval_id: str | None = None,
    ) -> ToolResult:
        """Authorize and execute in one step (CLI, scripts)."""
        try:
            auth = self.authorize(tool_name, raw_args, caller=caller, call_id=call_id, approval_id=approval_id)
        except AuditError as exc:
            # Nothing runs that cannot be recorded.
            return ToolResult.error(f"not run: {exc}")
        if isinstance(auth, ToolResult):
            return auth
        return self.execute(auth)

    def plan(self, tool_name: str, raw_args: dict[str, Any], *, caller: Caller) -> ToolResult:
        """The dry run of a call, with what policy would decide; changes nothing."""
        parsed = self._parse(tool_name, raw_args)
        if isinstance(parsed, ToolResult):
            return parsed
        tool, args = parsed
        ctx = self.context.for_call(user=caller.user, request_key=None)
        try:
            plan = tool.dry_run(ctx, args)
            decision = self.decide(tool, args, caller)
        except (ToolError, BackendUnavailable, ConfigError) as exc:
            return ToolResult.error(str(exc))
        verdict = (
            "feasible" if plan.feasible else "not feasible: " + "; ".join(c.detail for c in plan.checks if not c.passed)
        )
        data = {**plan.model_dump(mode="json"), "policy": decision.as_dict()}
        return ToolResult.ok(f"plan for {plan.summary}: {verdict}; policy: {decision.decision}", data=data)
