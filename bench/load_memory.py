"""Memory of a long-running bot: resident memory after 500 and after 5,000 questions from 50 chats.

`newsdesk bot` runs as its own process, polling the fake Bot API on 127.0.0.1, over examples/articles; 50 chats
send questions in bursts (a number in each makes every text distinct, so no cache can hide growth; each
question comes from a user of its own, so flood control lets all through). The bot process's RSS is read from
/proc at each milestone. A leak shows as growth between the 500 and 5,000 marks; the target is under 10%.
Prints one Markdown table row per milestone.

Run from the repository root:

    .venv/bin/python bench/load_memory.py [--questions 5000] [--chats 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.telegram_latency import EXAMPLES, QUESTIONS, TOKEN, await_replies  # noqa: E402
from tests.fakes.telegram_server import FakeBotApi  # noqa: E402


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=5000)
    parser.add_argument("--chats", type=int, default=50)
    args = parser.parse_args()
    milestones = sorted({500, 1000, 2000, 3000, 4000, args.questions} & set(range(1, args.questions + 1)))
    questions = [line.strip() for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="newsdesk-load-") as folder, FakeBotApi(TOKEN) as fake:
        env = {
            **os.environ,
            "NEWSDESK_DATA_DIR": folder,
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": fake.base_url,
            "HF_HUB_OFFLINE": "1",
        }
        newsdesk = [sys.executable, "-m", "newsdesk.cli"]
        subprocess.run([*newsdesk, "ingest", str(EXAMPLES)], env=env, check=True, capture_output=True)
        bot = subprocess.Popen([*newsdesk, "bot"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            asked = 0
            while asked < args.questions:
                burst = {}
                for chat in range(1, args.chats + 1):
                    if asked >= args.questions:
                        break
                    text = f"{questions[asked % len(questions)]} ({asked})"
                    burst[(chat, fake.send_text(chat, text, user_id=100_000 + asked))] = text
                    asked += 1
                await_replies(fake, set(burst))
                if asked in milestones:
                    current, peak = rss_mb(bot.pid)
                    rows.append((asked, current, peak, time.perf_counter() - started))
                    print(f"| {asked} | {current:.0f} | {peak:.0f} | {rows[-1][3]:.0f} |", flush=True)
        finally:
            bot.terminate()
            bot.wait(30)
    base = next(mb for n, mb, _, _ in rows if n == min(milestones))
    final = rows[-1][1]
    print(f"growth from {min(milestones)} to {rows[-1][0]} questions: {100 * (final - base) / base:+.1f}%")


if __name__ == "__main__":
    main()
