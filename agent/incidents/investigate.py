"""A bounded, read-only investigation of one incident: the facts that explain it and the runbook that applies.

Which tools to call is derived from their declarations, not from a table here: every read tool that takes
something the incident is about (its subject: ``vmid``, ``node``, ``job_id``) and needs nothing else, the
incident's own family first. Calls go through the guard as the watcher user (a role that may only read), at
most ``alerts.investigation_steps`` of them within ``alerts.investigation_timeout_s``.

The runbook passage comes from the lab's documentation: the search is asked for the incident's problem, and the
passage kept is one whose heading or text names the problem (a page about backups in general is not "the
runbook that applies"); none such, no citation.

The summary is extractive: each line is a tool's own message with the tool named, or the passage quoted with
its citation. Nothing in it comes from anywhere else, so the grounding rule every answer follows holds by
construction, and no model is needed to write it.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from core.incidents import Fix, Incident
from knowledge.service import DocsService
from policies.guard import Caller, Guard
from tools.base import Tool

__all__ = ["Investigation", "fixes_for", "investigate"]

log = logging.getLogger(__name__)

_STEMS = {"failed": "fail", "missing": "miss", "unverified": "unverif", "offline": "offline", "full": "full"}


@dataclass(kw_only=True, frozen=True)
class Investigation:
    """What an investigation found."""

    facts: list[dict[str, Any]]  # {"tool", "args", "status", "message"}
    runbook: dict[str, Any] | None  # {"citation", "text", "source", "section"}
    summary: str
    budget: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON form, kept on the incident."""
        return {"facts": self.facts, "runbook": self.runbook, "summary": self.summary, "budget": self.budget}


# Subject keys that describe the thing rather than name it: "VMs of its owner" explains nothing about a backup.
_DESCRIPTIVE = {"owner", "name"}


def _candidates(incident: Incident, tools: list[Tool[Any]]) -> list[tuple[Tool[Any], dict[str, Any]]]:
    subject = {k: v for k, v in incident.subject.items() if k not in _DESCRIPTIVE}
    family = incident.kind
    calls = []
    for tool in tools:
        if tool.risk != "read":
            continue
        fields = tool.args_model.model_fields
        takes = {name for name in fields if name in subject}
        required = {name for name, f in fields.items() if f.is_required()}
        if not takes or not required <= takes:
            continue
        calls.append((tool, {name: subject[name] for name in takes}))
    # The incident's own family first (a backup incident: backup.status before vm.show); then by name.
    calls.sort(key=lambda c: (c[0].name.split(".")[0] != family, c[0].name))
    return calls


def _problem_words(incident: Incident) -> list[str]:
    words = [p.split(":", 1)[-1] for p in incident.problems] or [incident.kind]
    return [w for w in words if w]


def _names_problem(text: str, words: list[str]) -> bool:
    lowered = text.lower()
    return any(_STEMS.get(w, w[:6]) in lowered for w in words)


def _runbook(incident: Incident, docs: DocsService | None) -> dict[str, Any] | None:
    if docs is None:
        return None
    words = _problem_words(incident)
    query = f"runbook: {incident.kind} {' '.join(words)}"
    if incident.runbook_url:
        query += f" {incident.runbook_url.rsplit('/', 1)[-1]}"
    try:
        hits = docs.hits(query, k=6)
    except Exception:  # boundary: an index that cannot be searched leaves the investigation without a runbook
        log.warning("the documentation search failed while investigating %s", incident.id, exc_info=True)
        return None
    kind = incident.kind.lower()

    def relevant(section: str, text: str) -> bool:
        return kind in (section + " " + text).lower() or kind.rstrip("s") in (section + " " + text).lower()

    # The passage whose heading names the problem; else one whose text names the problem and the kind.
    chosen = next((h for h in hits if _names_problem(h.section, words) and relevant(h.section, h.text)), None)
    chosen = chosen or next((h for h in hits if _names_problem(h.text, words) and relevant(h.section, h.text)), None)
    if chosen is None:
        return None
    citation = f"[{chosen.source} § {chosen.section or chosen.title}]"
    return {"citation": citation, "text": chosen.text.strip(), "source": chosen.source, "section": chosen.section}


def investigate(
    incident: Incident,
    *,
    guard: Guard,
    caller: Caller,
    tools: list[Tool[Any]],
    docs: DocsService | None,
    steps: int,
    timeout_s: float,
) -> Investigation:
    """Run the bounded investigation of ``incident``."""
    started = time.monotonic()
    facts: list[dict[str, Any]] = []
    stopped = ""
    for tool, args in _candidates(incident, tools):
        if len(facts) >= steps:
            stopped = f"step budget ({steps}) spent"
            break
        if time.monotonic() - started > timeout_s:
            stopped = f"time budget ({timeout_s:g} s) spent"
            break
        result = guard.call(tool.name, args, caller=caller)
        facts.append({"tool": tool.name, "args": args, "status": result.status, "message": result.message})
    runbook = _runbook(incident, docs) if time.monotonic() - started <= timeout_s else None
    lines = [f"{incident.title} (seen by {incident.source}): {incident.detail}" if incident.detail else incident.title]
    lines += [f"[{f['tool']}] {f['message']}" for f in facts if f["status"] in ("ok", "no_data")]
    if runbook is not None:
        lines.append(f"{runbook['citation']} {runbook['text']}")
    else:
        lines.append("No runbook passage of the lab's documentation names this problem.")
    budget = {"steps": len(facts), "max_steps": steps, "seconds": round(time.monotonic() - started, 3),
              "stopped": stopped or None}  # fmt: skip
    return Investigation(facts=facts, runbook=runbook, summary="\n".join(lines), budget=budget)


def fixes_for(incident: Incident, tools: list[Tool[Any]]) -> list[Fix]:
    """The guarded calls that remedy the incident's problems, their arguments from its subject.

    A tool qualifies when it declares one of the problems in ``remedies`` and every argument it requires is in
    the subject; the optional ones keep their defaults.
    """
    out: list[Fix] = []
    for tool in tools:
        if not set(tool.remedies) & set(incident.problems):
            continue
        fields = tool.args_model.model_fields
        required = {name for name, f in fields.items() if f.is_required()}
        if not required <= set(incident.subject):
            continue
        raw = {name: incident.subject[name] for name in fields if name in incident.subject}
        try:
            args = tool.parse(raw)
        except ValueError:
            continue
        summary = tool.summary(args)
        label = summary[:1].upper() + summary[1:]
        fix_id = re.sub(r"[^a-z0-9]+", "-", tool.name.lower())
        out.append(Fix(id=fix_id, label=label[:75], tool=tool.name, args=args.model_dump(mode="json"), summary=summary))
    return out
