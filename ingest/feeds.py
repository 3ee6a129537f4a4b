"""RSS and Atom feeds: ingest the entries not seen before, once or on an interval.

Seen entries are kept per data folder in `feeds.sqlite3`; an entry is marked only after its article went in,
so a failed fetch is tried again next time.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.articles import Article, LoadError
from ingest.pipeline import Ingester, IngestReport
from ingest.web import feed_links, fetch_article

logger = logging.getLogger(__name__)


class FeedLog:
    """Which entries of which feeds were ingested already."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (feed TEXT NOT NULL, link TEXT NOT NULL, PRIMARY KEY (feed, link))"
        )

    @classmethod
    def in_folder(cls, data_dir: Path) -> FeedLog:
        """The log of a data folder, created on first use."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / "feeds.sqlite3")

    def unseen(self, feed: str, links: list[str]) -> list[str]:
        seen = {row[0] for row in self._db.execute("SELECT link FROM seen WHERE feed = ?", (feed,))}
        return [link for link in dict.fromkeys(links) if link not in seen]

    def mark(self, feed: str, links: list[str]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen(feed, link) VALUES (?, ?)", [(feed, link) for link in links])


def _entry_articles(
    links: list[str], fetched: list[str], max_bytes: int, timeout: float, allow_private: bool
) -> Iterator[Article | LoadError]:
    """Each entry's article (or why it failed); fetched links are appended to `fetched`."""
    for link in links:
        try:
            article = fetch_article(link, max_bytes, timeout, allow_private=allow_private)
        except LoadError as exc:
            yield exc
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
    """One pass over a feed into `report`: its unseen entries go in and are then marked seen. False when the
    feed itself could not be read (that is counted as one failure in the report). `allow_private`: see
    ingest.web."""
    try:
        links = log.unseen(feed, feed_links(feed, max_bytes, timeout, allow_private=allow_private))
    except LoadError as exc:
        report.fail(exc)
        return False
    fetched: list[str] = []
    ingester.ingest(_entry_articles(links, fetched, max_bytes, timeout, allow_private), report)
    log.mark(feed, fetched)
    return True


@dataclass
class _FeedState:
    failures: int = 0
    due: float = 0.0


class FeedWatcher:
    """Polls feeds every `interval` seconds. A feed that cannot be read waits twice as long after each failure
    in a row (at most MAX_BACKOFF seconds), so a dead feed costs little and a recovered one is back soon."""

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
    ) -> None:
        self.ingester, self.log, self.interval = ingester, log, interval
        self.max_bytes, self.timeout, self.allow_private, self.clock = max_bytes, timeout, allow_private, clock
        self.state = {feed: _FeedState() for feed in dict.fromkeys(feeds)}

    def poll(self) -> dict[str, IngestReport]:
        """Read every feed that is due; what went in and what failed is logged, and returned per feed."""
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
            if not readable:
                logger.warning("feed %s failed %d time(s) in a row; next try in %.0f s", feed, state.failures, wait)
            elif report.new or report.updated:
                logger.info("feed %s: %s", feed, report.summary())
        return reports

    def seconds_to_next(self) -> float:
        """How long until some feed is due."""
        return max(0.0, min((s.due for s in self.state.values()), default=self.interval) - self.clock())
