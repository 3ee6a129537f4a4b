"""Web pages and feeds to articles: fetch with httpx (timeouts, bounded redirects, a size cap, a content-type check, an
honest User-Agent), then extract the main text and metadata with trafilatura.

The canonical URL (the page's `<link rel="canonical">`, else the address after redirects) is the article id,
so the same story reached through two links is stored once.
"""

from __future__ import annotations

import httpx

from ingest.articles import Article, LoadError
from ingest.loaders import html_article

USER_AGENT = "newsdesk/0.1 (news question-answering bot; article ingester)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml")
MAX_REDIRECTS = 5


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def fetch(url: str, max_bytes: int, timeout: float, types: tuple[str, ...], what: str) -> tuple[str, str]:
    """(text, address after redirects) of `url`; any failure (network, status, content type, size) is a
    LoadError naming the address."""
    try:
        with (
            httpx.Client(
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                timeout=timeout,
                headers={"User-Agent": USER_AGENT, "Accept": ",".join(types)},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise LoadError(f"{url}: HTTP {response.status_code}")
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in types:
                raise LoadError(f"{url}: not {what} ({kind or 'no content type'})")
            body = bytearray()
            for piece in response.iter_bytes():
                body.extend(piece)
                if len(body) > max_bytes:
                    raise LoadError(f"{url}: page larger than {max_bytes / 1e6:.1f} MB")
            return body.decode(response.encoding or "utf-8", errors="replace"), str(response.url)
    except httpx.TooManyRedirects:
        raise LoadError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise LoadError(f"{url}: timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise LoadError(f"{url}: cannot fetch ({exc.__class__.__name__})") from None


def fetch_article(url: str, max_bytes: int, timeout: float = 15.0) -> Article:
    """The article at `url`, its main text and metadata extracted by trafilatura."""
    html, final_url = fetch(url, max_bytes, timeout, HTML_TYPES, "an HTML page")
    article = html_article(html, origin=url, default_id=final_url)
    if not article.url:
        article.url = final_url
    return article


def feed_links(url: str, max_bytes: int, timeout: float = 15.0) -> list[str]:
    """The article links of an RSS or Atom feed, in the feed's order."""
    import feedparser

    text, _ = fetch(url, max_bytes, timeout, FEED_TYPES, "an RSS or Atom feed")
    parsed = feedparser.parse(text)
    if parsed.bozo and not parsed.entries:
        raise LoadError(f"{url}: not a readable RSS or Atom feed")
    return [str(entry.link) for entry in parsed.entries if entry.get("link")]
