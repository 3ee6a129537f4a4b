"""The `newsdesk` command: ingest articles, search them, ask questions, run the bot.

Heavy libraries (torch, chromadb) are imported inside commands, so `newsdesk --help` stays instant.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from newsdesk.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """Turn the errors a user can fix (a bad setting, no server, a full disk) into one clear line; anything else
    is a bug and keeps its traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from vectorstore.errors import UserError
        from vectorstore.store import storage_problem

        try:
            return command(*args, **kwargs)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:  # a full or read-only disk under a file other than the store's
            if problem := storage_problem(_settings().data_dir):
                raise click.ClickException(f"cannot write to the data folder: {problem}") from None
            if isinstance(exc, PermissionError):
                raise click.ClickException(f"cannot write {exc.filename}: permission denied") from None
            raise

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsdesk")
def cli() -> None:
    """Ask questions of news articles and get short answers with numbered citations.

    \b
    Examples:
      newsdesk ingest examples/articles
      newsdesk search "What did Peskov say?"
      newsdesk sources
    """


def _settings() -> Settings:
    """Settings read afresh per command, so tests and long sessions see the current environment."""
    return Settings()


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--feed", "feeds", multiple=True, metavar="URL", help="An RSS or Atom feed: ingest its new entries.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@friendly_errors
def ingest(sources: tuple[str, ...], feeds: tuple[str, ...], as_json: bool) -> None:
    """Add articles from files and folders (.txt, .md, .html, .json, .jsonl), web pages (http/https URLs)
    and feeds (--feed).

    Unchanged articles are skipped, changed ones replaced; bad files and pages are named and skipped, and so
    are files of other types in folders. A feed's entries are fetched once: later runs read only the new ones,
    and retry failed ones a few times, later and later (newsdesk sources --feeds lists them). The exit code is
    1 when anything failed that had not failed before.

    \b
    Examples:
      newsdesk ingest examples/articles
      newsdesk ingest --json feed-dump.jsonl
      newsdesk ingest https://example.org/news/story.html
      newsdesk ingest --feed https://example.org/news/rss.xml
    """
    from ingest.feeds import ingest_feed
    from ingest.pipeline import Ingester, IngestReport, load_sources, progress_bar
    from newsdesk.runtime import open_feed_log, open_store

    if not sources and not feeds:
        raise click.UsageError("give files, folders, URLs or --feed URL")
    settings = _settings()
    store = open_store(settings)
    max_bytes = int(settings.max_file_mb * 1e6)
    ingester = Ingester(store, settings.chunk_tokens, settings.chunk_overlap)
    allow_private = settings.allow_private_urls
    items = list(load_sources(sources, max_bytes, settings.fetch_timeout, allow_private=allow_private))
    with progress_bar(items, enabled=not as_json) as progress:
        report = ingester.ingest(items, IngestReport(), progress)
    log = open_feed_log(settings) if feeds else None
    for feed in feeds:
        assert log is not None
        ingest_feed(feed, ingester, log, max_bytes, settings.fetch_timeout, report, allow_private=allow_private)
    for skipped in report.skipped:
        click.echo(f"skipped: {skipped}", err=True)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        click.echo(report.summary())
    sys.exit(1 if report.failed else 0)


def feed_options(command: F) -> F:
    """--feed and --interval, shared by the commands that poll feeds."""
    command = click.option(
        "--interval", type=click.FloatRange(min=1), metavar="SECONDS", help="Seconds between polls of each feed."
    )(command)
    return click.option(
        "--feed", "feeds", multiple=True, metavar="URL", help="A feed to poll (default: NEWSDESK_FEEDS)."
    )(command)


def _with_feeds(settings: Settings, feeds: tuple[str, ...], interval: float | None) -> Settings:
    """The settings with the feeds and interval given on the command line, if any."""
    update: dict[str, Any] = {}
    if feeds:
        update["feed_urls"] = list(feeds)
    if interval is not None:
        update["feed_interval"] = interval
    return settings.model_copy(update=update)


