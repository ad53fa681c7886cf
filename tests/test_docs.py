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


def _command_rows() -> dict[str, str]:
    """README command table: command name -> its row."""
    rows = {}
    for line in README.splitlines():
        m = re.match(r"\| `sharpray (\w+)", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_every_cli_flag_is_in_the_readme_and_every_documented_flag_exists() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    rows = _command_rows()
    for name, sp in sub.choices.items():  # type: ignore[union-attr]
        flags = {o for a in sp._actions for o in a.option_strings if o.startswith("--")}
        flags.discard("--help")
        row = rows[name]
        for flag in flags:
            assert flag in row, f"`sharpray {name} {flag}` is not in README's command table"
        documented = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", row.split("|")[1]))
        assert documented <= flags, f"README documents {documented - flags} for {name}"
    for flag in ("--config", "--verbose", "--version"):
        assert any(flag in o for a in parser._actions for o in a.option_strings)
        assert flag in README, f"global {flag} not in README"


def test_every_key_in_config_yaml_is_a_setting() -> None:
    """The other direction: config.yaml holds no key the node does not know (it validates)."""
    Settings.model_validate(yaml.safe_load(CONFIG_TEXT))


def test_config_lookup_order_is_the_documented_one() -> None:
    from node.config import CONFIG_LOOKUP

    order = ", else ".join(f"`{x}`" for x in CONFIG_LOOKUP)
    assert order in " ".join(README.split()), f"README does not give the lookup order {order}"
    deploy = " ".join((REPO / "docs" / "deploy.md").read_text().split())
    assert "SHARPRAY_CONFIG" in deploy and "/etc/sharpray/config.yaml" in deploy
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (REPO / name).read_text()
        assert "SHARPRAY_CONFIG=/etc/sharpray/config.yaml" in text, name


def test_conformance_summary_lists_what_the_scp_accepts() -> None:
    for uid in (*PROCESSABLE_SOP_CLASSES, *ACCEPTED_TRANSFER_SYNTAXES):
        assert str(uid) in README, f"{uid} ({uid.name}) missing from README's conformance summary"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    block = re.search(r"## Test it\s+```bash\n(.+?)\n```", README, re.S)
    assert block, "README has no 'Test it' command"
    command = block.group(1)
    assert command == "bash scripts/setup-tests.sh && .venv/bin/python -m pytest"
    assert "bash scripts/setup-tests.sh" in ci and ".venv/bin/python -m pytest" in ci
    setup = (REPO / "scripts" / "setup-tests.sh").read_text()
    assert "pip install -q -e '.[test]'" in setup and "sudo" in setup
    for pkg in ("dcmtk", "orthanc", "orthanc-dicomweb", "dicom3tools", "chromium"):
        assert f"need+=({pkg})" in setup, pkg
        assert f"`{pkg}`" in README, f"README does not say the test setup installs {pkg}"


def test_dockerfiles_run_the_readme_commands() -> None:
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (REPO / name).read_text()
        assert 'pip install --no-cache-dir ".[postgres]"' in text, name
        assert 'ENTRYPOINT ["sharpray"]' in text and '"serve"' in text, name
        assert "USER 10001" in text and "HEALTHCHECK" in text, name
    run = re.search(r"## Run it.*?```bash\n(.+?)\n```", README, re.S)
    assert run and "pip install -e ." in run.group(1) and "sharpray serve" in run.group(1)


def test_the_bench_install_has_what_bench_imports() -> None:
    """bench/README.md installs '.[train,postgres,bench]': every third-party package that bench/
    and the tests/support helpers it uses import must come with that install."""
    import ast
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("train", "postgres", "bench"):
        wanted += project["optional-dependencies"][extra]
    names = {re.split(r"[<>=!~\[; ]", w, maxsplit=1)[0].lower().replace("_", "-") for w in wanted}
    dists = packages_distributions()
    files = [*(REPO / "bench").rglob("*.py"), *(REPO / "tests" / "support").rglob("*.py")]
    missing = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            for m in mods:
                top = m.split(".")[0]
                if top in sys.stdlib_module_names or top in {
                    "node",
                    "models",
                    "storage",
                    "bench",
                    "tests",
                }:
                    continue
                provided = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not provided & names:
                    missing.add(f"{top} ({f.relative_to(REPO)})")
    assert not missing, f"bench needs packages its install does not bring: {sorted(missing)}"
