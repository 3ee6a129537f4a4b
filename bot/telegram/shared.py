"""The connection through which bot replicas share their state (the chats' memory, the flood limits) in the
database named by NEWSDESK_DATABASE_URL.

Each object that keeps shared state holds one connection, used by one thread at a time, and makes it again when
the server dropped it (a restart, a failover): the call that finds it broken fails, the next one reconnects.

Its commits do not wait for the disk (`synchronous_commit = off`): every message writes (a flood count, a turn),
and waiting for the WAL's flush made each write cost milliseconds instead of a tenth of one. A crash of the
database server may lose the last fraction of a second of turns and counts, never consistency: the same bargain
as the SQLite memory's `synchronous=NORMAL`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from vectorstore.database import connect

if TYPE_CHECKING:
    import psycopg

# Taken while tables are created, so replicas starting together do not race on CREATE TABLE IF NOT EXISTS
# (PostgreSQL can fail one of two concurrent ones with a duplicate key on its catalog).
_SCHEMA_LOCK = 0x6E65_7773_626F_74  # "newsbot"


class SharedConnection:
    """One connection for calls from worker threads, one at a time; `tables` are created if missing."""

    def __init__(self, url: str, tables: list[str]) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._db = self._connect()
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in tables:
                self._db.execute(statement)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """The connection, alone, for one call (autocommit: a transaction is `with db.transaction()`)."""
        with self._lock:
            if self._db.closed or self._db.broken:
                self._db = self._connect()
            yield self._db

    def _connect(self) -> psycopg.Connection:
        db = connect(self._url)
        db.execute("SET synchronous_commit = off")
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()
