"""Articles into the store: chunk, embed in batches across articles, write each batch crash-safely.

Memory follows the batch, not the input: an article's chunks are made as batches need them, and an article
longer than a batch goes in over several, staying invisible to search until its last chunk lands (the store's
write protocol). Unchanged articles (same id, same content hash) cost nothing; the same article reached by
another path is recognised by its hash and stored once.
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from ingest.articles import Article, LoadError, Skipped
from ingest.chunking import iter_chunks
from ingest.loaders import find_files, load_file
from vectorstore.records import ChunkRecord, DocumentInfo
from vectorstore.store import DocumentPart, Store

EMBED_BATCH = 256
FIRST_BATCH = 32  # nothing runs beside the first batch's chunking, so the embedder should start soon

Progress = Callable[[int, int], None]
"""Told after each batch is written: how many chunks went in, and how many characters of article text the ingest
has got through since the last call (articles that needed no writing count whole)."""

T = TypeVar("T")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun: "1 chunk", "2 chunks", "0 entries"."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


@dataclass
class IngestReport:
    """What one ingest did; `errors` name each input that failed and why, `still_failing` the inputs that failed
    before and again now (feed entries being retried: not new failures), `skipped` the files left out."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
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
            "still_failing": self.still_failing,
            "skipped": self.skipped,
            "articles": self.added,
        }

    def summary(self) -> str:
        others = [f"{len(self.skipped):,} skipped"] if self.skipped else []
        if self.still_failing:
            others.append(f"{len(self.still_failing):,} still failing (see newsdesk sources --feeds)")
        return (
            f"{self.new:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged, {self.failed:,} failed;"
            + "".join(f" {other};" for other in others)
            + f" {counted(self.chunks, 'chunk')} in {self.seconds:.1f} s"
        )

    def fail(self, error: LoadError | str) -> None:
        self.failed += 1
        self.errors.append(str(error))


@dataclass
class _Job:
    """An article being written, and how far its parts have got."""

    article: Article
    info: DocumentInfo
    is_new: bool
    reached: int = 0  # characters of its text that written parts cover
    lost: bool = False  # another writer took it over


@dataclass
class _Part:
    """Consecutive chunks of one article, embedded and written in the same batch."""

    job: _Job
    first: bool
    chunks: list[ChunkRecord] = field(default_factory=list)
    last: bool = False


