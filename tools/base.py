"""What a tool is: a typed function, its argument model, its risk, a summary of a call, and a plan.

A tool never decides whether it may run: the guard (``policies.guard``) validates the arguments,
asks policy, handles approvals and writes the audit log, then calls :meth:`Tool.run`. Tools
import nothing of ``agent``, ``policies`` or ``channels``.

Results travel in one envelope, :class:`ToolResult`, whose ``status`` the model can act on:
``ok``, ``error`` (recoverable: fix the arguments or try later), ``no_data``, ``needs_approval``
and ``denied`` (the last two are set by the guard, never by a tool).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from tools.context import ToolContext

__all__ = [
    "DEFAULT_RESOURCE_TYPES",
    "EXAMPLE_NAME",
    "Check",
    "NameLookup",
    "OwnThing",
    "Plan",
    "ResourceRef",
    "Risk",
    "Status",
    "Tool",
    "ToolArgs",
    "ToolResult",
    "Toolset",
    "UnguardedCall",
]

Risk = Literal["read", "write", "destructive"]
Status = Literal["ok", "error", "no_data", "needs_approval", "denied"]
ResourceType = Literal["Lab", "Node", "VM", "Job", "Table", "Datastore", "Approval"]


class ToolArgs(BaseModel):
    """Base of every tool's argument model: unknown fields are an error, not silently dropped."""

    # Strict: numbers are numbers and booleans are booleans ("yes" is not true, true is not 1).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class ToolResult(BaseModel):
    """The one result envelope of every tool call."""

    status: Status
    data: Any = None
    message: str

    @classmethod
    def ok(cls, message: str, data: Any = None) -> ToolResult:
        """A successful call."""
        return cls(status="ok", data=data, message=message)

    @classmethod
    def error(cls, message: str, data: Any = None) -> ToolResult:
        """A recoverable failure; the message says what to change."""
        return cls(status="error", data=data, message=message)

    @classmethod
    def no_data(cls, message: str, data: Any = None) -> ToolResult:
        """The call worked but found nothing."""
        return cls(status="no_data", data=data, message=message)

    def records(self) -> list[dict[str, Any]]:
        """A successful listing's rows; a result about one thing (a datastore's status) is one row; else none."""
        if self.status != "ok":
            return []
        if isinstance(self.data, dict):
            return [self.data]
        return [row for row in self.data if isinstance(row, dict)] if isinstance(self.data, list) else []


class ResourceRef(BaseModel):
    """A thing a call touches, as policy sees it (a Cedar resource entity)."""

    type: ResourceType
    id: str
    attrs: dict[str, Any] = Field(default_factory=dict)


class Check(BaseModel):
    """One pre-flight check of a plan."""

    name: str
    passed: bool
    detail: str


class Plan(BaseModel):
    """What a mutating call would do, without doing it (dry run); approvals show it."""

    tool: str
    summary: str
    api_calls: list[str] = Field(default_factory=list, description="Exact API calls, in order.")
    capacity: dict[str, Any] = Field(default_factory=dict, description="Capacity the call would use.")
    checks: list[Check] = Field(default_factory=list)
    resources: list[ResourceRef] = Field(default_factory=list)

    @property
    def feasible(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)


A = TypeVar("A", bound=ToolArgs)


def _no_resources(ctx: ToolContext, args: Any) -> list[ResourceRef]:
    return [ResourceRef(type="Lab", id="lab")]


def _no_numbers(args: Any) -> dict[str, int]:
    return {}


# What each risk group's actions may touch, unless a tool names its own resource types.
DEFAULT_RESOURCE_TYPES: dict[Risk, tuple[ResourceType, ...]] = {
    "read": ("Lab", "Node", "VM", "Job", "Table", "Datastore"),
    "write": ("Lab", "Node", "VM", "Job"),
    "destructive": ("VM",),
}


class UnguardedCall(RuntimeError):
    """A tool was run without the guard (no audit entry records the call): a bug in the caller."""


# The name a tool's examples give a thing people name freely (a VM). The agent puts it in place of the lab's own
# names before matching a message to tools, so a name's words ("void", "qso", "fit") pull no tool and an
# example written with a real VM's name does not make that VM's questions its tool's.
EXAMPLE_NAME = "alpha-1"


