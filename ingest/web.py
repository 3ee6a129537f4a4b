"""Web pages and feeds to articles: fetch with httpx (timeouts, bounded redirects, a size cap, a content-type check, an
honest User-Agent), then extract the main text and metadata with trafilatura.

The canonical URL (the page's `<link rel="canonical">`, else the address after redirects) is the article id,
so the same story reached through two links is stored once.

An address to ingest may come from a chat user (/ingest) or a feed, so it must not reach into the host's own
network (cloud metadata at 169.254.169.254, admin pages on 127.0.0.1, the office LAN): every address a host
name resolves to must be public, checked before connecting, again on the socket actually connected (a second
DNS answer may differ), and on every redirect, which is followed by hand for that reason.
`NEWSDESK_ALLOW_PRIVATE_URLS=1`, passed in as `allow_private`, lifts the check, for a newsroom intranet or tests
served on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from ingest.articles import Article, LoadError
from ingest.loaders import html_article

USER_AGENT = "newsdesk/0.1 (news question-answering bot; article ingester)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml")
MAX_REDIRECTS = 5
ALLOW_PRIVATE = "NEWSDESK_ALLOW_PRIVATE_URLS"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedURL(LoadError):
    """An address that is not on the public internet, refused before (or instead of) talking to it."""


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public internet address ("loopback", "private"...), or None when it is. IPv6 forms
    that carry an IPv4 address (mapped, 6to4, NAT64) are judged by the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return non_public_reason(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((name for name, applies in checks if applies), None)


def _refusal(url: str, address: IPAddress, reason: str) -> RefusedURL:
    """The refusal, naming the address as people write it (10.0.0.1, not ::ffff:a00:1)."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    shown = f"{mapped} (as {address})" if mapped else str(address)
    article = "an" if reason[0] in "aeiou" else "a"
    return RefusedURL(f"{url}: refused: {shown} is {article} {reason} address; set {ALLOW_PRIVATE}=1 to allow")


def check_public(url: str, shown: str | None = None) -> None:
    """Resolve the url's host and refuse it unless every address it resolves to is public (one private answer
    among public ones is enough to refuse: the client may connect to any of them). Errors name `shown`."""
    shown = shown or url
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise LoadError(f"{shown}: not an http(s) address")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        raise LoadError(f"{shown}: bad port") from None
    except (socket.gaierror, UnicodeError):
        raise LoadError(f"{shown}: cannot resolve {host}") from None
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        reason = non_public_reason(address)
        if reason is not None:
            raise _refusal(shown, address, reason)


def _uses_proxy(url: str) -> bool:
    """True when httpx would go through a proxy from the environment (then the socket's peer is the proxy)."""
    proxies = urllib.request.getproxies()
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname or ""
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _peer_check(url: str) -> Callable[[str, dict[str, Any]], None]:
    """An httpcore trace hook that refuses a connection whose peer is not public, before the request is sent
    (closes the gap between our DNS lookup and the client's own)."""

    def trace(event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if not peer:
            return
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        reason = non_public_reason(address)
        if reason is not None:
            stream.close()
            raise _refusal(url, address, reason)

    return trace


def fetch(
    url: str,
    max_bytes: int,
    timeout: float,
    types: tuple[str, ...],
    what: str,
    *,
    allow_private: bool,
) -> tuple[str, str]:
    """(text, address after redirects) of `url`; any failure (network, status, content type, size, an address
    that is not public unless `allow_private`) is a LoadError naming the address."""
    headers = {"User-Agent": USER_AGENT, "Accept": ",".join(types)}
    try:
        with httpx.Client(follow_redirects=False, timeout=timeout, headers=headers) as client:
            current = url
            for _ in range(MAX_REDIRECTS + 1):
                shown = url if current == url else f"{url} (redirected to {current})"
                extensions: dict[str, Any] = {}
                if not allow_private:
                    check_public(current, shown)
                    if not _uses_proxy(current):
                        extensions["trace"] = _peer_check(shown)
                with client.stream("GET", current, extensions=extensions) as response:
                    if response.is_redirect:
                        current = _redirect_target(url, response)
                        continue
                    return _read(url, response, max_bytes, types, what), str(response.url)
            raise LoadError(f"{url}: more than {MAX_REDIRECTS} redirects")
    except httpx.TimeoutException:
        raise LoadError(f"{url}: timed out after {timeout:g} s") from None
    except httpx.InvalidURL:
        raise LoadError(f"{url}: not a valid address") from None
    except httpx.HTTPError as exc:
        raise LoadError(f"{url}: cannot fetch ({exc.__class__.__name__})") from None


def _redirect_target(url: str, response: httpx.Response) -> str:
    """The absolute address a redirect points to; only http(s) may be followed."""
    try:
        target = response.url.join(response.headers["location"])
    except (httpx.InvalidURL, ValueError):
        raise LoadError(f"{url}: redirected to a malformed address") from None
    if target.scheme not in ("http", "https"):
        raise LoadError(f"{url}: redirected to a non-web address ({target.scheme}:)")
    return str(target)


def _read(url: str, response: httpx.Response, max_bytes: int, types: tuple[str, ...], what: str) -> str:
    """The body of a final (non-redirect) response, checked for status, content type and size."""
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
    return body.decode(response.encoding or "utf-8", errors="replace")


def fetch_article(url: str, max_bytes: int, timeout: float = 15.0, *, allow_private: bool) -> Article:
    """The article at `url`, its main text and metadata extracted by trafilatura."""
    html, final_url = fetch(url, max_bytes, timeout, HTML_TYPES, "an HTML page", allow_private=allow_private)
    article = html_article(html, origin=url, default_id=final_url)
    if not article.url:
        article.url = final_url
    return article


def feed_links(url: str, max_bytes: int, timeout: float = 15.0, *, allow_private: bool) -> list[str]:
    """The article links of an RSS or Atom feed, in the feed's order."""
    import feedparser

    text, _ = fetch(url, max_bytes, timeout, FEED_TYPES, "an RSS or Atom feed", allow_private=allow_private)
    parsed = feedparser.parse(text)
    if parsed.bozo and not parsed.entries:
        raise LoadError(f"{url}: not a readable RSS or Atom feed")
    return [str(entry.link) for entry in parsed.entries if entry.get("link")]
