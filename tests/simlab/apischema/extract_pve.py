"""Extract the schemas of the endpoints the PVE simulator serves from pve-docs' ``api-viewer/apidata.js``.

Run by hand when the simulator gains an endpoint or PVE a release::

    python tests/simlab/apischema/extract_pve.py /path/to/pve-docs/api-viewer/apidata.js

It writes ``pve.json`` next to this file: for each served ``(method, path)``, the parameter and return
schemas with their types, enums, bounds and optional flags. Descriptions are dropped: the file keeps the
facts a response check needs, not the documentation's text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_KEEP = {
    "type",
    "optional",
    "enum",
    "minimum",
    "maximum",
    "properties",
    "items",
    "additionalProperties",
    "format",
    "pattern",
    "maxLength",
    "minLength",
    "default",
}


def _trim(schema: Any) -> Any:
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key not in _KEEP:
                continue
            if key == "properties":
                out[key] = {name: _trim(sub) for name, sub in value.items()}
            elif key == "format" and isinstance(value, dict):
                out[key] = "<property string>"
            else:
                out[key] = _trim(value)
        return out
    if isinstance(schema, list):
        return [_trim(v) for v in schema]
    return schema


def main(apidata: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from simlab.pve.app import PveApp

    text = apidata.read_text()
    tree = json.loads(text[text.index("[") : text.rindex("]") + 1])
    index: dict[str, dict[str, Any]] = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            index[node["path"]] = node.get("info", {})
            walk(node.get("children", []))

    walk(tree)
    app = PveApp(_StubState(), {"pve": {"token_secret": "x", "password": "x", "token_id": "x"}})  # type: ignore[arg-type]
    served: dict[str, dict[str, Any]] = {}
    for method, path in sorted(set(app.router.patterns)):
        info = index.get(path, {}).get(method)
        if info is None:
            raise SystemExit(f"{method} {path} is not in {apidata}")
        served.setdefault(path, {})[method] = {
            "parameters": _trim(info.get("parameters", {})),
            "returns": _trim(info.get("returns", {})),
        }
    out = Path(__file__).with_name("pve.json")
    header = {"source": "pve-docs api-viewer/apidata.js", "version": _version(apidata)}
    out.write_text(json.dumps({"_about": header, "paths": served}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}: {sum(len(m) for m in served.values())} endpoints")


class _StubState:
    data: dict[str, Any] = {"cluster": "x"}


def _version(apidata: Path) -> str:
    changelog = apidata.parents[1] / "debian" / "changelog"
    if changelog.is_file():
        return changelog.read_text().split("(", 1)[1].split(")", 1)[0]
    return "unknown"


if __name__ == "__main__":
    main(Path(sys.argv[1]))