@dataclass(kw_only=True, frozen=True)
class NameLookup:
    """How an argument may be given by name: a read tool lists the things, one field names them.

    ``vmid`` of ``vm.show`` takes "void-analysis" through ``vm.list`` (``name`` → ``vmid``); ``node`` of
    ``vm.provision`` takes "the GPU node" through ``vm.nodes``, whose rows say which node has a GPU. The
    listing runs through the guard as the user, like any other read.
    """

    tool: str
    value: str
    name: str | None = None


@dataclass(kw_only=True, frozen=True)
class OwnThing:
    """The asker's one thing a change acts on when they call it theirs ("cancel my ray job").

    ``tool`` lists the asker's things (its ``mine`` argument takes the asker, through the guard like any read);
    of its rows whose fields hold one of ``where``'s values (a job still pending or running), the one there is
    gives ``arg`` its ``value``. With none or several, nothing is filled and the user is asked as before.
    """

    arg: str
    tool: str
    value: str
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    what: str = "thing"  # how the note names it: "your only pending or running job"


# What the agent may learn from the user's words for a call: the arguments, the context, the user's message.
Prepare = Callable[[ToolContext, dict[str, Any], str], dict[str, Any]]


@dataclass(kw_only=True, frozen=True)
class Tool(Generic[A]):
    """A registered tool.

    Attributes:
        name: dotted name, also the Cedar action id (``vm.provision``).
        args_model: pydantic model of the arguments; its schema and field descriptions are the prompt.
        fn: the implementation ``fn(ctx, args) -> ToolResult``; its docstring is the description.
        risk: ``read``, ``write`` or ``destructive``.
        summary: one-line human summary of a call (approvals, Slack, audit log).
        plan: dry run for mutating tools (required unless ``risk == "read"``).
        resources: the things a call touches, for policy (may read the lab, e.g. a VM's tags).
        numbers: the call's numbers for policy context (cores, memory_mib, gpus, rows, ...).
        resource_types: the Cedar resource types the action applies to (default: by risk).
        rows: for a read tool that lists things, what its rows are, in the plural people ask for them with
            ("vms", "virtual machines" for ``vm.list``): a question for a list or a count of them ("how many
            VMs ...?", "which nodes ...?") is this tool's, not its family's other reads'.
        words: words and phrases that point to this tool rather than its family's other tools ("failed",
            "stale" for ``backup.check``); they settle look-alike tools when the message names the family.
        asks: for a write or destructive tool, the phrases by which a person asks for it ("shut down" for
            ``vm.stop``); a call nobody asked for is refused before the guard (the intent gate).
        aliases: for each argument, other names a model writes for it (``ram`` for ``memory_gib``).
        values: for each argument, phrases by which a person gives its value without naming the argument
            ("hard" for ``mode="stop"`` of ``vm.stop``, "on the gpu" for ``num_gpus=1`` of ``ray.submit``); a
            change takes that value over the model's, as it takes an amount the user stated.
        examples: requests this tool answers, as people write them (tool retrieval embeds them).
        named_by: for each argument, how a thing the user names resolves to its value (:class:`NameLookup`).
        prepare: fills arguments the user's words give but the model left out (a job template's options).
        mine: the argument that takes the asking user's name when they ask about their own things ("my VMs":
            ``owner`` of ``vm.list``); set by the agent from the channel's identity, never from the model.
        own: for a change, the asker's one thing it acts on when they call it theirs and give no id
            (:class:`OwnThing`: "cancel my ray job" with one job running).
        recognizes: regular expressions for text only this tool takes (an SQL statement for ``desi.query``):
            a message holding one is about the lab's tools, whatever else it says.
        remedies: the problems a call of this tool fixes, as incidents name them (``backup:failed``); an
            incident with one of them offers the call as a one-click fix, its arguments filled from the
            incident's subject (``vmid``). The click still goes through the guard as the clicking user.

    The risk is the tool's only declaration of how dangerous it is: the Cedar action group (``read``,
    ``write``, ``destructive``) is generated from it (``policies.schema``), so the two cannot disagree.
    Everything the agent needs to pick and fill a tool is declared here too; the agent holds no table of
    tool names.
    """

    name: str
    args_model: type[A]
    fn: Callable[[ToolContext, A], ToolResult]
    risk: Risk
    summary: Callable[[A], str]
    plan: Callable[[ToolContext, A], Plan] | None = None
    resources: Callable[[ToolContext, A], list[ResourceRef]] = field(default=_no_resources)
    numbers: Callable[[A], dict[str, int]] = field(default=_no_numbers)
    resource_types: tuple[ResourceType, ...] | None = None
    rows: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    asks: tuple[str, ...] = ()
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    examples: tuple[str, ...] = ()
    named_by: Mapping[str, NameLookup] = field(default_factory=dict)
    prepare: Prepare | None = None
    mine: str | None = None
    own: OwnThing | None = None
    recognizes: tuple[str, ...] = ()
    remedies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.risk != "read" and self.plan is None:
            raise TypeError(f"tool {self.name} has risk {self.risk!r} but no plan")
        if not inspect.getdoc(self.fn):
            raise TypeError(f"tool {self.name} has no docstring; it is the model's prompt")
        if self.risk != "read" and not self.asks:
            raise TypeError(f"tool {self.name} changes the lab but declares no `asks` (how a person asks for it)")
        if self.rows and self.risk != "read":
            raise TypeError(f"tool {self.name}: only a read tool lists rows")
        if self.remedies and self.risk == "read":
            raise TypeError(f"tool {self.name} reads only, so it remedies nothing: drop `remedies`")
        fields = set(self.args_model.model_fields)
        own = {self.own.arg} if self.own else set()
        named = set(self.aliases) | set(self.values) | set(self.named_by) | ({self.mine} if self.mine else set())
        unknown = (named | own) - fields
        if unknown:
            raise TypeError(f"tool {self.name}: aliases/values/named_by/mine/own name no argument: {sorted(unknown)}")
        for arg, said in self.values.items():
            # A value a phrase gives must be one the argument takes, or every call that used it would be refused.
            for phrase, value in said.items():
                try:
                    self.args_model.__pydantic_validator__.validate_assignment(
                        self.args_model.model_construct(), arg, value
                    )
                except ValueError as exc:
                    raise TypeError(f"tool {self.name}: {phrase!r} gives {arg}={value!r}, which it refuses") from exc

    @property
    def description(self) -> str:
        """What the model reads: the implementation's docstring."""
        return inspect.getdoc(self.fn) or ""

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments (field descriptions included)."""
        return self.args_model.model_json_schema()

    def parse(self, raw: dict[str, Any] | A) -> A:
        """Validate raw arguments; raises ``pydantic.ValidationError``."""
        if isinstance(raw, self.args_model):
            return raw
        return self.args_model.model_validate(raw)

    @property
    def cedar_group(self) -> Risk:
        """The Cedar action group of this tool: its risk."""
        return self.risk

    @property
    def cedar_resource_types(self) -> tuple[ResourceType, ...]:
        """The resource types its Cedar action applies to."""
        return self.resource_types or DEFAULT_RESOURCE_TYPES[self.risk]

    def run(self, ctx: ToolContext, args: A) -> ToolResult:
        """Execute the call. Only the guard calls this, with the context of an audited call.

        Raises:
            UnguardedCall: ``ctx`` carries no audit entry (the call did not pass the guard). Tests and
                benchmarks that mean to skip policy use :func:`tools.testing.run_unguarded`.
        """
        if ctx.audit_seq is None:
            raise UnguardedCall(f"{self.name} must be called through policies.guard.Guard (no audit entry)")
        return self.fn(ctx, args)

    def dry_run(self, ctx: ToolContext, args: A) -> Plan:
        """The plan of a call; read tools get a trivial one-step plan."""
        if self.plan is not None:
            return self.plan(ctx, args)
        return Plan(tool=self.name, summary=self.summary(args), resources=self.resources(ctx, args))


@dataclass(kw_only=True, frozen=True)
class Toolset:
    """A family of tools (``vm``, ``backup``) and the words by which people name the family."""

    name: str
    words: tuple[str, ...]
    tools: list[Tool[Any]]
    # What the family is about, as people say it ("the lab's VMs"): how the agent says what it can help with.
    title: str = ""

    def __post_init__(self) -> None:
        stray = [t.name for t in self.tools if t.name.split(".")[0] != self.name]
        if stray:
            raise TypeError(f"toolset {self.name}: tools {stray} belong to another family (name them {self.name}.*)")
