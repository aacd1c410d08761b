"""Run eval cases against a model: a fresh lab per case, the agent as the channels use it, then the checks.

A case that raises (a setup step failed, the model server went away, a bug) is reported as crashed with
its error and the run goes on.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.commands import ApprovalCommand, approval_command, decide, housekeeping
from agent.deps import stable_prefix, warm_up
from agent.models import chat_model, close_model, settings_for_spec
from agent.runtime import Agent, TurnResult
from agent.scripted import ScriptedChatModel, rules_responder
from agent.services import Services, build_services
from core.config import Settings
from evals.cases import Case
from evals.checks import CaseRun, CheckResult, run_checks
from evals.judge import judge
from evals.lab import EvalLab, build_index
from evals.setup import run_setup
from policies.approvals import ApprovalService
from policies.audit import AuditLog
from policies.guard import Caller
from tools.context import ToolContext
from tools.registry import all_tools, get_tool
from tools.testing import run_unguarded

__all__ = ["CaseResult", "EvalRunner"]

log = logging.getLogger(__name__)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(kw_only=True)
class CaseResult:
    """One run of one case."""

    id: str
    category: str
    tier: str
    repeat: int
    split: str = "dev"
    passed: bool
    checks: list[CheckResult] = field(default_factory=list)
    crashed: str | None = None
    unsafe: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    model_calls: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)
    # The grounding audit of every answer the case user was shown: statements found in no evidence, statements
    # the tool data contradicts, and how many the agent left out before showing the answer.
    unsourced: list[dict[str, str]] = field(default_factory=list)
    contradictions: list[dict[str, str]] = field(default_factory=list)
    left_out: int = 0

    @property
    def failed_parts(self) -> list[str]:
        """The parts of the agent the failing checks measure (``crash`` when the case did not finish)."""
        if self.crashed:
            return ["crash"]
        return sorted({c.part for c in self.checks if not c.ok})

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id, "category": self.category, "tier": self.tier, "repeat": self.repeat, "split": self.split,
            "passed": self.passed, "crashed": self.crashed, "unsafe": self.unsafe,
            "failed_parts": self.failed_parts, "latency_s": round(self.latency_s, 3), "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out, "model_calls": self.model_calls,
            "checks": [c.__dict__ for c in self.checks], "transcript": self.transcript,
            "grounding": {"unsourced": self.unsourced, "contradictions": self.contradictions,
                          "left_out": self.left_out},
        }  # fmt: skip


def _fill(text: str, names: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(names[key]) if key in names and names[key] is not None else match.group(0)

    return re.sub(r"\{([a-z_]+)\}", value, text)


def _secret_values(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    return [str(v) for part in data.values() if isinstance(part, dict) for k, v in part.items()
            if any(w in k for w in ("password", "secret", "token"))]  # fmt: skip


def _first_row(settings: Settings, sql: str) -> list[Any] | None:
    import psycopg

    from core.endpoints import postgres_dsn

    with psycopg.connect(postgres_dsn(settings), connect_timeout=10) as conn:
        row = conn.execute(sql).fetchone()  # scenario text, written by the lab
    return list(row) if row is not None else None


class _Shared:
    """The runner's documentation search, lent to one case: the case's close leaves it open for the next."""

    def __init__(self, docs: Any) -> None:
        self._docs = docs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._docs, name)

    def close(self) -> None:
        """Kept open: the runner closes it after the last case."""


class EvalRunner:
    """Holds what the cases share: the lab, the model, the embedder, the documentation index."""

    def __init__(
        self,
        base: Settings,
        *,
        model_spec: str,
        work: Path,
        use_judge: bool = False,
        overrides: dict[str, dict[str, Any]] | None = None,
        corpus: list[Path] | None = None,
    ) -> None:
        from knowledge.embeddings import embedder_for
        from knowledge.service import DocsService

        self.base = settings_for_spec(base, model_spec)
        self.model_spec = model_spec
        self.scripted = self.base.llm.provider == "scripted"
        self.lab = EvalLab(self.base, work, need_shared=True)
        self.embedder = embedder_for(self.base)
        index = build_index(work, self.base, embedder=self.embedder, corpus=corpus)
        self.docs_uri = str(index.milvus.uri)
        self.docs = DocsService(index, embedder=self.embedder)
        self.model: Any = None if self.scripted else chat_model(self.base)[0]
        self.model_info = {"spec": model_spec, "provider": self.base.llm.provider,
                           "model": "scripted" if self.scripted else self.base.llm.model}  # fmt: skip
        self.use_judge = use_judge and not self.scripted
        self.overrides = dict(overrides or {})
        self.write_tools = {t.name for t in all_tools() if t.risk != "read"}

    def close(self) -> None:
        """Release the model client, the index and the simulators."""
        if self.model is not None:
            close_model(self.model)
        self.docs.close()
        self.lab.close()

    # --- one case ------------------------------------------------------------------------------------
    def run_case(self, case: Case, repeat: int = 0) -> CaseResult:
        """Run ``case`` from a fresh lab; never raises for the case's own failures."""
        result = CaseResult(id=case.id, category=case.category, tier=case.tier, repeat=repeat, passed=False,
                            split=case.split)  # fmt: skip
        services: Services | None = None
        settings: Settings | None = None
        jobs_before: set[str] = set()
        try:
            clock_at = next((str(s["clock"]) for s in case.setup if "clock" in s), None)
            self.lab.reset(at=clock_at)
            case_dir = self.lab.case_dir(f"{case.id}-{repeat}")
            llm = self.base.llm.model_dump(by_alias=True)
            settings = self.lab.settings_for(case_dir, llm=llm, docs_uri=self.docs_uri, overrides=self.overrides)
            jobs_before = {j["job_id"] for j in self._jobs(settings)}
            names = run_setup(settings, case.setup)
            run = CaseRun(write_tools=self.write_tools, vms_before=self._vms(settings),
                          secrets=_secret_values(case_dir / "secrets.json"))  # fmt: skip
            made_by_setup = {j["job_id"] for j in self._jobs(settings)}
            services = self._services(case, settings)
            self._converse(case, services.agent, names, run, result)
            run.vms_after = self._vms(settings)
            run.new_jobs = self._new_jobs(case, settings, made_by_setup)
            if case.expect.answer_sql:
                run.sql_row = _first_row(settings, case.expect.answer_sql)
            run.audit = AuditLog.from_settings(settings).tail(100_000)
            run.approvals = {a.id: a.as_dict() for a in ApprovalService.from_settings(settings).list()}
            result.checks = run_checks(case, run, names)
            result.unsafe = [c.detail for c in result.checks if c.check == "no unsafe action" and not c.ok]
            if self.use_judge and case.expect.judge and all(c.ok for c in result.checks):
                verdict, why = judge(self.model, case.expect.judge, case.turns[0].say or "", run.final)
                result.checks.append(CheckResult(check=f"judge: {case.expect.judge}", part="judge", ok=verdict,
                                                 detail=why))  # fmt: skip
            result.passed = all(c.ok for c in result.checks)
        except Exception as exc:  # boundary: one case's crash is reported, the run goes on
            log.warning("case %s crashed", case.id, exc_info=True)
            result.crashed = f"{type(exc).__name__}: {exc}"
            result.transcript.append({"error": traceback.format_exc(limit=6)})
        finally:
            if services is not None:
                services.close()
            if settings is not None:
                self._stop_new_jobs(settings, jobs_before)
        return result

    def _services(self, case: Case, settings: Settings) -> Services:
        """The case's composition: its own store and guard, the runner's model, docs index and embedder."""
        model = self.model
        if self.scripted:
            rules = case.script or [{"reply": "The scripted model has no rule for this case."}]
            model = ScriptedChatModel(responder=rules_responder(rules))
        return build_services(settings, model=model, docs=_Shared(self.docs), embedder=self.embedder)

    def _converse(self, case: Case, agent: Agent, names: dict[str, Any], run: CaseRun, result: CaseResult) -> None:
        threads: dict[str, str] = {}
        histories: dict[str, list[dict[str, str]]] = {}
        channel = "api" if case.channel == "openwebui" else case.channel

        def record(turn_result: TurnResult, user: str) -> None:
            result.latency_s += turn_result.latency_s
            result.tokens_in += turn_result.tokens_in
            result.tokens_out += turn_result.tokens_out
            result.model_calls += turn_result.model_calls
            if user == case.user:
                grounding = turn_result.grounding or {}
                result.unsourced += list(grounding.get("unsourced", []))
                result.contradictions += list(grounding.get("contradictions", []))
                result.left_out += len(grounding.get("left_out", []))
                run.answers.append(turn_result.answer)
                run.final = turn_result.answer
                run.status = turn_result.status
                run.citations += turn_result.citations
                run.tool_calls += turn_result.tool_calls
                if turn_result.pending:  # the call waiting for its approval is a call the agent made
                    pending = turn_result.pending
                    args = pending.get("args") or {}
                    run.tool_calls.append({"name": pending.get("tool"), "args": args, "status": "needs_approval"})
            if turn_result.pending:
                names["approval_id"] = turn_result.pending.get("approval_id")

        for n, turn in enumerate(case.turns):
            user = turn.as_user or case.user
            caller = Caller(user=user, channel=channel, request_id=f"eval-{case.id}-{n}")
            if turn.say is None:
                verb = "approve" if turn.approve not in (None, False) else "deny"
                reason = turn.deny if verb == "deny" else ("" if turn.approve is True else str(turn.approve))
                command: ApprovalCommand | None = ApprovalCommand(
                    verb=verb, approval_id=str(names.get("approval_id")), reason=reason or ""
                )
                text = f"{verb} {names.get('approval_id')}"
            else:
                text = _fill(turn.say, names)
                command = approval_command(text)
            entry: dict[str, Any] = {"user": user, "text": text}
            if command is not None:
                decided = decide(agent, caller, command)
                entry["answer"] = decided.text
                if user == case.user:
                    run.answers.append(decided.text)
                if decided.resumed is not None:
                    record(decided.resumed, str((decided.approval or {}).get("requester")))
                    entry["resumed"] = decided.resumed.answer
                result.transcript.append(entry)
                continue
            history = histories.setdefault(user, [])
            history.append({"role": "user", "content": text})
            task = housekeeping(history) if case.channel == "openwebui" else None
            if task is not None:
                entry["answer"] = task
                if user == case.user:
                    run.answers.append(task)
                    run.final, run.status = task, "answered"
                history.append({"role": "assistant", "content": task})
                result.transcript.append(entry)
                continue
            turn_result = agent.ask(text, caller=caller, thread=threads.setdefault(user, agent.new_thread()))
            record(turn_result, user)
            history.append({"role": "assistant", "content": turn_result.answer})
            entry.update(answer=turn_result.answer, status=turn_result.status, citations=turn_result.citations,
                         tool_calls=turn_result.tool_calls, latency_s=turn_result.latency_s,
                         route=turn_result.route)  # fmt: skip
            if turn_result.read_as != text:
                entry["read_as"] = turn_result.read_as
            result.transcript.append(entry)

    # --- the lab around a case ------------------------------------------------------------------------
    @staticmethod
    def _vms(settings: Settings) -> list[dict[str, Any]]:
        ctx = ToolContext(settings=settings, user="admin1")
        data = run_unguarded(get_tool("vm.list"), ctx, {"include_templates": False}).data or []
        return list(data)

    @staticmethod
    def _jobs(settings: Settings) -> list[dict[str, Any]]:
        result = run_unguarded(get_tool("ray.list"), ToolContext(settings=settings, user="admin1"), {})
        return list(result.data or []) if result.status == "ok" else []

    def _new_jobs(self, case: Case, settings: Settings, before: set[str]) -> list[dict[str, Any]]:
        wait = any(c.ray_job and str(c.ray_job.get("status")) in TERMINAL for c in case.expect.state)
        deadline = time.monotonic() + (180 if wait else 0)
        while True:
            jobs = [j for j in self._jobs(settings) if j["job_id"] not in before]
            if not wait or all(j["status"] in TERMINAL for j in jobs) or time.monotonic() > deadline:
                return jobs
            time.sleep(1.0)

    def _stop_new_jobs(self, settings: Settings, before: set[str]) -> None:
        try:
            for job in self._jobs(settings):
                if job["job_id"] not in before and job["status"] not in TERMINAL:
                    run_unguarded(get_tool("ray.stop"), ToolContext(settings=settings, user="admin1"),
                                  {"job_id": job["job_id"]})  # fmt: skip
        except Exception:  # boundary: cleanup must not turn a finished case into a crash
            log.warning("stopping the case's Ray jobs failed", exc_info=True)

    # --- many cases -----------------------------------------------------------------------------------
    def run(self, cases: list[Case], *, repeat: int = 1,
            progress: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:  # fmt: skip
        """Every case ``repeat`` times."""
        results = []
        if not self.scripted and stable_prefix(self.base):
            # Once per run, so the first case's latency is its own and not the model server's cold cache.
            warmed = warm_up(self.model, all_tools(self.base))
            if warmed is not None:
                log.info("the model server evaluated the shared start of the tool prompts in %.1f s", warmed)
        for n in range(repeat):
            for case in cases:
                outcome = self.run_case(case, n)
                results.append(outcome)
                if progress is not None:
                    progress(outcome)
        return results
