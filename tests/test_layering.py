"""The layers of DESIGN.md section 1, checked over every import of every module (function-level and
TYPE_CHECKING ones included): text at the bottom, vectorstore on it, ingest and bot beside each other on
vectorstore, newsdesk on top of all of them; and no modules that import each other, however hidden."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.conftest import ROOT

# Which of our packages each package may import.
ALLOWED = {
    "text": set(),
    "vectorstore": {"text"},
    "ingest": {"text", "vectorstore"},
    "bot": {"text", "vectorstore"},
    "newsdesk": {"text", "vectorstore", "ingest", "bot"},
    # `python -m training` rebuilds the bot's answer model: a command like the CLI's, on top of what it trains.
    "training": {"text", "vectorstore", "bot", "newsdesk"},
}
# Programs, not layers: a package's __main__ is what `python -m PACKAGE` runs, a command above every layer.
# `python -m ingest` (README) is the CLI's ingest command. Nothing else may cross the layers.
ENTRY_POINTS = {
    ("ingest/__main__.py", "newsdesk.cli"),
}


def import_statements(path: Path, package_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names imported from it) for every import anywhere in `path` (under the package folder
    `package_dir`), relative imports made absolute; `import x` imports no names."""
    here = [package_dir.name, *path.relative_to(package_dir).parts[:-1]]  # the package the module is in
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            yield ".".join([*base, node.module] if node.module else base), [alias.name for alias in node.names]


def imports(path: Path, package_dir: Path) -> set[str]:
    """Every module that `path` imports (for `from x import y`, x)."""
    return {module for module, _ in import_statements(path, package_dir)}


def module_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Each of our modules and those of ours it imports: `from bot import extractive` imports bot.extractive, and
    importing bot.engine runs bot/__init__.py first."""
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        targets = set()
        for module, names in import_statements(path, root / name.split(".")[0]):
            for dotted in [module, *(f"{module}.{n}" for n in names)]:
                parts = dotted.split(".")
                targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = (targets & files.keys()) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others, each sorted."""
    reach = {}
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        reach[start] = seen
    groups = {tuple(sorted(m for m in reach[start] if start in reach[m])) for start in graph if start in reach[start]}
    return sorted(list(group) for group in groups)


def edges() -> set[tuple[str, str]]:
    """(module, imported module) for every import from one of our packages into another."""
    found = set()
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imports(path, ROOT / package):
                target = name.split(".")[0]
                if target in ALLOWED and target != package:
                    found.add((path.relative_to(ROOT).as_posix(), name))
    return found


def test_every_package_imports_only_the_layers_below_it() -> None:
    crossing = edges()
    violations = {
        (module, name) for module, name in crossing if name.split(".")[0] not in ALLOWED[module.split("/")[0]]
    }
    assert sorted(violations - ENTRY_POINTS) == [], "imports across the layers (see DESIGN.md section 1)"
    assert sorted(ENTRY_POINTS - violations) == [], "these are gone: remove them from ENTRY_POINTS"
    assert ("newsdesk/runtime.py", "bot.engine") in crossing  # imported inside a function: the walk sees it


def test_function_level_and_relative_imports_are_seen(tmp_path: Path) -> None:
    module = tmp_path / "ingest" / "sub" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from bot.engine import A\n    from ..pipeline import B\n    from . import c\n")
    assert imports(module, tmp_path / "ingest") == {"bot.engine", "ingest.pipeline", "ingest.sub"}


def test_no_modules_import_each_other_in_a_cycle() -> None:
    graph = module_graph(ROOT, ALLOWED)
    assert cycles(graph) == [], "modules that import each other: move what both need into a module of its own"
    assert "bot.extractive" in graph["bot.engine"]  # `from bot import extractive` is an import of bot.extractive


def test_cycles_through_function_level_and_type_checking_imports_are_seen(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n")
    (package / "b.py").write_text("def f():\n    from pkg import c\n")
    (package / "c.py").write_text("from . import a\n")
    (package / "d.py").write_text("import pkg.a\n")
    graph = module_graph(tmp_path, ["pkg"])
    assert graph["pkg.d"] == {"pkg", "pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
