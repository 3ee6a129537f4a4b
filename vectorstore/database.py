"""The PostgreSQL connection that several hosts share (`NEWSDESK_DATABASE_URL`).

Set, the database is the system of record: the catalog, the feed log and the chats' memory live there, so bot
replicas and ingest workers on other hosts see one archive. Unset, newsdesk keeps its SQLite files and needs no
server. psycopg is imported here only, and only when a URL is set: the embedded default never loads it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vectorstore.errors import StoreUnavailable

if TYPE_CHECKING:
    import psycopg


class DatabaseUnavailable(StoreUnavailable):
    """The database named by NEWSDESK_DATABASE_URL cannot be reached, refused us, or went away."""


def shown_url(url: str) -> str:
    """The URL as messages show it: any password replaced, so errors and logs never carry it."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection:
    """A new connection to the database at `url` (a libpq URL or key=value string); the server's one-line reason
    when it cannot be had. Connections are per thread, as psycopg's are not safe to share mid-transaction."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise lost(url, exc, "cannot use") from None


def lost(url: str, exc: Exception, what: str = "lost") -> DatabaseUnavailable:
    """The error for a database that refused or dropped us, with the server's reason and without a password."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return DatabaseUnavailable(f"{what} the database at {shown_url(url)} (NEWSDESK_DATABASE_URL): {reason}")
