"""Articles into the store: chunk, embed in batches across articles, write each article crash-safely.

Unchanged articles (same id, same content hash) cost nothing; the same article reached by another path is
recognised by its hash and stored once.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.articles import Article, LoadError
from ingest.chunking import chunk_text
from ingest.loaders import find_files, load_file
from vectorstore.records import ChunkRecord
from vectorstore.store import Store

EMBED_BATCH = 256


@dataclass
class IngestReport:
    """What one ingest did; `errors` name each input that failed and why."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 2),
            "errors": self.errors,
            "articles": self.added,
        }

    def summary(self) -> str:
        return (
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {self.failed} failed;"
            f" {self.chunks} chunks in {self.seconds:.1f} s"
        )

    def fail(self, error: LoadError | str) -> None:
        self.failed += 1
        self.errors.append(str(error))


@dataclass
class _Pending:
    article: Article
    chunks: list[ChunkRecord]
    is_new: bool


class Ingester:
    """Turns articles into stored chunks with the store's embedder; one per command or bot."""

    def __init__(self, store: Store, chunk_tokens: int = 200, chunk_overlap: int = 40) -> None:
        self.store = store
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap

    def chunks_of(self, article: Article) -> list[ChunkRecord]:
        """The article's chunks, with ids that change when its content does."""
        limit = self.store.embedder.max_tokens

        def fits(text: str) -> bool:
            return self.store.embedder.count_tokens(embedding_text(article.title, text)) <= limit

        key = hashlib.sha1(article.id.encode()).hexdigest()[:16]
        version = article.content_hash[:8]
        spans = chunk_text(article.text, self.chunk_tokens, self.chunk_overlap, fits)
        return [
            ChunkRecord(f"{key}-{i}-{version}", i, span.text, span.start, span.end, span.sentences)
            for i, span in enumerate(spans)
        ]

    def ingest(self, items: Iterable[Article | LoadError], report: IngestReport | None = None) -> IngestReport:
        """Write every article that is new or changed; failures are counted and named, never raised.

        Embedding is most of the work, so it runs in a worker thread (torch releases the GIL) while this thread
        chunks the next batch and writes the previous one: the store is only touched from this thread, and
        batches are written in order, one at a time, as before.
        """
        report = report or IngestReport()
        started = time.perf_counter()
        embedding_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        try:
            previous: tuple[list[_Pending], Future[np.ndarray]] | None = None
            for batch in self._batches(items, report):
                texts = [embedding_text(p.article.title, c.text) for p in batch for c in p.chunks]
                embedding = embedding_worker.submit(self.store.embed_passages, texts)
                if previous is not None:
                    self._write(*previous, report)
                previous = (batch, embedding)
            if previous is not None:
                self._write(*previous, report)
        except BaseException:
            # Ctrl-C or a storage error: what is written is whole, and embeddings in flight would be thrown
            # away, so do not make the user wait for them.
            embedding_worker.shutdown(wait=False, cancel_futures=True)
            raise
        embedding_worker.shutdown()
        report.seconds += time.perf_counter() - started
        return report

    def _batches(self, items: Iterable[Article | LoadError], report: IngestReport) -> Iterator[list[_Pending]]:
        """The new or changed articles, chunked, in batches of about EMBED_BATCH chunks."""
        seen: set[str] = set()
        batch: list[_Pending] = []
        for item in items:
            if isinstance(item, LoadError):
                report.fail(item)
                continue
            article = item
            content_hash = article.content_hash
            twin = self.store.catalog.ready_with_hash(content_hash)
            if article.id in seen or content_hash in seen or (twin is not None and twin != article.id):
                report.unchanged += 1  # the same article again, by another path or link
                continue
            seen.update((article.id, content_hash))
            if self.store.is_current(article.id, content_hash):
                report.unchanged += 1
                continue
            try:
                chunks = self.chunks_of(article)
            except Exception as exc:  # a tokenizer choking on odd text must not stop the run
                report.fail(f"{article.origin or article.id}: cannot chunk ({exc})")
                continue
            batch.append(_Pending(article, chunks, not self.store.catalog.exists(article.id)))
            if sum(len(p.chunks) for p in batch) >= EMBED_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _write(self, batch: list[_Pending], embedding: Future[np.ndarray], report: IngestReport) -> None:
        vectors = embedding.result()
        documents = []
        offset = 0
        for pending in batch:
            n = len(pending.chunks)
            documents.append((pending.article.info(), pending.chunks, vectors[offset : offset + n]))
            offset += n
        self.store.write_documents(documents)
        for pending in batch:
            report.chunks += len(pending.chunks)
            report.added.append(pending.article.id)
            if pending.is_new:
                report.new += 1
            else:
                report.updated += 1


def embedding_text(title: str, chunk: str) -> str:
    """What the embedder sees of a chunk: its article's title first, so every chunk carries the story's topic
    (a chunk of quotes alone rarely says what they are about)."""
    return f"{title}\n{chunk}" if title else chunk


def load_paths(paths: Iterable[Path], max_bytes: int) -> Iterator[Article | LoadError]:
    """Every article under the given files and folders; a missing path is an error, not an exception."""
    for path in paths:
        if not path.exists():
            yield LoadError(f"{path}: no such file or directory")
            continue
        for file in find_files(path):
            yield from load_file(file, max_bytes)


def load_sources(
    sources: Iterable[str], max_bytes: int, timeout: float = 15.0, *, allow_private: bool
) -> Iterator[Article | LoadError]:
    """Articles from a mix of web addresses (fetched; `allow_private`: see ingest.web) and files or folders."""
    from ingest.web import fetch_article, is_url

    for source in sources:
        if not is_url(source):
            yield from load_paths([Path(source)], max_bytes)
            continue
        try:
            yield fetch_article(source, max_bytes, timeout, allow_private=allow_private)
        except LoadError as exc:
            yield exc


def with_progress(items: list[Article | LoadError], enabled: bool) -> Iterator[Article | LoadError]:
    """Yield the items, drawing a progress bar on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("ingesting", total=len(items))
        for item in items:
            yield item
            progress.advance(task)
