"""The store: Chroma vectors plus the SQLite catalog, written crash-safely and searched hybrid (dense + BM25).

Write protocol for one document, so that a run killed at any moment and run again ends exactly right:
1. the catalog marks the document `writing` (with its new hash and its writer) and drops its old chunks;
2. Chroma drops the document's old vectors and upserts the new ones (ids carry the content hash);
3. one catalog transaction adds the new chunks and marks the document `ready`.
Only `ready` documents are searched. A document longer than one embedding batch is written in parts: the first
does step 1, each does steps 2 (upsert) and 3 (add its chunks), and the last marks it `ready`; until then it
stays `writing`, out of sight, and a part is written only while the catalog still names its writer (another
process that began the same document since, or removed it, has the last word). A document that is not `ready`
with the same hash is simply written again. Writers across processes take a file lock around each batch, so
two ingests at once never interleave their steps.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vectorstore import calibration
from vectorstore.catalog import Catalog, StoredChunk
from vectorstore.chroma import ChromaCollection
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.errors import UserError
from vectorstore.language import anchor_words, asks_for_recent, content_words, detect_language
from vectorstore.records import ChunkRecord, DocumentInfo, Hit, SearchFilters
from vectorstore.sources import FilterError, match_source


@dataclass(frozen=True)
class DocumentPart:
    """Consecutive chunks of a document with their vectors: the whole document when `first` and `last`, else
    one of its parts (see the module's protocol)."""

    info: DocumentInfo
    chunks: list[ChunkRecord]
    vectors: np.ndarray
    first: bool = True
    last: bool = True


class StorageError(UserError):
    """The data folder cannot take writes (full disk, read-only file system); says which folder and why."""


def storage_problem(folder: Path) -> str | None:
    """Why `folder` cannot be written to, or None when it looks writable. Chroma and SQLite report a full disk
    as some internal error, so we look at the file system ourselves."""
    try:
        stats = os.statvfs(folder if folder.exists() else folder.parent)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return f"{folder} is on a read-only file system"
    free = stats.f_bavail * stats.f_frsize
    if free < 5_000_000:
        return f"the disk holding {folder} is full ({free // 1000} kB free)"
    return None


@contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Turn a failed write into a StorageError naming the folder, when the file system is the cause."""
    try:
        yield
    except UserError:  # already says what is wrong
        raise
    except Exception as exc:
        if problem := storage_problem(folder):
            raise StorageError(f"cannot write to the data folder: {problem}") from exc
        raise


@dataclass(frozen=True)
class FusionWeights:
    """How keyword evidence is mixed into the dense ranking: a weighted sum of scores, each min-max normalised
    over the candidates, so keywords reorder close dense scores but cannot overturn a clear dense winner.

    Same-language keyword hits use every content word of the question; cross-language ones only its anchors
    (names, numbers), because a passage that shares no word with the question must not be pulled up by BM25.
    Either reorders passages within a language but does not lift one language over another
    (`_level_languages`).
    """

    same_language: float = 0.8
    anchors: float = 0.3
    # For questions about "the latest" or "today": passages whose dense cosine is within this of the best one
    # count as equally relevant and come newest first (e5 puts a passage on the same story about 0.02 lower).
    recent_margin: float = 0.03


def _chunk_metadata(info: DocumentInfo, chunk: ChunkRecord) -> dict[str, str | int]:
    """What Chroma keeps beside a chunk's vector: enough to filter a search by date and source."""
    return {
        "article_id": info.id,
        "position": chunk.position,
        "start": chunk.start,
        "end": chunk.end,
        "title": info.title,
        "date": info.date,
        "date_int": info.date_int,
        "url": info.url,
        "source": info.source,
        "lang": info.lang,
    }


def _normalised(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {key: (value - low) / span if span > 0 else 1.0 for key, value in scores.items()}


def _level_languages(fused: dict[str, float], dense: dict[str, float], langs: dict[str, str]) -> dict[str, float]:
    """`fused` (dense plus keyword evidence) with each passage language's scores lowered by how much more its
    best score rose above its best dense score than the least raised language's did. Keywords then reorder
    passages within a language, but only the dense scores choose between languages: same-language BM25 is
    evidence that passages in other languages cannot get (docs/quality.md, "Language-neutral ranking"). With one
    language, nothing changes."""
    best_fused: dict[str, float] = {}
    best_dense: dict[str, float] = {}
    for cid, value in fused.items():
        lang = langs.get(cid, "")
        best_fused[lang] = max(best_fused.get(lang, value), value)
        best_dense[lang] = max(best_dense.get(lang, dense.get(cid, 0.0)), dense.get(cid, 0.0))
    rise = {lang: best_fused[lang] - best_dense[lang] for lang in best_fused}
    least = min(rise.values(), default=0.0)
    return {cid: value - (rise[langs.get(cid, "")] - least) for cid, value in fused.items()}


class Store:
    """What the rest of newsdesk sees of vectors and search."""

    def __init__(
        self,
        data_dir: Path,
        embedder: NewsEmbeddings,
        collection: str = "articles",
        chroma_host: str | None = None,
        chroma_port: int = 8000,
        fusion: FusionWeights | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.embedder = embedder
        self.fusion = fusion or FusionWeights()
        where = "" if chroma_host is None else f"@{chroma_host}_{chroma_port}"
        with storage_errors(data_dir):
            data_dir.mkdir(parents=True, exist_ok=True)
            self.catalog = Catalog(data_dir / f"{collection}{where}.catalog.sqlite3")
            self.vectors = ChromaCollection(embedder, collection, data_dir / "chroma", chroma_host, chroma_port)
        self._seen_generation = self.catalog.generation()
        self._calibrated: tuple[int, calibration.Table] | None = None
        self._probe_vectors: dict[str, np.ndarray] | None = None
        self._lock_path = data_dir / "write.lock"
        # Reopening the embedded client (refresh) must not pull it from under a query of another thread.
        self._client_lock = threading.RLock()

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- writing -----------------------------------------------------------------------------------------

    def is_current(self, document_id: str, content_hash: str) -> bool:
        """True when the document is stored completely with this very content."""
        return self.catalog.ready_hash(document_id) == content_hash

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_passages(texts) if texts else np.zeros((0, 1), dtype=np.float32)

    def write_parts(self, parts: list[DocumentPart], writer: str) -> set[str]:
        """Store parts of documents for `writer` (a name unique to one ingest run), replacing whatever a document
        had before its first part (see the module's protocol); one catalog transaction per step and one Chroma
        write for all the parts. Returns the ids of the documents whose parts were stored: a later part of a
        document that is no longer being written by `writer` is dropped. Only documents the catalog knows can
        have vectors (step 1 comes first), so only theirs are deleted."""
        with storage_errors(self.data_dir), self._write_lock():
            firsts = [part.info for part in parts if part.first]
            known = [info.id for info in firsts if self.catalog.exists(info.id)]
            self.catalog.begin_documents(firsts, writer)
            self.vectors.delete_documents(known)
            stored = self.catalog.written_by(writer, [part.info.id for part in parts])
            kept = [part for part in parts if part.info.id in stored]
            ids, texts, metadatas = [], [], []
            for part in kept:
                ids += [c.id for c in part.chunks]
                texts += [c.text for c in part.chunks]
                metadatas += [_chunk_metadata(part.info, c) for c in part.chunks]
            if ids:
                self.vectors.add(ids, np.vstack([part.vectors for part in kept]), texts, metadatas)
            complete = {part.info.id for part in kept if part.last}
            self.catalog.add_chunks([(part.info, part.chunks) for part in kept], complete)
        self._seen_generation = self.catalog.generation()
        return stored

    def remove_document(self, document_id: str) -> bool:
        """Delete a document and its chunks; False when there was no such document."""
        with storage_errors(self.data_dir), self._write_lock():
            if not self.catalog.exists(document_id):
                return False
            self.vectors.delete_documents([document_id])
            return self.catalog.remove_document(document_id)

    # -- reading -----------------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Pick up other processes' writes (an embedded Chroma client does not see them); True if reopened."""
        generation = self.catalog.generation()
        if generation == self._seen_generation:
            return False
        with self._client_lock:
            self.vectors.reopen()
            self._seen_generation = generation
        return True

    def documents(self, limit: int | None = None, offset: int = 0) -> list[dict[str, object]]:
        return self.catalog.documents(limit, offset)

    def is_empty(self) -> bool:
        return self.catalog.count_documents() == 0

    def resolve_filters(self, filters: SearchFilters | None) -> SearchFilters | None:
        """The filters with the source name a user typed replaced by the stored name it means (FilterError when
        it means none or several, or when the dates are the wrong way round)."""
        if not filters:
            return filters
        if filters.since is not None and filters.until is not None and filters.since > filters.until:
            raise FilterError(
                f"--since ({filters.since}) is after --until ({filters.until}): no article matches", "dates"
            )
        source = match_source(filters.source, self.catalog.source_names()) if filters.source else None
        return SearchFilters(filters.since, filters.until, source)

    def count_matching(self, filters: SearchFilters) -> int:
        return self.catalog.count_matching(filters)

    def newest(self, k: int, filters: SearchFilters | None = None) -> list[Hit]:
        """The opening passage of each of the k newest articles, newest first (for "what is the latest news?")."""
        leads = self.catalog.newest_leads(k, filters)
        docs = self.catalog.document_info(list({chunk[0] for _, chunk in leads}))
        return [self._hit(cid, chunk, docs.get(chunk[0], {}), 0.0, 0.0, 0.0) for cid, chunk in leads]

    def dense_offsets(self, query_lang: str) -> dict[str, float]:
        """By passage language, how high the embedder's cosines run for questions in `query_lang` in this
        archive (see vectorstore.calibration); search subtracts it before fusion. Measured again lazily after
        every write and kept in the catalog, so other processes reuse it."""
        generation = self.catalog.generation()
        cached = self._calibrated
        if cached is None or cached[0] != generation:
            stored = json.loads(self.catalog.get_meta("dense_calibration") or "{}")
            if stored.get("generation") == generation and stored.get("probes") == calibration.PROBES_ID:
                table = stored["offsets"]
            else:
                table, complete = self._measure_calibration()
                record = {"generation": generation, "probes": calibration.PROBES_ID, "offsets": table}
                if complete:  # else vectors were unreadable mid-write: measured again by the next question
                    with suppress(sqlite3.Error):  # a read-only archive: measured again by the next process
                        self.catalog.set_meta("dense_calibration", json.dumps(record))
                else:
                    generation = -1
            cached = self._calibrated = (generation, table)
        return calibration.row(cached[1], query_lang)

    def _measure_calibration(self) -> tuple[calibration.Table, bool]:
        """The offsets table, and whether every sampled passage's vector could be read."""
        if self._probe_vectors is None:
            texts = [(lang, probe) for lang, probes in calibration.PROBES.items() for probe in probes]
            vectors = self.embedder.encode_queries([probe for _, probe in texts])
            self._probe_vectors = {
                lang: vectors[[i for i, (probe_lang, _) in enumerate(texts) if probe_lang == lang]]
                for lang in calibration.PROBES
            }
        sample = self.catalog.language_sample(calibration.SAMPLE)
        with self._client_lock:
            stored = self.vectors.vectors_of([cid for ids in sample.values() for cid in ids])
        passages = {lang: np.array([stored[cid] for cid in ids if cid in stored]) for lang, ids in sample.items()}
        complete = all(cid in stored for ids in sample.values() for cid in ids)
        return calibration.offsets(self._probe_vectors, {lang: v for lang, v in passages.items() if len(v)}), complete

    def search(self, query: str, k: int = 5, filters: SearchFilters | None = None) -> list[Hit]:
        """The k best passages for `query`: dense ranking, on one scale across passage languages, fused with
        language-aware keyword rankings."""
        depth = max(30, 4 * k)
        query_vector = self.embedder.query_vector(query)
        with self._client_lock:
            dense = self.vectors.query(query_vector, depth, filters)
        same_scores: dict[str, float] = {}
        anchor_scores: dict[str, float] = {}
        query_lang = detect_language(query)
        words = content_words(query)
        if query_lang and words and self.fusion.same_language:
            same = self.catalog.keyword_search(words, depth, filters, lang=query_lang)
            same_scores = {cid: score for cid, _, score in same}
        anchors = anchor_words(query)
        if anchors and self.fusion.anchors:
            cross = self.catalog.keyword_search(anchors, depth, filters)
            anchor_scores = {cid: score for cid, _, score in cross}
        dense_scores = dict(dense)
        floor = min(dense_scores.values(), default=0.0)
        langs = self.catalog.chunk_languages(list({*dense_scores, *same_scores, *anchor_scores}))
        offsets = self.dense_offsets(query_lang) if dense_scores else {}
        calibrated = {cid: score - offsets.get(langs.get(cid, ""), 0.0) for cid, score in dense_scores.items()}
        dense_norm = _normalised(calibrated)
        fused = {cid: dense_norm.get(cid, 0.0) for cid in {*dense_scores, *same_scores, *anchor_scores}}
        for weight, scores in ((self.fusion.same_language, same_scores), (self.fusion.anchors, anchor_scores)):
            top = max(scores.values(), default=0.0)
            for cid, value in scores.items():
                fused[cid] += weight * value / top
        fused = _level_languages(fused, dense_norm, langs)
        dates = self.catalog.chunk_dates(list(fused))  # a chunk Chroma has but the catalog not yet is skipped
        recent_first: set[str] = set()
        if asks_for_recent(query) and calibrated:
            bar = max(calibrated.values()) - self.fusion.recent_margin
            lowest = min(calibrated.values())
            recent_first = {cid for cid in dates if calibrated.get(cid, lowest) >= bar}
            if not any(dates[cid] for cid in recent_first):
                recent_first = set()  # undated articles: relevance alone

        def rank(cid: str) -> tuple[bool, int, float, int]:
            # Equal relevance (the same wire story in two papers): the newer article first.
            newest = -dates[cid] if cid in recent_first else 0
            return (cid not in recent_first, newest, -round(fused[cid], 4), -dates[cid])

        best = sorted(dates, key=rank)[:k]
        texts = self.catalog.chunk_texts(best)
        docs = self.catalog.document_info(list({document_id for document_id, *_ in texts.values()}))
        keyword_scores = {**anchor_scores, **same_scores}
        most = 1.0 + self.fusion.same_language + self.fusion.anchors  # a hit's score is a share of this, 0 to 1
        return [
            self._hit(
                cid,
                texts[cid],
                docs.get(texts[cid][0], {}),
                fused[cid] / most,
                dense_scores.get(cid, floor),
                keyword_scores.get(cid, 0.0),
            )
            for cid in best
            if cid in texts  # removed between the two reads
        ]

    @staticmethod
    def _hit(cid: str, chunk: StoredChunk, meta: dict[str, object], fused: float, dense: float, keyword: float) -> Hit:
        document_id, text, position, sentences = chunk
        return Hit(
            chunk_id=cid,
            article_id=document_id,
            text=text,
            score=fused,
            title=str(meta.get("title", "")),
            date=str(meta.get("date", "")),
            url=str(meta.get("url", "")),
            source=str(meta.get("source", "")),
            lang=str(meta.get("lang", "")),
            position=position,
            dense=dense,
            keyword=keyword,
            sentences=sentences,
        )
