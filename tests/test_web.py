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
