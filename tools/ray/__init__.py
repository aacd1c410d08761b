"""Ray job tools: submit a job from a reviewed template, follow it, read its logs, stop it, list jobs.

Backends (``ray.backend``): ``jobs``, the Ray Jobs API of ``ray.address`` (default: the embedded head), or
``kuberay``, RayJob objects through the Kubernetes API (see :mod:`tools.ray.kuberay`).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from core.endpoints import postgres_dsn
from core.errors import InvalidArguments
from tools.base import Check, NameLookup, OwnThing, Plan, ResourceRef, Tool, ToolArgs, ToolResult, Toolset
from tools.context import ToolContext
from tools.ray.backend import RayBackend
from tools.ray.jobs_api import JobsApi
from tools.ray.options import prepare_submit
from tools.ray.templates import JobTemplate, load_templates, template

__all__ = ["TOOLS", "TOOLSET"]

JOB_ID = {"job_id": ("id", "job", "submission_id", "jobid")}

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
MAX_LOG_BYTES = 64 * 1024


def _api(ctx: ToolContext) -> RayBackend:
    if ctx.settings.ray.backend == "kuberay":
        from tools.ray.kuberay import KubeRayBackend  # the kubernetes client is only imported when used

        return ctx.client("kuberay", KubeRayBackend)
    return ctx.client("ray", JobsApi)


class NoArgs(ToolArgs):
    """No arguments."""


def list_templates(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """The job templates that ray.submit can run: name, what it does, its options, default CPUs."""
    templates = load_templates(ctx.settings).values()
    rows = [
        {
            "name": t.name,
            "description": t.description,
            "entrypoint": t.entrypoint,
            "num_cpus": t.num_cpus,
            "options": t.options,
        }
        for t in templates
    ]

    def line(t: JobTemplate) -> str:
        opts = ", ".join(f"--{k} ({v})" for k, v in t.options.items())
        return f"{t.name}: {t.description}" + (f" Options: {opts}." if opts else "")

    return ToolResult.ok("templates:\n" + "\n".join(f"- {line(t)}" for t in templates), data=rows)


class SubmitArgs(ToolArgs):
    """Arguments of ``ray.submit``."""

    template: str = Field(
        ...,
        min_length=1,
        max_length=64,
        # A template is a folder name: a control character or quote in it is no template, and must not reach
        # a terminal, a log line or the policy request as it was typed.
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Job template name, e.g. 'parallel-sum' (see ray.templates).",
    )
    args: list[Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=list, max_length=32, description="Extra command-line arguments, e.g. ['--n', '1000']."
    )
    num_cpus: float | None = Field(
        None, gt=0, le=64, description="CPUs for the job's driver; default from the template."
    )
    num_gpus: float = Field(0, ge=0, le=1, description="GPUs (the lab has one RTX A4000).")
    memory_gib: float | None = Field(None, gt=0, le=256, description="Memory for the driver in GiB.")
    pip: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=16, description="Extra pip packages; only names on ray.runtime_env_allowlist."
    )


def _submission_id(request_key: str | None) -> str:
    # A request key maps to a fixed submission id, so Ray itself refuses a second job for a repeated call.
    if request_key:
        return "labops_" + hashlib.sha1(request_key.encode()).hexdigest()[:16]
    return "labops_" + uuid.uuid4().hex[:16]


def _body(ctx: ToolContext, args: SubmitArgs, working_dir: str) -> dict[str, Any]:
    tpl = template(ctx.settings, args.template)
    not_allowed = [p for p in [*tpl.pip, *args.pip] if p not in ctx.settings.ray.runtime_env_allowlist]
    if not_allowed:
        raise InvalidArguments(f"pip packages not on ray.runtime_env_allowlist: {', '.join(not_allowed)}")
    runtime_env: dict[str, Any] = {"working_dir": working_dir, "env_vars": {"RAY_AUTH_MODE": "disabled"}}
    if tpl.needs_desi_dsn:
        runtime_env["env_vars"].update(
            DESI_DSN=postgres_dsn(ctx.settings), DESI_SCHEMA=ctx.settings.postgres.schema_name
        )
    if tpl.pip or args.pip:
        runtime_env["pip"] = [*tpl.pip, *args.pip]
    body: dict[str, Any] = {
        "entrypoint": " ".join([tpl.entrypoint, *(shlex.quote(a) for a in args.args)]),
        "submission_id": _submission_id(ctx.request_key),
        "runtime_env": runtime_env,
        "metadata": {"owner": ctx.user, "template": tpl.name, "submitted_by": "labops"},
        "entrypoint_num_cpus": args.num_cpus if args.num_cpus is not None else tpl.num_cpus,
        "entrypoint_num_gpus": args.num_gpus,
    }
    if args.memory_gib:
        body["entrypoint_memory"] = int(args.memory_gib * 1024**3)
    return body


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    meta = job.get("metadata") or {}
    return {
        "job_id": job.get("submission_id"),
        "status": job.get("status"),
        "message": job.get("message"),
        "owner": meta.get("owner", ""),
        "template": meta.get("template", ""),
        "entrypoint": job.get("entrypoint"),
        "start_time_ms": job.get("start_time"),
        "end_time_ms": job.get("end_time"),
    }


def submit(ctx: ToolContext, args: SubmitArgs) -> ToolResult:
    """Submit a Ray job from a job template (code reviewed in the repository), with its CPU/GPU/memory request."""
    api = _api(ctx)
    sid = _submission_id(ctx.request_key)
    if ctx.request_key and (existing := api.get(sid)) is not None:
        return ToolResult.ok(
            f"this request already submitted job {sid} ({existing.get('status')})", data=_job_row(existing)
        )
    tpl = template(ctx.settings, args.template)
    body = _body(ctx, args, api.upload_dir(tpl.directory))
    body["submission_id"] = sid
    job_id = api.submit(body)
    ctx.landed()  # Ray lists the job from here on, so quota usage counts it
    job = api.get(job_id) or {"submission_id": job_id, "status": "PENDING", "metadata": body["metadata"]}
    return ToolResult.ok(
        f"submitted job {job_id} from template {tpl.name}; follow it with ray.status", data=_job_row(job)
    )


def plan_submit(ctx: ToolContext, args: SubmitArgs) -> Plan:
    """What a submit would do."""
    try:
        tpl = template(ctx.settings, args.template)
        ok, detail = True, f"template {tpl.name}: {tpl.entrypoint}"
    except InvalidArguments as exc:
        ok, detail = False, str(exc)
    bad_pip = [p for p in args.pip if p not in ctx.settings.ray.runtime_env_allowlist]
    return Plan(
        tool="ray.submit",
        summary=_submit_summary(args),
        api_calls=["PUT /api/packages/gcs/<template package> (if new)", "POST /api/jobs/", "GET /api/jobs/<id>"],
        capacity={"num_cpus": args.num_cpus, "num_gpus": args.num_gpus, "memory_gib": args.memory_gib},
        checks=[
            Check(name="template", passed=ok, detail=detail),
            Check(
                name="pip allow-list",
                passed=not bad_pip,
                detail="ok" if not bad_pip else f"not allowed: {', '.join(bad_pip)}",
            ),
        ],
        resources=[ResourceRef(type="Job", id=args.template, attrs={"owner": ctx.user})],
    )


def _submit_summary(args: SubmitArgs) -> str:
    extra = f" {' '.join(args.args)}" if args.args else ""
    cpus = f", {args.num_cpus} CPUs" if args.num_cpus else ""
    gpus = f", {args.num_gpus} GPU" if args.num_gpus else ""
    return f"run Ray job template {args.template}{extra}{cpus}{gpus}"


class JobArgs(ToolArgs):
    """A job by id."""

    job_id: str = Field(
        ...,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The job's submission id exactly as returned, e.g. 'labops_3f2a…' or 'raysubmit_…'.",
    )


def _job(ctx: ToolContext, job_id: str) -> dict[str, Any]:
    job = _api(ctx).get(job_id)
    if job is None:
        raise InvalidArguments(f"there is no job {job_id!r}; list jobs with ray.list (copy the id exactly)")
    return job


def status(ctx: ToolContext, args: JobArgs) -> ToolResult:
    """A Ray job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and message."""
    row = _job_row(_job(ctx, args.job_id))
    return ToolResult.ok(f"job {args.job_id}: {row['status']} ({row['message']})", data=row)


class LogsArgs(JobArgs):
    """Arguments of ``ray.logs``."""

    tail: int = Field(50, ge=1, le=2000, description="Number of last lines to return.")


def logs(ctx: ToolContext, args: LogsArgs) -> ToolResult:
    """The last lines of a Ray job's log (at most 64 KiB)."""
    _job(ctx, args.job_id)
    # Job output often carries terminal colours (Ray's own log prefixes do); they are noise to people and models.
    text = _ANSI.sub("", _api(ctx).logs(args.job_id))
    lines = text.splitlines()[-args.tail :]
    out = "\n".join(lines)
    if len(out.encode()) > MAX_LOG_BYTES:
        out = out.encode()[-MAX_LOG_BYTES:].decode("utf-8", "ignore")
    if not out.strip():
        return ToolResult.no_data(f"job {args.job_id} has no log output yet", data={"lines": []})
    return ToolResult.ok(f"last {len(lines)} log lines of {args.job_id}:\n{out}", data={"lines": out.splitlines()})


