"""The layers, read from the source with `ast`: cityloop's leaf (contracts, settings, clock,
errors and the other pure modules every room stands on) imports nothing above it; the pure
rooms import nothing of the wiring or the roof; cityloop's modules import one another in no
cycle. Every import counts, those inside functions and under TYPE_CHECKING too: a cycle that
only closes at run time is still a cycle (README.md, Architecture, "Layers")."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cityloop", "handlers", "topology", "streams", "api")

LEAF = frozenset(
    {
        "cityloop",
        "cityloop.clock",
        "cityloop.contracts",
        "cityloop.corpus",
        "cityloop.errors",
        "cityloop.logs",
        "cityloop.session_secret",
        "cityloop.settings",
    }
)
"""The ground: wire contracts, settings, the clock, the error root, the shipped corpus, the one
logger setup and the session's signing secret. Everything else under `cityloop/` is the roof:
the CLI, the supervisor, the embedded broker, the load tests, the classifier's training."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def imported(tree: ast.Module, name: str, is_package: bool) -> Iterator[tuple[str, list[str]]]:
    """Every import in `tree`: the module it names, and the names it takes from it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package, up level - 1
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield target, [alias.name for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports. `from a import b` imports the module `a.b` if
    there is one, else `a`; a name that is no module of ours counts as its nearest enclosing
    module. A package that a submodule's import runs first is no edge: every module would
    depend on its own package."""
    modules = our_modules()

    def nearest(target: str) -> str:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for target, names in imported(tree, name, path.name == "__init__.py"):
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            if len(submodules) < len(names) or not names:
                targets.add(nearest(target))
            targets.update(submodules)
        graph[name] = targets - {"", name}
    return graph


GRAPH = import_graph()


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


ROOF = frozenset(m for m in GRAPH if in_package(m, "cityloop") and m not in LEAF)


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(importers: frozenset[str], forbidden: frozenset[str]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module in importers
        for target in GRAPH[module]
        if target in forbidden
    )


def modules_of(*packages: str) -> frozenset[str]:
    return frozenset(m for m in GRAPH if any(in_package(m, p) for p in packages))


def test_the_graph_is_read() -> None:
    # the walk sees lazy imports (inside functions) and relative ones: a test of nothing passes
    assert "cityloop.loadtest.generate" in GRAPH["cityloop.cli_loadtest"]
    assert "cityloop.contracts" in GRAPH["handlers.intake"]
    assert "topology" in GRAPH["api.main"]
    assert LEAF <= GRAPH.keys() and {"cityloop.cli", "cityloop.loadtest.bench"} <= ROOF
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_cityloop_modules() -> None:
    cityloop = modules_of("cityloop")
    assert cycles({m: GRAPH[m] & cityloop for m in cityloop}) == []


def test_no_import_cycle_between_the_rooms() -> None:
    assert cycles(GRAPH) == []


def test_the_leaf_imports_only_the_leaf() -> None:
    """Contracts, settings, clock and errors import nothing of ours above them: not the roof,
    not the rooms (handlers, topology, streams, api)."""
    assert violations(LEAF, frozenset(GRAPH) - LEAF) == []


@pytest.mark.parametrize("room", ["handlers", "topology"])
def test_the_pure_rooms_import_neither_the_wiring_nor_the_roof(room: str) -> None:
    assert violations(modules_of(room), modules_of("streams", "api") | ROOF) == []


def test_topology_does_not_import_the_decisions() -> None:
    assert violations(modules_of("topology"), modules_of("handlers")) == []


def test_the_wiring_does_not_import_the_roof() -> None:
    """streams/ and api/ stand on the leaf and the pure rooms; the CLI, the supervisor and the
    load tests stand on them, never the other way."""
    assert violations(modules_of("streams", "api"), ROOF) == []
