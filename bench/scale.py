"""Part 4: warm query latency at 1k, 10k and 100k chunks, embedded and server mode, and the bot's peak RSS.

Corpora. Embedding 100k chunks at ~30/s would take an hour, so only a base set is embedded: every paragraph of
XQuAD (German) and PIAF ingested by the normal `Ingester` (cached under the data dir). A corpus of N chunks
is the base articles (copy 0: real texts, real vectors) followed by varied copies until N chunks: copy j of an
article gets its own id (`<id>~j`), a numbered title, a date, a source name, its sentences rotated by j and
each marked "(j)" (so BM25 sees different texts with the same words, and the answerer reads as many distinct
sentences as in a real archive: `copy_text`), and for vectors a blend of its own and another random base
chunk's (weight 0.55-0.8 on its own) plus a little noise, re-normalised. Blends keep the copies inside the region
real e5 vectors occupy and make every vector distinct; plain noisy copies would not do: ~75 near-duplicates of
every vector fill each HNSW node's 16 neighbour slots with its own copies, the graph falls apart into islands
and approximate search finds the true nearest neighbours for only a fraction of the questions (measured: exact
top-1 found for 11 of 60 questions at 100k). The last table column checks HNSW against exact search on each
embedded corpus. They are written with the store's own write protocol (catalog `begin_documents`,
Chroma upsert, catalog `add_chunks`, the same metadata as `Store.write_parts`), batched over a few
thousand chunks per Chroma call, so Chroma and the BM25 index both hold all N chunks. Corpora are cached
under the data dir and reused by later runs.

Latency. The engine is `newsdesk.runtime.build_engine` over the corpus, as `newsdesk ask` and the bot build it,
measured once the torch engine is loaded, which a bot begins loading as soon as it starts
(`prepare_in_background`) (default extractive answerer, k=5; the mode "embedded, reader" is the same with the
trained reader, NEWSDESK_ANSWER_MODEL=shipped, docs/answer-model.md). Questions are real evaluation questions
(half English over German paragraphs, half French), each asked once per pass after the query-vector cache is
cleared, after a warm-up on other questions: "search" is `Store.search(q, 5)`, "answer" is
`AnswerEngine.ask(q)` (search + answer).
Each pass is repeated; the medians of the passes' p50 and p95 are reported.

Peak RSS: a separate `newsdesk ask` process reading questions from stdin (models load once, as in the bot)
over the largest corpus, its maximum resident set size from wait4 (ru_maxrss).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    ROOT,
    Config,
    busy_meter,
    clear_query_cache,
    eval_corpora,
    latency_summary,
    log,
    offline_env,
    save_plot,
)

BUILD_VERSION = 3  # 3: no two copies share a sentence
OWN_WEIGHT = (0.55, 0.8)  # a copy's vector: this share of its own base vector, the rest another base chunk's
NOISE = 0.05  # norm of the Gaussian noise added on top
WRITE_BATCH = 2000
READER_MODE = "embedded, reader"  # the same corpus and engine with the trained reader answering
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLOSING_STOP = re.compile(r"([.!?]*)$")


# --- the corpus ----------------------------------------------------------------------------------------------


def base_store(cfg: Config) -> Any:
    """The embedded base set: every evaluation paragraph ingested once by the normal pipeline (then cached)."""
    from ingest.pipeline import Ingester
    from newsdesk.runtime import open_store
    from newsdesk.settings import Settings

    settings = Settings().model_copy(update={"data_dir": cfg.data_dir / "scale" / "base", "chroma_host": None})
    store = open_store(settings)
    paragraphs = 12 if cfg.smoke else None
    articles = [a for corpus in eval_corpora(cfg.eval_dir, paragraphs) for a in corpus.articles()]
    report = Ingester(store, settings.chunk_tokens, settings.chunk_overlap).ingest(articles)
    log(f"scale: base set {report.summary()}")
    return store


def read_base(store: Any) -> list[dict[str, Any]]:
    """Base articles in ingest order: metadata, chunk records and vectors."""
    from vectorstore.records import ChunkRecord

    got = store.vectors._collection.get(include=["embeddings", "metadatas"])
    texts = store.catalog.chunk_texts(got["ids"])
    by_article: dict[str, list[tuple[int, ChunkRecord, np.ndarray]]] = {}
    for cid, vector, meta in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True):
        text = texts[cid][1]
        record = ChunkRecord(cid, int(meta["position"]), text, int(meta["start"]), int(meta["end"]))
        by_article.setdefault(str(meta["article_id"]), []).append((record.position, record, np.asarray(vector)))
    order = [d["id"] for d in reversed(store.catalog.documents())]  # oldest first: the order of ingest
    infos = store.catalog.document_info(order)
    articles = []
    for aid in order:
        chunks = sorted(by_article.get(aid, []), key=lambda item: item[0])
        if chunks:
            articles.append(
                {
                    "info": infos[aid],
                    "chunks": [c for _, c, _ in chunks],
                    "vectors": np.stack([v for _, _, v in chunks]).astype(np.float32),
                }
            )
    return articles


def copy_text(text: str, j: int) -> str:
    """Copy j's text: the sentences rotated by j, each marked "(j)" before its closing stop. The answerer reads
    each sentence once per answer, so copies sharing sentences would leave it fewer to embed than a real
    archive's passages give it (measured: the answer step 31 ms at 10,000 chunks against 82 ms at 1,000)."""
    sentences = _SENTENCE_END.split(text)
    k = j % len(sentences)
    return " ".join(_CLOSING_STOP.sub(f" ({j})\\1", s, count=1) for s in sentences[k:] + sentences[:k])


