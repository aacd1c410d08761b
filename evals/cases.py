"""Eval scenarios as written in ``evals/scenarios/*.yaml``, validated into typed cases.

A file holds one category and its cases::

    category: vm
    defaults: {user: researcher1}
    cases:
      - id: vm-list-mine
        tier: easy
        suites: [smoke]
        turns: ["Which VMs do I own?"]
        expect:
          tools: [{name: vm.list, args: {owner: researcher1}}]
          answer: ["void-analysis"]

Files live in splits: ``scenarios/dev`` (the cases the agent is tuned on), ``scenarios/test`` (held out:
written before a round of tuning, run and reported every time, never read while tuning) and
``scenarios/test2`` (a second held-out batch, written the same way once the first had been seen). A case's split is
the folder its file is in; files elsewhere (``--scenarios``) are ``dev``.

A turn is the case user's message, or ``{say: TEXT, as: USER}`` (another user's message in their own
conversation, e.g. ``approve {approval_id}``), or ``{approve: true | REASON, as: USER}`` / ``{deny: REASON,
as: USER}`` (an approver deciding the newest pending approval, as in chat). ``{approval_id}`` and the
placeholders setup steps define (``{job_id}``, ``{vmid}``) are filled in when the turn runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError

__all__ = ["SPLITS", "Case", "Expect", "StateCheck", "ToolExpectation", "Turn", "load_cases"]

Tier = Literal["easy", "medium", "hard"]
Channel = Literal["chat", "cli", "slack", "api", "openwebui"]
Outcome = Literal["allowed", "approval_requested", "denied", "none"]
# test2: a second held-out batch, written on 2026-12-06 after the first one had been seen (its README).
Split = Literal["dev", "test", "test2"]
SPLITS: tuple[Split, ...] = ("dev", "test", "test2")
SCENARIOS = Path(__file__).parent / "scenarios"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Turn(_Strict):
    """One step of a conversation."""

    say: str | None = Field(None, description="A message.")
    as_user: str | None = Field(None, alias="as", description="Who says it or decides (default: the case user).")
    approve: bool | str | None = Field(None, description="Approve the newest pending approval (true or a reason).")
    deny: str | None = Field(None, description="Deny the newest pending approval with this reason.")

    @model_validator(mode="after")
    def _one_kind(self) -> Turn:
        kinds = [k for k in ("say", "approve", "deny") if getattr(self, k) not in (None, False)]
        if len(kinds) != 1:
            raise ValueError("a turn is exactly one of say, approve or deny")
        return self


class ToolExpectation(_Strict):
    """A call the agent must make: the tool and a subset of its arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class StateCheck(_Strict):
    """One fact about the lab after the conversation."""

    vm: dict[str, Any] | None = Field(None, description="A VM with these fields exists (name, cores, memory_gib, …).")
    no_vm: str | None = Field(None, description="No VM has this name.")
    vm_status: dict[str, Any] | None = Field(None, description="{vmid, status}: the VM is in this state.")
    vms_unchanged: bool | None = Field(None, description="The set of VMs and their power states did not change.")
    ray_job: dict[str, Any] | None = Field(None, description="A job submitted in the case has these fields.")
    no_ray_job: bool | None = Field(None, description="No Ray job was submitted in the case.")

    @model_validator(mode="after")
    def _one_check(self) -> StateCheck:
        if sum(v is not None for v in self.__dict__.values()) != 1:
            raise ValueError(
                "a state check names exactly one of vm, no_vm, vm_status, vms_unchanged, ray_job, no_ray_job"
            )
        return self


