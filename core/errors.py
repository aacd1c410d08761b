"""The one error hierarchy of LabOps.

Every message says what fixes the problem (the setting or argument name)::

    LabOpsError
    ├── ConfigError            a setting is missing or wrong (names the setting)
    ├── BackendUnavailable     a backend (PVE, PBS, Postgres, Ray, Kubernetes, Milvus, LLM) did not answer
    ├── ToolError              a tool call failed in a way the model can act on
    │   ├── InvalidArguments   the arguments do not fit the tool's schema or the lab
    │   ├── ProxmoxError       PVE refused or a task failed
    │   ├── BackupError        PBS/PVE backup data could not be read
    │   ├── RayError           the Ray Jobs API or KubeRay refused
    │   └── QueryError         a DESI query failed
    │       └── QueryRefused   a SQL text was refused before it ran
    ├── PolicyError            policies or the schema do not load or validate
    ├── ApprovalError          an approval is unknown, expired, used, or not yours to give
    ├── IdentityError          who is asking cannot be established, or may not act as someone else
    ├── AuditError             the audit log cannot be written or does not verify
    └── KnowledgeError         ingestion, embeddings or the vector store failed

Client-library exceptions are translated at the edge with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "ApprovalError",
    "AuditError",
    "BackendUnavailable",
    "BackupError",
    "ConfigError",
    "IdentityError",
    "InvalidArguments",
    "KnowledgeError",
    "LabOpsError",
    "PolicyError",
    "ProxmoxError",
    "QueryError",
    "QueryRefused",
    "RayError",
    "ToolError",
]


class LabOpsError(Exception):
    """Base of every error LabOps raises on purpose."""


class ConfigError(LabOpsError):
    """A setting is missing or invalid; the message names the setting to change."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class BackendUnavailable(LabOpsError):
    """A backend did not answer; reported to the user, never crashed on."""

    def __init__(self, backend: str, message: str, *, setting: str | None = None) -> None:
        hint = f"; check the setting {setting}" if setting and setting not in message else ""
        super().__init__(f"{backend} is unavailable: {message}{hint}")
        self.backend = backend
        self.setting = setting


class ToolError(LabOpsError):
    """A tool call failed in a way the model can act on (goes back to it as an ``error`` result)."""


class InvalidArguments(ToolError):
    """The call's arguments do not fit the schema or the lab (e.g. an unknown node)."""


class ProxmoxError(ToolError):
    """Proxmox VE refused a request, or a PVE task ended with an error."""


class BackupError(ToolError):
    """Backup state could not be read from PBS or PVE."""


class RayError(ToolError):
    """The Ray Jobs API or the KubeRay operator refused a request."""


class QueryError(ToolError):
    """A DESI query failed while running (timeout, bad column, ...)."""


class QueryRefused(QueryError):
    """A SQL text was refused by the read-only checker before it ran."""


class PolicyError(LabOpsError):
    """Policies, their schema or the lab's users/quotas file do not load or validate."""


class ApprovalError(LabOpsError):
    """An approval is unknown, expired, already used, bound to other arguments, or not yours to give."""


class IdentityError(LabOpsError):
    """The caller's identity is unknown or unverifiable, or it may not act as the user it claims."""


class AuditError(LabOpsError):
    """The audit log cannot be written, or its hash chain does not verify."""


class KnowledgeError(LabOpsError):
    """Ingestion, embedding or the vector store failed."""