def synthetic_documents(base: list[dict[str, Any]], n_chunks: int) -> Iterator[tuple[Any, list[Any], np.ndarray]]:
    """(DocumentInfo, chunks, vectors) until at least `n_chunks` chunks: base articles, then varied copies."""
    from vectorstore.records import ChunkRecord, DocumentInfo

    pool = np.concatenate([a["vectors"] for a in base])
    written, j = 0, 0
    while True:
        rng = np.random.default_rng(j)
        for article in base:
            if written >= n_chunks:
                return
            meta = article["info"]
            if j == 0:
                content_hash = hashlib.sha256(("base:" + meta["id"]).encode()).hexdigest()
                info = DocumentInfo(
                    id=meta["id"], title=meta["title"], content_hash=content_hash, date=meta["date"],
                    date_int=meta["date_int"], url=meta["url"], source=meta["source"], lang=meta["lang"],
                )  # fmt: skip
                chunks, vectors = article["chunks"], article["vectors"]
            else:
                doc_id = f"{meta['id']}~{j}"
                day = date(2020, 1, 1) + timedelta(days=(j * 37 + len(meta["id"])) % 2000)
                content_hash = hashlib.sha256(doc_id.encode()).hexdigest()
                info = DocumentInfo(
                    id=doc_id, title=f"{meta['title']} ({j})", content_hash=content_hash, date=day.isoformat(),
                    date_int=int(day.strftime("%Y%m%d")), url=f"https://example.org/{j}/{meta['id']}",
                    source=f"wire{j % 7}", lang=meta["lang"],
                )  # fmt: skip
                key = hashlib.sha1(doc_id.encode()).hexdigest()[:16]
                chunks = [
                    ChunkRecord(
                        f"{key}-{c.position}-{content_hash[:8]}", c.position, copy_text(c.text, j), c.start, c.end
                    )
                    for c in article["chunks"]
                ]
                own = article["vectors"]
                weight = rng.uniform(*OWN_WEIGHT, size=(len(own), 1)).astype(np.float32)
                partner = pool[rng.integers(0, len(pool), size=len(own))]
                noise = rng.normal(size=own.shape).astype(np.float32)
                noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
                vectors = weight * own + (1 - weight) * partner + noise
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            written += len(chunks)
            yield info, chunks, vectors
        j += 1


