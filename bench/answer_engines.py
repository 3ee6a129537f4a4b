"""Warm answer latency with each e5 engine: `AnswerEngine.ask` over examples/questions.txt on the examples store,
numpy (what a new process answers with) against torch (what it switches to), and whether the answers agree.

    .venv/bin/python bench/answer_engines.py [--data-dir DIR] [--rounds 3]

Every question is asked once untimed (warm caches, compiled kernels), then `--rounds` times; the figure is each
engine's median over all timed asks, with the process CPU time per ask, since other sessions share the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "newsdesk-answer-engines")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from ingest.pipeline import Ingester, load_paths
    from newsdesk.runtime import build_engine
    from newsdesk.settings import Settings

    settings = Settings().model_copy(update={"data_dir": args.data_dir, "chroma_host": None})
    engine = build_engine(settings)
    Ingester(engine.store, settings.chunk_tokens, settings.chunk_overlap).ingest(
        load_paths([ROOT / "examples" / "articles"], 20_000_000)
    )
    questions = [q.strip() for q in (ROOT / "examples" / "questions.txt").read_text().splitlines()]
    questions = [q for q in questions if q and not q.startswith("#")]
    embedder = engine.store.embedder
    embedder._torch = None  # type: ignore[attr-defined]  # the ingest loaded torch: start from numpy
    answers: dict[str, list[str]] = {}
    for name in ("numpy", "torch"):
        if name == "torch":
            embedder.torch_encoder()  # type: ignore[attr-defined]
        walls, cpus = [], []
        for question in questions:
            embedder.__dict__.get("_query_cache", {}).clear()
            answers.setdefault(name, []).append(engine.ask(question).answer)
        for _ in range(args.rounds):
            for question in questions:
                embedder.__dict__.get("_query_cache", {}).clear()  # a new question each time, as a user's is
                cpu, started = time.process_time(), time.perf_counter()
                engine.ask(question)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
        p50, p90 = statistics.median(walls) * 1000, statistics.quantiles(walls, n=10)[-1] * 1000
        cpu_p50 = statistics.median(cpus) * 1000
        rounds = f"{len(questions)} questions x {args.rounds}"
        print(f"{name}: {rounds}: p50 {p50:.0f} ms, p90 {p90:.0f} ms, CPU p50 {cpu_p50:.0f} ms")
    same = sum(a == b for a, b in zip(answers["numpy"], answers["torch"], strict=True))
    print(f"same answer from both engines: {same} of {len(questions)}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
