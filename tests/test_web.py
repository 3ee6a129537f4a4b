"""`newsdesk ingest URL` against pages served on 127.0.0.1: a good page, a redirect to it, a 404, a page that
is not HTML, one that is too large and one that is too slow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsdesk.cli import cli
from tests.fakes.pages import serve_pages


@pytest.fixture
def site() -> Iterator[str]:
    with serve_pages() as url:
        yield url


def test_ingest_urls(data_dir: Path, site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_MAX_FILE_MB", "1")
    monkeypatch.setenv("NEWSDESK_FETCH_TIMEOUT", "1")
    urls = [f"{site}/story", f"{site}/moved", f"{site}/missing", f"{site}/data", f"{site}/huge", f"{site}/slow"]
    result = CliRunner().invoke(cli, ["ingest", "--json", *urls])
    report = json.loads(result.output.strip().splitlines()[-1])
    assert result.exit_code == 1
    assert (report["new"], report["unchanged"], report["failed"]) == (1, 1, 4)
    errors = " ".join(report["errors"])
    assert f"{site}/missing: HTTP 404" in errors
    assert f"{site}/data: not an HTML page" in errors and f"{site}/huge: page larger" in errors
    assert f"{site}/slow: timed out after 1 s" in errors
    sources = json.loads(CliRunner().invoke(cli, ["sources", "--json"]).output)
    assert [(s["id"], s["date"]) for s in sources] == [("https://example.org/news/sella-dredging", "2024-09-03")]
    answer = json.loads(
        CliRunner().invoke(cli, ["ask", "--json", "How much silt will be removed from Sella harbour?"]).output
    )
    assert "ninety thousand" in answer["answer"] and "Home" not in answer["answer"]


def ingest_json(*args: str) -> dict:
    """The JSON report of `newsdesk ingest --json ARGS` (errors go to stderr, above it)."""
    return json.loads(CliRunner().invoke(cli, ["ingest", "--json", *args]).output.strip().splitlines()[-1])


def test_feed_entries_are_ingested_once(data_dir: Path, site: str) -> None:
    from tests.fakes import pages

    pages.FEED_ITEMS[:] = ["/story", "/missing"]
    first = ingest_json("--feed", f"{site}/feed.xml")
    assert (first["new"], first["failed"]) == (1, 1)
    pages.FEED_ITEMS.append("/second")  # the feed gains an entry
    stories_fetched = pages.HITS.get("/story", 0)
    second = ingest_json("--feed", f"{site}/feed.xml")
    assert (second["new"], second["failed"]) == (1, 1)  # the new entry; the missing page is tried again
    assert pages.HITS["/story"] == stories_fetched, "an entry already ingested is not fetched again"
    ids = {s["id"] for s in json.loads(CliRunner().invoke(cli, ["sources", "--json"]).output)}
    assert ids == {"https://example.org/news/sella-dredging", "https://example.org/news/sella-ferry"}
    bad = ingest_json("--feed", f"{site}/story")
    assert bad["failed"] == 1 and "not an RSS or Atom feed" in bad["errors"][0]
