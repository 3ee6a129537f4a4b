"""Reply latency of the Telegram bot through the fake Bot API; writes its section of docs/telegram.md.

Latency is the time from a user's message being queued at the fake server to the bot's reply (sendMessage)
reaching it: long polling, update parsing, the engine (the default extractive answerer over examples/articles,
after one warm-up pass), rendering, the rate limiter and the HTTP round trips. Scenarios: one chat asking
questions one after another, and many chats asking one question each at the same moment (in rounds). The
engine alone, without Telegram, is timed on the same questions for comparison.

The bot runs in a background thread with its own event loop, exactly as `newsdesk bot` runs it (same
Application, AIORateLimiter included), except that flood protection is lifted so one chat may ask quickly.

Run from the repository root:

    .venv/bin/python bench/telegram_latency.py                  # writes docs/telegram.md
    .venv/bin/python bench/telegram_latency.py --chats 20 --no-doc
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake Bot API lives with the tests

from bench.common import cpu_model  # noqa: E402
from bot.engine import AnswerEngine  # noqa: E402
from bot.telegram.app import polling  # noqa: E402
from bot.telegram.flood import FloodLimit  # noqa: E402
from ingest.pipeline import Ingester, load_paths  # noqa: E402
from newsdesk.runtime import build_engine  # noqa: E402
from newsdesk.settings import Settings  # noqa: E402
from newsdesk.telegram_bot import telegram_application  # noqa: E402
from tests.fakes.telegram_server import FakeBotApi, RecordedCall  # noqa: E402

DOC = ROOT / "docs" / "telegram.md"
EXAMPLES = ROOT / "examples" / "articles"
QUESTIONS = ROOT / "examples" / "questions.txt"
TOKEN = "123456:BENCH-TOKEN"
SECTION_START, SECTION_END = "<!-- latency:start -->", "<!-- latency:end -->"


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


@contextmanager
def bot_in_background(settings: Settings, engine: AnswerEngine) -> Iterator[None]:
    """The bot polling the fake from its own thread and event loop, until the block ends."""
    ready = threading.Event()
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        app = telegram_application(settings, engine, FloodLimit(messages=10**6, seconds=1))
        async with polling(app, poll_timeout=10):
            loop_box.append((asyncio.get_running_loop(), stop))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="bot", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the bot did not start")
    try:
        yield
    finally:
        loop, stop = loop_box[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)


def reply_key(call: RecordedCall) -> tuple[int, int]:
    """(chat, message replied to) of a sendMessage."""
    params = call["params"]
    return int(params["chat_id"]), int(params["reply_parameters"]["message_id"])


def await_replies(fake: FakeBotApi, expected: set[tuple[int, int]], timeout: float = 300) -> dict:
    """When each expected reply reached the fake (perf_counter), stamped as this thread sees them arrive."""
    arrived: dict[tuple[int, int], float] = {}

    def is_new_reply(call: RecordedCall) -> bool:
        return call["method"] == "sendMessage" and call["status"] == 200 and reply_key(call) not in arrived

    while not expected <= arrived.keys():
        call = fake.wait_for(is_new_reply, timeout)
        arrived[reply_key(call)] = time.perf_counter()
    return arrived


def one_chat(fake: FakeBotApi, engine: AnswerEngine, questions: list[str]) -> tuple[list[float], list[float]]:
    """One chat, each question sent when the previous answer has arrived; each is then also put to the engine
    alone, so both timings share the machine's load of the moment (other processes may be busy)."""
    through_bot, engine_alone = [], []
    for question in questions:
        started = time.perf_counter()
        asked = fake.send_text(500, question)
        arrived = await_replies(fake, {(500, asked)})
        through_bot.append((arrived[(500, asked)] - started) * 1000)
        started = time.perf_counter()
        engine.ask(question)
        engine_alone.append((time.perf_counter() - started) * 1000)
    return through_bot, engine_alone


