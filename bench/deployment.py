"""How the deployment of deploy/compose.yaml scales on this machine: ingest chunks per second with one and two
`newsdesk ingest` workers writing at once, and questions per second with one and two `newsdesk bot --webhook`
replicas, all sharing one PostgreSQL database and one Chroma server, started on 127.0.0.1 from the compose file's
own commands (tests/deployment.py). Telegram is the fake Bot API of tests/fakes, delivering updates to the
replicas in turn; the articles are XQuAD paragraphs in four languages from ../shared/eval, the questions its
English ones, each from a chat and user of its own (so no flood limit applies).

Run: `.venv/bin/python bench/deployment.py` (a few minutes); it writes this CPU's section of docs/deployment.md
(each CPU measured keeps its own). PostgreSQL: NEWSDESK_TEST_DATABASE_URL, else the machine's on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import busy_meter, cpu_model  # noqa: E402
from newsdesk.evaluation import load_squad  # noqa: E402
from tests.deployment import TOKEN, Deployment, compose_variables, fake_edges  # noqa: E402
from tests.fakes.telegram_server import FakeBotApi  # noqa: E402
from vectorstore.database import connect  # noqa: E402
from vectorstore.pg_catalog import PostgresCatalog  # noqa: E402

XQUAD = ROOT.parent / "shared" / "eval" / "xquad"
LANGUAGES = ("en", "de", "es", "ru")
PAGE = ROOT / "docs" / "deployment.md"
SECTIONS_END = "## What does not scale yet"  # each CPU's figures are a section before this heading
DATABASE = os.environ.get("NEWSDESK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def write_articles(folder: Path, workers: int) -> list[Path]:
    """The paragraphs of XQuAD in LANGUAGES as .jsonl articles, dealt out to one file per worker."""
    records = [
        {"id": f"{aid}@{lang}", "title": aid.split("#")[0].replace("_", " "), "text": text, "lang": lang}
        for lang in LANGUAGES
        for aid, text in load_squad(XQUAD / f"xquad.{lang}.dev.json")[0].items()
    ]
    files = []
    for worker in range(workers):
        path = folder / f"worker-{worker}" / "articles.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[worker::workers]), "utf-8")
        files.append(path)
    return files


class Schema:
    """A fresh schema of the benchmark database for one run: what a new NEWSDESK_DATABASE_URL database is."""

    def __init__(self, name: str) -> None:
        self.name = name
        with connect(DATABASE) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            admin.execute(f"CREATE SCHEMA {name}")
        separator = "&" if "?" in DATABASE else "?"
        self.url = f"{DATABASE}{separator}options=-csearch_path%3D{name}"

    def drop(self) -> None:
        with connect(DATABASE) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


def chunks_stored(url: str) -> int:
    catalog = PostgresCatalog(url, "articles")
    try:
        return catalog.count_chunks()
    finally:
        catalog.close()


def ingest_rate(workers: int, scratch: Path) -> dict[str, float]:
    """Chunks per second with `workers` ingest processes writing different articles at once (wall time from
    their start to the last one's end, model loading included, as a run of `newsdesk ingest` has it)."""
    root = scratch / f"ingest-{workers}"
    files = write_articles(root / "articles", workers)
    schema = Schema(f"bench_ingest_{workers}_{os.getpid()}")
    try:
        with ExitStack() as stack:
            hosts = Deployment(root, compose_variables(root, schema.url), {"HF_HUB_OFFLINE": "1"}, stack)
            hosts.start_chroma()
            started = time.perf_counter()
            runs = [hosts.start("ingest", f"ingest-{n}", ARTICLES=str(path)) for n, path in enumerate(files)]
            codes = [run.wait() for run in runs]
            elapsed = time.perf_counter() - started
            if any(codes):
                raise SystemExit(f"an ingest worker failed: see {root}/ingest-*.log")
            chunks = chunks_stored(schema.url)
    finally:
        schema.drop()
    return {"workers": workers, "chunks": chunks, "seconds": round(elapsed, 1), "rate": round(chunks / elapsed, 1)}


def question_rate(replicas: int, scratch: Path, questions: list[str]) -> dict[str, float]:
    """Questions per second with `replicas` webhook processes: every question sent at once, each from its own
    chat, timed from the first send to the last reply (the replicas warmed by one question each first)."""
    root = scratch / f"bots-{replicas}"
    [articles] = write_articles(root / "articles", 1)
    schema = Schema(f"bench_bots_{replicas}_{os.getpid()}")
    try:
        with ExitStack() as stack, FakeBotApi(TOKEN, max_poll_seconds=0.5) as fake:
            hosts = Deployment(root, compose_variables(root, schema.url), fake_edges(fake), stack)
            hosts.start_chroma()
            done = hosts.run("ingest", "newsdesk", "ingest", str(articles))
            if done.returncode:
                raise SystemExit(f"ingest failed: {done.stderr}")
            hosts.start_replicas(fake, replicas)
            for chat in range(replicas):  # each replica answers one question before the clock starts
                fake.send_text(9000 + chat, questions[0], user_id=9000 + chat)
                fake.wait_for_messages(9000 + chat, 1, timeout=300)
            started = time.perf_counter()
            for n, question in enumerate(questions):
                fake.send_text(n + 1, question, user_id=n + 1)
            for n in range(len(questions)):
                fake.wait_for_messages(n + 1, 1, timeout=600)
            elapsed = time.perf_counter() - started
    finally:
        schema.drop()
    return {"replicas": replicas, "questions": len(questions), "seconds": round(elapsed, 1),
            "rate": round(len(questions) / elapsed, 2)}  # fmt: skip


def write_page(ingest: list[dict[str, float]], answers: list[dict[str, float]], busy: float, note: str) -> None:
    """This CPU's section of docs/deployment.md's scaling figures, replaced; other CPUs' sections stay."""
    cpu = cpu_model()
    marker = "deployment-scale:" + re.sub(r"[^\w]+", "-", cpu).strip("-")
    lines = [
        f"<!-- {marker}:begin -->",
        f"**{cpu}** ({os.cpu_count()} cores), measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by",
        "`.venv/bin/python bench/deployment.py`; other processes kept"
        f" {busy:.2f} cores busy on average meanwhile.{note}",
        "",
        "| ingest workers at once | chunks | wall s | chunks/s (all workers) | per worker |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']} | {r['chunks']} | {r['seconds']} | {r['rate']} | {r['rate'] / r['workers']:.1f} |"
            for r in ingest
        ),
        "",
        "| bot replicas | questions | wall s | questions/s (all replicas) | per replica |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['replicas']} | {r['questions']} | {r['seconds']} | {r['rate']} | {r['rate'] / r['replicas']:.2f} |"
            for r in answers
        ),
        f"<!-- {marker}:end -->",
    ]
    text = PAGE.read_text(encoding="utf-8")
    section = re.compile(rf"^<!-- {re.escape(marker)}:begin -->$.*?^<!-- {re.escape(marker)}:end -->$", re.S | re.M)
    if section.search(text):
        text = section.sub(lambda _: "\n".join(lines), text)
    else:  # a CPU not measured before: its section goes after the others
        anchor = text.index(SECTIONS_END)
        text = text[:anchor] + "\n".join(lines) + "\n\n" + text[anchor:]
    PAGE.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=40, help="questions per replica count")
    args = parser.parse_args()
    if not XQUAD.is_dir():
        raise SystemExit(f"{XQUAD} not found: the benchmark reads ../shared/eval")
    questions = [q.text for q in load_squad(XQUAD / "xquad.en.dev.json")[1]][: args.questions]
    with tempfile.TemporaryDirectory() as scratch, busy_meter() as busy:
        ingest = [ingest_rate(workers, Path(scratch)) for workers in (1, 2)]
        print(ingest, flush=True)
        answers = [question_rate(replicas, Path(scratch), questions) for replicas in (1, 2)]
        print(answers, flush=True)
    cores = os.cpu_count() or 1
    note = f" With {cores} cores, two processes share them: the figures show the cost of that, not of the design."
    write_page(ingest, answers, busy.value, note if cores <= 2 else "")


if __name__ == "__main__":
    main()
