"""LabOps configuration: one ``Settings`` object, loaded once at start and passed in.

Sources, highest priority first: keyword arguments, ``LABOPS_*`` environment variables
(nested sections with ``__``, e.g. ``LABOPS_PVE__HOST``), the TOML file (``labops.toml`` in the
working directory, or the path in ``LABOPS_CONFIG``/``--config``), then the defaults below.

A section whose host/URI/DSN is unset means "use the embedded lab" (``labops lab up``); setting it
points the same code at a real host. Nothing here is read at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError

__all__ = [
    "AgentSettings",
    "AuditSettings",
    "BackupSettings",
    "KubernetesSettings",
    "LlmSettings",
    "MilvusSettings",
    "PbsSettings",
    "PolicySettings",
    "PostgresSettings",
    "PveSettings",
    "RaySettings",
    "ServerSettings",
    "Settings",
    "SlackSettings",
    "ToolsSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = "labops.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PveSettings(_Section):
    """Proxmox VE API. ``host`` unset: the embedded simulator of ``labops lab up``."""

    host: str | None = Field(None, description="PVE host name or address (any cluster node).")
    port: int = 8006
    user: str = Field("root@pam", description="user@realm for ticket or token auth.")
    password: SecretStr | None = None
    token_name: str | None = Field(None, description="API token name (the part after '!').")
    token_value: SecretStr | None = None
    verify_ssl: bool | str = Field(True, description="True, False or a CA bundle path.")
    timeout: float = Field(15.0, description="Seconds per HTTP request.")
    default_template: int = Field(9000, description="Template VMID cloned when none is named.")
    storage: str | None = Field(None, description="Storage for cloned disks (unset: the template's storage).")
    task_timeout: float = Field(300.0, description="Seconds to wait for a PVE task (clone, start).")


class PbsSettings(_Section):
    """Proxmox Backup Server API. ``host`` unset: the embedded simulator."""

    host: str | None = None
    port: int = 8007
    user: str = "root@pam"
    password: SecretStr | None = None
    token_name: str | None = None
    token_value: SecretStr | None = None
    verify_ssl: bool | str = True
    timeout: float = 15.0
    datastore: str = Field("store1", description="Datastore holding the VM backups.")
    pve_storage: str = Field("pbs01", description="PVE storage id that points at this PBS datastore.")


class BackupSettings(_Section):
    """Backup expectations the checker measures against."""

    # The lab backs VMs up once a day (09:00): one missed run makes a VM stale. The extra 2 h cover the
    # job's own run time, so a VM is not reported stale while the 09:00 job is still working through the list.
    rpo_hours: float = Field(26.0, gt=0, description="A VM whose newest backup is older than this is stale.")
    verify_window_days: float = Field(
        7.0, gt=0, description="A VM none of whose snapshots in this window was verified is unverified."
    )
    verify_grace_hours: float = Field(
        26.0,
        gt=0,
        description="Without a verify job report, a snapshot younger than this counts as pending verification.",
    )


class PostgresSettings(_Section):
    """The DESI database. ``dsn`` unset: the embedded PostgreSQL of ``labops lab up``."""

    dsn: SecretStr | None = Field(
        None, description="libpq DSN of the SELECT-only role, e.g. postgresql://desi_reader:...@host/desi"
    )
    schema_name: str = Field("desi_dr1", alias="schema")
    statement_timeout_ms: int = Field(15000, ge=100)
    default_limit: int = Field(1000, ge=1)
    max_limit: int = Field(10000, ge=1)
    connect_timeout: float = 5.0


class RaySettings(_Section):
    """Ray jobs: the Ray Jobs API (default) or KubeRay RayJobs."""

    backend: Literal["jobs", "kuberay"] = "jobs"
    address: str | None = Field(
        None, description="Ray dashboard URL, e.g. http://ray-head:8265; unset: the embedded head."
    )
    job_templates_dir: Path | None = Field(
        None, description="Directory of job templates; unset: the templates shipped with LabOps."
    )
    runtime_env_allowlist: list[str] = Field(
        default_factory=list, description="Extra pip packages a job's runtime env may name."
    )
    num_cpus: int = Field(2, description="CPUs of the embedded Ray head.")


class KubernetesSettings(_Section):
    """Kubernetes access for KubeRay. Unset kubeconfig with the jobs backend: not used."""

    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str = "ray"
    ray_cluster_selector: dict[str, str] = Field(
        default_factory=lambda: {"ray.io/cluster": "lab-ray"},
        description="clusterSelector of submitted RayJobs (an existing RayCluster).",
    )


class MilvusSettings(_Section):
    """Vector store. ``uri`` unset: Milvus Lite in the lab directory (or the embedded server)."""

    uri: str | None = Field(None, description="http://milvus:19530 for a server, or a local path.")
    token: SecretStr | None = None
    collection: str = "lab_docs"
    embedding_provider: Literal["onnx", "ollama"] = "onnx"
    ollama_embedding_model: str = "nomic-embed-text"
    embedding_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Threads the onnx embedder uses for documents at ingest (0: one per core, at most 4). "
        "A question is always embedded on one thread.",
    )


class LlmSettings(_Section):
    """The chat model: Ollama's API (the lab's GPU node), any OpenAI-compatible server, or a scripted model."""

    provider: Literal["ollama", "openai", "scripted"] = Field(
        "ollama", description="ollama (default; the embedded lab runs one), openai (vLLM, llama-server), scripted."
    )
    ollama_url: str | None = Field(
        None, description="Ollama base URL, e.g. http://node07:11434; unset: the embedded lab's GPU node."
    )
    model: str = Field("qwen2.5-coder:1.5b", description="Model name as the server knows it.")
    num_ctx: int = Field(8192, ge=512, description="Context window asked of the server (tokens).")
    num_predict: int = Field(512, ge=16, description="Most tokens one answer may generate.")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int | None = Field(0, description="Sampling seed (reproducible answers); unset: random.")
    keep_alive: str = Field("30m", description="How long the server keeps the model loaded after a call.")
    timeout: float = Field(180.0, gt=0, description="Seconds to wait for one model call.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://vllm:8000/v1.")
    script: Path | None = Field(
        None,
        description="provider scripted: a JSON/YAML list of replies (text, or {call: name, args: {...}}), in order.",
    )
    openai_api_key: SecretStr | None = None


class AgentSettings(_Section):
    """Bounds and knobs of the LangGraph agent."""

    max_tool_steps: int = Field(6, ge=1, le=50, description="Tool calls per turn before the agent stops and says so.")
    tool_timeout_s: float = Field(120.0, gt=0, description="Seconds one tool call may take before the turn moves on.")
    token_budget: int = Field(30000, ge=1000, description="Model tokens (in + out) one turn may use.")
    max_tools_in_prompt: int = Field(4, ge=1, description="Tools offered to the model per message (tool retrieval).")
    docs_k: int = Field(3, ge=0, le=10, description="Documentation passages retrieved per question.")
    constrained_calls: bool = Field(
        True,
        description="Constrain the first model call of a turn to one JSON tool call or answer (small models).",
    )
    all_tools_in_prompt: bool = Field(
        True,
        description="Put every tool's definition in every tool prompt, in registry order, so the long start of "
        "the prompt is the same for every question and the model server reuses it from its cache; the "
        "constrained choice still allows only the tools offered for the message. Needs constrained_calls and "
        "a provider that constrains (ollama, openai).",
    )
    docs_answers: Literal["write", "quote"] = Field(
        "write",
        description="How a documentation answer is made: 'write' has the model write the answer from the passages "
        "(checked against them, the answering sentence quoted when it is missing); 'quote' numbers the passages' "
        "sentences that best match the question, the model replies with the numbers of those that answer it (a "
        "short reply constrained to a JSON schema) and the answer quotes them with their sources. Quoting needs a "
        "provider that constrains (ollama, openai). With the embedded 1.5B model 'write' passed more dev "
        "questions (docs/agent.md).",
    )
    focus_passages: bool = Field(
        True,
        description="Show the model only the retrieved passages' sentences that best match the question (fewer "
        "prompt tokens, the asked fact first); off: whole passages, each cut at 700 characters.",
    )
    read_answers: Literal["tools", "model"] = Field(
        "tools",
        description="How a question the read tools answered is answered: 'tools' shows the tools' own summaries "
        "(and the rows the question names) without another model call; 'model' asks the model once more to "
        "write a sentence above them (several seconds on a CPU; worth it with a GPU). A message that also asks "
        "for a change always goes back to the model.",
    )
    checkpoint_dsn: SecretStr | None = Field(
        None,
        description="PostgreSQL DSN for conversation checkpoints (replicas share threads); unset: "
        "audit.database_url when set, else SQLite in the lab directory.",
    )


class ServerSettings(_Section):
    """``labops serve``: the OpenAI-compatible API (OpenWebUI), the Slack bot, health and metrics."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port (printed at start).")
    model_name: str = Field("labops", description="The model name OpenWebUI lists for the agent.")
    max_concurrent_turns: int = Field(2, ge=1, description="Agent turns running at once (the model serves one).")
    max_queued_turns: int = Field(8, ge=0, description="Turns waiting beyond that; more get 429 with Retry-After.")
    forwarded_users: dict[str, str] = Field(
        default_factory=dict,
        description="OpenWebUI user (e-mail or user id; never the display name) -> LabOps user, for keys marked as "
        "trusted front-ends. An unmapped forwarded user acts as 'openwebui-<e-mail or id>', an unknown "
        "(read-only) user.",
    )
    forwarded_jwt_secret: SecretStr | None = Field(
        None,
        description="OpenWebUI's FORWARD_USER_INFO_HEADER_JWT_SECRET: when set, a trusted front-end's user is taken "
        "only from the signed JWT header (plain X-OpenWebUI-User-* headers are then ignored).",
    )
    forwarded_jwt_header: str = Field("X-OpenWebUI-User-Jwt", description="OpenWebUI's FORWARD_USER_INFO_HEADER_JWT.")