@cli.command()
@feed_options
@friendly_errors
def watch(feeds: tuple[str, ...], interval: float | None) -> None:
    """Poll RSS/Atom feeds and ingest new entries until interrupted; a failing feed is retried later and later.

    \b
    Examples:
      newsdesk watch --feed https://example.org/news/rss.xml --interval 600
      NEWSDESK_FEEDS=https://a.example/rss,https://b.example/atom newsdesk watch
    """
    import logging
    import signal
    import time

    from ingest.feeds import FeedWatcher
    from ingest.pipeline import Ingester
    from newsdesk.runtime import feed_poller_lock, open_feed_log, open_store

    settings = _with_feeds(_settings(), feeds, interval)
    if not settings.feed_urls:
        raise click.UsageError("give --feed URL or set NEWSDESK_FEEDS")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    store = open_store(settings)
    watcher = FeedWatcher(
        settings.feed_urls,
        Ingester(store, settings.chunk_tokens, settings.chunk_overlap),
        open_feed_log(settings),
        settings.feed_interval,
        int(settings.max_file_mb * 1e6),
        settings.fetch_timeout,
        allow_private=settings.allow_private_urls,
        lock=feed_poller_lock(settings),
    )
    from ingest.pipeline import counted

    click.echo(
        f"watching {counted(len(settings.feed_urls), 'feed')} every {settings.feed_interval:g} s;"
        " Ctrl-C or SIGTERM stops",
        err=True,
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a service manager's SIGTERM ends the watch like Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            watcher.poll()
            time.sleep(watcher.seconds_to_next())
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


def filter_options(command: F) -> F:
    """--since, --until and --source, shared by the commands that search."""
    command = click.option("--source", default=None, help="Only articles from this source.")(command)
    command = click.option("--until", default=None, metavar="DATE", help="Only articles dated on or before DATE.")(
        command
    )
    return click.option("--since", default=None, metavar="DATE", help="Only articles dated on or after DATE.")(command)


def filters_from(since: str | None, until: str | None, source: str | None) -> Any:
    """SearchFilters from command-line text; a date that cannot be read is a usage error."""
    from vectorstore.errors import UserError
    from vectorstore.records import SearchFilters, filter_date

    def as_int(value: str | None, option: str) -> int | None:
        try:
            return None if value is None else filter_date(value)
        except UserError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None

    return SearchFilters(as_int(since, "--since"), as_int(until, "--until"), source)


@cli.command()
@click.argument("query")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="How many passages.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits, best first.")
@friendly_errors
def search(query: str, k: int, since: str | None, until: str | None, source: str | None, as_json: bool) -> None:
    """Show the passages that best match QUERY, in any language.

    \b
    Example:
      newsdesk search "What did Peskov say?" -k 3
    """
    from newsdesk.runtime import open_store

    if not query.strip():
        raise click.UsageError("the query is empty: give words to search for")
    store = open_store(_settings())
    filters = store.resolve_filters(filters_from(since, until, source))
    if filters and not store.count_matching(filters):
        raise click.ClickException("no article matches these filters")
    hits = store.search(query, k, filters)
    if as_json:
        click.echo(json.dumps([h.as_json() for h in hits], ensure_ascii=False, indent=1))
        return
    if not hits:
        click.echo("No passages found.")
    for rank, hit in enumerate(hits, 1):
        where = hit.url or hit.article_id
        click.echo(f"[{rank}] {hit.score:.4f}  {hit.title}  ({hit.date or 'undated'})  {where}")
        click.echo("    " + hit.text.replace("\n", " ")[:400])