def stop(ctx: ToolContext, args: JobArgs) -> ToolResult:
    """Stop a running Ray job."""
    job = _job(ctx, args.job_id)
    if job.get("status") in TERMINAL:
        return ToolResult.ok(f"job {args.job_id} already ended ({job.get('status')})", data=_job_row(job))
    stopped = _api(ctx).stop(args.job_id)
    return ToolResult.ok(
        f"job {args.job_id} {'is stopping' if stopped else 'was not running'}", data=_job_row(_job(ctx, args.job_id))
    )


def plan_stop(ctx: ToolContext, args: JobArgs) -> Plan:
    """What a stop would do."""
    job = _job(ctx, args.job_id)
    return Plan(
        tool="ray.stop",
        summary=f"stop Ray job {args.job_id}",
        api_calls=[f"POST /api/jobs/{args.job_id}/stop"],
        checks=[Check(name="running", passed=job.get("status") not in TERMINAL, detail=str(job.get("status")))],
        resources=_job_ref(ctx, args),
    )


def _job_ref(ctx: ToolContext, args: JobArgs) -> list[ResourceRef]:
    job = _api(ctx).get(args.job_id) or {}
    return [ResourceRef(type="Job", id=args.job_id, attrs={"owner": (job.get("metadata") or {}).get("owner", "")})]


