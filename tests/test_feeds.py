"""Feeds polled on an interval: `FeedWatcher` (with a hand-driven clock, against feeds on 127.0.0.1) and the
`newsdesk watch` command as a process."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.feeds import FeedLog, FeedWatcher, PollerLock
from ingest.pipeline import Ingester
from newsdesk.cli import cli
from tests.fakes import pages
from tests.fakes.pages import serve_pages
from vectorstore.database import connect
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.store import Store

SELLA_DREDGING = "https://example.org/news/sella-dredging"
SELLA_FERRY = "https://example.org/news/sella-ferry"


@pytest.fixture
def site() -> Iterator[str]:
    pages.FEED_ITEMS[:] = ["/story"]
    pages.FEED_DOWN[0] = False
    with serve_pages() as url:
        yield url
    pages.FEED_DOWN[0] = False


@pytest.fixture(params=["sqlite", "postgres"])
def log_place(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Where the feed log lives: the data folder's file (None), or the database at the URL returned, also for
    the commands under test (NEWSDESK_DATABASE_URL)."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("database_url")
    monkeypatch.setenv("NEWSDESK_DATABASE_URL", url)
    return url


def open_log(data_dir: Path, url: str | None, clock: Callable[[], float] = time.time) -> FeedLog:
    return FeedLog.in_database(url, clock) if url else FeedLog(data_dir / "feeds.sqlite3", clock)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_feed_backs_off_and_comes_back(
    site: str, data_dir: Path, hashing_embedder: NewsEmbeddings, log_place: str | None
) -> None:
    store = Store(data_dir, hashing_embedder)
    clock = Clock()
    feed = f"{site}/feed.xml"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open_log(data_dir, log_place)
    watcher = FeedWatcher([feed], Ingester(store), log, 10, 10**6, 5, allow_private=True, clock=clock)
    pages.FEED_DOWN[0] = True
    polled_at = []
    for _ in range(8):  # 80 s with the feed down: polls at 0, 20 (after 20 s), 60 (after 40 s)
        before = pages.HITS.get("/feed.xml", 0)
        reports = watcher.poll()
        if reports:
            assert pages.HITS["/feed.xml"] == before + 1
            failures = reports[feed].errors + reports[feed].still_failing
            assert len(failures) == 1 and "HTTP 503" in failures[0]
            assert reports[feed].failed == (0 if polled_at else 1), "only the first failure in a row is new"
            polled_at.append(clock.now - 1000)
        clock.now += 10
    assert polled_at == [0, 20, 60]
    assert watcher.seconds_to_next() == 60  # the poll at 60 set the next try 80 s later; the clock is at 80
    pages.FEED_DOWN[0] = False
    clock.now = 1000 + 140
    assert watcher.poll()[feed].new == 1
    pages.FEED_ITEMS.append("/second")
    clock.now += 10  # back to the normal interval once the feed answers
    report = watcher.poll()[feed]
    assert (report.new, report.unchanged, report.failed) == (1, 0, 0), "only the new entry is fetched"
    assert {d["id"] for d in store.documents()} == {SELLA_DREDGING, SELLA_FERRY}


def test_backoff_is_capped(site: str, data_dir: Path, hashing_embedder: NewsEmbeddings) -> None:
    clock = Clock()
    watcher = FeedWatcher(
        [f"{site}/missing"],
        Ingester(Store(data_dir, hashing_embedder)),
        FeedLog.in_folder(data_dir),
        1000,
        10**6,
        5,
        allow_private=True,
        clock=clock,
    )
    waits = []
    for _ in range(5):
        watcher.poll()
        waits.append(watcher.seconds_to_next())
        clock.now += waits[-1]
    assert waits == [2000, 3600, 3600, 3600, 3600]


@pytest.mark.slow
def test_watch_command_logs_what_it_adds_and_keeps_going(site: str, data_dir: Path) -> None:
    """`newsdesk watch` as a user runs it: one good feed and one broken one, the good one gains an entry."""
    command = [
        sys.executable,
        "-m",
        "newsdesk.cli",
        "watch",
        "--feed",
        f"{site}/feed.xml",
        "--feed",
        f"{site}/missing",
        "--interval",
        "1",
    ]
    log_path = data_dir.parent / "watch.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while ": 1 new" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        pages.FEED_ITEMS.append("/second")
        while time.monotonic() < deadline and (
            log_path.read_text().count(": 1 new") < 2 or "failed 2 times" not in log_path.read_text()
        ):
            time.sleep(0.2)
        assert process.poll() is None, log_path.read_text()
    finally:
        process.send_signal(signal.SIGTERM)  # SIGINT is ignored when the suite runs as a background job
        process.wait(timeout=30)
    output = log_path.read_text()
    assert process.returncode == 0, output
    assert output.count(f"feed {site}/feed.xml: 1 new") == 2, output
    assert f"{site}/missing: HTTP 404" in output and "failed 2 times in a row; next try in 4 s" in output
    assert "Traceback" not in output and "stopped" in output
    sources = json.loads(CliRunner().invoke(cli, ["sources", "--json"]).output)
    assert {s["id"] for s in sources} == {SELLA_DREDGING, SELLA_FERRY}


def test_watch_without_feeds_says_what_to_give(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSDESK_FEEDS", raising=False)
    result = CliRunner().invoke(cli, ["watch"])
    assert result.exit_code == 2 and "give --feed URL or set NEWSDESK_FEEDS" in result.output


def test_a_dead_entry_is_retried_later_and_later_then_given_up(
    site: str, data_dir: Path, embedder: NewsEmbeddings, log_place: str | None
) -> None:
    """A 404 and a page that is not HTML: a failure once (with its error in the log), then tried again after
    RETRY_AFTER, twice as long, ..., MAX_ATTEMPTS times in all, as `still_failing`; then never fetched again but
    still listed."""
    from ingest.feeds import MAX_ATTEMPTS, RETRY_AFTER, ingest_feed
    from ingest.pipeline import IngestReport

    pages.FEED_ITEMS[:] = ["/story", "/missing", "/data"]
    feed = f"{site}/feed.xml"
    clock = Clock()
    log = open_log(data_dir.parent, log_place, clock)
    ingester = Ingester(Store(data_dir, embedder))

    def poll() -> tuple[IngestReport, int]:
        before = pages.HITS.get("/missing", 0)
        report = IngestReport()
        assert ingest_feed(feed, ingester, log, 10**6, 5, report, allow_private=True)
        return report, pages.HITS.get("/missing", 0) - before

    first, fetched = poll()
    assert (first.new, first.failed, fetched) == (1, 2, 1)
    assert sorted(first.errors) == [f"{site}/data: not an HTML page (application/json)", f"{site}/missing: HTTP 404"]
    fetch_times = [clock.now]
    while clock.now < fetch_times[0] + RETRY_AFTER * 2**MAX_ATTEMPTS * 2:
        clock.now += RETRY_AFTER / 2
        report, fetched = poll()
        assert report.failed == report.new == 0, "a failure seen before is not a new one"
        assert len(report.still_failing) == 2 * fetched
        if fetched:
            fetch_times.append(clock.now)
    waits = [(b - a) / RETRY_AFTER for a, b in itertools.pairwise(fetch_times)]
    assert waits == [2**n for n in range(MAX_ATTEMPTS - 1)], "retried later and later, a bounded number of times"
    (status,) = log.status()
    assert status.feed == feed and status.last_success == clock.now and status.failures == 0
    assert {(e.link, e.error, e.attempts, e.next_try) for e in status.entries} == {
        (f"{site}/missing", "HTTP 404", MAX_ATTEMPTS, None),
        (f"{site}/data", "not an HTML page (application/json)", MAX_ATTEMPTS, None),
    }, "given up, but listed"
    pages.FEED_ITEMS[:] = ["/story", "/data"]
    poll()
    assert {e.link for e in log.status()[0].entries} == {f"{site}/data"}, "an entry gone from the feed is forgotten"


def test_ingest_feed_fails_only_on_new_failures_and_sources_lists_them(
    site: str, data_dir: Path, log_place: str | None
) -> None:
    """`newsdesk ingest --feed` under cron: a dead entry or feed makes the run that first meets it exit 1, not the
    runs after, and `newsdesk sources --feeds` shows each feed's last success and its failing entries."""
    pages.FEED_ITEMS[:] = ["/story", "/missing"]
    feed, dead_feed = f"{site}/feed.xml", f"{site}/gone.xml"

    def ingest(*feeds: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["ingest", *(arg for f in feeds for arg in ("--feed", f))])
        return result.exit_code, result.output

    code, output = ingest(feed, dead_feed)
    assert code == 1 and f"error: {site}/missing: HTTP 404" in output and f"error: {dead_feed}: HTTP 404" in output
    fetched = pages.HITS["/missing"]
    code, output = ingest(feed, dead_feed)
    assert code == 0, output
    assert "error" not in output and "0 failed; 1 still failing (see newsdesk sources --feeds)" in output
    assert pages.HITS["/missing"] == fetched, "its retry is not due yet"
    if log_place:
        with connect(log_place) as db:
            db.execute("UPDATE feed_failing SET next_try = 0")  # as if the wait were over
    else:
        with closing(sqlite3.connect(data_dir / "feeds.sqlite3")) as db, db:
            db.execute("UPDATE failing SET next_try = 0")
    code, output = ingest(feed)
    assert code == 0 and pages.HITS["/missing"] == fetched + 1
    assert "0 failed; 1 still failing" in output
    listing = CliRunner().invoke(cli, ["sources", "--feeds"]).output
    assert re.search(
        rf"{feed}\n    last read \d{{4}}-\d\d-\d\d \d\d:\d\d; 1 failing entry\n"
        rf"    {site}/missing: HTTP 404 \(2 attempts, next try \d{{4}}-\d\d-\d\d \d\d:\d\d\)\n"
        rf"{dead_feed}\n    never read; failed 2 times in a row: HTTP 404; 0 failing entries\n",
        listing,
    ), listing
    (good, dead) = json.loads(CliRunner().invoke(cli, ["sources", "--feeds", "--json"]).output)
    assert (dead["feed"], dead["last_success"], dead["error"], dead["failures_in_a_row"]) == (
        dead_feed,
        None,
        "HTTP 404",
        2,
    )
    (entry,) = good["failing_entries"]
    assert (entry["link"], entry["error"], entry["attempts"]) == (f"{site}/missing", "HTTP 404", 2)
    assert good["last_success"] and entry["next_try"] > good["last_success"]