@cli.command()
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many articles, newest first."
)
@click.option(
    "--feeds", "show_feeds", is_flag=True, help="List the feeds instead: when each was last read, its failing entries."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@friendly_errors
def sources(limit: int, show_feeds: bool, as_json: bool) -> None:
    """List stored articles, newest first: id, date, title, chunks.

    With --feeds, list the feeds read so far (and those NEWSDESK_FEEDS names): when each was last read, and the
    entries whose pages failed, with the error, the attempts and the next try.
    """
    from ingest.pipeline import counted

    if show_feeds:
        _list_feeds(as_json)
        return
    from newsdesk.runtime import open_store

    docs = open_store(_settings()).documents(limit)
    if as_json:
        click.echo(json.dumps(docs, ensure_ascii=False, indent=1))
        return
    if not docs:
        click.echo("No articles yet: try `newsdesk ingest examples/articles`.")
    for doc in docs:
        chunks = counted(int(doc["chunks"]), "chunk")  # type: ignore[call-overload]
        click.echo(f"{doc['date'] or '----------':10}  {chunks:>10}  {doc['title']}\n    {doc['id']}")


def _list_feeds(as_json: bool) -> None:
    """`sources --feeds`: the feed log (of the data folder, or of the database), as text or JSON."""
    from datetime import datetime

    from ingest.feeds import FeedStatus
    from ingest.pipeline import counted
    from newsdesk.runtime import open_feed_log

    settings = _settings()
    feeds = open_feed_log(settings).status()
    feeds += [FeedStatus(url, None, None, 0, []) for url in settings.feed_urls if url not in {f.feed for f in feeds}]

    def when(timestamp: float | None) -> str | None:
        return None if timestamp is None else datetime.fromtimestamp(timestamp).isoformat(" ", "minutes")

    if as_json:
        listing = [
            {
                "feed": f.feed,
                "last_success": when(f.last_success),
                "error": f.error,
                "failures_in_a_row": f.failures,
                "failing_entries": [
                    {"link": e.link, "error": e.error, "attempts": e.attempts, "next_try": when(e.next_try)}
                    for e in f.entries
                ],
            }
            for f in feeds
        ]
        click.echo(json.dumps(listing, ensure_ascii=False, indent=1))
        return
    if not feeds:
        click.echo("No feeds yet: try `newsdesk ingest --feed URL`.")
    for f in feeds:
        read = f"last read {when(f.last_success)}" if f.last_success is not None else "never read"
        failing = f"; failed {counted(f.failures, 'time')} in a row: {f.error}" if f.failures else ""
        click.echo(f"{f.feed}\n    {read}{failing}; {counted(len(f.entries), 'failing entry', 'failing entries')}")
        for e in f.entries:
            retry = f"next try {when(e.next_try)}" if e.next_try is not None else "given up"
            click.echo(f"    {e.link}: {e.error} ({counted(e.attempts, 'attempt')}, {retry})")


@cli.command()
@click.argument("article_ids", nargs=-1, required=True)
@friendly_errors
def remove(article_ids: tuple[str, ...]) -> None:
    """Delete articles (ids as `newsdesk sources` shows them)."""
    from newsdesk.runtime import open_store

    store = open_store(_settings())
    missing = [a for a in article_ids if not store.remove_document(a)]
    for article_id in article_ids:
        if article_id not in missing:
            click.echo(f"removed {article_id}")
    if missing:
        raise click.ClickException(f"no such article: {', '.join(missing)}")


@cli.command()
@click.argument("question", required=False)
@click.option(
    "-k", "--k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="How many passages to answer from."
)
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per question.")
@friendly_errors
def ask(question: str | None, k: int, since: str | None, until: str | None, source: str | None, as_json: bool) -> None:
    """Answer QUESTION from the articles, with numbered sources.

    With no QUESTION, read one question per line from stdin and print one JSON object per line
    (models load once).

    \b
    Examples:
      newsdesk ask "What did Peskov say?"
      newsdesk ask --json "Combien de trains ont été supprimés ?"
      cat questions.txt | newsdesk ask
    """
    from newsdesk.runtime import build_engine

    if question is not None and not question.strip():
        raise click.UsageError('the question is empty: ask something, e.g. newsdesk ask "What did Peskov say?"')
    filters = filters_from(since, until, source)
    engine = build_engine(_settings())
    if question is not None:
        answer = engine.ask(question, k=k, filters=filters)
        click.echo(json.dumps(answer.as_json(), ensure_ascii=False) if as_json else answer.render())
        return
    for line in sys.stdin:
        if line.strip():
            answer = engine.ask(line.strip(), k=k, filters=filters)
            click.echo(json.dumps(answer.as_json(), ensure_ascii=False), nl=True)
            sys.stdout.flush()
            engine.store.embedder.prepare_in_background()  # more questions may follow: the faster engine


@cli.command()
@friendly_errors
def chat() -> None:
    """A local chat to try questions and follow-ups (/help for commands)."""
    from bot.repl import run_repl
    from newsdesk.runtime import build_engine

    settings = _settings()
    run_repl(build_engine(settings), history_file=str(settings.data_dir / "chat_history"))


@cli.command(name="bot")
@click.option("--webhook", "webhook_url", metavar="URL", help="Receive updates at this HTTPS URL instead of polling.")
@click.option("--listen", default="0.0.0.0", show_default=True, help="Address the webhook server listens on.")
@click.option("--port", default=8443, show_default=True, help="Port the webhook server listens on.")
@click.option(
    "--secret-token",
    help="Secret Telegram sends with every webhook call (default: TELEGRAM_WEBHOOK_SECRET, which other users cannot"
    " read in the process list, else a random one).",
)
@click.option(
    "--no-set-webhook",
    "set_webhook",
    flag_value=False,
    default=True,
    help="A replica: serve the webhook another process registered, without calling setWebhook.",
)
@feed_options
@friendly_errors
def bot_command(
    webhook_url: str | None,
    listen: str,
    port: int,
    secret_token: str | None,
    set_webhook: bool,
    feeds: tuple[str, ...],
    interval: float | None,
) -> None:
    """Run the Telegram bot (set TELEGRAM_TOKEN first); long polling unless --webhook is given. With feeds
    (--feed or NEWSDESK_FEEDS) it also polls them and answers from new entries as they come.

    \b
    Examples:
      newsdesk bot
      newsdesk bot --feed https://example.org/news/rss.xml
      newsdesk bot --webhook https://bot.example.com/newsdesk --port 8443
      newsdesk bot --webhook https://bot.example.com/newsdesk --port 8444 --no-set-webhook
    """
    from newsdesk.telegram_bot import run_telegram_bot

    settings = _with_feeds(_settings(), feeds, interval)
    run_telegram_bot(settings, webhook_url, listen, port, secret_token, set_webhook)


def squad_options(command: F) -> F:
    """The corpus, question and split options every `eval` command takes."""
    command = click.option(
        "--split",
        type=click.Choice(["all", "train", "measure"]),
        default="all",
        show_default=True,
        help="Questions about which Wikipedia pages: `measure` (XQuAD 18-23, PIAF 150 on) is what quality is"
        " reported on, `train` what a trained model may learn from.",
    )(command)
    command = click.option(
        "--questions",
        type=click.Path(exists=True, path_type=Path),
        help="SQuAD JSON with the questions (same ids; default: the first contexts file).",
    )(command)
    return click.option(
        "--contexts",
        required=True,
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="SQuAD JSON whose paragraphs are the corpus. Repeat it with translations of the same paragraphs for a"
        " mixed-language corpus: each paragraph is taken from one file, chosen by a hash of its id.",
    )(command)


@cli.group(name="eval")
def evaluate() -> None:
    """Measure retrieval and answer quality on SQuAD-format data."""


def _print_figures(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo("  ".join(f"{k}={v}" for k, v in result.items() if k != "by_language"))
    for lang, figures in result.get("by_language", {}).items():
        click.echo(f"  paragraphs in {lang}: " + "  ".join(f"{k}={v}" for k, v in figures.items()))


@evaluate.command(name="retrieval")
@squad_options
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@friendly_errors
def eval_retrieval(
    contexts: tuple[Path, ...], questions: Path | None, split: str, limit: int | None, as_json: bool
) -> None:
    """Recall@1/5/10 and MRR of each question's own paragraph, and recall@1 per language of that paragraph.

    \b
    Examples (English questions over German contexts; over paragraphs in German, Greek or Turkish):
      newsdesk eval retrieval --contexts ../shared/eval/xquad/xquad.de.dev.json \\
                              --questions ../shared/eval/xquad/xquad.en.dev.json
      newsdesk eval retrieval --contexts ../shared/eval/xquad/xquad.de.dev.json \\
                              --contexts ../shared/eval/xquad/xquad.el.dev.json \\
                              --contexts ../shared/eval/xquad/xquad.tr.dev.json \\
                              --questions ../shared/eval/xquad/xquad.en.dev.json --split measure
    """
    from newsdesk.evaluation import evaluate_retrieval

    result = evaluate_retrieval(_settings(), contexts, questions or contexts[0], limit, split=split)
    _print_figures(result, as_json)


@evaluate.command(name="answers")
@squad_options
@click.option(
    "--gold",
    "extra_gold",
    type=click.Path(exists=True, path_type=Path),
    help="Another SQuAD file whose answers also count (e.g. the English gold of a cross-lingual set).",
)
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@friendly_errors
def eval_answers(
    contexts: tuple[Path, ...],
    questions: Path | None,
    split: str,
    extra_gold: Path | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Hit@k, answer containment, citation validity, refusals and latency, and hit@k per language of the
    question's paragraph.

    Each question is also asked with its own paragraph held out of the results, to measure refusals.

    \b
    Example:
      newsdesk eval answers --contexts ../shared/eval/piaf/piaf-v1.0.json --split measure
    """
    from newsdesk.evaluation import evaluate_answers

    result = evaluate_answers(_settings(), contexts, questions or contexts[0], extra_gold, limit, split)
    _print_figures(result, as_json)


def main(args: list[str] | None = None, prog_name: str | None = None) -> None:
    """The console script. It ends with os._exit: tearing down torch and Chroma at exit costs ~0.7 s, and
    every write is durable by then (the store survives SIGKILL at any moment; docs/reliability.md)."""
    try:
        cli(args, prog_name=prog_name)
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
