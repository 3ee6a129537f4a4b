"""RSS and Atom feeds: ingest the entries not seen before.

Seen entries are kept per data folder in `feeds.sqlite3`; an entry is marked only after its article went in,
so a failed fetch is tried again next time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ingest.articles import Article, LoadError
from ingest.web import feed_links, fetch_article


class FeedLog:
    """Which entries of which feeds were ingested already."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (feed TEXT NOT NULL, link TEXT NOT NULL, PRIMARY KEY (feed, link))"
        )

    def unseen(self, feed: str, links: list[str]) -> list[str]:
        seen = {row[0] for row in self._db.execute("SELECT link FROM seen WHERE feed = ?", (feed,))}
        return [link for link in dict.fromkeys(links) if link not in seen]

    def mark(self, feed: str, links: list[str]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen(feed, link) VALUES (?, ?)", [(feed, link) for link in links])


def feed_articles(
    feed: str, log: FeedLog, fetched: list[str], max_bytes: int, timeout: float
) -> Iterator[Article | LoadError]:
    """The articles of the feed's unseen entries; each fetched link is appended to `fetched`, for the caller
    to mark once the articles are stored."""
    try:
        links = feed_links(feed, max_bytes, timeout)
    except LoadError as exc:
        yield exc
        return
    for link in log.unseen(feed, links):
        try:
            article = fetch_article(link, max_bytes, timeout)
        except LoadError as exc:
            yield exc
            continue
        fetched.append(link)
        yield article
