"""The layers of DESIGN.md section 1, checked over every import of every module (function-level and
TYPE_CHECKING ones included): ingest -> vectorstore <- bot, with newsdesk on top of all three."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# Which of our packages each package may import.
ALLOWED = {
    "vectorstore": set(),
    "ingest": {"vectorstore"},
    "bot": {"vectorstore"},
    "newsdesk": {"ingest", "vectorstore", "bot"},
}
# The violations the code has today, (module, what it imports): issue 14 removes them, and then their lines
# here. Nothing may be added: a new import across the layers fails below.
KNOWN_VIOLATIONS = {
    ("bot/extractive.py", "ingest.sentences"),  # the sentence splitter belongs to a text layer nobody owns yet
    ("bot/filters.py", "ingest.articles"),
    ("bot/telegram.py", "ingest.articles"),  # uploads, /ingest and feeds: admin writes inside the bot
    ("bot/telegram.py", "ingest.feeds"),
    ("bot/telegram.py", "ingest.loaders"),
    ("bot/telegram.py", "ingest.pipeline"),
    ("bot/telegram.py", "ingest.web"),
    ("bot/telegram.py", "newsdesk.settings"),  # only newsdesk should read Settings
    ("bot/telegram.py", "newsdesk.runtime"),
    ("ingest/__main__.py", "newsdesk.cli"),  # `python -m ingest` is the CLI's ingest command
}


def imports(path: Path, package_dir: Path) -> set[str]:
    """Every module that `path` (under the package folder `package_dir`) imports, anywhere in it, relative imports
    made absolute."""
    here = [package_dir.name, *path.relative_to(package_dir).parts[:-1]]  # the package the module is in
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            found.add(".".join([*base, node.module] if node.module else base))
    return found


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
    assert sorted(violations - KNOWN_VIOLATIONS) == [], "new imports across the layers (see DESIGN.md section 1)"
    assert sorted(KNOWN_VIOLATIONS - violations) == [], "these are gone: remove them from KNOWN_VIOLATIONS"
    assert ("newsdesk/runtime.py", "bot.engine") in crossing  # imported inside a function: the walk sees it


def test_function_level_and_relative_imports_are_seen(tmp_path: Path) -> None:
    module = tmp_path / "ingest" / "sub" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from bot.engine import A\n    from ..pipeline import B\n    from . import c\n")
    assert imports(module, tmp_path / "ingest") == {"bot.engine", "ingest.pipeline", "ingest.sub"}
