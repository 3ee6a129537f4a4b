"""`newsdesk ingest URL` against pages served on 127.0.0.1: a good page, a redirect to it, a 404, a page that
is not HTML, one that is too large and one that is too slow."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

import ingest.web as web
from ingest.articles import LoadError
from ingest.web import HTML_TYPES, fetch, fetch_article
from newsdesk.cli import cli
from tests.fakes.pages import serve_pages
from vectorstore.embeddings import NewsEmbeddings


@pytest.fixture
def site() -> Iterator[str]:
    with serve_pages() as url:
        yield url


@pytest.mark.slow  # the answer at the end needs the real embedder
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


def test_a_page_is_stored_under_its_publications_name(data_dir: Path, site: str) -> None:
    article = fetch_article(f"{site}/gazette", 10**6, allow_private=True)
    assert (article.title, article.source) == ("Sella harbour to be dredged", "Harbour Gazette")
    assert fetch_article(f"{site}/story", 10**6, allow_private=True).source == "example.org", "no name but the host's"


@pytest.mark.parametrize(
    ("head", "source"),
    [
        ("<title>Storm Elin hits Brennock | Harbour Gazette</title>", "Harbour Gazette"),
        ("<title>Storm Elin hits Brennock – Weather – Harbour Gazette</title>", "Harbour Gazette"),
        ("<title>Harbour Gazette | Storm Elin hits Brennock</title>", "Harbour Gazette"),
        (
            '<title>Storm Elin hits Brennock | HG</title><meta property="og:site_name" content="Harbour Gazette">',
            "Harbour Gazette",
        ),
        ("<title>Storm Elin hits Brennock</title>", "example.org"),
        ("<title>Weather: Storm Elin</title>", "example.org"),
    ],
)
def test_the_site_name_comes_from_the_metadata_or_the_title(head: str, source: str) -> None:
    from ingest.loaders import html_article

    body = (
        "<article><h1>Storm Elin hits Brennock</h1><p>Storm Elin tore roofs off forty houses overnight.</p></article>"
    )
    page = f"<html><head>{head}</head><body>{body}</body></html>"
    assert html_article(page, origin="test", url="https://example.org/storm").source == source


def ingest_json(*args: str) -> dict:
    """The JSON report of `newsdesk ingest --json ARGS` (errors go to stderr, above it)."""
    return json.loads(CliRunner().invoke(cli, ["ingest", "--json", *args]).output.strip().splitlines()[-1])


def test_feed_entries_are_ingested_once(data_dir: Path, site: str, hashing_embedder: NewsEmbeddings) -> None:
    from tests.fakes import pages

    pages.FEED_ITEMS[:] = ["/story", "/missing"]
    first = ingest_json("--feed", f"{site}/feed.xml")
    assert (first["new"], first["failed"]) == (1, 1)
    pages.FEED_ITEMS.append("/second")  # the feed gains an entry
    stories_fetched = pages.HITS.get("/story", 0)
    missing_fetched = pages.HITS["/missing"]
    second = ingest_json("--feed", f"{site}/feed.xml")
    assert (second["new"], second["failed"]) == (1, 0)  # the new entry; the missing page waits for its retry
    assert pages.HITS["/missing"] == missing_fetched
    assert pages.HITS["/story"] == stories_fetched, "an entry already ingested is not fetched again"
    ids = {s["id"] for s in json.loads(CliRunner().invoke(cli, ["sources", "--json"]).output)}
    assert ids == {"https://example.org/news/sella-dredging", "https://example.org/news/sella-ferry"}
    bad = ingest_json("--feed", f"{site}/story")
    assert bad["failed"] == 1 and "not an RSS or Atom feed" in bad["errors"][0]


# -- addresses that are not on the public internet ----------------------------------------------------


def refused(url: str) -> str:
    """The error fetching `url` gives, with private addresses not allowed."""
    with pytest.raises(LoadError) as caught:
        fetch(url, 10**6, 5, HTML_TYPES, "an HTML page", allow_private=False)
    return str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:9/story", "127.0.0.1 is a loopback address"),
        ("http://localhost:9/", "127.0.0.1 is a loopback address"),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),  # 127.0.0.1 as one number
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "10.0.0.1 (as ::ffff:a00:1) is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("http://192.168.0.1/", "192.168.0.1 is a private address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://100.64.0.1/", "100.64.0.1 is a non-public address"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1:: is a loopback address"),  # 6to4 carrying 127.0.0.1
    ],
)
def test_private_addresses_are_refused_by_name(url: str, shown: str) -> None:
    assert refused(url) == f"{url}: refused: {shown}; set NEWSDESK_ALLOW_PRIVATE_URLS=1 to allow"


def test_one_private_answer_among_public_ones_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 80)) for ip in ("93.184.216.34", "10.0.0.7")]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    assert "10.0.0.7 is a private address" in refused("http://news.example.com/story")


def test_the_setting_allows_private_addresses(
    data_dir: Path, site: str, hashing_embedder: NewsEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSDESK_ALLOW_PRIVATE_URLS")  # serve_pages set it
    assert "loopback" in ingest_json(f"{site}/story")["errors"][0]
    monkeypatch.setenv("NEWSDESK_ALLOW_PRIVATE_URLS", "1")
    assert ingest_json(f"{site}/story")["new"] == 1


def test_every_redirect_is_checked(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 plays a public site here; a redirect from it to 127.0.0.2 (another loopback address the test
    calls private) is refused before anything connects to it."""
    real = web.non_public_reason
    monkeypatch.setattr(web, "non_public_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    assert fetch(f"{site}/moved", 10**6, 5, HTML_TYPES, "page", allow_private=False)[1] == f"{site}/story"
    target = "http://127.0.0.2:9/admin"
    error = refused(f"{site}/go?to={target}")
    assert error == (
        f"{site}/go?to={target} (redirected to {target}): refused: 127.0.0.2 is a loopback address; "
        "set NEWSDESK_ALLOW_PRIVATE_URLS=1 to allow"
    )
    assert refused(f"{site}/go?to=http://[bad").startswith(f"{site}/go?to=http://[bad (redirected to ")
    assert "non-web address (file:)" in refused(f"{site}/go?to=file:///etc/passwd")


def test_redirects_are_bounded(site: str) -> None:
    chain = f"{site}/story"
    for _ in range(web.MAX_REDIRECTS):
        chain = f"{site}/go?to={quote(chain, safe='')}"
    assert fetch(chain, 10**6, 5, HTML_TYPES, "page", allow_private=True)[1] == f"{site}/story"  # five hops
    too_many = f"{site}/go?to={quote(chain, safe='')}"
    with pytest.raises(LoadError, match=f"more than {web.MAX_REDIRECTS} redirects"):
        fetch(too_many, 10**6, 5, HTML_TYPES, "page", allow_private=True)


def test_the_connected_socket_is_checked_too(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name looked public when we resolved it, the client's own lookup gave a private
    address. The socket's peer is checked before the request is sent."""
    from tests.fakes import pages

    monkeypatch.setattr(web, "check_public", lambda url, shown=None: None)
    before = pages.HITS.get("/story", 0)
    assert "127.0.0.1 is a loopback address" in refused(f"{site}/story")
    assert pages.HITS.get("/story", 0) == before, "no request reached the server"


def test_cli_names_a_refused_url(
    data_dir: Path, hashing_embedder: NewsEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSDESK_ALLOW_PRIVATE_URLS", raising=False)
    report = ingest_json("http://127.0.0.1:9/story")
    assert report["failed"] == 1
    assert report["errors"] == [
        "http://127.0.0.1:9/story: refused: 127.0.0.1 is a loopback address; set NEWSDESK_ALLOW_PRIVATE_URLS=1 to allow"
    ]
