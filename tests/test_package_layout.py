"""The package's shape: one home per stage, no import cycle between packages, no private name used across modules.

Read from the source (every import, including those inside functions), so a cycle hidden in a lazy import fails.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "lotlip"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every ``lotlip`` import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lotlip":
            if node.module == "lotlip":
                out += [(f"lotlip.{a.name}", []) for a in node.names]
            else:
                out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "lotlip"]
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top(module: str) -> str:
    """``lotlip.x.y`` -> ``x``: the package (or top-level module) a module belongs to."""
    return module.split(".")[1] if "." in module else ""


def _package_graph() -> dict[str, dict[str, list[str]]]:
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        me = _top(_module(path))
        for module, _ in _imports(path):
            target = _top(module)
            if target and target != me:
                graph[me][target].append(str(path.relative_to(REPO)))
    return graph


def _cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of the graph as a path of packages, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_packages():
    graph = _package_graph()
    cycle = _cycle(graph)
    where = [graph[a][b][0] for a, b in zip(cycle, cycle[1:], strict=False)] if cycle else []
    assert cycle is None, f"import cycle {' -> '.join(cycle)} (first imports: {where})"


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": ["x"]}, "b": {}}) is None


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "bench").rglob("*.py")]:
        for module, names in _imports(path):
            offenders += [f"{path.relative_to(REPO)}: {module}.{n}" for n in names if n.startswith("_")]
    assert not offenders, offenders


def test_only_the_cli_imports_the_stage_entry_points():
    users = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
             if _top(_module(p)) not in ("cli", "stages")
             and any(_top(m) == "stages" for m, _ in _imports(p))]
    assert not users, users


def test_each_stage_has_one_rule_file_one_cli_module_and_one_entry_module():
    rule_files = {p.stem for p in (REPO / "workflow" / "rules").glob("*.smk")} - {"common"}
    cli = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - {"__init__", "parsing", "tools"}
    stages = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    assert rule_files == cli == stages, (rule_files, cli, stages)
    for stage in stages:  # each rule file names its CLI module and entry points
        header = (REPO / "workflow" / "rules" / f"{stage}.smk").read_text()
        assert f"lotlip/cli/{stage}.py" in header and f"lotlip/stages/{stage}.py" in header, stage