class SlackSettings(_Section):
    """The Slack command bot (slack-bolt, HTTP mode)."""

    signing_secret: SecretStr | None = Field(None, description="The Slack app's signing secret (required).")
    bot_token: SecretStr | None = Field(None, description="xoxb-... to post approval requests (optional).")
    approvals_channel: str | None = Field(None, description="Channel id where approval requests are posted.")
    alerts_channel: str | None = Field(None, description="Channel id where incidents are posted (one thread each).")
    command: str = Field("/lab", pattern=r"^/[a-z0-9_-]{1,31}$", description="The slash command the app defines.")
    users: dict[str, str] = Field(default_factory=dict, description="Slack user id (U...) -> LabOps user.")
    api_base_url: str = Field("https://slack.com/api/", description="Slack Web API base URL.")


class WatcherSettings(_Section):
    """One watcher: on or off, and how often it checks."""

    enabled: bool = False
    interval_s: float = Field(900.0, ge=10, description="Seconds between two checks.")


def _watcher(interval_s: float) -> Any:
    return Field(default_factory=lambda: WatcherSettings(interval_s=interval_s))


class WatchersSettings(_Section):
    """The checks LabOps runs itself on a schedule (each off until enabled), through the read tools."""

    backups: WatcherSettings = _watcher(3600.0)
    nodes: WatcherSettings = _watcher(120.0)
    ray: WatcherSettings = _watcher(300.0)
    datastore: WatcherSettings = _watcher(1800.0)


