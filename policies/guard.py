"""The guard: the single entry point for tool calls, and for deciding approvals, from every channel.

``authorize`` validates the arguments, asks the Cedar policies, and either returns an
:class:`Authorization`, creates an approval (``needs_approval``), or refuses (``denied``). ``execute``
evaluates policy again (a quota used up or a tag added since stops the call), consumes the approval
exactly once, writes the audit entry *before* the side effect (no entry, no call) and the result after.
``approve`` and ``deny`` decide an approval the same way: Cedar first, an audit entry, then the change.
The guard does not know the agent graph: an agent can authorize in one node and execute in a later one,
after an approval interrupt, so a resumed graph never repeats a side effect; the CLI calls both at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from core.errors import (
    AuditError,
    BackendUnavailable,
    ConfigError,
    InvalidArguments,
    PolicyError,
    ToolError,
)
from policies.approval_desk import ApprovalDesk
from policies.approvals import ApprovalService, binding
from policies.audit import AuditLog
from policies.calls import Authorization, Caller, parse_call, validation_errors
from policies.engine import Decision, PolicyEngine
from policies.execution import Execution
from policies.identity import valid_user_name
from policies.requests import RequestKeys, request_binding
from policies.reservations import Reservations
from policies.usage import UsageProvider, live_usage, quota_overruns
from tools.base import ResourceRef, Tool, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.registry import get_tool, registry

__all__ = ["Authorization", "Caller", "Guard", "validation_errors"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Guard(Execution, ApprovalDesk):
    """Policy, approvals and audit around every tool call."""

    settings: Settings
    lookup: Callable[[str], Tool[Any]] = get_tool
    engine: PolicyEngine | None = None
    approvals: ApprovalService | None = None
    audit: AuditLog | None = None
    keys: RequestKeys | None = None
    reservations: Reservations | None = None
    usage: UsageProvider = live_usage
    services: dict[str, Any] = field(default_factory=dict)
    context: ToolContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = ToolContext(settings=self.settings, services=self.services)
        self.engine = self.engine or PolicyEngine.from_settings(self.settings)
        self.approvals = self.approvals or ApprovalService.from_settings(self.settings, self.engine.directory)
        self.audit = self.audit or AuditLog.from_settings(self.settings)
        self.keys = self.keys or RequestKeys.from_settings(self.settings)
        self.reservations = self.reservations or Reservations(self.keys.db)

    @classmethod
    def from_settings(cls, settings: Settings, *, services: dict[str, Any] | None = None) -> Guard:
        """A guard over the registered toolsets (``tools.extra`` included) and the configured policies."""
        return cls(settings=settings, services=dict(services or {}), lookup=registry(settings).get)

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
        if caller.real_user and caller.real_user != caller.user:
            entry["real_user"] = caller.real_user
        if caller.request_id:
            entry["request_id"] = caller.request_id
        if caller.origin:
            entry["origin"] = dict(caller.origin)
        return self.audit.append(entry)

    def decide(
        self, tool: Tool[Any], args: ToolArgs, caller: Caller, *, reserved: dict[str, int] | None = None
    ) -> Decision:
        """Ask the policies about one call (resources and usage read from the lab, plus ``reserved`` amounts)."""
        assert self.engine is not None
        if not valid_user_name(caller.user):
            return Decision(
                decision="deny",
                reasons=[
                    f"{caller.user!r} is not a valid user name (letters, digits and . _ @ -, up to 64 characters)"
                ],
            )
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
            for key, amount in (reserved or {}).items():
                usage[key] = usage.get(key, 0) + amount
        user = self.engine.user(caller.user)
        context = self.engine.context(channel=caller.channel, numbers=numbers, usage=usage, user=user)
        try:
            decision = self.engine.decide(user=caller.user, action=tool.name, resources=resources, context=context)
        except PolicyError as exc:
            log.error("policy evaluation failed for %s", tool.name, exc_info=True)
            return Decision(decision="deny", reasons=[f"policy evaluation failed, so the call is refused: {exc}"])
        if decision.decision == "deny" and any(p.endswith("quota") for p in decision.policies):
            what = {"vm.provision": "this VM", "ray.submit": "this job"}.get(tool.name, "this call")
            details = quota_overruns(
                caller.user, request=numbers, usage=usage, quota=user.quota, what=what, reserved=reserved
            )
            decision = Decision(decision="deny", reasons=[*details, *decision.reasons], policies=decision.policies)
        return decision

    # --- the API -------------------------------------------------------------------------------------
    def check(self, tool_name: str, raw_args: dict[str, Any], *, caller: Caller) -> Decision | ToolResult:
        """Policy only (``labops policy check``)."""
        parsed = parse_call(self.lookup, tool_name, raw_args)
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
        parsed = parse_call(self.lookup, tool_name, raw_args)
        if isinstance(parsed, ToolResult):
            self._record(caller, tool_name, raw_args, event="decision", decision="invalid", reasons=[parsed.message])
            return parsed
        tool, args = parsed
        dumped = args.model_dump(mode="json")
        replay = self._replay(tool, dumped, caller, call_id)
        if replay is not None:
            return replay
        spent = self._spent_approval(approval_id, tool, dumped, caller)
        if spent is not None:
            return spent
        try:
            decision = self.decide(tool, args, caller)
        except InvalidArguments as exc:
            self._record(caller, tool.name, dumped, event="decision", decision="invalid", reasons=[str(exc)])
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
            approval = self._find(approval_id)
            if approval is not None and approval.binding == bound and approval.state == "approved":
                return Authorization(
                    tool=tool, args=args, caller=caller, call_id=call_id, approval_id=approval.id, decision=decision
                )
            why = self._approval_problem(approval_id, approval, bound, tool=tool.name, args=dumped, caller=caller)
            self._record(caller, tool.name, dumped, event="approval_refused", approval_id=approval_id, message=why)
            return ToolResult.error(why, data={"approval_id": approval_id})
        return self._request_approval(tool, args, caller, decision)

    def _spent_approval(
        self, approval_id: str | None, tool: Tool[Any], dumped: dict[str, Any], caller: Caller
    ) -> ToolResult | None:
        """The refusal of a call that brings an approval already used, denied or expired (it says so first).

        Without this, a replayed approval was refused for whatever policy said next (a quota the first call
        filled), hiding that approvals work once.
        """
        if approval_id is None:
            return None
        approval = self._find(approval_id)
        if approval is None or approval.state not in ("used", "denied", "expired"):
            return None
        why = self._approval_problem(
            approval_id, approval, approval.binding, tool=tool.name, args=dumped, caller=caller
        )
        if approval.state == "used":
            why = (
                f"approval {approval.id} was used already: an approval works once; make the call again to request "
                "a new one"
            )
        self._record(
            caller, tool.name, dumped, event="decision", decision="deny", reasons=[why], approval_id=approval_id
        )
        return ToolResult.error(why, data={"approval_id": approval.id})

    def _replay(
        self, tool: Tool[Any], dumped: dict[str, Any], caller: Caller, call_id: str | None
    ) -> ToolResult | None:
        """The stored result of a finished call with this request key, or a refusal of a reused key."""
        if call_id is None or tool.risk == "read":
            return None
        assert self.keys is not None
        found = self.keys.lookup(call_id, tool.name, request_binding(tool.name, caller.user, dumped))
        if found.state == "conflict":
            why = (
                f"request key {call_id!r} was already used for a different {tool.name} call (another user or other "
                "arguments); use a new request key"
            )
            self._record(
                caller, tool.name, dumped, event="decision", decision="deny", reasons=[why], request_key=call_id
            )
            return ToolResult.error(why)
        if found.state == "done" and found.result is not None:
            self._record(caller, tool.name, dumped, event="decision", decision="replay", request_key=call_id)
            result = ToolResult.model_validate(found.result)
            return result.model_copy(
                update={"message": f"(repeated request {call_id}: nothing new was done) {result.message}"}
            )
        return None

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
        parsed = parse_call(self.lookup, tool_name, raw_args)
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

    def action(self, action: str, args: dict[str, Any], *, caller: Caller) -> Decision:
        """Policy's word on a guard action that is not a tool (``incident.resolve``), recorded in the audit log.

        The resource is the lab; the caller's roles decide (``policies/cedar``).
        """
        assert self.engine is not None
        if not valid_user_name(caller.user):
            decision = Decision(decision="deny", reasons=[f"{caller.user!r} is not a valid user name"])
        else:
            user = self.engine.user(caller.user)
            context = self.engine.context(channel=caller.channel, numbers={}, usage={}, user=user)
            try:
                lab = [ResourceRef(type="Lab", id="lab")]
                decision = self.engine.decide(user=caller.user, action=action, resources=lab, context=context)
            except PolicyError as exc:
                decision = Decision(decision="deny", reasons=[f"policy evaluation failed: {exc}"])
        self._record(caller, action, args, event="decision", decision=decision.decision, reasons=decision.reasons)
        return decision

    def note(self, caller: Caller, event: str, **fields: Any) -> int:
        """Record something that is not a tool call (an incident opened or resolved) in the same audit log."""
        return self._record(caller, fields.pop("tool", "(incident)"), fields.pop("args", None), event=event, **fields)

    def refuse_identity(self, *, caller: Caller, reason: str) -> None:
        """Record a request a channel refused because of who it claimed to be (a forged or unverifiable identity).

        ``caller`` is who the channel could vouch for (an API key's owner, an unlinked Slack account), with
        the claim in ``caller.origin``.
        """
        self._record(caller, "(identity)", None, event="identity_refused", reasons=[reason], by="channel")

    def refuse(self, tool_name: str, raw_args: dict[str, Any], *, caller: Caller, reason: str) -> ToolResult:
        """Record a call a channel refused before asking policy (e.g. the agent's intent gate) and say so."""
        self._record(caller, tool_name, raw_args, event="decision", decision="deny", reasons=[reason], by="channel")
        return ToolResult(status="denied", message=reason)
