"""Feeds polled on an interval: `FeedWatcher` (with a hand-driven clock, against feeds on 127.0.0.1) and the
`newsdesk watch` command as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.feeds import FeedLog, FeedWatcher
from ingest.pipeline import Ingester
from newsdesk.cli import cli
from tests.fakes import pages
from tests.fakes.pages import serve_pages
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


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_feed_backs_off_and_comes_back(site: str, data_dir: Path, hashing_embedder: NewsEmbeddings) -> None:
    store = Store(data_dir, hashing_embedder)
    clock = Clock()
    feed = f"{site}/feed.xml"
    log = FeedLog.in_folder(data_dir)
    watcher = FeedWatcher([feed], Ingester(store), log, 10, 10**6, 5, allow_private=True, clock=clock)
    pages.FEED_DOWN[0] = True
    polled_at = []
    for _ in range(8):  # 80 s with the feed down: polls at 0, 20 (after 20 s), 60 (after 40 s)
        before = pages.HITS.get("/feed.xml", 0)
        reports = watcher.poll()
        if reports:
            assert pages.HITS["/feed.xml"] == before + 1
            assert reports[feed].failed == 1 and "HTTP 503" in reports[feed].errors[0]
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
            log_path.read_text().count(": 1 new") < 2 or "failed 2 time(s)" not in log_path.read_text()
        ):
            time.sleep(0.2)
        assert process.poll() is None, log_path.read_text()
    finally:
        process.send_signal(signal.SIGTERM)  # SIGINT is ignored when the suite runs as a background job
        process.wait(timeout=30)
    output = log_path.read_text()
    assert process.returncode == 0, output
    assert output.count(f"feed {site}/feed.xml: 1 new") == 2, output
    assert f"{site}/missing: HTTP 404" in output and "failed 2 time(s) in a row; next try in 4 s" in output
    assert "Traceback" not in output and "stopped" in output
    sources = json.loads(CliRunner().invoke(cli, ["sources", "--json"]).output)
    assert {s["id"] for s in sources} == {SELLA_DREDGING, SELLA_FERRY}


def test_watch_without_feeds_says_what_to_give(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSDESK_FEEDS", raising=False)
    result = CliRunner().invoke(cli, ["watch"])
    assert result.exit_code == 2 and "give --feed URL or set NEWSDESK_FEEDS" in result.output