class AlertsSettings(_Section):
    """Incidents: Alertmanager's webhook, LabOps's own watchers, investigations and their Slack messages."""

    webhook_token: SecretStr | None = Field(
        None,
        description="Bearer token Alertmanager sends (http_config.authorization.credentials); unset with no "
        "basic auth either: the webhook answers 404 (off).",
    )
    webhook_username: str | None = Field(
        None, description="Basic-auth user Alertmanager sends (http_config.basic_auth)."
    )
    webhook_password: SecretStr | None = Field(None, description="Basic-auth password for webhook_username.")
    watchers: WatchersSettings = Field(default_factory=WatchersSettings)
    watcher_user: str = Field(
        "labops-watcher", description="The lab user watchers and investigations read as (a role with reads only)."
    )
    datastore_threshold_percent: float = Field(85.0, gt=0, le=100, description="Datastore use that opens an incident.")
    ray_failed_window_hours: float = Field(
        24.0, gt=0, description="A Ray job that failed within this many hours is an incident; older ones are history."
    )
    investigation_steps: int = Field(4, ge=0, le=20, description="Read-tool calls an investigation may make.")
    investigation_timeout_s: float = Field(30.0, gt=0, description="Time an investigation may take.")
    repeat_window_s: float = Field(
        300.0, gt=0, description="Flood control: new Slack messages are counted over this window."
    )
    max_new_messages: int = Field(
        5, ge=1, description="New incident messages per window; beyond it, new incidents join one digest message."
    )


class PolicySettings(_Section):
    """Cedar policies, users, roles and quotas."""

    policies_dir: Path | None = Field(None, description="Directory of *.cedar files; unset: shipped ones.")
    lab_file: Path | None = Field(None, description="Users/roles/quotas TOML; unset: shipped lab.toml.")
    approval_ttl_seconds: int = Field(3600, ge=60)
    quota_wait_timeout: float = Field(
        300.0,
        gt=0,
        description="Seconds a call refused for quota waits for the same user's calls in progress to show in "
        "the lab before the refusal stands (they may be counted twice until then).",
    )


