"""Cedar policies: loaded and validated against the schema at start, evaluated per call.

A decision is ``allow``, ``needs_approval`` or ``deny``. Permit policies annotated ``@approval("<role>")``
(with ``@four_eyes``, ``@approvals_required``, ``@expires``) allow only with an approval; a matching permit
without ``@approval`` allows outright; a matching ``forbid`` denies with its ``@reason``; no matching
permit denies. A call touching several resources gets the strictest of their decisions.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cedarpy

from core.config import Settings
from core.errors import PolicyError
from policies.directory import AMOUNTS, Directory, User
from policies.schema import build_schema
from tools.base import ResourceRef, Tool
from tools.registry import all_tools

__all__ = ["ApprovalRule", "Decision", "PolicyEngine"]

SHIPPED = Path(__file__).parent

Outcome = Literal["allow", "needs_approval", "deny"]


@dataclass(kw_only=True, frozen=True)
class ApprovalRule:
    """What an approval needs, from a permit policy's annotations."""

    role: str
    four_eyes: bool = True
    required: int = 1
    expires_seconds: int | None = None


@dataclass(kw_only=True, frozen=True)
class Decision:
    """The outcome, the reasons (the deciding policies' ``@reason``) and, when needed, the approval rule."""

    decision: Outcome
    reasons: list[str]
    policies: list[str] = field(default_factory=list)
    approval: ApprovalRule | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``labops policy check --json``)."""
        return {
            "decision": self.decision,
            "reasons": self.reasons,
            "policies": self.policies,
            "approval": self.approval.__dict__ if self.approval else None,
        }


@dataclass(kw_only=True)
class _Policy:
    file: Path
    line: int
    annotations: dict[str, str]


def _line_of(text: str, index: int) -> int:
    """Line of the ``index``-th policy in a file (counted by ``permit``/``forbid`` heads)."""
    heads = [m.start() for m in re.finditer(r"^\s*(permit|forbid)\s*\(", text, re.M)]
    start = heads[index] if index < len(heads) else 0
    # Report the first annotation line of the policy when it has annotations.
    before = text[:start].rstrip().splitlines()
    line = len(before) + 1
    while before and before[-1].lstrip().startswith("@"):
        before.pop()
        line -= 1
    return line


_LONG_MAX = 2**63 - 1  # Cedar's Long is a signed 64-bit integer; a larger amount made it refuse the request


def _long(value: Any) -> int:
    """An amount as a Cedar Long: clamped to its range (a clamped request still exceeds every quota)."""
    return max(-_LONG_MAX - 1, min(_LONG_MAX, int(value)))


def _uid(kind: str, ident: str) -> str:
    """A Cedar entity uid literal with ``ident`` escaped (quotes, backslashes, control and format characters)."""
    out = []
    for char in str(ident):
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif not char.isprintable():
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return f'{kind}::"{"".join(out)}"'


class PolicyEngine:
    """The lab's policies, schema and directory."""

    def __init__(self, *, policies_dir: Path, lab_file: Path, tools: list[Tool[Any]] | None = None) -> None:
        schema_file = policies_dir / "labops.cedarschema"
        if not schema_file.is_file():
            raise PolicyError(f"{schema_file}: the Cedar schema is missing (policy.policies_dir)")
        self.schema = build_schema(schema_file.read_text(), tools or all_tools(), source=str(schema_file))
        self.directory = Directory.load(lab_file)
        files = sorted(policies_dir.glob("*.cedar"))
        if not files:
            raise PolicyError(f"{policies_dir}: no *.cedar files (policy.policies_dir)")
        texts: list[str] = []
        self.policies: dict[str, _Policy] = {}
        digest = hashlib.sha256(self.schema.encode() + lab_file.read_bytes())
        for path in files:
            text = path.read_text()
            digest.update(path.name.encode() + text.encode())
            self._validate_file(path, text)
            parsed = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
            for index, key in enumerate(sorted(parsed, key=lambda k: int(k.removeprefix("policy")))):
                pid = f"policy{len(self.policies)}"
                self.policies[pid] = _Policy(
                    file=path, line=_line_of(text, index), annotations=parsed[key].get("annotations") or {}
                )
            texts.append(text)
        self.text = "\n".join(texts)
        # Parsed once: evaluating against pre-parsed handles avoids re-reading policies and schema per call.
        self.policy_set = cedarpy.PolicySet.from_str(self.text)
        self.schema_handle = cedarpy.Schema.from_str(self.schema)
        self.version = digest.hexdigest()[:16]

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyEngine:
        """The configured policies (``policy.policies_dir``/``policy.lab_file``) or the shipped ones."""
        return cls(
            policies_dir=settings.policy.policies_dir or SHIPPED / "cedar",
            lab_file=settings.policy.lab_file or SHIPPED / "lab.toml",
            tools=all_tools(settings),
        )

    def _validate_file(self, path: Path, text: str) -> None:
        try:
            parsed = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
            raise PolicyError(f"{path}: does not parse: {first}") from exc
        result = cedarpy.validate_policies(text, self.schema)
        if not result.validation_passed:
            err = result.errors[0]
            order = sorted(parsed, key=lambda k: int(k.removeprefix("policy")))
            index = order.index(err.policy_id) if err.policy_id in order else 0
            raise PolicyError(f"{path}:{_line_of(text, index)}: {err.error}")

    # --- evaluation ----------------------------------------------------------------------------------
    def _entities(self, user: User, resource: ResourceRef) -> list[dict[str, Any]]:
        entities: list[dict[str, Any]] = [
            {
                "uid": {"type": "User", "id": user.name},
                "attrs": {"name": user.name, "known": user.known},
                "parents": [{"type": "Role", "id": r} for r in user.roles],
            },
            *({"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []} for r in user.roles),
        ]
        attrs: dict[str, Any] = {}
        if resource.type == "VM":
            a = resource.attrs
            attrs = {
                "name": str(a.get("name", "")),
                "node": str(a.get("node", "")),
                "owner": str(a.get("owner", "")),
                "status": str(a.get("status", "")),
                "tags": [str(t) for t in a.get("tags", [])],
            }
        elif resource.type == "Job":
            attrs = {"owner": str(resource.attrs.get("owner", ""))}
        elif resource.type == "Approval":
            attrs = {k: str(resource.attrs.get(k, "")) for k in ("requester", "tool", "role")}
        entities.append({"uid": {"type": resource.type, "id": resource.id}, "attrs": attrs, "parents": []})
        return entities

    def context(self, *, channel: str, numbers: dict[str, int], usage: dict[str, int], user: User) -> dict[str, Any]:
        """The Cedar context of a call (every amount present, missing ones zero)."""
        return {
            "channel": channel,
            "unknown_users_read": self.directory.unknown_users == "read_only",
            "request": {k: _long(numbers.get(k, 0)) for k in AMOUNTS},
            "usage": {k: _long(usage.get(k, 0)) for k in AMOUNTS},
            "quota": {k: _long(user.quota.get(k, 0)) for k in AMOUNTS},
        }

    def _one(self, user: User, action: str, resource: ResourceRef, context: dict[str, Any]) -> Decision:
        request = {
            "principal": _uid("User", user.name),
            "action": _uid("Action", action),
            "resource": _uid(resource.type, resource.id),
            "context": context,
        }
        result = cedarpy.is_authorized(
            request, self.policy_set, self._entities(user, resource), schema=self.schema_handle
        )
        if result.diagnostics.errors:
            raise PolicyError(f"policy evaluation failed for {action}: {result.diagnostics.errors[0]}")
        matched = [self.policies[p] for p in result.diagnostics.reasons if p in self.policies]
        reasons = [p.annotations.get("reason", p.annotations.get("id", "")) for p in matched]
        ids = [p.annotations.get("id", "") for p in matched]
        if not result.allowed:
            if not matched:
                why = (
                    "unknown user"
                    if not user.known
                    else f"no policy lets {', '.join(user.roles) or 'this user'} do this"
                )
                return Decision(decision="deny", reasons=[f"{action}: {why}"])
            if not user.known:
                reasons = [f"{user.name} is an unknown user (not in policies/lab.toml)", *reasons]
            return Decision(decision="deny", reasons=reasons, policies=ids)
        plain = [p for p in matched if "approval" not in p.annotations]
        if plain:
            return Decision(decision="allow", reasons=[p.annotations.get("reason", "") for p in plain], policies=ids)
        a = matched[0].annotations
        rule = ApprovalRule(
            role=a["approval"],
            four_eyes=a.get("four_eyes", "true").lower() == "true",
            required=int(a.get("approvals_required", "1")),
            expires_seconds=int(a["expires"]) if a.get("expires") else None,
        )
        return Decision(decision="needs_approval", reasons=reasons, policies=ids, approval=rule)

    def decide(self, *, user: str, action: str, resources: list[ResourceRef], context: dict[str, Any]) -> Decision:
        """The decision for a call touching ``resources`` (the strictest over all of them)."""
        principal = self.directory.user(user)
        decisions = [self._one(principal, action, r, context) for r in resources or [ResourceRef(type="Lab", id="lab")]]
        for outcome in ("deny", "needs_approval"):
            hits = [d for d in decisions if d.decision == outcome]
            if hits:
                reasons = list(dict.fromkeys(r for d in hits for r in d.reasons))
                return Decision(
                    decision=hits[0].decision, reasons=reasons, policies=hits[0].policies, approval=hits[0].approval
                )
        return decisions[0]

    def user(self, name: str) -> User:
        """A principal from the directory."""
        return self.directory.user(name)
