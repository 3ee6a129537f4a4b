"""Memory and time of ingesting one very long plain-text article (issue 12 point 5: peak RSS <= 1.2 GB at 30 MB).

The article is generated here from sentence templates and word lists written for this benchmark (a made-up port
town's council, harbour and weather), so every run has the same text and nothing is copied from elsewhere.
`python -m ingest --json FILE` then runs as its own process on a fresh data folder; its peak resident memory is
the kernel's count for that process (`ru_maxrss` from wait4), its time the wall clock from start to exit.

Run from the repository root:

    .venv/bin/python bench/big_file.py [--mb 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TOWNS = ["Brennock", "Sella", "Valmont", "Harrowgate", "Kessel Bay", "Orlen", "Tamsford", "Quayle"]
PEOPLE = [
    "the mayor",
    "the harbour master",
    "a council spokeswoman",
    "the port board's chair",
    "local fishermen",
    "the ferry company",
    "the weather office",
    "shopkeepers on the quay",
    "the school governors",
]
THINGS = [
    "berths",
    "cranes",
    "ferry crossings",
    "flood barriers",
    "street lamps",
    "bus routes",
    "market stalls",
    "trawler licences",
    "classrooms",
    "lifeboats",
]
DAYS = ["on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "over the weekend", "last night"]
VERBS = ["approved", "rejected", "postponed", "announced", "questioned", "welcomed", "criticised"]
TEMPLATES = [
    "{person} {verb} a plan for {n} new {thing} in {town} {day}.",
    "In {town}, {person} said the {thing} would cost {n} million crowns, more than first planned.",
    "The tide in {town} rose {n} centimetres above the old mark {day}, according to {person}.",
    "Work on the {thing} of {town} is {n} weeks behind, {person} admitted.",
    "{person} {verb} the decision to close {n} {thing} in {town}, which many residents opposed.",
    "Asked about the {thing}, {person} replied that {town} had waited {n} years for them.",
]


def sentence(rng: random.Random) -> str:
    text = rng.choice(TEMPLATES).format(
        person=rng.choice(PEOPLE),
        verb=rng.choice(VERBS),
        thing=rng.choice(THINGS),
        town=rng.choice(TOWNS),
        day=rng.choice(DAYS),
        n=rng.randint(2, 950),
    )
    return text[0].upper() + text[1:]


def write_article(path: Path, megabytes: float, seed: int = 12) -> int:
    """A plain-text article of about `megabytes` MB (a title line, then paragraphs of 3-7 sentences); its size."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    size = 0
    with path.open("w", encoding="utf-8") as out:
        size += out.write("title The Brennock harbour chronicle, every council sitting since the flood\n\n")
        while size < target:
            size += out.write(" ".join(sentence(rng) for _ in range(rng.randint(3, 7))) + "\n\n")
    return path.stat().st_size


def ingest_in_subprocess(article: Path, data_dir: Path) -> tuple[float, float, dict[str, object]]:
    """(peak RSS in MB, wall seconds, the ingest's JSON report) of `python -m ingest --json ARTICLE`."""
    env = {
        **os.environ,
        "NEWSDESK_DATA_DIR": str(data_dir),
        "NEWSDESK_MAX_FILE_MB": str(article.stat().st_size / 1e6 + 1),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest", "--json", str(article)], env=env, cwd=ROOT, stdout=stdout
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        output = stdout.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"ingest exited with {process.returncode}: {output}")
    return usage.ru_maxrss / 1024, seconds, json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=30.0, help="Size of the generated article in MB.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsdesk-big-") as folder:
        article = Path(folder) / "chronicle.txt"
        size = write_article(article, args.mb)
        peak, seconds, report = ingest_in_subprocess(article, Path(folder) / "data")
    print(
        f"{size / 1e6:.1f} MB article: {report['chunks']} chunks, peak RSS {peak:,.0f} MB,"
        f" {seconds:,.0f} s ({report['chunks'] / seconds:.0f} chunks/s)"  # type: ignore[operator]
    )


if __name__ == "__main__":
    main()
