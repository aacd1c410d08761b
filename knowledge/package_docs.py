"""The READMEs installed Python packages carry in their metadata, as documents to ingest.

A lab's real documentation is mostly READMEs written elsewhere; the long descriptions on PyPI are
the nearest such corpus on a machine without internet, and they are read from the virtualenv, never
copied into the repository. Used by the retrieval tests and ``bench/knowledge.py``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidArguments

__all__ = ["PackageDoc", "export_readmes", "package_doc"]


@dataclass(kw_only=True, frozen=True)
class PackageDoc:
    """One package's long description."""

    name: str
    version: str
    suffix: str  # ".md", ".rst" or ".txt", from Description-Content-Type (sniffed when it is missing)
    text: str


def _suffix(content_type: str, text: str) -> str:
    if "markdown" in content_type:
        return ".md"
    if "rst" in content_type:
        return ".rst"
    # No content type: PyPI then renders reStructuredText; many such READMEs are Markdown nevertheless.
    if re.search(r"^\.\. \w+::|^\.\. \|", text, re.M) or re.search(r"^[=\-~]{3,}\s*$", text, re.M):
        return ".rst"
    return ".md" if re.search(r"^#{1,6} \S|\]\(https?://", text, re.M) else ".txt"


def package_doc(name: str) -> PackageDoc:
    """The installed package ``name``'s README; a missing package or an empty description is an error."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError as exc:
        raise InvalidArguments(f"package {name!r} is not installed in this virtualenv") from exc
    meta = dist.metadata
    # The README is the message body (metadata 2.1+) or, in older wheels, the Description header.
    # get_all, not [...]: a missing header reads as None with a DeprecationWarning on Python 3.12.
    text = meta.get_payload() or (meta.get_all("Description") or [""])[0]  # type: ignore[attr-defined]
    if not str(text).strip():
        raise InvalidArguments(f"package {name!r} carries no long description")
    content_type = (meta.get_all("Description-Content-Type") or [""])[0]
    return PackageDoc(name=name, version=dist.version, suffix=_suffix(content_type, str(text)), text=str(text))


def export_readmes(names: list[str], dest: Path) -> list[PackageDoc]:
    """Write each package's README to ``dest/<name><suffix>``; returns what was written."""
    dest.mkdir(parents=True, exist_ok=True)
    docs = [package_doc(name) for name in names]
    for doc in docs:
        (dest / f"{doc.name}{doc.suffix}").write_text(doc.text, encoding="utf-8")
    return docs
