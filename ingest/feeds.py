"""RSS and Atom feeds: ingest the entries not seen before, once or on an interval.

Per data folder, `feeds.sqlite3` (with NEWSDESK_DATABASE_URL, tables in that database) keeps which entries went
in (an entry is marked only after its article went in), when each feed was last read, and the entries that
failed, each with its error: one is tried again after RETRY_AFTER seconds, then after twice as long each time,
MAX_ATTEMPTS times in all, and then given up (no longer fetched, still listed by `newsdesk sources --feeds`).
Only a first failure counts as failed in a report, and so in the exit code of `newsdesk ingest --feed`: one that
failed before and fails again is `still_failing`, so a dead link does not fail every run of a cron job.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ingest.articles import Article, LoadError
from ingest.pipeline import Ingester, IngestReport, counted
from ingest.web import feed_links, fetch_article

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

RETRY_AFTER = 900.0
MAX_ATTEMPTS = 6

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (feed TEXT NOT NULL, link TEXT NOT NULL, PRIMARY KEY (feed, link));
CREATE TABLE IF NOT EXISTS feeds (
    feed TEXT PRIMARY KEY, last_success REAL, error TEXT, failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failing (
    feed TEXT NOT NULL, link TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, next_try REAL,
    PRIMARY KEY (feed, link)
);
"""
# The same tables in PostgreSQL, named for the shared database; `seq` keeps the order failures came in.
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_seen (feed text NOT NULL, link text NOT NULL, PRIMARY KEY (feed, link));
CREATE TABLE IF NOT EXISTS feed_reads (
    feed text PRIMARY KEY, last_success double precision, error text, failures integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS feed_failing (
    seq bigint GENERATED ALWAYS AS IDENTITY, feed text NOT NULL, link text NOT NULL, error text NOT NULL,
    attempts integer NOT NULL, next_try double precision, PRIMARY KEY (feed, link)
);
"""


@dataclass(frozen=True)
class FailingEntry:
    """An entry of a feed whose page could not be ingested; `next_try` is None once it is given up."""

    link: str
    error: str
    attempts: int
    next_try: float | None


@dataclass(frozen=True)
class FeedStatus:
    """What the log knows of a feed: when it was last read, why its last reads failed (if they did, and how many
    in a row), and its failing entries."""

    feed: str
    last_success: float | None
    error: str | None
    failures: int
    entries: list[FailingEntry]


class FeedLog:
    """Which entries of which feeds were ingested already, and which failed; `clock` is the wall clock. In a
    SQLite file (`in_folder`), or in PostgreSQL (`in_database`) where workers on several hosts share it."""

    # Table names and the column that orders failing entries as they came, in the SQLite file.
    TABLES: ClassVar[dict[str, str]] = {"seen": "seen", "feeds": "feeds", "failing": "failing", "order": "rowid"}

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.executescript(SCHEMA)
        self.clock = clock

    @classmethod
    def in_folder(cls, data_dir: Path) -> FeedLog:
        """The log of a data folder, created on first use."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / "feeds.sqlite3")

    @staticmethod
    def in_database(url: str, clock: Callable[[], float] = time.time) -> FeedLog:
        """The log in the PostgreSQL database at `url`, its tables created on first use."""
        return PostgresFeedLog(url, clock)

    @classmethod
    def opened(cls, data_dir: Path, database_url: str | None) -> FeedLog:
        """The database's log when a URL is set, else the data folder's."""
        return cls.in_database(database_url) if database_url else cls.in_folder(data_dir)

    def _rows(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(query.format(**self.TABLES), params).fetchall()

    def _write_many(self, query: str, rows: list[tuple[object, ...]]) -> None:
        self._db.executemany(query.format(**self.TABLES), rows)

    def due(self, feed: str, links: list[str]) -> list[str]:
        """The links to fetch now: not ingested before, and not failed before unless their retry is due."""
        seen = {row[0] for row in self._rows("SELECT link FROM {seen} WHERE feed = ?", (feed,))}
        waiting = {
            row[0]
            for row in self._rows(
                "SELECT link FROM {failing} WHERE feed = ? AND (next_try IS NULL OR next_try > ?)", (feed, self.clock())
            )
        }
        return [link for link in dict.fromkeys(links) if link not in seen and link not in waiting]

    def mark(self, feed: str, links: list[str]) -> None:
        """The entries went in: never fetched again, and no longer failing."""
        rows = [(feed, link) for link in links]
        self._write_many("INSERT INTO {seen}(feed, link) VALUES (?, ?) ON CONFLICT DO NOTHING", rows)
        self._write_many("DELETE FROM {failing} WHERE feed = ? AND link = ?", rows)

    def entry_failed(self, feed: str, link: str, error: str) -> int:
        """Record that fetching an entry failed; how many times it has (1: a new failure). The next try waits
        twice as long as the last; after MAX_ATTEMPTS the entry is given up."""
        rows = self._rows("SELECT attempts FROM {failing} WHERE feed = ? AND link = ?", (feed, link))
        attempts = (rows[0][0] if rows else 0) + 1
        next_try = self.clock() + RETRY_AFTER * 2 ** (attempts - 1) if attempts < MAX_ATTEMPTS else None
        self._write_many(
            "INSERT INTO {failing}(feed, link, error, attempts, next_try) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(feed, link) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,"
            " next_try = excluded.next_try",
            [(feed, link, error.removeprefix(f"{link}: "), attempts, next_try)],
        )
        return attempts

    def feed_read(self, feed: str, links: list[str]) -> None:
        """The feed was read: note when, and forget failing entries it no longer lists."""
        self._write_many(
            "INSERT INTO {feeds}(feed, last_success, error, failures) VALUES (?, ?, NULL, 0) ON CONFLICT(feed)"
            " DO UPDATE SET last_success = excluded.last_success, error = NULL, failures = 0",
            [(feed, self.clock())],
        )
        listed = set(links)
        failing = [row[0] for row in self._rows("SELECT link FROM {failing} WHERE feed = ?", (feed,))]
        gone = [(feed, link) for link in failing if link not in listed]
        self._write_many("DELETE FROM {failing} WHERE feed = ? AND link = ?", gone)

    def feed_failed(self, feed: str, error: str) -> int:
        """Record that the feed could not be read; how many times in a row it has failed (1: a new failure)."""
        self._write_many(
            "INSERT INTO {feeds}(feed, error, failures) VALUES (?, ?, 1) ON CONFLICT(feed)"
            " DO UPDATE SET error = excluded.error, failures = {feeds}.failures + 1",
            [(feed, error.removeprefix(f"{feed}: "))],
        )
        return self._rows("SELECT failures FROM {feeds} WHERE feed = ?", (feed,))[0][0]

    def status(self) -> list[FeedStatus]:
        """Every feed read (or tried) so far, with its failing entries, first failed first."""
        entries: dict[str, list[FailingEntry]] = {}
        for feed, *entry in self._rows(
            "SELECT feed, link, error, attempts, next_try FROM {failing} ORDER BY feed, {order}"
        ):
            entries.setdefault(feed, []).append(FailingEntry(*entry))
        rows = self._rows("SELECT feed, last_success, error, failures FROM {feeds} ORDER BY feed")
        return [FeedStatus(*row, entries.get(row[0], [])) for row in rows]


class PostgresFeedLog(FeedLog):
    """The feed log in PostgreSQL: the same statements on one autocommit connection (psycopg serialises the
    threads that share it), `?` placeholders as psycopg's `%s`."""

    TABLES: ClassVar[dict[str, str]] = {
        "seen": "feed_seen",
        "feeds": "feed_reads",
        "failing": "feed_failing",
        "order": "seq",
    }

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        from vectorstore.database import connect

        self._pg = connect(url)
        with self._pg.transaction():
            self._pg.execute("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ' feed log', 0))")
            self._pg.execute(POSTGRES_SCHEMA)  # type: ignore[arg-type]
        self.clock = clock

    def _rows(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._pg.execute(query.format(**self.TABLES).replace("?", "%s"), params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []

    def _write_many(self, query: str, rows: list[tuple[object, ...]]) -> None:
        if rows:
            self._pg.cursor().executemany(query.format(**self.TABLES).replace("?", "%s"), rows)  # type: ignore[arg-type]


def _entry_articles(
    feed: str,
    links: list[str],
    log: FeedLog,
    fetched: list[str],
    max_bytes: int,
    timeout: float,
    report: IngestReport,
    allow_private: bool,
) -> Iterator[Article]:
    """Each entry's article; fetched links are appended to `fetched`, failures recorded in the log and the report."""
    for link in links:
        try:
            article = fetch_article(link, max_bytes, timeout, allow_private=allow_private)
        except LoadError as exc:
            if log.entry_failed(feed, link, str(exc)) == 1:
                report.fail(exc)
            else:
                report.still_failing.append(str(exc))
            continue
        fetched.append(link)
        yield article


def ingest_feed(
    feed: str,
    ingester: Ingester,
    log: FeedLog,
    max_bytes: int,
    timeout: float,
    report: IngestReport,
    *,
    allow_private: bool,
) -> bool:
    """One pass over a feed into `report`: its entries that are due go in and are then marked seen. False when
    the feed itself could not be read (a failure in the report the first time in a row, still failing after).
    `allow_private`: see ingest.web."""
    try:
        links = feed_links(feed, max_bytes, timeout, allow_private=allow_private)
    except LoadError as exc:
        if log.feed_failed(feed, str(exc)) == 1:
            report.fail(exc)
        else:
            report.still_failing.append(str(exc))
        return False
    log.feed_read(feed, links)
    fetched: list[str] = []
    ingester.ingest(
        _entry_articles(feed, log.due(feed, links), log, fetched, max_bytes, timeout, report, allow_private), report
    )
    log.mark(feed, fetched)
    return True


class PollerLock:
    """Of the processes sharing a database (`newsdesk watch`, bots with feeds, on any host), only the one holding
    this lock polls the feeds: a session advisory lock on a connection of its own, held while the process lives.
    When its holder dies or loses the database, the lock is free and the next process to try takes over."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._db: psycopg.Connection | None = None

    def held(self) -> bool:
        """Whether this process holds the lock now, taking it if it is free."""
        from psycopg import Error

        from vectorstore.database import DatabaseUnavailable, connect

        try:
            if self._db is not None:
                self._db.execute("SELECT 1")  # still connected, so still holding it
                return True
            db = connect(self._url)
            query = "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || ' feed poller', 0))"
            if db.execute(query).fetchone()[0]:  # type: ignore[index]
                self._db = db
                return True
            db.close()
        except (Error, DatabaseUnavailable) as exc:
            logger.warning("cannot take the feed poller lock: %s", exc)
            if self._db is not None:
                self._db.close()
            self._db = None
        return False

    def release(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@dataclass
class _FeedState:
    failures: int = 0
    due: float = 0.0


class FeedWatcher:
    """Polls feeds every `interval` seconds. A feed that cannot be read waits twice as long after each failure
    in a row (at most MAX_BACKOFF seconds), so a dead feed costs little and a recovered one is back soon. With a
    `lock`, it polls only while it holds the lock (another process polls meanwhile) and tries again each interval."""

    MAX_BACKOFF = 3600.0

    def __init__(
        self,
        feeds: list[str],
        ingester: Ingester,
        log: FeedLog,
        interval: float,
        max_bytes: int,
        timeout: float,
        *,
        allow_private: bool,
        clock: Callable[[], float] = time.monotonic,
        lock: PollerLock | None = None,
    ) -> None:
        self.ingester, self.log, self.interval, self.lock = ingester, log, interval, lock
        self._polling = True
        self.max_bytes, self.timeout, self.allow_private, self.clock = max_bytes, timeout, allow_private, clock
        self.state = {feed: _FeedState() for feed in dict.fromkeys(feeds)}

    def poll(self) -> dict[str, IngestReport]:
        """Read every feed that is due; what went in and what failed is logged, and returned per feed."""
        if self.lock is not None:
            held = self.lock.held()
            if held != self._polling:
                self._polling = held
                logger.info(
                    "this process polls the feeds now (it holds the feed poller lock)"
                    if held
                    else "another process polls the feeds (it holds the feed poller lock): this one does not"
                )
            if not held:
                for state in self.state.values():
                    state.due = max(state.due, self.clock() + self.interval)
                return {}
        reports = {}
        for feed, state in self.state.items():
            if self.clock() < state.due:
                continue
            report = reports[feed] = IngestReport()
            readable = ingest_feed(
                feed, self.ingester, self.log, self.max_bytes, self.timeout, report, allow_private=self.allow_private
            )
            state.failures = 0 if readable else state.failures + 1
            backoff = min(self.interval * 2**state.failures, self.MAX_BACKOFF)
            wait = self.interval if readable else max(self.interval, backoff)
            state.due = self.clock() + wait
            for error in report.errors:
                logger.warning("%s", error)
            for error in report.still_failing:
                logger.info("still failing: %s", error)
            if not readable:
                failed = counted(state.failures, "time")
                logger.warning("feed %s failed %s in a row; next try in %.0f s", feed, failed, wait)
            elif report.new or report.updated:
                logger.info("feed %s: %s", feed, report.summary())
        return reports

    def seconds_to_next(self) -> float:
        """How long until some feed is due."""
        return max(0.0, min((s.due for s in self.state.values()), default=self.interval) - self.clock())
