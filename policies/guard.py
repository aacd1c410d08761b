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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from core.errors import (
    ApprovalError,
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
from policies.calls import Authorization, Caller, one_line, parse_call, validation_errors
from policies.engine import Decision, PolicyEngine
from policies.identity import valid_user_name
from policies.requests import KeyJournal, RequestKeys, request_binding
from policies.reservations import Reservations, total
from policies.usage import UsageProvider, live_usage, quota_overruns
from tools.base import ResourceRef, Tool, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.registry import get_tool, registry

__all__ = ["Authorization", "Caller", "Guard", "validation_errors"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Guard(ApprovalDesk):
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
