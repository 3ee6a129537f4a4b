"""`newsdesk chat`: a local REPL over the answering engine, for trying questions and follow-ups.

Line editing and history come from prompt_toolkit on a terminal; piped input is read line by line and the
output stays plain.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from bot.conversation import Conversation
from bot.engine import Answer, AnswerEngine
from bot.filters import split_filters
from vectorstore.chroma import StoreUnavailable
from vectorstore.errors import UserError

HELP = """Ask a question about the articles. Follow-ups ("and what did Attal say?") use the conversation.
Options before a question narrow the search: --since 2024-06-01 --until 2024-06-30 --source "Le Monde".
  /sources   the latest articles
  /reset     forget the conversation
  /help      this help
  /quit      leave (Ctrl-D works too; Ctrl-C cancels the line)"""


def _lines_from_terminal(history_file: str | None) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    session: PromptSession[str] = PromptSession(
        history=FileHistory(history_file) if history_file else InMemoryHistory()
    )
    while True:
        try:
            yield session.prompt("newsdesk> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return


def _colour(answer: Answer, enabled: bool) -> str:
    if not enabled:
        return answer.render()
    from rich.markup import escape

    body = escape(answer.answer)
    style = "yellow" if answer.refused else "bold"
    parts = [f"[{style}]{body}[/{style}]"]
    if answer.note:
        parts.append(f"[dim]{escape(answer.note)}[/dim]")
    if answer.sources:
        parts.append("[cyan]" + "\n".join(escape(line) for line in answer.source_lines()) + "[/cyan]")
    return "\n\n".join(parts)


def run_repl(
    engine: AnswerEngine,
    lines: Iterator[str] | None = None,
    write: Callable[[str], None] | None = None,
    history_file: str | None = None,
) -> None:
    """Read questions until /quit or end of input; answer each with its sources."""
    interactive = lines is None and sys.stdin.isatty()
    if lines is None:
        lines = _lines_from_terminal(history_file) if interactive else (line.rstrip("\n") for line in sys.stdin)
    if write is None:
        if interactive:
            from rich.console import Console

            console = Console()
            write = console.print
        else:
            write = print
    conversation = Conversation()
    if interactive:
        write("Ask about the articles. /help for commands.")
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line in {"/quit", "/exit"}:
            break
        if line == "/help":
            write(HELP)
        elif line == "/reset":
            conversation.reset()
            write("Conversation forgotten.")
        elif line == "/sources":
            docs = engine.store.documents(limit=10)
            write("\n".join(f"{d['date'] or '----------'}  {d['title']}" for d in docs) or "No articles yet.")
        elif line.startswith("/"):
            write(f"Unknown command {line.split()[0]}; /help lists them.")
        else:
            try:
                question, search_filters = split_filters(line)
            except UserError as exc:
                write(str(exc))
                continue
            try:
                write(_colour(engine.ask(question, conversation, filters=search_filters), interactive))
            except StoreUnavailable as exc:
                write(f"{exc}; try again later.")
