"""The REPL on a terminal: Rich colours the answers, and nothing a user types or an article holds is read as
Rich markup."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from bot.engine import AnswerEngine
from bot.repl import run_repl
from ingest.articles import Article
from ingest.pipeline import Ingester
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.store import Store

TITLE = "Valmont [/b] budget [bold]passed[/bold]"
BUDGET = Article(
    id="valmont-budget",
    title=TITLE,
    date="2024-03-20",
    source="Le Courrier [/]",
    text="The Valmont council passed its budget on Tuesday, with 12 million euros for the new school.",
)


def test_user_text_and_titles_with_markup_are_printed_as_typed(tmp_path: Path, embedder: NewsEmbeddings) -> None:
    store = Store(tmp_path / "store", embedder)
    Ingester(store).ingest([BUDGET])
    terminal = Console(file=io.StringIO(), record=True, force_terminal=True, color_system="standard", width=400)
    lines = ["/[/x]", "--since [/b] How much for the school?", "/sources", "How much did the [/i] Valmont budget give?"]
    run_repl(AnswerEngine(store), iter(lines), console=terminal)
    shown = terminal.export_text()
    assert "Unknown command /[/x]; /help lists them." in shown
    assert "'[/b]' is not a date (use YYYY-MM-DD)" in shown
    assert f"2024-03-20  {TITLE}" in shown
    assert "12 million" in shown and f"{TITLE} (2024-03-20, Le Courrier [/])" in shown
    assert "\x1b[1m" in terminal.file.getvalue()  # type: ignore[attr-defined]  # the answer is still bold
