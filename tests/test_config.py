"""Settings: sources, precedence, validation messages, and endpoint resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import load_settings
from core.endpoints import milvus_endpoint, postgres_dsn, pve_endpoint, ray_address
from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_example_file_loads_and_documents_every_section() -> None:
    settings = load_settings(REPO / "labops.example.toml")
    assert settings.pve.default_template == 9000
    assert settings.kubernetes.ray_cluster_selector == {"ray.io/cluster": "lab-ray"}
    text = (REPO / "labops.example.toml").read_text()
    for section in type(settings).model_fields:
        if section not in {"lab_dir", "log_level"}:
            assert f"[{section}]" in text, f"labops.example.toml lacks a [{section}] section"


def test_environment_beats_file_and_arguments_beat_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "labops.toml"
    cfg.write_text('[pve]\nhost = "from-file"\nport = 1\n[postgres]\nschema = "iron"\n')
    monkeypatch.setenv("LABOPS_PVE__PORT", "2")
    settings = load_settings(cfg)
    assert (settings.pve.host, settings.pve.port, settings.postgres.schema_name) == ("from-file", 2, "iron")
    assert load_settings(cfg, lab_dir=tmp_path / "x").lab_dir == tmp_path / "x"


def test_labops_config_env_and_secrets_are_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[pve]\nhost = "h"\npassword = "hunter2"\n')
    monkeypatch.setenv("LABOPS_CONFIG", str(cfg))
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.pve.password is not None and settings.pve.password.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[pve]\nport = "many"\n', "pve.port"),
        ('[pve]\nhostname = "x"\n', "pve.hostname"),
        ('[ray]\nbackend = "slurm"\n', "ray.backend"),
        ("[pve\n", "cannot read"),
    ],
)
def test_bad_configuration_names_the_setting(tmp_path: Path, toml: str, needle: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_settings(cfg)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_embedded_lab_not_running_says_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(lab_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"pve\.host.*labops lab up"):
        pve_endpoint(settings)
    with pytest.raises(ConfigError, match=r"ray\.address"):
        ray_address(settings)
    # Without a server, Milvus falls back to Milvus Lite inside the lab directory.
    assert milvus_endpoint(settings) == (str(tmp_path.resolve() / "milvus.db"), None)


def test_configured_hosts_win_over_the_embedded_lab(tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text(json.dumps({"parts": {"ray": {"url": "http://127.0.0.1:1"}}}))
    settings = load_settings(
        lab_dir=tmp_path,
        pve={"host": "pve.lab", "token_name": "t", "token_value": "v", "user": "labops@pve"},
        ray={"address": "http://ray:8265/"},
        postgres={"dsn": "postgresql://r@db/desi"},
    )
    ep = pve_endpoint(settings)
    assert (ep.host, ep.user, ep.token_name, ep.token_value, ep.embedded) == ("pve.lab", "labops@pve", "t", "v", False)
    assert ray_address(settings) == "http://ray:8265"
    assert postgres_dsn(settings) == "postgresql://r@db/desi"


def test_real_host_without_credentials_is_refused(tmp_path: Path) -> None:
    settings = load_settings(lab_dir=tmp_path, pve={"host": "pve.lab"})
    with pytest.raises(ConfigError, match=r"pve\.password"):
        pve_endpoint(settings)


def test_the_lab_is_found_from_sub_folders_and_other_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.config import remember_lab_dir

    monkeypatch.delenv("LABOPS_LAB_DIR", raising=False)
    monkeypatch.delenv("LABOPS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    checkout = tmp_path / "checkout"
    (checkout / ".labops").mkdir(parents=True)
    (checkout / ".labops" / "lab.json").write_text("{}")
    (checkout / "docs" / "deep").mkdir(parents=True)
    monkeypatch.chdir(checkout / "docs" / "deep")
    found = load_settings(None)
    assert found.lab_dir == checkout / ".labops"
    # `lab up` there remembers it: a command from an unrelated directory reports that lab, not an empty one.
    remember_lab_dir(found)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_settings(None).lab_dir == (checkout / ".labops").resolve()
    # An explicit lab directory is the caller's choice each time: used, never remembered.
    explicit = load_settings(None, lab_dir=tmp_path / "other")
    remember_lab_dir(explicit)
    assert load_settings(None).lab_dir == (checkout / ".labops").resolve()
    (checkout / ".labops" / "lab.json").unlink()
    assert load_settings(None).lab_dir == elsewhere / ".labops", "a lab that is gone is not used"
