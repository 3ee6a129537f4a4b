"""A small web site on 127.0.0.1 for URL-ingest tests: a story (and one whose <title> names its publication),
redirects (to it, or anywhere), a 404, a page that is not HTML, one that is too large and one that is slow."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STORY = """<html><head><title>Sella harbour dredging</title>
<link rel="canonical" href="https://example.org/news/sella-dredging">
<meta name="date" content="2024-09-03"></head><body><nav>Home | Sport | Weather</nav>
<article><h1>Sella harbour to be dredged</h1>
<p>The Sella port board approved the dredging of the inner harbour on Tuesday, its chair said.</p>
<p>The works will remove ninety thousand cubic metres of silt and cost 48 million crowns, she added.</p>
</article><footer>All rights reserved</footer></body></html>"""


SECOND = STORY.replace("sella-dredging", "sella-ferry").replace("dredging of the inner harbour", "new ferry line")
# The publication's name only in the <title>, after the headline (trafilatura's `sitename` is then the host).
GAZETTE = STORY.replace(
    "<title>Sella harbour dredging</title>", "<title>Sella harbour to be dredged | Harbour Gazette</title>"
)
# The feed lists these paths; a test appends to it to make the feed gain an entry. Every GET is counted.
FEED_ITEMS: list[str] = ["/story"]
ALLOW_PRIVATE = "NEWSDESK_ALLOW_PRIVATE_URLS"
HITS: dict[str, int] = {}
FEED_DOWN: list[bool] = [False]  # set [True] to make /feed.xml answer 503


def rss(base: str) -> bytes:
    items = "".join(f"<item><title>{p}</title><link>{base}{p}</link><guid>{base}{p}</guid></item>" for p in FEED_ITEMS)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Sella news</title>{items}</channel></rss>'.encode()


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/story": (200, "text/html; charset=utf-8", STORY.encode()),
            "/data": (200, "application/json", b"{}"),
            "/slow": (200, "text/html", STORY.encode()),
            "/second": (200, "text/html", SECOND.encode()),
            "/gazette": (200, "text/html", GAZETTE.encode()),
            "/feed.xml": (200, "application/rss+xml", rss(f"http://{self.headers['Host']}")),
            "/huge": (200, "text/html", b"<p>" + b"x" * 3_000_000 + b"</p>"),
        }
        HITS[self.path] = HITS.get(self.path, 0) + 1
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/moved" or self.path.startswith("/go?"):  # /go?to=ADDRESS redirects anywhere
            self.send_response(301 if self.path == "/moved" else 302)
            self.send_header("Location", parse_qs(urlsplit(self.path).query).get("to", ["/story"])[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, kind, body = routes.get(self.path, (404, "text/plain", b"not found"))
        if self.path == "/feed.xml" and FEED_DOWN[0]:
            status, kind, body = 503, "text/plain", b"down for maintenance"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Site(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up on the slow page is expected; anything else is reported as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve_pages() -> Iterator[str]:
    """The site's base URL while it runs. Web ingestion refuses loopback addresses unless
    NEWSDESK_ALLOW_PRIVATE_URLS=1, so that is set meanwhile (in os.environ: subprocesses inherit it)."""
    server = _Site(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # stops within 50 ms
    thread.start()
    before = os.environ.get(ALLOW_PRIVATE)
    os.environ[ALLOW_PRIVATE] = "1"
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if before is None:
            os.environ.pop(ALLOW_PRIVATE, None)
        else:
            os.environ[ALLOW_PRIVATE] = before
        server.shutdown()
