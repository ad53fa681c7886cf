"""The import graph of node/, models/ and storage/ has no cycle and keeps its layers: models and
storage know nothing of the node, the settings module sits at the bottom, the pipeline does not
reach back into the receivers, and no module borrows another's private names. Every import
counts, also those inside functions (only ``if TYPE_CHECKING:`` blocks are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("node", "models", "storage")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (REPO / pkg).rglob("*.py"):
            parts = f.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f
    return out


MODULES = _modules()


def _imports(path: Path, module_level: bool = False) -> list[tuple[str, str]]:
    """(imported module, imported name or "") for every import outside TYPE_CHECKING blocks
    (``module_level``: only those outside functions)."""
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if module_level and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, "") for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    found.append((sub, "") if sub in MODULES else (child.module, a.name))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return [(m, n) for m, n in found if m in MODULES]


GRAPH = {m: {i for i, _ in _imports(p)} - {m} for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {m: deps for m, deps in GRAPH.items() if m == prefix or m.startswith(prefix + ".")}


#: Command-line evaluations that measure the node's own code on purpose (they run what the
#: node runs, not a copy): they may import it. Any other models/ module may do so only inside a
#: command-line entry point (a function), never at module level.
EVALUATORS = {"models.evaluate", "models.evaluate_blur_gate"}


def test_models_and_storage_know_nothing_of_the_node() -> None:
    for m, path in MODULES.items():
        if not m.startswith(("models", "storage")) or m in EVALUATORS:
            continue
        deps = {d for d, _ in _imports(path, module_level=True)}
        assert not {d for d in deps if d.startswith("node")}, (m, deps)
    for m in MODULES:
        if m.startswith("storage"):
            assert not {d for d in GRAPH[m] if d.startswith(("node", "models"))}, m


def test_settings_are_the_bottom_layer() -> None:
    node_deps = {d for d in GRAPH["node.config"] if d.startswith("node")}
    assert node_deps <= {"node.result_selection"}, node_deps
    assert not {d for d in GRAPH["node.result_selection"] if d.startswith("node")}


def test_the_pipeline_does_not_reach_back_into_receivers_or_dispatch() -> None:
    upward = ("node.ingest", "node.receive", "node.dispatch", "node.dicomweb", "node.app")
    for m, deps in _imports_of("node.pipeline").items():
        bad = {d for d in deps if d.startswith(upward)}
        assert not bad, (m, bad)


def test_no_module_borrows_private_names() -> None:
    for m, path in MODULES.items():
        for target, name in _imports(path):
            if target != m and name.startswith("_") and not name.startswith("__"):
                raise AssertionError(f"{m} imports the private {target}.{name}")


def test_the_cli_holds_no_sql() -> None:
    """The CLI and the dashboard share node/admin.py; the CLI itself queries nothing."""
    deps = {d for d, _ in _imports(MODULES["node.cli"])}
    assert not deps & {"storage.tables", "storage.queue"}, deps
    assert "select(" not in MODULES["node.cli"].read_text()