class Ingester:
    """Turns articles into stored chunks with the store's embedder; one per command or bot."""

    def __init__(self, store: Store, chunk_tokens: int = 200, chunk_overlap: int = 40) -> None:
        self.store = store
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap

    def iter_chunks(self, article: Article) -> Iterator[ChunkRecord]:
        """The article's chunks, made as they are asked for, with ids that change when its content does."""
        limit = self.store.embedder.max_tokens

        def fits(text: str) -> bool:
            return self.store.embedder.count_tokens(embedding_text(article.title, text)) <= limit

        key = hashlib.sha1(article.id.encode()).hexdigest()[:16]
        version = article.content_hash[:8]
        spans = iter_chunks(article.text, self.chunk_tokens, self.chunk_overlap, fits)
        for i, span in enumerate(spans):
            yield ChunkRecord(f"{key}-{i}-{version}", i, span.text, span.start, span.end, span.sentences)

    def chunks_of(self, article: Article) -> list[ChunkRecord]:
        """All the article's chunks at once (for tests and benchmarks; ingest takes them as it goes)."""
        return list(self.iter_chunks(article))

    def ingest(
        self,
        items: Iterable[Article | LoadError],
        report: IngestReport | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Write every article that is new or changed; failures are counted and named, never raised.

        Embedding is most of the work: while this thread waits for it, a worker thread chunks the next batch and
        writes the previous one, in that order, so the store is only touched from the worker and batches are
        written in order, one at a time. At most two batches of chunks and vectors are held.
        """
        report = report or IngestReport()
        started = time.perf_counter()
        writer = uuid.uuid4().hex  # this run, as the catalog names who is writing an article
        _return_freed_memory()
        store_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-store")
        try:
            batches = self._batches(items, report, progress)
            upcoming = store_worker.submit(next, batches, None)
            written: Future[None] | None = None
            while (batch := upcoming.result()) is not None:
                upcoming = store_worker.submit(next, batches, None)
                vectors = self.store.embed_passages(
                    [embedding_text(p.job.article.title, c.text) for p in batch for c in p.chunks]
                )
                if written is not None:
                    written.result()  # a storage error stops the run here, before more is embedded
                written = store_worker.submit(self._write, batch, vectors, writer, report, progress)
            if written is not None:
                written.result()
        except BaseException:
            # Ctrl-C or a storage error: what is written is whole or invisible (a write under way finishes in the
            # worker), and batches not yet written would be thrown away, so do not make the user wait for them.
            store_worker.shutdown(wait=False, cancel_futures=True)
            raise
        store_worker.shutdown()
        report.seconds += time.perf_counter() - started
        return report

    def _jobs(
        self, items: Iterable[Article | LoadError], report: IngestReport, progress: Progress | None
    ) -> Iterator[_Job]:
        """The articles that are new or changed; the rest are counted (and their text passed on to `progress`)."""
        seen: set[str] = set()
        for item in items:
            if isinstance(item, Skipped):
                report.skipped.append(str(item))
                continue
            if isinstance(item, LoadError):
                report.fail(item)
                continue
            article = item
            info = article.info()
            twin = self.store.catalog.ready_with_hash(info.content_hash)
            if article.id in seen or info.content_hash in seen or (twin is not None and twin != article.id):
                unchanged = True  # the same article again, by another path or link
            else:
                seen.update((article.id, info.content_hash))
                unchanged = self.store.is_current(article.id, info.content_hash)
            if not unchanged:
                yield _Job(article, info, not self.store.catalog.exists(article.id))
                continue
            report.unchanged += 1
            if progress:
                progress(0, len(article.text))

    def _batches(
        self, items: Iterable[Article | LoadError], report: IngestReport, progress: Progress | None
    ) -> Iterator[list[_Part]]:
        """Parts of the articles to write, EMBED_BATCH chunks a batch (the first at most FIRST_BATCH, the last may
        hold fewer)."""
        batch: list[_Part] = []
        size = 0
        limit = min(FIRST_BATCH, EMBED_BATCH)
        for job in self._jobs(items, report, progress):
            part = _Part(job, first=True)
            try:
                for chunk, more in _with_lookahead(self.iter_chunks(job.article)):
                    part.chunks.append(chunk)
                    size += 1
                    if size == limit:
                        part.last = not more
                        yield [*batch, part]
                        batch, size, limit = [], 0, EMBED_BATCH
                        part = _Part(job, first=False)
            except Exception as exc:  # a tokenizer choking on odd text must not stop the run
                report.fail(f"{job.article.origin or job.article.id}: cannot chunk ({exc})")
                size -= len(part.chunks)
                continue
            if part.chunks:
                part.last = True
                batch.append(part)
        if batch:
            yield batch

    def _write(
        self,
        batch: list[_Part],
        vectors: np.ndarray,
        writer: str,
        report: IngestReport,
        progress: Progress | None,
    ) -> None:
        parts = []
        offset = 0
        for part in batch:
            n = len(part.chunks)
            parts.append(DocumentPart(part.job.info, part.chunks, vectors[offset : offset + n], part.first, part.last))
            offset += n
        stored = self.store.write_parts(parts, writer)
        _return_freed_memory()
        for part in batch:
            job = part.job
            reached = len(job.article.text) if part.last else part.chunks[-1].end
            written = len(part.chunks) if job.info.id in stored else 0
            if progress:
                progress(written, reached - job.reached)
            job.reached = reached
            if not written:
                if not job.lost:  # another ingest began this very article since: it writes it
                    job.lost = True
                    report.unchanged += 1
                continue
            report.chunks += written
            if part.last:
                report.added.append(job.info.id)
                if job.is_new:
                    report.new += 1
                else:
                    report.updated += 1


def _return_freed_memory() -> None:
    """Hand the memory freed since the last call back to the system. glibc keeps freed blocks in its heaps for
    reuse, and they pile up between live ones: what loading the model and the articles left (~50-100 MB), and
    a little more with every batch, so a long ingest's resident memory crept up (bench/big_file.py)."""
    with suppress(AttributeError):  # not glibc (macOS, musl): its allocator does this its own way
        ctypes.CDLL(None).malloc_trim(0)


def _with_lookahead(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item, and whether another follows it."""
    iterator = iter(items)
    current = next(iterator, _END)
    while current is not _END:
        following = next(iterator, _END)
        yield current, following is not _END  # type: ignore[misc]
        current = following


_END = object()


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
            if isinstance(file, LoadError):
                yield file
            else:
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


@contextmanager
def progress_bar(items: list[Article | LoadError], enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on a terminal for ingesting `items`, moved by the article text their written chunks cover
    (so one long article moves it too), with the count of chunks written; None when not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    total = sum(len(item.text) for item in items if isinstance(item, Article))
    columns = (TextColumn("ingesting"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[chunks]}"))
    with Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("ingesting", total=total, chunks=counted(0, "chunk"))
        written = 0

        def advance(chunks: int, characters: int) -> None:
            nonlocal written
            written += chunks
            bar.update(task, advance=characters, chunks=counted(written, "chunk"))

        yield advance