def many_chats(fake: FakeBotApi, questions: list[str], chats: int, round_: int) -> list[float]:
    """`chats` chats, each sending one question at (nearly) the same moment."""
    sent: dict[tuple[int, int], float] = {}
    for i in range(chats):
        chat = 10_000 * round_ + i
        started = time.perf_counter()
        sent[(chat, fake.send_text(chat, questions[i % len(questions)]))] = started
    arrived = await_replies(fake, set(sent))
    return [(arrived[key] - started) * 1000 for key, started in sent.items()]


def row(name: str, latencies: list[float]) -> str:
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return f"| {name} | {len(latencies)} | {p50:.0f} | {p95:.0f} | {max(latencies):.0f} |"


def write_doc(section: str) -> None:
    """Replace the generated section of docs/telegram.md, keeping the rest of the page."""
    block = f"{SECTION_START}\n{section}\n{SECTION_END}"
    if DOC.exists() and SECTION_START in (page := DOC.read_text(encoding="utf-8")):
        pattern = re.compile(re.escape(SECTION_START) + r".*?" + re.escape(SECTION_END), re.DOTALL)
        DOC.write_text(pattern.sub(lambda _: block, page), encoding="utf-8")
    else:
        DOC.write_text(f"# The Telegram bot\n\n## Latency\n\n{block}\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=30, help="questions asked in turn by one chat")
    parser.add_argument("--chats", type=int, default=50, help="chats asking at once")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the many-chats scenario")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    questions = [line.strip() for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    sequence = [questions[i % len(questions)] for i in range(args.questions)]
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-") as folder, FakeBotApi(TOKEN) as fake:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            NEWSDESK_DATA_DIR=folder,
            LLM=None,
            TELEGRAM_TOKEN=TOKEN,
            TELEGRAM_BASE_URL=fake.base_url,
        )
        engine = build_engine(settings)
        Ingester(engine.store, settings.chunk_tokens, settings.chunk_overlap).ingest(load_paths([EXAMPLES], 10**8))
        for question in questions:  # warm-up: the first calls of each input shape are slow
            engine.ask(question)
        with bot_in_background(settings, engine):
            sequential, alone = one_chat(fake, engine, sequence)
            rounds = [many_chats(fake, questions, args.chats, r + 1) for r in range(args.rounds)]

    rows = [
        "| scenario | replies | p50 (ms) | p95 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|",
        row(f"one chat, {args.questions} questions in turn", sequential),
        *(row(f"{args.chats} chats at once, round {r + 1}", lat) for r, lat in enumerate(rounds)),
        row(f"{args.chats} chats at once, all rounds", [x for lat in rounds for x in lat]),
        row("engine alone, the same questions, each right after the bot's reply", alone),
        row("bot minus engine alone, question by question", [b - a for b, a in zip(sequential, alone, strict=True)]),
    ]
    overhead = statistics.median(b - a for b, a in zip(sequential, alone, strict=True))
    throughput = statistics.mean(len(lat) / (max(lat) / 1000) for lat in rounds)
    command = "python bench/telegram_latency.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    section = "\n".join(
        [
            *rows,
            "",
            f"The bot adds {overhead:.0f} ms (median) to the engine's own time; with {args.chats} chats at once the"
            f" machine answers {throughput:.1f} questions a second, so the last chat of a burst waits for all the"
            " others (the engine is CPU-bound; questions of different chats run in parallel worker threads).",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; measured"
            f" {date.today().isoformat()} with `{command}`; 1-minute load average {load_before:.1f} before the"
            f" run and {os.getloadavg()[0]:.1f} after it (other processes share the cores).",
            "Latency runs from the user's message being queued at the fake Bot API to the bot's reply reaching it"
            " (polling, engine, rendering, rate limiter, HTTP). Questions: examples/questions.txt over"
            " examples/articles, default extractive answerer, after one warm-up pass.",
        ]
    )
    print(section)
    if not args.no_doc:
        write_doc(section)
        print(f"\nwrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
