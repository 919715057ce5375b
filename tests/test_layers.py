"""The package's layers: no import cycle inside ``openvlthinker`` and no core package importing
an engine, read from the source with ``ast`` (imports at module level, inside functions and
under ``TYPE_CHECKING`` all count: a deferred import is still a dependency).

Layers, lowest first (a package may import its own modules and any package of a lower layer):

- ``problem_types``, ``advantage``, ``shaping``: import nothing else of ours (pure tensor
  math and the problem-type names);
- ``data``: records and prompts;
- ``rewards``: rule-based scorers (they use ``shaping``'s length trapezoid);
- ``benchmarks``: each benchmark's own metric (built on the reward parsers);
- ``tasks``: the task file (names problem types, scorer options, metrics and record fields);
- ``step``: the engine-free training step both engines call;
- ``engine``, then ``verl_plugin`` (it builds the engine's tiny models and LoRA), then
  ``evaluation`` (it drives the engine's policy), then ``cli``.

The core is every package but ``engine``, ``verl_plugin``, ``evaluation`` and ``cli``; a
package not listed here counts as core (it must not import an engine) until it gets a layer.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

import openvlthinker

LAYERS: tuple[tuple[str, ...], ...] = (
    ("problem_types", "advantage", "shaping"),
    ("data",),
    ("rewards",),
    ("benchmarks",),
    ("tasks",),
    ("step",),
    ("engine",),
    ("verl_plugin",),
    ("evaluation",),
    ("cli",),
)
ENGINES = frozenset({"engine", "verl_plugin", "evaluation", "cli"})
ROOT = Path(openvlthinker.__file__).parent

Graph = dict[str, dict[str, int]]  # module -> {imported module: line of the first import}


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package at ``root`` (packages by __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> Graph:
    """Module -> the package's modules it imports; ``from pkg import name`` resolves through
    ``pkg/__init__.py``'s own imports to the module that defines ``name``."""
    files = modules(root)
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in files.items()}

    def is_package(name: str) -> bool:
        return files[name].name == "__init__.py"

    def base_of(module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = module.split(".") if is_package(module) else module.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        return ".".join([*parts, node.module] if node.module else parts)

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    def reexported(package: str, name: str, seen: frozenset[str] = frozenset()) -> str:
        """The module ``package`` takes ``name`` from (the package itself if it defines it)."""
        if package in seen or not is_package(package):
            return package
        for node in trees[package].body:
            if isinstance(node, ast.ImportFrom) and any(
                (a.asname or a.name) == name for a in node.names
            ):
                base = base_of(package, node)
                if f"{base}.{name}" in files:
                    return f"{base}.{name}"
                if base in files:
                    return reexported(base, name, seen | {package})
        return package

    graph: Graph = {}
    for module, tree in trees.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = base_of(module, node)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in files:
                        targets.append(sub)
                    elif base in files:
                        targets.append(reexported(base, a.name))
                    else:
                        targets.append(known(base))
            for target in targets:
                if target is not None and target != module:
                    edges.setdefault(target, node.lineno)
    return graph


def cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """One import path per strongly connected component of more than one module (Tarjan),
    e.g. ``[a, b, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_back(graph, c[0], set(c)) for c in components]


def _path_back(graph: Mapping[str, Mapping[str, int]], start: str, within: set[str]) -> list[str]:
    """The shortest import path from ``start`` back to itself inside one component."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, {})):
                if w == start:
                    return [*paths[v], start]
                if w in within and w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in a cycle without a path back")  # Tarjan guarantees one


def package_of(module: str) -> str | None:
    """``openvlthinker.rewards.score`` -> ``rewards``; the root package itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_violations(graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Each import that goes up a layer or sideways into another package of the same layer,
    and each import of an engine by a package the layers do not list."""
    rank = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    found = []
    for module, edges in sorted(graph.items()):
        src = package_of(module)
        for target, line in sorted(edges.items()):
            dst = package_of(target)
            if src is None or dst is None or src == dst:
                continue
            if src in rank and dst in rank:
                ok = rank[dst] < rank[src]
            else:  # a package without a layer is core: it may not import an engine
                ok = dst not in ENGINES or src in ENGINES
            if not ok:
                found.append(f"{module} (line {line}) imports {target}: {src} may not import {dst}")
    return found


def test_no_import_cycle_inside_the_package():
    found = cycles(import_graph(ROOT))
    assert not found, "import cycles (module -> module it imports):\n" + "\n".join(
        " -> ".join(c) for c in found
    )


def test_every_import_goes_down_a_layer_and_the_core_imports_no_engine():
    found = layer_violations(import_graph(ROOT))
    assert not found, "imports against the layers (tests/test_layers.py):\n" + "\n".join(found)


def test_every_engine_and_known_core_package_has_one_layer():
    listed = [p for layer in LAYERS for p in layer]
    assert len(listed) == len(set(listed))
    assert ENGINES <= set(listed)
    present = {package_of(m) for m in modules(ROOT)} - {None}
    # 'step' may not exist yet on every branch; every other listed package does.
    assert set(listed) - present <= {"step"}


# ----------------------------------------------------------------------------- the checker


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "openvlthinker" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "openvlthinker"


def test_the_graph_sees_deferred_relative_and_reexported_imports(tmp_path):
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "from openvlthinker.data.records import Record\n",
            "data/records.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from openvlthinker.tasks import Registry\n"
                "class Record: ...\n"
            ),
            "tasks/__init__.py": "from .registry import Registry\n",
            "tasks/registry.py": (
                "def load():\n    from ..data import Record\n    import openvlthinker.engine.x\n"
            ),
            "engine/__init__.py": "",
            "engine/x.py": "",
        },
    )
    graph = import_graph(root)
    assert graph["openvlthinker.data.records"] == {"openvlthinker.tasks.registry": 3}
    assert graph["openvlthinker.tasks.registry"] == {
        "openvlthinker.data.records": 2,
        "openvlthinker.engine.x": 3,
    }
    assert cycles(graph) == [
        ["openvlthinker.data.records", "openvlthinker.tasks.registry", "openvlthinker.data.records"]
    ]
    assert layer_violations(graph) == [
        "openvlthinker.data.records (line 3) imports openvlthinker.tasks.registry: "
        "data may not import tasks",
        "openvlthinker.tasks.registry (line 3) imports openvlthinker.engine.x: "
        "tasks may not import engine",
    ]


def test_a_package_without_a_layer_is_core(tmp_path):
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "newcore/__init__.py": "import openvlthinker.rewards\nimport openvlthinker.cli\n",
            "rewards/__init__.py": "",
            "cli.py": "",
        },
    )
    assert layer_violations(import_graph(root)) == [
        "openvlthinker.newcore (line 2) imports openvlthinker.cli: newcore may not import cli"
    ]


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b": 1}, "b": {"c": 1}, "c": {}}, []),
        ({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}, [["a", "b", "c", "a"]]),
        ({"a": {"b": 1, "c": 1}, "b": {"a": 1}, "c": {"a": 1}}, [["a", "b", "a"]]),
    ],
)
def test_cycles_report_a_path(edges, expected):
    assert cycles(edges) == expected
