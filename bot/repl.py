"""`newsdesk chat`: a local REPL over the answering engine, for trying questions and follow-ups.

Line editing and history come from prompt_toolkit on a terminal, and answers are coloured by Rich; piped input
is read line by line and the output stays plain. Whatever a user typed or an article holds is printed as plain
text, never as Rich markup: "/[/x]" or a title with "[/b]" in it would otherwise raise MarkupError.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from bot.answers import Answer
from bot.conversation import Conversation
from bot.engine import AnswerEngine
from bot.filters import split_filters
from vectorstore.chroma import StoreUnavailable
from vectorstore.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

HELP = """Ask a question about the articles. Follow-ups ("and what did Attal say?") use the conversation.
Options before a question narrow the search: --since 2024-06-01 --until 2024-06-30 --source "Le Monde".
  /sources   the latest articles
  /reset     forget the conversation
  /help      this help
  /quit      leave (Ctrl-D works too; Ctrl-C cancels the line)"""


# Words typed as if they were commands: answering them would quote a random article.
_BARE_COMMANDS = {
    "quit": "quit", "exit": "quit", "q": "quit", "help": "help", "?": "help", "reset": "reset", "clear": "reset",
    "sources": "sources",
}  # fmt: skip


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


def _coloured(answer: Answer) -> Text:
    """The answer in bold (a refusal in yellow), its note dim, its sources cyan: styles applied to the text,
    never parsed from it."""
    from rich.text import Text

    shown = Text(answer.answer, style="yellow" if answer.refused else "bold")
    if answer.note:
        shown.append("\n\n" + answer.note, style="dim")
    if answer.sources:
        shown.append("\n\n" + "\n".join(answer.source_lines()), style="cyan")
    return shown


def run_repl(
    engine: AnswerEngine,
    lines: Iterator[str] | None = None,
    write: Callable[[str], None] | None = None,
    history_file: str | None = None,
    console: Console | None = None,
) -> None:
    """Read questions until /quit or end of input; answer each with its sources. Output goes to `write`, else to
    `console` (Rich, answers coloured; a terminal's when interactive), else to stdout."""
    interactive = lines is None and sys.stdin.isatty()
    if lines is None:
        lines = _lines_from_terminal(history_file) if interactive else (line.rstrip("\n") for line in sys.stdin)
    if write is None and console is None and interactive:
        from rich.console import Console

        console = Console()
    show: Callable[[str], None]
    if write is None and console is not None:
        terminal = console
        show = partial(terminal.print, markup=False, highlight=False)

        def show_answer(answer: Answer) -> None:
            terminal.print(_coloured(answer))

    else:
        show = write or print

        def show_answer(answer: Answer) -> None:
            show(answer.render())

    conversation = Conversation()
    if interactive:
        show("Ask about the articles. /help for commands.")
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line in {"/quit", "/exit"}:
            break
        if line == "/help":
            show(HELP)
        elif line == "/reset":
            conversation.reset()
            show("Conversation forgotten.")
        elif line == "/sources":
            docs = engine.store.documents(limit=10)
            show("\n".join(f"{d['date'] or '----------'}  {d['title']}" for d in docs) or "No articles yet.")
        elif line.startswith("/"):
            show(f"Unknown command {line.split()[0]}; /help lists them.")
        elif line.lower() in _BARE_COMMANDS:
            show(f"Commands start with a slash: /{_BARE_COMMANDS[line.lower()]}. Or ask a whole question.")
        else:
            try:
                question, search_filters = split_filters(line)
            except UserError as exc:
                show(str(exc))
                continue
            try:
                answer = engine.ask(question, conversation, filters=search_filters)
            except StoreUnavailable as exc:
                show(f"{exc}; try again later.")
                continue
            show_answer(answer)
            engine.store.embedder.prepare_in_background()  # a chat goes on: the faster engine, once answered
