"""Fuzz every tool's arguments through the CLI entry point: the answer is always an envelope, never a traceback.

Arguments are drawn from each tool's JSON schema (right names with wrong, empty, huge, unicode and
hostile values; unknown names; plain valid values), sent as ``labops tool call NAME --args JSON --json``
against a fresh in-process lab, as a known researcher and as an unknown user.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.cli.main import cli
from tools.registry import all_tools

HOSTILE_STRINGS = [
    "", " ", "../../api/version", "?", "%2e%2e/", "a" * 5000, "\x00", "ünïcödé", "'; DROP TABLE x; --",
    "<script>", "${jndi:ldap://x}", "evil\"", "-1", "1e309", "null", "true", "node99", "\uff36\uff2d\uff11\uff13\uff10",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _plausible(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = prop.get("type") or next((o.get("type") for o in prop.get("anyOf", []) if o.get("type") != "null"), None)
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if kind == "integer":
        return st.integers(min_value=-5, max_value=10_000)
    if kind == "number":
        return st.floats(min_value=-400, max_value=400, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(st.text(max_size=10), max_size=3)
    return st.text(min_size=0, max_size=20)


def _arguments(tool: Any) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = tool.json_schema().get("properties", {})
    fields = {name: st.one_of(_plausible(prop), VALUES) for name, prop in props.items()}
    known = st.fixed_dictionaries({}, optional=fields) if fields else st.just({})
    extra = st.dictionaries(st.sampled_from(["extra", "user", "__proto__", "vmid", "sql"]), VALUES, max_size=2)
    return st.one_of(known, st.builds(lambda a, b: {**a, **b}, known, extra))


@pytest.mark.parametrize("tool", [t.name for t in all_tools()])
def test_every_tool_answers_hostile_arguments_with_an_envelope(
    tool: str, tmp_path_factory: pytest.TempPathFactory, inprocess_lab: Any
) -> None:
    lab = inprocess_lab(tmp_path_factory.mktemp("fuzz"), task_speed=50.0)
    runner = CliRunner()
    spec = next(t for t in all_tools() if t.name == tool)

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(args=_arguments(spec), user=st.sampled_from(["researcher1", "visitor"]))
    def check(args: dict[str, Any], user: str) -> None:
        result = runner.invoke(
            cli,
            ["--lab-dir", str(lab.lab_dir), "tool", "call", tool, "--args", json.dumps(args), "--as", user, "--json"],
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 1, 4, 5), result.output
        if result.output.lstrip().startswith("{"):
            envelope = json.loads(result.output)
            assert set(envelope) == {"status", "data", "message"} and envelope["message"]
        else:
            assert "error:" in result.output, result.output  # an argument refused before the guard, in one line
        assert "Traceback" not in result.output

    check()
    assert Path(lab.lab_dir).is_dir()
