"""Documentation cannot drift: every setting is in config.yaml, every command and every
accepted SOP class / transfer syntax in the README, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from node.cli import build_parser
from node.config import Settings
from node.sop import ACCEPTED_TRANSFER_SYNTAXES, PROCESSABLE_SOP_CLASSES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CONFIG_TEXT = (REPO / "config.yaml").read_text()


def _setting_paths(model: type[BaseModel], prefix: str = "", leaves: bool = False) -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if not leaves:
                paths.append(path)
            paths += _setting_paths(ann, path + ".", leaves)
        else:
            paths.append(path)
    return paths


def _yaml_has(data: Any, path: str) -> bool:
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_setting_is_in_config_yaml_with_a_comment() -> None:
    data = yaml.safe_load(CONFIG_TEXT)
    missing = [p for p in _setting_paths(Settings) if not _yaml_has(data, p)]
    assert not missing, f"settings not documented in config.yaml: {missing}"
    for p in _setting_paths(Settings, leaves=True):
        key = p.split(".")[-1]
        lines = [ln for ln in CONFIG_TEXT.splitlines() if re.match(rf"\s*{re.escape(key)}:", ln)]
        assert any("#" in ln for ln in lines) or _has_comment_above(key), f"{p} has no comment"


def _has_comment_above(key: str) -> bool:
    lines = CONFIG_TEXT.splitlines()
    for i, ln in enumerate(lines):
        if (
            re.match(rf"\s*{re.escape(key)}:", ln)
            and i > 0
            and lines[i - 1].strip().startswith("#")
        ):
            return True
    return False


def test_every_cli_command_is_in_the_readme() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"sharpray {name}" in README, f"`sharpray {name}` is not documented in README.md"


def test_conformance_summary_lists_what_the_scp_accepts() -> None:
    for uid in (*PROCESSABLE_SOP_CLASSES, *ACCEPTED_TRANSFER_SYNTAXES):
        assert str(uid) in README, f"{uid} ({uid.name}) missing from README's conformance summary"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    block = re.search(r"## Test it\s+```bash\n(.+?)\n```", README, re.S)
    assert block, "README has no 'Test it' command"
    command = block.group(1)
    assert "pip install -e '.[test]'" in command and "python -m pytest" in command
    assert "-e '.[test]'" in ci and "python -m pytest" in ci
    for pkg in ("dcmtk", "orthanc", "orthanc-dicomweb", "dicom3tools"):
        assert pkg in command and pkg in ci


def test_dockerfiles_run_the_readme_commands() -> None:
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (REPO / name).read_text()
        assert 'pip install --no-cache-dir ".[postgres]"' in text, name
        assert 'ENTRYPOINT ["sharpray"]' in text and '"serve"' in text, name
        assert "USER 10001" in text and "HEALTHCHECK" in text, name
    run = re.search(r"## Run it.*?```bash\n(.+?)\n```", README, re.S)
    assert run and "pip install -e ." in run.group(1) and "sharpray serve" in run.group(1)
