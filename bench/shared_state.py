"""What sharing the bot's state through PostgreSQL costs per message: a flood check (every question and command
pays one) and a chat memory's get + append (every answered question pays both), against the single-process
implementations (in-memory counts, the SQLite file). Prints a table for docs/telegram.md.

Each call runs on a fresh schema of the database named by NEWSDESK_TEST_DATABASE_URL (default: the machine's
`test` database), dropped afterwards. Run from the repository root:

    .venv/bin/python bench/shared_state.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model  # noqa: E402
from bot.conversation import Turn  # noqa: E402
from bot.telegram.flood import FloodGuard, FloodLimit, LocalFloodGuard, PostgresFloodGuard  # noqa: E402
from bot.telegram.memory import CHATS_FILE, ChatMemory, PostgresChatMemory, SqliteChatMemory  # noqa: E402
from vectorstore.database import connect  # noqa: E402

DATABASE = os.environ.get("NEWSDESK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections see an empty schema of their own, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with connect(DATABASE) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{DATABASE}{'&' if '?' in DATABASE else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with connect(DATABASE) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def timed(call: Callable[[int], object], calls: int) -> tuple[float, float]:
    """Median and 95th percentile of `call(n)` in ms, over `calls` calls."""
    times = []
    for number in range(calls):
        start = time.perf_counter()
        call(number)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def flood(guard: FloodGuard, calls: int) -> tuple[float, float]:
    """Checks of 50 users in turn, each under the limit (the common case)."""
    loop = asyncio.new_event_loop()
    try:
        return timed(lambda n: loop.run_until_complete(guard.admit(n % 50)), calls)
    finally:
        loop.close()
        guard.close()


def memory(store: ChatMemory, calls: int) -> tuple[float, float]:
    """A question's memory work: read the chat's conversation, add the turn (50 chats in turn)."""
    turn = Turn("Which club did Yanis Koné join?", "Which club did Yanis Koné join?", "Lindenau [1]", False)

    def one(number: int) -> None:
        store.get(number % 50)
        store.append(number % 50, turn)

    try:
        return timed(one, calls)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls
    limit = FloodLimit(messages=10**9, seconds=30)
    rows = []
    with tempfile.TemporaryDirectory() as folder, fresh_schema() as url:
        rows.append(("flood check, this process's counts", flood(LocalFloodGuard(limit), calls)))
        rows.append(("flood check, PostgreSQL", flood(PostgresFloodGuard(url, limit, "question"), calls)))
        rows.append(("memory get + append, SQLite file", memory(SqliteChatMemory(Path(folder) / CHATS_FILE), calls)))
        rows.append(("memory get + append, PostgreSQL", memory(PostgresChatMemory(url), calls)))
    print("| per message | median (ms) | p95 (ms) |\n|---|---:|---:|")
    for name, (median, p95) in rows:
        print(f"| {name} | {median:.2f} | {p95:.2f} |")
    load = os.getloadavg()[0]
    print(f"\n{calls} calls each; {cpu_model()}, PostgreSQL on 127.0.0.1; 1-minute load average {load:.1f} after.")


if __name__ == "__main__":
    main()
