"""How soon a running engine answers from an article another process ingested; writes docs/freshness.md.

A long-running engine (what `newsdesk bot` and `newsdesk chat` hold) over examples/articles, embedded,
against a `chroma run` server on 127.0.0.1, and as two hosts: the engine and the ingest with data folders of
their own, sharing a PostgreSQL database (the catalog, in a schema made for the run) and the Chroma server.
For each trial a new article is written to disk, `python -m ingest`
runs it in a separate process, and the engine is asked about it every 50 ms from the moment the ingest starts.
Reported: the ingest process's own time (model load included), the time from the start of the ingest to the
first answer that cites the new article, and from the end of the ingest to that answer.

Run from the repository root:

    .venv/bin/python bench/freshness.py [--trials 5] [--database postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model  # noqa: E402
from bot.engine import AnswerEngine  # noqa: E402
from ingest.pipeline import Ingester, load_paths  # noqa: E402
from vectorstore.embeddings import load_embedder  # noqa: E402
from vectorstore.store import Store  # noqa: E402

DOC = ROOT / "docs" / "freshness.md"
EXAMPLES = ROOT / "examples" / "articles"
ARTICLE = """title {town} opens a night train to the coast
date 2024-11-2{n}

The town of {town} opened a night train to the coast on Friday. The first train left at 22:40 with
{passengers} passengers on board, the operator said.
"""
DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
TOWNS = ["Verdal", "Orlen", "Kestrin", "Maubourg", "Tessary", "Galloran", "Brisk", "Olvenna", "Corra", "Penmoor"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    for _ in range(150):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).raise_for_status()
            return server, port
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("chroma server did not start")


def trial(engine: AnswerEngine, env: dict[str, str], folder: Path, n: int) -> tuple[float, float, float]:
    """(ingest s, ingest start -> answered s, ingest end -> answered s) for one new article."""
    town, passengers = TOWNS[n % len(TOWNS)], 300 + n
    path = folder / f"late-{n}.txt"
    path.write_text(ARTICLE.format(town=town, n=n % 10, passengers=passengers), encoding="utf-8")
    question = f"How many passengers were on the first {town} night train?"
    ended: list[float] = []

    def ingest() -> None:
        subprocess.run([sys.executable, "-m", "ingest", str(path)], env=env, check=True, capture_output=True)
        ended.append(time.perf_counter())

    started = time.perf_counter()
    worker = threading.Thread(target=ingest)
    worker.start()
    while str(passengers) not in engine.ask(question).answer:
        time.sleep(0.05)
    answered = time.perf_counter()
    worker.join()
    return ended[0] - started, answered - started, max(0.0, answered - ended[0])


def fresh_schema(database: str) -> str:
    """A URL whose connections see a new, empty schema of `database` (dropped by drop_schema)."""
    from urllib.parse import quote

    from vectorstore.database import connect

    schema = f"newsdesk_fresh_{os.getpid()}"
    with connect(database) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.execute(f"CREATE SCHEMA {schema}")
    return f"{database}{'&' if '?' in database else '?'}options={quote(f'-csearch_path={schema}')}"


def drop_schema(database: str) -> None:
    from vectorstore.database import connect

    with connect(database) as db:
        db.execute(f"DROP SCHEMA IF EXISTS newsdesk_fresh_{os.getpid()} CASCADE")


def measure(mode: str, trials: int, workdir: Path, database: str) -> dict[str, float]:
    embedder = load_embedder("e5-small")
    data_dir = workdir / mode.replace(" ", "-")
    env = {**os.environ, "NEWSDESK_DATA_DIR": str(data_dir)}
    server = None
    if mode == "embedded":
        store = Store(data_dir, embedder)
    else:
        server, port = start_server(workdir / f"server-{mode.replace(' ', '-')}")
        url = fresh_schema(database) if mode == "two hosts" else None
        store = Store(data_dir, embedder, "fresh", chroma_host="127.0.0.1", chroma_port=port, database_url=url)
        env |= {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port), "NEWSDESK_COLLECTION": "fresh"}
        if url:  # the ingest runs as on another host: its own data folder, the same database and server
            env |= {"NEWSDESK_DATA_DIR": str(workdir / "other-host"), "NEWSDESK_DATABASE_URL": url}
    try:
        Ingester(store).ingest(load_paths([EXAMPLES], 10**7))
        engine = AnswerEngine(store)
        engine.ask("warm up")
        rows = [trial(engine, env, workdir, n) for n in range(trials)]
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        if mode == "two hosts":
            store.catalog.close()
            drop_schema(database)
    ingest_s, start_to_answer, end_to_answer = (statistics.median(col) for col in zip(*rows, strict=True))
    return {
        "ingest": ingest_s,
        "start": start_to_answer,
        "end": end_to_answer,
        "worst_end": max(r[2] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--database", default=DATABASE, help="PostgreSQL for the two-hosts mode (a schema is made and dropped)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsdesk-fresh-") as folder:
        results = {
            mode: measure(mode, args.trials, Path(folder), args.database)
            for mode in ("embedded", "server", "two hosts")
        }
    rows = [
        f"| {mode} | {r['ingest']:.1f} | {r['start']:.1f} | {r['end']:.2f} | {r['worst_end']:.2f} |"
        for mode, r in results.items()
    ]
    command = ".venv/bin/python bench/freshness.py" + (f" --trials {args.trials}" if args.trials != 5 else "")
    command += f" --database {args.database}" if args.database != DATABASE else ""
    DOC.write_text(
        "\n".join(
            [
                "# Fresh news: how soon a running bot answers from a new article",
                "",
                f"Measured {date.today()} on {cpu_model()}, {os.cpu_count()} cores ({torch.get_num_threads()} "
                f"threads), torch {torch.__version__}, Python {sys.version.split()[0]}. Produced by:",
                "",
                "```",
                command,
                "```",
                "",
                "A running engine (as in `newsdesk bot` or `newsdesk chat`) over examples/articles asks about a",
                "new article every 50 ms while `python -m ingest ARTICLE` runs in another process. Median over",
                f"{args.trials} trials, in seconds. Target: answerable within 10 s of the ingest.",
                "",
                "| store | ingest process (s) | ingest start -> answer cites it (s) | ingest end -> answer (s) |"
                " worst ingest end -> answer (s) |",
                "|---|---:|---:|---:|---:|",
                *rows,
                "",
                "The ingest process's time is mostly loading the embedder; once it has written the article, the",
                "running engine sees it at its next question: the catalog's generation counter moved, so an",
                "embedded Chroma client is reopened (a server client sees the write already). In the two-hosts",
                "row the ingest has a data folder of its own and shares only the PostgreSQL database (catalog,",
                "generation counter) and the Chroma server with the engine, as a worker on another host would.",
                "'Ingest end -> answer' is at most the question in flight when the write lands plus the next",
                "one (each takes 0.1-1 s here, more under load): the new article is seen by the next question.",
                "",
            ]
        ),
        encoding="utf-8",
    )
    print(DOC.read_text())
    print("command:", shlex.join(sys.argv))


if __name__ == "__main__":
    main()