class ListArgs(ToolArgs):
    """Filters for ``ray.list``."""

    owner: str | None = Field(None, description="Only jobs submitted by this user.")
    status: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"] | None = Field(
        None, description="Only this status."
    )


def list_jobs(ctx: ToolContext, args: ListArgs) -> ToolResult:
    """Ray jobs on the cluster, newest first, with status, owner and template; filter by owner or status."""
    rows = [_job_row(j) for j in _api(ctx).list() if j.get("type", "SUBMISSION") == "SUBMISSION"]
    rows = [
        r
        for r in rows
        if (args.owner is None or r["owner"] == args.owner) and (args.status is None or r["status"] == args.status)
    ]
    rows.sort(key=lambda r: r["start_time_ms"] or 0, reverse=True)
    if not rows:
        return ToolResult.no_data("no jobs match", data=[])
    return ToolResult.ok(
        f"{len(rows)} jobs; {sum(r['status'] in ('PENDING', 'RUNNING') for r in rows)} pending or running", data=rows
    )


TOOLS: list[Tool[Any]] = [
    Tool(
        name="ray.templates",
        args_model=NoArgs,
        fn=list_templates,
        risk="read",
        summary=lambda a: "list Ray job templates",
        rows=("job templates", "ray templates"),
        words=(
            "templates",
            "template",
            "which jobs can",
            "what jobs can",
            "jobs can i run",
            "jobs i can run",
            "kinds of jobs",
            "types of jobs",
            "kinds of ray jobs",
            "types of ray jobs",
        ),
        examples=("Which Ray job templates can I run?",),
    ),
    Tool(
        name="ray.submit",
        args_model=SubmitArgs,
        fn=submit,
        risk="write",
        summary=_submit_summary,
        plan=plan_submit,
        numbers=lambda a: {"ray_jobs": 1, "cpus": int(a.num_cpus or 1), "gpus": int(a.num_gpus > 0)},
        resources=lambda ctx, a: [ResourceRef(type="Job", id=a.template, attrs={"owner": ctx.user})],
        words=("submit", "run the", "kick off"),
        # Not "job": every question about a job holds it ("my ray job has been PENDING forever, what's going on?"
        # was offered ray.submit, which the model took, and the user was asked which template to run).
        asks=("run", "submit", "start", "launch", "kick off", "execute", "schedule", "compute"),
        aliases={"template": ("job_template", "name", "job_name")},
        # "run heartbeat on the gpu": the model left num_gpus at 0 and the job ran without the GPU asked for.
        values={"num_gpus": dict.fromkeys(("a gpu", "the gpu", "on gpu", "with gpu", "gpu job", "gpu-enabled"), 1)},
        # A template named in a message ("launch the heartbeat job") points at this tool, whatever the verb.
        named_by={"template": NameLookup(tool="ray.templates", value="name")},
        prepare=prepare_submit,
        examples=("Run the parallel-sum job.", "Submit the redshift-histogram job with 20 bins."),
    ),
    Tool(
        name="ray.status",
        args_model=JobArgs,
        fn=status,
        risk="read",
        summary=lambda a: f"status of Ray job {a.job_id}",
        words=("status",),
        aliases=JOB_ID,
        examples=("What is the status of job labops_1a2b?",),
    ),
    Tool(
        name="ray.logs",
        args_model=LogsArgs,
        fn=logs,
        risk="read",
        summary=lambda a: f"last {a.tail} log lines of {a.job_id}",
        words=("log", "logs", "output", "print", "printed"),
        aliases=JOB_ID,
        examples=("Show me the log of job labops_1a2b.",),
    ),
    Tool(
        name="ray.stop",
        args_model=JobArgs,
        fn=stop,
        risk="write",
        summary=lambda a: f"stop Ray job {a.job_id}",
        plan=plan_stop,
        resources=_job_ref,
        asks=("stop", "cancel", "kill", "abort", "halt", "terminate"),
        aliases=JOB_ID,
        own=OwnThing(
            arg="job_id",
            tool="ray.list",
            value="job_id",
            where={"status": ("PENDING", "RUNNING")},
            what="pending or running job",
        ),
        examples=("Stop my Ray job labops_1a2b.",),
    ),
    Tool(
        name="ray.list",
        args_model=ListArgs,
        fn=list_jobs,
        risk="read",
        summary=lambda a: "list Ray jobs",
        rows=("jobs", "ray jobs", "cluster jobs"),
        words=("my jobs", "list", "running", "pending", "queued"),
        examples=("List my Ray jobs.", "What is running on the Ray cluster?"),
        mine="owner",
    ),
]

TOOLSET = Toolset(
    name="ray", words=("ray", "job", "jobs", "cluster job", "histogram", "submit"), title="Ray jobs", tools=TOOLS
)
