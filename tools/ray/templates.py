"""Job templates: a directory with ``job.toml`` (name, description, entrypoint, resources, options) and its code.

The directory becomes the job's ``working_dir`` (uploaded to the cluster as a package), so a job runs
exactly the code reviewed in the repository.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Settings
from core.errors import InvalidArguments

__all__ = ["JobTemplate", "load_templates", "template"]

SHIPPED = Path(__file__).parent / "templates"


@dataclass(kw_only=True, frozen=True)
class JobTemplate:
    """One job template."""

    name: str
    description: str
    entrypoint: str
    directory: Path
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    needs_desi_dsn: bool = False
    pip: list[str] = field(default_factory=list)
    # Command-line options the job takes (``--name VALUE``), with what each means: ``[options]`` in job.toml.
    options: dict[str, str] = field(default_factory=dict)


def load_templates(settings: Settings) -> dict[str, JobTemplate]:
    """Templates by name from ``ray.job_templates_dir`` (or the shipped ones)."""
    root = settings.ray.job_templates_dir or SHIPPED
    out: dict[str, JobTemplate] = {}
    for job_file in sorted(root.glob("*/job.toml")):
        data = tomllib.loads(job_file.read_text())
        name = str(data.get("name") or job_file.parent.name)
        out[name] = JobTemplate(
            name=name,
            description=str(data.get("description", "")),
            entrypoint=str(data["entrypoint"]),
            directory=job_file.parent,
            num_cpus=float(data.get("num_cpus", 1)),
            num_gpus=float(data.get("num_gpus", 0)),
            needs_desi_dsn=bool(data.get("needs_desi_dsn", False)),
            pip=[str(p) for p in data.get("pip", [])],
            options={str(k): str(v) for k, v in data.get("options", {}).items()},
        )
    return out


def template(settings: Settings, name: str) -> JobTemplate:
    """The template ``name``; InvalidArguments listing the known ones."""
    templates = load_templates(settings)
    if name not in templates:
        known = ", ".join(sorted(templates)) or "(none)"
        raise InvalidArguments(f"unknown job template {name!r}; templates: {known} (see ray.templates)")
    return templates[name]
