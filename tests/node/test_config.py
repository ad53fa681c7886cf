from pathlib import Path

import pytest

from node.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_is_valid_and_matches_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from_file = load_settings(REPO / "config.yaml", environ={})
    monkeypatch.chdir(REPO)
    defaults = load_settings(None, environ={})
    assert from_file.model_dump() == defaults.model_dump()


def test_environment_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("node:\n  ae_title: FROMFILE\n  dimse_port: 2000\n")
    s = load_settings(cfg, environ={"SHARPRAY_NODE__DIMSE_PORT": "3000"})
    assert s.node.ae_title == "FROMFILE"
    assert s.node.dimse_port == 3000


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("storage:\n  folder: data/store\n  database_url: sqlite:///data/x.db\n")
    s = load_settings(cfg, environ={})
    assert s.storage.folder == tmp_path / "data/store"
    assert s.storage.database_url == f"sqlite:///{tmp_path}/data/x.db"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"SHARPRAY_NODE__DIMSE_PORT": "seventy"}, "node.dimse_port"),
        ({"SHARPRAY_NODE__AE_TITLE": "WAY_TOO_LONG_AE_TITLE"}, "node.ae_title"),
        ({"SHARPRAY_NODE__NO_SUCH_KEY": "1"}, "node.no_such_key"),
        (
            {"SHARPRAY_ROUTING__FALLBACK": "{name: f, process: full, send_results_to: [nowhere]}"},
            "nowhere",
        ),
        (
            {"SHARPRAY_ROUTING__FALLBACK": "{name: f, process: no_such_pipeline}"},
            "no_such_pipeline",
        ),
        ({"SHARPRAY_WORKERS__LEASE_S": "-1"}, "workers.lease_s"),
    ],
)
def test_invalid_config_names_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(None, environ=env)
    assert key in str(e.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("node: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, environ={})


def test_a_bundled_model_by_its_folder_name(tmp_path: Path) -> None:
    from node.config import BUNDLED_MODELS

    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  deblur: deblur-demo-int8\n")
    s = load_settings(cfg, environ={})
    assert s.models.deblur == BUNDLED_MODELS / "deblur-demo-int8"
    s = load_settings(None, environ={"SHARPRAY_MODELS__DEBLUR": "deblur-demo-int8"})
    assert s.models.deblur == BUNDLED_MODELS / "deblur-demo-int8"


def test_deblur_default_and_wiener_mean_no_learned_model(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).models.deblur is None
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  deblur: null\n")
    assert load_settings(cfg, environ={}).models.deblur is None
    cfg.write_text("models:\n  deblur: wiener\n")
    assert load_settings(cfg, environ={}).models.deblur is None
    s = load_settings(None, environ={"SHARPRAY_MODELS__DEBLUR": "wiener"})
    assert s.models.deblur is None


def test_docker_layout_the_mounted_config_wins(tmp_path: Path) -> None:
    """As in the images: a config.yaml copied into the working directory and SHARPRAY_CONFIG
    pointing at the mounted /etc/sharpray/config.yaml. The mounted one must win; --config wins
    over both; without the variable ./config.yaml is read."""
    import os
    import subprocess
    import sys

    import yaml

    repo = Path(__file__).resolve().parents[2]
    workdir = tmp_path / "opt-sharpray"
    etc = tmp_path / "etc-sharpray"
    workdir.mkdir()
    etc.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump({"node": {"ae_title": "COPIED"}}))
    (etc / "config.yaml").write_text(yaml.safe_dump({"node": {"ae_title": "MOUNTED"}}))
    (tmp_path / "cli.yaml").write_text(yaml.safe_dump({"node": {"ae_title": "GIVEN"}}))
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHARPRAY_")}
    base["PYTHONPATH"] = str(repo)

    def ae_title(env: dict[str, str], *args: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "node.cli", *args, "config"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return str(yaml.safe_load(r.stdout)["node"]["ae_title"])

    mounted = {**base, "SHARPRAY_CONFIG": str(etc / "config.yaml")}
    assert ae_title(mounted) == "MOUNTED"
    assert ae_title(mounted, "--config", str(tmp_path / "cli.yaml")) == "GIVEN"
    assert ae_title(base) == "COPIED"
