"""Each chat's conversation, kept between questions and across restarts, behind a small interface: the bot needs
only a chat's recent turns, to add one, and to forget them. One process keeps them in a SQLite file in the data
folder; bot replicas on several hosts share them in PostgreSQL (NEWSDESK_DATABASE_URL), so a follow-up that
reaches another replica than the question before it is still understood."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from bot.conversation import MAX_TURNS, Conversation, Turn
from bot.telegram.shared import SharedConnection

log = logging.getLogger(__name__)

CHATS_FILE = "telegram_chats.sqlite3"
CHAT_TURNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS chat_turns (chat_id BIGINT NOT NULL, seq BIGINT GENERATED ALWAYS AS IDENTITY,"
    " turn JSONB NOT NULL, added_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (chat_id, seq))"
)


class ChatMemory(Protocol):
    """The chats' conversations. Calls block (a file, a database), so the bot makes them from worker threads;
    the Application closes the memory when it shuts down."""

    def get(self, chat_id: int) -> Conversation:
        """The chat's recent turns (an empty conversation for a chat never seen or unreadable)."""
        ...

    def append(self, chat_id: int, turn: Turn) -> None:
        """Add a turn to the chat's conversation, which keeps only its most recent ones."""
        ...

    def clear(self, chat_id: int) -> None:
        """Forget the chat's turns: its next question starts afresh."""
        ...

    def close(self) -> None: ...


class SqliteChatMemory:
    """Each chat's conversation as JSON in one row of a small SQLite file: follow-ups survive a restart, and a
    chat's conversation is read only when that chat speaks. Called from worker threads, hence the lock; a turn
    is added in one write transaction, so two processes on the same file do not lose each other's turns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent; a crash may lose the last turn
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS conversations"
            " (chat_id INTEGER PRIMARY KEY, turns TEXT NOT NULL, updated_at REAL NOT NULL)"
        )

    def get(self, chat_id: int) -> Conversation:
        with self._lock:
            return self._read(chat_id)

    def append(self, chat_id: int, turn: Turn) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                conversation = self._read(chat_id)
                conversation.turns.append(turn)
                self._write(chat_id, conversation)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def clear(self, chat_id: int) -> None:
        with self._lock:
            self._write(chat_id, Conversation())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _read(self, chat_id: int) -> Conversation:
        row = self._db.execute("SELECT turns FROM conversations WHERE chat_id = ?", (chat_id,)).fetchone()
        if row is None:
            return Conversation()
        try:
            return Conversation.from_json(row[0])
        except (ValueError, TypeError) as exc:  # a damaged row costs that chat its history, nothing more
            log.warning("chat %s: unreadable conversation, starting afresh (%s)", chat_id, exc)
            return Conversation()

    def _write(self, chat_id: int, conversation: Conversation) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO conversations (chat_id, turns, updated_at) VALUES (?, ?, ?)",
            (chat_id, conversation.to_json(), time.time()),
        )


# One statement, so one round trip and one transaction: the new turn is inserted, and the chat's turns before its
# MAX_TURNS - 1 latest are dropped (the statement's snapshot does not see the new one). Two replicas appending at
# once may leave a turn more than MAX_TURNS, never fewer; reading takes only the latest.
_APPEND = """
WITH added AS (INSERT INTO chat_turns (chat_id, turn) VALUES (%(chat_id)s, %(turn)s))
DELETE FROM chat_turns WHERE chat_id = %(chat_id)s AND seq < (
    SELECT min(seq) FROM (
        SELECT seq FROM chat_turns WHERE chat_id = %(chat_id)s ORDER BY seq DESC LIMIT %(older_kept)s
    ) AS newest)
"""


class PostgresChatMemory:
    """Each chat's turns as rows of one table, shared by every replica. Appending is an INSERT, so two replicas
    adding turns to one chat at once both keep theirs (nothing is read and written back)."""

    def __init__(self, url: str) -> None:
        self._shared = SharedConnection(url, [CHAT_TURNS_TABLE])

    def get(self, chat_id: int) -> Conversation:
        with self._shared.connection() as db:
            rows = db.execute(
                "SELECT turn FROM (SELECT seq, turn FROM chat_turns WHERE chat_id = %s ORDER BY seq DESC LIMIT %s)"
                " AS newest ORDER BY seq",
                (chat_id, MAX_TURNS),
            ).fetchall()
        try:
            return Conversation([Turn(**turn) for (turn,) in rows])
        except TypeError as exc:  # a damaged row costs that chat its history, nothing more
            log.warning("chat %s: unreadable conversation, starting afresh (%s)", chat_id, exc)
            return Conversation()

    def append(self, chat_id: int, turn: Turn) -> None:
        from psycopg.types.json import Jsonb

        with self._shared.connection() as db:
            db.execute(_APPEND, {"chat_id": chat_id, "turn": Jsonb(asdict(turn)), "older_kept": MAX_TURNS - 1})

    def clear(self, chat_id: int) -> None:
        with self._shared.connection() as db:
            db.execute("DELETE FROM chat_turns WHERE chat_id = %s", (chat_id,))

    def close(self) -> None:
        self._shared.close()