def _metadata(info: Any, chunk: Any) -> dict[str, Any]:
    """The Chroma metadata `Store.write_document` stores with a chunk."""
    return {
        "article_id": info.id, "position": chunk.position, "start": chunk.start, "end": chunk.end,
        "title": info.title, "date": info.date, "date_int": info.date_int, "url": info.url,
        "source": info.source, "lang": info.lang,
    }  # fmt: skip


def write_corpus(store: Any, base: list[dict[str, Any]], n_chunks: int) -> int:
    """Write the corpus with the store's write protocol, batched: mark documents `writing`, upsert their vectors,
    swap their chunks in and mark them `ready`. Returns the chunks written."""
    pending: list[tuple[Any, list[Any], np.ndarray]] = []
    total = 0

    def flush() -> None:
        store.catalog.begin_documents([info for info, _, _ in pending], "bench")
        ids = [c.id for _, chunks, _ in pending for c in chunks]
        metas = [_metadata(info, c) for info, chunks, _ in pending for c in chunks]
        store.vectors.add(ids, np.concatenate([v for _, _, v in pending]), metas)
        store.catalog.add_chunks([(info, chunks) for info, chunks, _ in pending], {info.id for info, _, _ in pending})
        pending.clear()

    for document in synthetic_documents(base, n_chunks):
        pending.append(document)
        total += len(document[1])
        if sum(len(c) for _, c, _ in pending) >= WRITE_BATCH:
            flush()
    if pending:
        flush()
    return total


# --- Chroma server -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chroma_server(path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`chroma run` on a free local port over `path`, stopped (by its pid) when the block ends."""
    chroma = Path(sys.executable).with_name("chroma")
    port = _free_port()
    path.mkdir(parents=True, exist_ok=True)
    with open(path.parent / "chroma.log", "ab") as out:
        proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=offline_env(),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not start (see {path.parent / 'chroma.log'})") from None
                time.sleep(0.2)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _adopt_catalog(folder: Path, port: int) -> None:
    """A server-mode catalog is named after host and port; a cached one from another port is renamed."""
    wanted = f"articles@127.0.0.1_{port}.catalog.sqlite3"
    for old in folder.glob("articles@127.0.0.1_*.catalog.sqlite3"):
        if old.name != wanted:
            for suffix in ("", "-wal", "-shm"):
                src = old.with_name(old.name + suffix)
                if src.exists():
                    src.rename(folder / (wanted + suffix))


def _settings(folder: Path, port: int | None) -> Any:
    from newsdesk.settings import Settings

    update: dict[str, Any] = {"data_dir": folder, "chroma_host": "127.0.0.1" if port else None}
    if port:
        update["chroma_port"] = port
    return Settings().model_copy(update=update)


def ensure_corpus(folder: Path, n_chunks: int, base: list[dict[str, Any]], port: int | None) -> dict[str, Any]:
    """The corpus in `folder` (built now, or reused when a complete build of the same kind is there)."""
    from newsdesk.runtime import open_store

    marker = folder / "built.json"
    wanted = {"version": BUILD_VERSION, "n": n_chunks, "base_chunks": sum(len(a["chunks"]) for a in base)}
    if marker.exists():
        built = json.loads(marker.read_text())
        if {k: built.get(k) for k in wanted} == wanted:
            return {**built, "reused": True}
    if port is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:  # the server's files were wiped before it started; only the catalog lives here
        for old in folder.glob("articles@*.catalog.sqlite3*"):
            old.unlink()
    started = time.perf_counter()
    store = open_store(_settings(folder, port))
    chunks = write_corpus(store, base, n_chunks)
    store.catalog.close()
    built = {**wanted, "chunks": chunks, "build_s": time.perf_counter() - started}
    marker.write_text(json.dumps(built))
    return {**built, "reused": False}


# --- measuring -----------------------------------------------------------------------------------------------


