"""pyproject.toml's dependencies are true: the installed versions meet their floors, and every
module the code imports is a declared dependency (the package's in `dependencies`, the tests' and
benchmarks' in those or the `dev` extra) — not one that merely comes along with another."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cityloop", "handlers", "api", "streams", "topology")
FIRST_PARTY = {*PACKAGES, "tests", "bench"}


def requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(line) for line in listed]


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def distributions_of() -> dict[str, list[str]]:
    """Top-level module → the installed distributions that provide it, names normalised."""
    return {
        module: [normalised(name) for name in names]
        for module, names in packages_distributions().items()
    }


def imported_modules(*roots: str) -> dict[str, set[str]]:
    """Every top-level module the Python files under these folders import (at the top, in a
    function or under TYPE_CHECKING alike), with the files that import it; the standard
    library's and our own left out."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            local = {sibling.stem for sibling in path.parent.glob("*.py")}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY or top in local:
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def undeclared(modules: dict[str, set[str]], declared: set[str]) -> list[str]:
    problems = []
    for module, files in sorted(modules.items()):
        providers = distributions_of().get(module)
        if not providers:
            problems.append(f"{module} (imported by {sorted(files)[0]}) is not installed")
        elif not declared & set(providers):
            problems.append(
                f"{module} (imported by {sorted(files)[0]}) comes from {providers[0]}, "
                "which pyproject.toml does not declare"
            )
    return problems


@pytest.mark.parametrize("extra", [None, "dev"])
def test_installed_versions_meet_the_floors(extra: str | None) -> None:
    unmet = []
    for requirement in requirements(extra):
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            unmet.append(f"{requirement.name} is not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{requirement.name} {installed} does not meet {requirement.specifier}")
    assert unmet == []


def test_every_module_the_package_imports_is_a_declared_dependency() -> None:
    declared = {normalised(requirement.name) for requirement in requirements()}
    assert undeclared(imported_modules(*PACKAGES), declared) == []


def test_every_module_the_tests_and_benchmarks_import_is_declared() -> None:
    declared = {normalised(r.name) for r in [*requirements(), *requirements("dev")]}
    assert undeclared(imported_modules("tests", "bench"), declared) == []


def test_the_check_finds_what_is_undeclared() -> None:
    """The check itself: a module from a distribution pyproject.toml does not name is found."""
    found = undeclared({"yaml": {"x.py"}, "no_such_module_anywhere": {"y.py"}}, {"fastapi"})
    assert [problem.split(" ")[0] for problem in found] == ["no_such_module_anywhere", "yaml"]