class Expect(_Strict):
    """What must be true after the case (every listed check)."""

    status: Literal["answered", "needs_approval"] | None = None
    tools: list[ToolExpectation] = Field(default_factory=list, description="Each must be called (args subset).")
    tools_any: list[ToolExpectation] = Field(default_factory=list, description="At least one must be called.")
    not_called: list[str] = Field(default_factory=list, description="Never proposed (tool names).")
    not_run: list[str] = Field(default_factory=list, description="Never executed (tool names; '*' any write).")
    no_tools: bool = Field(False, description="No tool at all (e.g. answered from the docs).")
    policy: Outcome | None = Field(None, description="Outcome of the first write or destructive call.")
    state: list[StateCheck] = Field(default_factory=list)
    answer: list[str | int | float] = Field(default_factory=list, description="Facts the final answer contains.")
    answer_any: list[str | int | float] = Field(default_factory=list, description="At least one of these.")
    answer_not: list[str] = Field(default_factory=list, description="Words the answers never contain.")
    answer_sql: str | None = Field(
        None,
        description="A SELECT on the DESI tables; each value of its first row must "
        "be in the answer (ground truth from the database itself).",
    )
    no_secrets: bool = Field(False, description="No answer contains a password, token or key of the lab.")
    citations: list[str] = Field(default_factory=list, description="Each a substring of some citation ('a|b': either).")
    asks: bool = Field(False, description="The answer asks the user a question back (clarification).")
    json_keys: list[str] = Field(default_factory=list, description="The answer is a JSON object with these keys.")
    judge: str | None = Field(None, description="A rubric for the model-as-judge check (optional, last).")

    @model_validator(mode="after")
    def _something(self) -> Expect:
        checks = self.model_dump(exclude_defaults=True)
        if not checks or set(checks) == {"judge"}:
            raise ValueError("expect needs at least one deterministic check (judge is never the only one)")
        return self


class Case(_Strict):
    """One scenario."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,60}$")
    category: str
    tier: Tier
    suites: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    user: str = "researcher1"
    channel: Channel = "chat"
    setup: list[dict[str, Any]] = Field(default_factory=list, description="Lab changes before the first turn.")
    turns: list[Turn]
    expect: Expect
    script: list[dict[str, Any]] | None = Field(None, description="Rules for the scripted model (harness tests).")
    source: str = ""
    split: Split = "dev"

    @field_validator("turns", mode="before")
    @classmethod
    def _turns(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [{"say": t} if isinstance(t, str) else t for t in value or []]

    @field_validator("setup")
    @classmethod
    def _setup(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from evals.setup import STEPS

        for step in value:
            if len(step) != 1 or next(iter(step)) not in STEPS:
                raise ValueError(f"a setup step is one of {sorted(STEPS)}, got {step!r}")
        return value


def _load_file(path: Path) -> list[Case]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the eval scenarios in {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or "category" not in data:
        raise ConfigError(f"{path}: write `category: NAME` and `cases: [...]` at the top level")
    defaults = dict(data.get("defaults") or {})
    cases = []
    for n, raw in enumerate(data["cases"], 1):
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: case {n} is not a mapping")
        try:
            split = path.parent.name if path.parent.name in SPLITS else "dev"
            source = f"{split}/{path.name}" if path.parent.name in SPLITS else path.name
            cases.append(
                Case.model_validate({**defaults, "category": data["category"], **raw, "source": source, "split": split})
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: case {raw.get('id', n)!r}: {problems}") from exc
    return cases


def load_cases(
    paths: list[Path] | None = None, *, suite: str | None = None, tags: list[str] | None = None,
    ids: list[str] | None = None, split: Split | Literal["all"] = "all",
) -> list[Case]:  # fmt: skip
    """The cases of the scenario files (default: both splits under ``evals/scenarios``), filtered."""
    files: list[Path] = []
    for path in paths or [SCENARIOS]:
        files += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"no scenario files in {paths or [SCENARIOS]}")
    cases = [c for f in files for c in _load_file(f)]
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            raise ConfigError(f"two cases are called {case.id!r} ({seen[case.id].source} and {case.source}); "
                              "ids must be unique")  # fmt: skip
        seen[case.id] = case
    if split != "all":
        cases = [c for c in cases if c.split == split]
    if suite and suite != "full":
        cases = [c for c in cases if suite in c.suites]
    if tags:
        cases = [c for c in cases if set(tags) & {*c.tags, c.category, c.tier}]
    if ids:
        cases = [c for c in cases if c.id in ids]
    if not cases:
        raise ConfigError("no case matches: check --suite / --tags / --case (`labops eval --list` shows them)")
    return cases