def scale_questions(cfg: Config, base: list[dict[str, Any]], smallest: int) -> tuple[list[Any], list[Any]]:
    """(warm-up, measured) questions: real ones whose paragraph is in the smallest corpus, alternating English
    (over German paragraphs) and French."""
    covered, count = set(), 0
    for article in base:
        if count >= smallest:
            break
        covered.add(article["info"]["id"])
        count += len(article["chunks"])
    per_set = [[q for q in c.questions if q.article_id in covered] for c in eval_corpora(cfg.eval_dir)]
    mixed = [q for pair in zip(*per_set, strict=False) for q in pair]
    n = cfg.scale_questions
    return mixed[n : n + 4], mixed[:n]


def measure(engine: Any, warmup: list[Any], questions: list[Any], rounds: int) -> dict[str, Any]:
    """Search and answer latency passes over `questions`, each question embedded afresh in each pass."""
    store = engine.store
    passes: list[dict[str, Any]] = []
    for _ in range(rounds):
        clear_query_cache(store.embedder)
        for q in warmup:
            engine.ask(q.text)
        clear_query_cache(store.embedder)
        search_ms, found = [], 0
        with busy_meter() as busy:
            for q in questions:
                started = time.perf_counter()
                hits = store.search(q.text, 5)
                search_ms.append(1000 * (time.perf_counter() - started))
                found += q.article_id in {h.article_id.split("~")[0] for h in hits}
            clear_query_cache(store.embedder)
            answer_ms, retrieve_ms, extract_ms = [], [], []
            for q in questions:
                started = time.perf_counter()
                answer = engine.ask(q.text)
                answer_ms.append(1000 * (time.perf_counter() - started))
                retrieve_ms.append(answer.timings_ms["retrieve"])
                extract_ms.append(answer.timings_ms["answer"])
        passes.append(
            {
                "search": latency_summary(search_ms),
                "answer": latency_summary(answer_ms),
                "answer_retrieve_p50": statistics.median(retrieve_ms),
                "answer_extract_p50": statistics.median(extract_ms),
                "hit5_any_copy": found / max(1, len(questions)),
                "busy_cores": busy.value,
            }
        )

    def med(path: tuple[str, ...]) -> float:
        values = []
        for p in passes:
            value: Any = p
            for key in path:
                value = value[key]
            values.append(value)
        return float(statistics.median(values))

    return {
        "search_p50": med(("search", "p50")),
        "search_p95": med(("search", "p95")),
        "answer_p50": med(("answer", "p50")),
        "answer_p95": med(("answer", "p95")),
        "answer_retrieve_p50": med(("answer_retrieve_p50",)),
        "answer_extract_p50": med(("answer_extract_p50",)),
        "hit5_any_copy": med(("hit5_any_copy",)),
        "busy_cores": med(("busy_cores",)),
        "passes": passes,
    }


# Runs the command as its only child, so RUSAGE_CHILDREN is exactly that child's peak resident set size.
_RSS_WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(f'PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr); "
    "sys.exit(code)"
)


def measure_in_process(
    folder: Path, port: int | None, warmup: list[Any], questions: list[Any], rounds: int, answer_model: str = "off"
) -> dict:
    """`measure` in a fresh process that only opens the store and asks, like the bot: the driver's own
    Chroma clients (and whatever they still do after writing a corpus) stay out of the timings."""
    job = {
        "folder": str(folder),
        "port": port,
        "answer_model": answer_model,
        "rounds": rounds,
        "warmup": [[q.text, q.article_id] for q in warmup],
        "questions": [[q.text, q.article_id] for q in questions],
    }
    job_file = folder / "measure-job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", str(job_file)],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"latency worker failed: {proc.stderr.strip()[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure_worker(job_file: Path) -> None:
    from types import SimpleNamespace

    from newsdesk.runtime import build_engine

    job = json.loads(job_file.read_text(encoding="utf-8"))
    settings = _settings(Path(job["folder"]), job["port"]).model_copy(update={"answer_model": job["answer_model"]})
    engine = build_engine(settings)
    # as `newsdesk bot` and `newsdesk chat` do once started: they answer from the engine this loads (torch), so
    # their warm latency is measured once it is loaded
    engine.store.embedder.prepare()

    def asked(items: list[list[str]]) -> list[Any]:
        return [SimpleNamespace(text=text, article_id=aid) for text, aid in items]

    result = measure(engine, asked(job["warmup"]), asked(job["questions"]), job["rounds"])
    if job["port"] is None and job["answer_model"] == "off":
        result["hnsw_recall"] = hnsw_recall(engine.store, [text for text, _ in job["questions"]])
    print(json.dumps(result))