class AuditSettings(_Section):
    """Where approvals and the audit log live."""

    database_url: SecretStr | None = Field(
        None, description="postgresql://... to share approvals/audit between replicas; unset: SQLite."
    )
    anchor_file: Path | None = Field(
        None,
        description="Signed record of the audit log's head, written on every append (truncation is detected "
        "against it); unset: <lab_dir>/audit.anchor. Keep it where the database's users cannot write.",
    )
    anchor_key: SecretStr | None = Field(
        None, description="HMAC key of the anchor; unset: <lab_dir>/audit.key, created on first use (mode 0600)."
    )


class ToolsSettings(_Section):
    """Toolsets beyond the shipped ones (a lab's own read tools, say)."""

    extra: list[str] = Field(
        default_factory=list,
        description="Toolsets to load as 'module:ATTRIBUTE', each a tools.base.Toolset (e.g. 'labtools.gpu:TOOLSET'); "
        "their Cedar actions, CLI, agent selection and docs follow from their declarations.",
    )


class Settings(BaseSettings):
    """All LabOps settings; one section per backend."""

    model_config = SettingsConfigDict(
        env_prefix="LABOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    lab_dir: Path = Field(
        Path(".labops"),
        description="Where the embedded lab keeps its state. Unset: the nearest .labops holding a lab, from the "
        "working directory up; else the one `labops lab up` last used by default; else ./.labops.",
    )
    # How lab_dir was chosen: "set" (argument, environment, file), "found" (a .labops up from here, or the one
    # remembered), "default" (./.labops). Only a default or found lab is remembered for other directories.
    _lab_dir_origin: str = PrivateAttr("set")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    pve: PveSettings = Field(default_factory=PveSettings)
    pbs: PbsSettings = Field(default_factory=PbsSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: arguments, environment, TOML file."""
        toml_file = _TOML_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


# pydantic-settings builds sources from the class, so the chosen file is handed over here for the
# duration of one load_settings call (single-threaded start-up).
_TOML_FILE: dict[str, Path | None] = {"path": None}


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load the settings once, at start.

    Args:
        config_file: TOML file to read; default ``$LABOPS_CONFIG`` or ``./labops.toml`` if it exists.
        **overrides: values that win over every other source (e.g. ``lab_dir`` from ``--lab-dir``).

    Raises:
        ConfigError: the file is missing or a value is invalid; the message names the setting.
    """
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (check --config or LABOPS_CONFIG)")
    elif os.environ.get("LABOPS_CONFIG"):
        path = Path(os.environ["LABOPS_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"LABOPS_CONFIG points at {path}, which does not exist", setting="LABOPS_CONFIG")
    else:
        candidate = Path(DEFAULT_CONFIG_FILE)
        path = candidate if candidate.is_file() else None
    _TOML_FILE["path"] = path
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        if "lab_dir" not in settings.model_fields_set:
            found, origin = _find_lab_dir(Path.cwd())
            settings = settings.model_copy(update={"lab_dir": found})
            settings._lab_dir_origin = origin
        return settings
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
    finally:
        _TOML_FILE["path"] = None


LAB_MARKERS = ("lab.json", "secrets.json")


def _pointer() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "labops" / "lab-dir"


def _find_lab_dir(start: Path) -> tuple[Path, str]:
    """The lab a command run in ``start`` means, and how it was found ("found" or "default").

    The nearest ``.labops`` holding a lab, from ``start`` up (a command run in a sub-folder of the checkout);
    else the lab ``labops lab up`` last brought up from its default place (so ``labops lab status`` from
    another directory reports that lab, not an empty one); else ``./.labops``.
    """
    for folder in (start, *start.parents):
        candidate = folder / ".labops"
        if any((candidate / marker).is_file() for marker in LAB_MARKERS):
            return candidate, "found"
    try:
        remembered = Path(_pointer().read_text().strip())
    except (OSError, ValueError):
        remembered = None
    if remembered is not None and any((remembered / marker).is_file() for marker in LAB_MARKERS):
        return remembered, "found"
    return start / ".labops", "default"


def remember_lab_dir(settings: Settings) -> None:
    """After ``labops lab up`` in the default place: record it, so commands from other directories find it.

    A lab directory chosen explicitly (``--lab-dir``, ``LABOPS_LAB_DIR``, a file) is never recorded: it is
    the caller's choice each time (tests, several labs side by side).
    """
    if settings._lab_dir_origin == "set":
        return
    pointer = _pointer()
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(str(settings.lab_dir.resolve()) + "\n")
    except OSError:
        pass  # a read-only home: commands from other directories then use their own ./.labops