def test_with_a_shared_database_one_process_polls_the_feeds(
    site: str, data_dir: Path, hashing_embedder: NewsEmbeddings, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two watchers sharing a database (a `newsdesk watch` and a bot, on any hosts): only the lock's holder polls;
    the other says so once, and takes over when the holder is gone."""
    store = Store(data_dir, hashing_embedder, database_url=database_url)
    clock = Clock()

    def watcher() -> FeedWatcher:
        log = FeedLog.in_database(database_url)
        lock = PollerLock(database_url)
        return FeedWatcher([f"{site}/feed.xml"], Ingester(store), log, 10, 10**6, 5, allow_private=True, clock=clock,
                           lock=lock)  # fmt: skip

    first, second = watcher(), watcher()
    caplog.set_level("INFO", logger="ingest.feeds")
    assert first.poll()[f"{site}/feed.xml"].new == 1
    for _ in range(3):
        clock.now += 10
        assert second.poll() == {}
        assert second.seconds_to_next() == 10, "it tries again an interval later"
    assert first.poll() != {}
    said = [r.message for r in caplog.records if "another process polls the feeds" in r.message]
    assert len(said) == 1
    assert first.lock is not None
    first.lock.release()  # as when its process ends
    clock.now += 10
    assert f"{site}/feed.xml" in second.poll()
    assert any("this process polls the feeds now" in r.message for r in caplog.records)