def hnsw_recall(store: Any, questions: list[str], k: int = 30) -> dict[str, float]:
    """How much of the exact top-k (cosine over every stored vector, numpy) Chroma's HNSW returns, and how
    often it returns the exact best chunk: approximate search must not be what limits quality."""
    got = store.vectors._collection.get(include=["embeddings"])
    ids = np.asarray(got["ids"])
    matrix = np.asarray(got["embeddings"], dtype=np.float32)
    overlap, best = [], 0
    for text in questions:
        vector = store.embedder.query_vector(text)
        exact = ids[np.argsort(-(matrix @ vector))[:k]]
        approx = {cid for cid, _ in store.vectors.query(vector, k)}
        overlap.append(len(approx & set(exact)) / k)
        best += exact[0] in approx
    return {"recall_at_k": float(np.mean(overlap)), "best_found": best / max(1, len(questions)), "k": k}


def peak_rss(folder: Path, questions: list[Any], port: int | None) -> dict[str, Any]:
    """Peak RSS (MB) of a fresh `newsdesk ask` process answering `questions` from stdin over the corpus."""
    env = offline_env(NEWSDESK_DATA_DIR=str(folder))
    if port:
        env.update(CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(port))
    command = [sys.executable, "-c", _RSS_WRAPPER, str(Path(sys.executable).with_name("newsdesk")), "ask"]
    stdin = "".join(q.text.replace("\n", " ") + "\n" for q in questions)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, input=stdin.encode(), capture_output=True, timeout=900)
    seconds = time.perf_counter() - started
    answers = [line for line in proc.stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    err = proc.stderr.decode(errors="replace")
    found = re.search(r"^PEAK_RSS_KB (\d+)$", err, re.M)
    if proc.returncode != 0 or len(answers) != len(questions) or not found:
        tail = [line for line in err.strip().splitlines() if not line.startswith("PEAK_RSS_KB")][-3:]
        return {"error": f"exit {proc.returncode}, {len(answers)} answers: {' / '.join(tail)}"}
    rss_kb = int(found.group(1))
    return {"peak_rss_mb": rss_kb / 1024, "questions": len(questions), "seconds": seconds}


def _server_peak_mb(proc: subprocess.Popen[bytes]) -> float | None:
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s*(\d+)\s*kB", status, re.M)
    return int(found.group(1)) / 1024 if found else None


def run(cfg: Config) -> dict[str, Any]:
    from chromadb.api.shared_system_client import SharedSystemClient

    store = base_store(cfg)
    base = read_base(store)
    log(f"scale: {len(base)} base articles, {sum(len(a['chunks']) for a in base)} chunks")
    sizes = cfg.scale_sizes
    warmup, questions = scale_questions(cfg, base, sizes[0])
    rss_questions = questions[: cfg.rss_questions]
    modes = ["embedded", READER_MODE]
    if Path(sys.executable).with_name("chroma").exists():
        modes.append("server")
    result: dict[str, Any] = {"sizes": {}, "questions": len(questions), "rounds": cfg.scale_rounds, "modes": modes}
    for n in sizes:
        row: dict[str, Any] = {}
        folder = cfg.data_dir / "scale" / f"embedded-{n}"
        built = ensure_corpus(folder, n, base, None)
        log(f"scale: embedded {n}: {built['chunks']} chunks ({'reused' if built['reused'] else 'built'})")
        SharedSystemClient.clear_system_cache()  # the writer's embedded client: closed before measuring
        row["embedded"] = {**measure_in_process(folder, None, warmup, questions, cfg.scale_rounds), "build": built}
        log(f"scale: embedded {n}: answer p50 {row['embedded']['answer_p50']:.0f} ms")
        reader = measure_in_process(folder, None, warmup, questions, cfg.scale_rounds, answer_model="shipped")
        row[READER_MODE] = {**reader, "build": built}
        log(f"scale: {READER_MODE} {n}: answer p50 {reader['answer_p50']:.0f} ms")
        if n == sizes[-1]:
            row["embedded"]["rss"] = peak_rss(folder, rss_questions, None)
            log(f"scale: embedded {n}: bot process {row['embedded']['rss']}")
        if "server" in modes:
            folder = cfg.data_dir / "scale" / f"server-{n}"
            if not (folder / "built.json").exists():
                shutil.rmtree(folder, ignore_errors=True)
            with chroma_server(folder / "chroma-server") as (port, proc):
                _adopt_catalog(folder, port)
                built = ensure_corpus(folder, n, base, port)
                log(f"scale: server {n}: {built['chunks']} chunks ({'reused' if built['reused'] else 'built'})")
                SharedSystemClient.clear_system_cache()
                row["server"] = {
                    **measure_in_process(folder, port, warmup, questions, cfg.scale_rounds),
                    "build": built,
                }
                log(f"scale: server {n}: answer p50 {row['server']['answer_p50']:.0f} ms")
                if n == sizes[-1]:
                    row["server"]["rss"] = peak_rss(folder, rss_questions, port)
                    row["server"]["server_peak_rss_mb"] = _server_peak_mb(proc)
                    log(f"scale: server {n}: bot process {row['server']['rss']}")
        result["sizes"][str(n)] = row
    return result


def plot(result: dict[str, Any], path: Path, footer: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [int(n) for n in result["sizes"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    for ax, kind in zip(axes, ("search", "answer"), strict=True):
        for mode, colour in (("embedded", "tab:blue"), (READER_MODE, "tab:green"), ("server", "tab:orange")):
            if mode not in result["modes"]:
                continue
            for stat, style in (("p50", "-o"), ("p95", "--^")):
                ys = [result["sizes"][str(n)][mode][f"{kind}_{stat}"] for n in sizes]
                ax.plot(sizes, ys, style, color=colour, label=f"{mode} {stat}")
        if kind == "answer":
            ax.axhline(150, color="tab:red", linewidth=1, linestyle=":")
            ax.text(sizes[0], 152, "target p50 150 ms", color="tab:red", fontsize=7, va="bottom")
        ax.set_xscale("log")
        ax.set_xlabel("chunks in the store")
        ax.set_ylabel("ms (warm)")
        ax.set_ylim(bottom=0)
        ax.set_title("Store.search(q, 5)" if kind == "search" else "AnswerEngine.ask(q): search + extractive answer",
                     fontsize=9)  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_plot(fig, path, footer)


def table(result: dict[str, Any]) -> str:
    rows = [
        "| chunks | mode | search p50 / p95 (ms) | answer p50 / p95 (ms) | of which retrieve / answer p50 (ms) "
        "| answer p50, least disturbed pass (its busy cores) | hit@5 (own paragraph or a copy) "
        "| other processes' cores | corpus | HNSW vs exact: recall@30, best found |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in result["sizes"].values():
        for mode, r in row.items():
            build = r["build"]
            how = "cached" if build.get("reused") else f"built in {build['build_s']:.0f} s"
            exact = r.get("hnsw_recall")
            check = f"{exact['recall_at_k']:.2f}, {exact['best_found']:.2f}" if exact else "(the embedded row's)"
            quiet = min(r["passes"], key=lambda p: p["busy_cores"])
            rows.append(
                f"| {build['chunks']:,} | {mode} | {r['search_p50']:.1f} / {r['search_p95']:.1f} "
                f"| {r['answer_p50']:.1f} / {r['answer_p95']:.1f} "
                f"| {r['answer_retrieve_p50']:.1f} / {r['answer_extract_p50']:.1f} "
                f"| {quiet['answer']['p50']:.1f} ({quiet['busy_cores']:.2f}) | {r['hit5_any_copy']:.2f} "
                f"| {r['busy_cores']:.2f} | {how} | {check} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        _measure_worker(Path(sys.argv[2]))
