"""How often one user may write: sliding-window counts per user, kept by this process alone or, for bot replicas,
in the database they share (NEWSDESK_DATABASE_URL), so that two replicas together admit no more of one user's
messages than one would.

Only the counts need sharing: who may write (the allowlists, the admins) comes from the settings, which are the
same on every replica, and the bot keeps no other state about users at run time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.telegram.shared import SharedConnection


@dataclass(frozen=True)
class FloodLimit:
    """At most `messages` questions from one user per `seconds`, and as many commands besides: commands are
    counted apart, so /help or /sources never costs a question. A user over the limit is told at most once per
    `notice_every` seconds how many messages were not answered."""

    messages: int = 8
    seconds: float = 30.0
    notice_every: float = 5.0


class FloodGuard(Protocol):
    """One kind of message's counts per user. A message refused is not counted, so a user who keeps sending is
    let in again as soon as the window moves on."""

    async def admit(self, user_id: int) -> bool:
        """True, and counted, when the user is under the limit."""
        ...

    async def wait(self, user_id: int) -> float:
        """Seconds until the user's next message would be admitted (0 when it would be now)."""
        ...

    def close(self) -> None: ...


FloodGuards = Callable[[str], FloodGuard]  # the guard for each kind of message ("question", "command")


class LocalFloodGuard:
    """The counts in this process's memory: one bot process, or replicas without a database."""

    def __init__(self, limit: FloodLimit) -> None:
        self.limit = limit
        self._recent: dict[int, deque[float]] = {}

    async def admit(self, user_id: int) -> bool:
        now = time.monotonic()
        if len(self._recent) > 4096:  # forget users who have been quiet for a whole window
            for quiet in [u for u, times in self._recent.items() if times[-1] < now - self.limit.seconds]:
                del self._recent[quiet]
        times = self._recent.setdefault(user_id, deque())
        while times and times[0] < now - self.limit.seconds:
            times.popleft()
        if len(times) < self.limit.messages:
            times.append(now)
            return True
        return False

    async def wait(self, user_id: int) -> float:
        times = self._recent.get(user_id)
        if not times or len(times) < self.limit.messages:
            return 0.0
        return max(0.0, times[0] + self.limit.seconds - time.monotonic())

    def close(self) -> None:
        pass


FLOOD_TABLE = (
    "CREATE TABLE IF NOT EXISTS flood_windows (kind TEXT NOT NULL, user_id BIGINT NOT NULL,"
    " admitted_at TIMESTAMPTZ[] NOT NULL, last_admitted BOOLEAN NOT NULL, PRIMARY KEY (kind, user_id))"
)

# One statement decides and counts, on the user's row, which it locks: replicas admitting the same user at once
# take turns, and each sees the other's admission. Times are the database's clock, the same for every replica.
_ADMIT = """
INSERT INTO flood_windows AS w (kind, user_id, admitted_at, last_admitted)
VALUES (%(kind)s, %(user_id)s, ARRAY[statement_timestamp()], true)
ON CONFLICT (kind, user_id) DO UPDATE SET (admitted_at, last_admitted) = (
    SELECT coalesce(array_agg(t ORDER BY t), '{}')
           || CASE WHEN count(*) < %(messages)s THEN ARRAY[statement_timestamp()] ELSE '{}' END,
           count(*) < %(messages)s
    FROM unnest(w.admitted_at) AS t WHERE t > statement_timestamp() - %(window)s)
RETURNING last_admitted
"""
_WAIT = """
SELECT count(*), extract(epoch FROM min(t) + %(window)s - statement_timestamp())::float8
FROM flood_windows, unnest(admitted_at) AS t
WHERE kind = %(kind)s AND user_id = %(user_id)s AND t > statement_timestamp() - %(window)s
"""


class PostgresFloodGuard:
    """The counts of one kind of message in the database, shared by every replica: a row per user with the times
    of their admissions within the window. A user's row stays after they fall silent (one small row per user who
    ever wrote, like their chat's turns)."""

    def __init__(self, url: str, limit: FloodLimit, kind: str) -> None:
        self.limit = limit
        self.kind = kind
        self._shared = SharedConnection(url, [FLOOD_TABLE])

    async def admit(self, user_id: int) -> bool:
        return await asyncio.to_thread(self._admit, user_id)

    async def wait(self, user_id: int) -> float:
        return await asyncio.to_thread(self._wait, user_id)

    def close(self) -> None:
        self._shared.close()

    def _parameters(self, user_id: int) -> dict[str, object]:
        window = dt.timedelta(seconds=self.limit.seconds)
        return {"kind": self.kind, "user_id": user_id, "messages": self.limit.messages, "window": window}

    def _admit(self, user_id: int) -> bool:
        with self._shared.connection() as db:
            row = db.execute(_ADMIT, self._parameters(user_id)).fetchone()
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE returns its row
        return bool(row[0])

    def _wait(self, user_id: int) -> float:
        with self._shared.connection() as db:
            row = db.execute(_WAIT, self._parameters(user_id)).fetchone()
        assert row is not None  # an aggregate returns one row
        count, seconds = row
        return 0.0 if count < self.limit.messages else max(0.0, seconds)
