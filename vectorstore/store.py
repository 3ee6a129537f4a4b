"""The store: Chroma vectors plus the SQLite catalog, written crash-safely and searched hybrid (dense + BM25).

Write protocol for one document, so that a run killed at any moment and run again ends exactly right:
1. the catalog marks the document `writing` (with its new hash and its writer) and drops its old chunks;
2. Chroma drops the document's old vectors and upserts the new ones (ids carry the content hash);
3. one catalog transaction adds the new chunks and marks the document `ready`.
Only `ready` documents are searched. A document longer than one embedding batch is written in parts: the first
does step 1, each does steps 2 (upsert) and 3 (add its chunks), and the last marks it `ready`; until then it
stays `writing`, out of sight, and a part is written only while the catalog still names its writer (another
process that began the same document since, or removed it, has the last word). A document that is not `ready`
with the same hash is simply written again. Writers across processes take the catalog's write lock around each
batch (a file lock for SQLite, an advisory lock in PostgreSQL, where writers may be on other hosts), so two
ingests at once never interleave their steps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from text.language import detect_language
from text.words import anchor_words, asks_for_recent, content_words
from vectorstore import calibration
from vectorstore.catalog import Catalog, SqliteCatalog, StoredChunk
from vectorstore.chroma import ChromaCollection
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.errors import UserError
from vectorstore.fusion import Fused, Fusion, KeywordScores, Scores
from vectorstore.recency import Recency
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


class Store:
    """What the rest of newsdesk sees of vectors and search."""

    def __init__(
        self,
        data_dir: Path,
        embedder: NewsEmbeddings,
        collection: str = "articles",
        chroma_host: str | None = None,
        chroma_port: int = 8000,
        fusion: Fusion | None = None,
        *,
        database_url: str | None = None,
        chroma_tenant: str | None = None,
        chroma_database: str | None = None,
        chroma_headers: dict[str, str] | None = None,
    ) -> None:
        """With `database_url` the catalog lives in that PostgreSQL database (shared by every host that names it),
        else in a SQLite file in `data_dir`; `chroma_tenant`, `chroma_database` and `chroma_headers` (auth) go to
        the Chroma server at `chroma_host`."""
        self.data_dir = data_dir
        self.embedder = embedder
        self.fusion = fusion or Fusion()
        self.recency = Recency()
        where = "" if chroma_host is None else f"@{chroma_host}_{chroma_port}"
        with storage_errors(data_dir):
            data_dir.mkdir(parents=True, exist_ok=True)
            self.catalog: Catalog
            if database_url:
                from vectorstore.pg_catalog import PostgresCatalog

                self.catalog = PostgresCatalog(database_url, collection)
            else:
                self.catalog = SqliteCatalog(data_dir / f"{collection}{where}.catalog.sqlite3")
            self.vectors = ChromaCollection(
                embedder,
                collection,
                data_dir / "chroma",
                chroma_host,
                chroma_port,
                tenant=chroma_tenant,
                database=chroma_database,
                headers=chroma_headers,
            )
        self._seen_generation = self.catalog.generation()
        self._calibrated: tuple[int, calibration.Table] | None = None
        self._languages: tuple[int, set[str]] | None = None
        self._probe_vectors: dict[str, np.ndarray] | None = None
        # Reopening the embedded client (refresh) must not pull it from under a query of another thread.
        self._client_lock = threading.RLock()

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
        with storage_errors(self.data_dir), self.catalog.write_lock():
            firsts = [part.info for part in parts if part.first]
            known = [info.id for info in firsts if self.catalog.exists(info.id)]
            self.catalog.begin_documents(firsts, writer)
            self.vectors.delete_documents(known)
            stored = self.catalog.written_by(writer, [part.info.id for part in parts])
            kept = [part for part in parts if part.info.id in stored]
            ids, metadatas = [], []
            for part in kept:
                ids += [c.id for c in part.chunks]
                metadatas += [_chunk_metadata(part.info, c) for c in part.chunks]
            if ids:
                self.vectors.add(ids, np.vstack([part.vectors for part in kept]), metadatas)
            complete = {part.info.id for part in kept if part.last}
            self.catalog.add_chunks([(part.info, part.chunks) for part in kept], complete)
        self._seen_generation = self.catalog.generation()
        return stored

    def remove_document(self, document_id: str) -> bool:
        """Delete a document and its chunks; False when there was no such document."""
        with storage_errors(self.data_dir), self.catalog.write_lock():
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
        return not self.catalog.has_documents()

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
        archive (see vectorstore.calibration); fusion subtracts it first. Measured again lazily after
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
        """The k best passages for `query`: dense search and keyword search, fused on one scale across passage
        languages (self.fusion), put in order (self.recency), then read from the catalog."""
        depth = max(30, 4 * k)
        dense = self.dense_search(query, depth, filters)
        query_lang = detect_language(query)
        same_language = bool(self.fusion.same_language) and query_lang in self.languages()
        keywords = self.keyword_search(query, query_lang, depth, filters, same_language, bool(self.fusion.anchors))
        langs = self.catalog.chunk_languages(list({*dense, *keywords.same_language, *keywords.anchors}))
        offsets = self.dense_offsets(query_lang) if dense else {}
        fused = self.fusion.fuse(dense, keywords, langs, offsets)
        dates = self.catalog.chunk_dates(list(fused.scores))  # a chunk Chroma has but the catalog not yet is skipped
        best = self.recency.order(fused, dates, asks_for_recent(query))[:k]
        return self._hits(best, fused, dense, keywords)

    def languages(self) -> set[str]:
        """The archive's document languages, read again after every write. Search asks it so as to skip the
        keyword search in the question's language where no article has it (an English question over French
        news), which at 100,000 chunks cost ~10 ms of matching words in every language to keep none."""
        generation = self.catalog.generation()
        if self._languages is None or self._languages[0] != generation:
            self._languages = (generation, self.catalog.languages())
        return self._languages[1]

    def dense_search(self, query: str, depth: int, filters: SearchFilters | None = None) -> Scores:
        """The `depth` passages nearest to `query` in the embedder's space, by cosine."""
        query_vector = self.embedder.query_vector(query)
        with self._client_lock:
            return dict(self.vectors.query(query_vector, depth, filters))

    def keyword_search(
        self,
        query: str,
        query_lang: str,
        depth: int,
        filters: SearchFilters | None = None,
        same_language: bool = True,
        anchors: bool = True,
    ) -> KeywordScores:
        """BM25 over the catalog, up to `depth` passages each: `same_language`, the question's content words by
        their stems among passages in its language (none when the language is unknown); `anchors`, its names and
        numbers as written, in every language."""
        same: Scores = {}
        words = content_words(query)
        if query_lang and words and same_language:
            same = {cid: score for cid, _, score in self.catalog.keyword_search(words, depth, filters, lang=query_lang)}
        cross: Scores = {}
        names = anchor_words(query)
        if names and anchors:
            cross = {cid: score for cid, _, score in self.catalog.keyword_search(names, depth, filters)}
        return KeywordScores(same, cross)

    def _hits(self, best: list[str], fused: Fused, dense: Scores, keywords: KeywordScores) -> list[Hit]:
        """The chosen passages with their texts and their articles' metadata; scores as shares of the highest
        fused score, 0 to 1."""
        texts = self.catalog.chunk_texts(best)
        docs = self.catalog.document_info(list({document_id for document_id, *_ in texts.values()}))
        keyword_scores = keywords.by_chunk()
        floor = min(dense.values(), default=0.0)
        return [
            self._hit(
                cid,
                texts[cid],
                docs.get(texts[cid][0], {}),
                fused.scores[cid] / self.fusion.most,
                dense.get(cid, floor),
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
