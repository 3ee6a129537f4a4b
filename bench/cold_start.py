"""Part 5: cold start, `newsdesk ask "..."` from a fresh process to the printed answer.

The store holds examples/articles (ingested once into the data dir, embedded Chroma). The command runs as a
user runs it (the `newsdesk` console script, a new Python process each time); the wall time from spawn to exit
is the figure, median of several runs; `newsdesk chat` is timed the same way, answering one question from stdin.
A second script times the same steps one by one in a fresh process (interpreter start, the CLI module, the
embedder from its ready-to-map cache, the store, the answer in the numpy engine, and the exit the CLI takes:
os._exit) to show where the time goes, and `python -X importtime` names the imports that cost most.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, busy_meter, log, offline_env, save_plot

TARGET_S = 2.0

QUESTION = "What did the mayor of Valmont say about the budget?"

_PHASES = r"""
import json, os, sys, time
marks = [("start", time.perf_counter())]
import newsdesk.cli
marks.append(("import newsdesk.cli (click, settings)", time.perf_counter()))
from newsdesk.runtime import quiet_libraries
from newsdesk.settings import Settings
from vectorstore.embeddings import load_embedder
quiet_libraries()
settings = Settings()
marks.append(("import numpy, the settings", time.perf_counter()))
embedder = load_embedder(settings.embedder, settings.threads)
marks.append(("load the e5-small embedder (map the cached arrays, the vocabulary's dict)", time.perf_counter()))
import chromadb
marks.append(("import chromadb", time.perf_counter()))
from vectorstore.store import Store
store = Store(settings.data_dir, embedder, settings.collection, settings.chroma_host, settings.chroma_port)
marks.append(("open the store", time.perf_counter()))
from bot.engine import AnswerEngine
engine = AnswerEngine(store)
marks.append(("import the answering engine", time.perf_counter()))
answer = engine.ask(sys.argv[1])
print(answer.render(), file=sys.stderr)
marks.append(("first answer (search + extractive, numpy engine)", time.perf_counter()))
assert "torch" not in sys.modules
print(json.dumps({"phases": [(name, b - a) for (_, a), (name, b) in zip(marks, marks[1:])], "printed": time.time()}))
sys.stdout.flush()
os._exit(0)  # as newsdesk.cli.main ends
"""

_IMPORTS = "import newsdesk.cli, vectorstore.embeddings, vectorstore.e5_numpy, chromadb, vectorstore.store, bot.engine"


def import_costs(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """The top-level packages whose import costs most (`python -X importtime`, cumulative seconds)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _IMPORTS], cwd=ROOT, env=env, capture_output=True, text=True
    )
    costs: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if found and not found.group(2):  # top level: not indented
            package = found.group(3).split(".")[0]
            costs[package] = costs.get(package, 0.0) + int(found.group(1)) / 1e6
    return sorted(costs.items(), key=lambda kv: -kv[1])[:top]


def ensure_store(cfg: Config) -> Path:
    """examples/articles in a store of its own (ingested by the normal pipeline; unchanged articles skipped)."""
    from ingest.pipeline import Ingester, load_paths
    from newsdesk.runtime import open_store
    from newsdesk.settings import Settings

    folder = cfg.data_dir / "cold"
    settings = Settings().model_copy(update={"data_dir": folder, "chroma_host": None})
    store = open_store(settings)
    report = Ingester(store, settings.chunk_tokens, settings.chunk_overlap).ingest(
        load_paths([ROOT / "examples" / "articles"], 20_000_000)
    )
    log(f"cold start: examples store {report.summary()}")
    return folder


def run(cfg: Config) -> dict[str, Any]:
    folder = ensure_store(cfg)
    env = offline_env(NEWSDESK_DATA_DIR=str(folder))
    newsdesk = str(Path(sys.executable).with_name("newsdesk"))
    walls: list[float] = []
    output = ""
    with busy_meter() as busy:
        interpreter = []
        for _ in range(cfg.cold_repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            interpreter.append(time.perf_counter() - started)
        warm = 0 if cfg.smoke else 1  # a first run warms the page cache and is not counted
        for i in range(cfg.cold_repeats + warm):
            started = time.perf_counter()
            proc = subprocess.run([newsdesk, "ask", QUESTION], cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
            output = proc.stdout
            if i >= warm:
                walls.append(wall)
        chat_walls: list[float] = []
        for _ in range(cfg.cold_repeats):
            started = time.perf_counter()
            proc = subprocess.run(
                [newsdesk, "chat"], cwd=ROOT, env=env, input=QUESTION + "\n", capture_output=True, text=True
            )
            chat_walls.append(time.perf_counter() - started)
            if proc.returncode != 0:
                return {"error": proc.stderr.strip().splitlines()[-1:] or [f"chat exit {proc.returncode}"]}
        phases: list[list[tuple[str, float]]] = []
        for _ in range(cfg.cold_repeats):
            proc = subprocess.run(
                [sys.executable, "-c", _PHASES, QUESTION], cwd=ROOT, env=env, capture_output=True, text=True
            )
            ended = time.time()
            if proc.returncode == 0:
                report = json.loads(proc.stdout.strip().splitlines()[-1])
                # after the answer: thread joins, atexit handlers, freeing torch and Chroma, process teardown
                phases.append([*report["phases"], ("exit (os._exit, as the CLI ends)", ended - report["printed"])])
        imports = import_costs(env)
    median_phases = []
    if phases:
        for i, (name, _) in enumerate(phases[0]):
            median_phases.append((name, statistics.median(p[i][1] for p in phases)))
    result = {
        "command": f'newsdesk ask "{QUESTION}"',
        "walls": walls,
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "chat_walls": chat_walls,
        "chat_median_s": statistics.median(chat_walls),
        "imports": imports,
        "interpreter_s": statistics.median(interpreter),
        "phases": median_phases,
        "answer": output.strip(),
        "busy_cores": busy.value,
    }
    log(f"cold start: median {result['median_s']:.2f} s over {len(walls)} runs")
    return result


def plot(result: dict[str, Any], path: Path, footer: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["Python interpreter start", *(name for name, _ in result["phases"])]
    values = [result["interpreter_s"], *(v for _, v in result["phases"])]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    left = 0.0
    colours = plt.get_cmap("tab10").colors
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        ax.barh([0], [value], left=left, color=colours[i % 10], label=f"{name}: {value:.2f} s")
        left += value
    ax.axvline(TARGET_S, color="tab:red", linestyle="--", linewidth=1)
    ax.text(TARGET_S, 0.45, f" target {TARGET_S:g} s", color="tab:red", fontsize=8)
    ax.set_yticks([])
    ax.set_xlabel(
        f"seconds from process start (steps timed one by one; whole command median {result['median_s']:.2f} s)"
    )
    ax.set_xlim(0, max(TARGET_S * 1.1, left * 1.05))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2)
    ax.set_title(result["command"], fontsize=9)
    save_plot(fig, path, footer, bottom=0.05)
