"""The catalog: documents, their chunks and a full-text (BM25) index beside Chroma; `Catalog` is what the store
needs of one, `SqliteCatalog` the embedded default (a SQLite file in the data folder) and
`vectorstore.pg_catalog.PostgresCatalog` the one several hosts share.

It is the store's source of truth for what is completely written: a document is `ready` only after its vectors
are in Chroma, so an interrupted write is redone by the next run. Its `generation` counter tells long-running
processes that another process has written.
"""

from __future__ import annotations

import fcntl
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from text.words import stems
from vectorstore.errors import UserError
from vectorstore.records import ChunkRecord, DocumentInfo, SearchFilters

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT NOT NULL, date_int INTEGER NOT NULL,
    url TEXT NOT NULL, source TEXT NOT NULL, lang TEXT NOT NULL, origin TEXT NOT NULL,
    content_hash TEXT NOT NULL, chunks INTEGER NOT NULL, state TEXT NOT NULL,
    added_at REAL NOT NULL, writer TEXT
);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date_int);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, document_id TEXT NOT NULL, position INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, terms TEXT NOT NULL,
    stems TEXT NOT NULL, sentences TEXT
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    terms, stems, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, terms, stems) VALUES (new.rowid, new.terms, new.stems);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, terms, stems) VALUES ('delete', old.rowid, old.terms, old.stems);
END;
"""

_WORD = re.compile(r"\w+", re.UNICODE)
_GROUPED_NUMBER = re.compile(r"\b\d{1,3}(?:[ \u00a0\u202f,.']\d{3})+\b")


def _add_stems(db: sqlite3.Connection) -> None:
    """Version 1 -> 2: each chunk's Snowball stems in its article's language beside its terms, both indexed,
    for keyword search within the question's language. Stems are computed here as finish_documents does."""
    db.execute("DROP TRIGGER chunks_ai")
    db.execute("DROP TRIGGER chunks_ad")
    db.execute("DROP TABLE chunks_fts")
    db.execute("ALTER TABLE chunks ADD COLUMN stems TEXT NOT NULL DEFAULT ''")
    last = 0
    while rows := db.execute(
        "SELECT c.rowid, c.terms, d.lang FROM chunks c LEFT JOIN documents d ON d.id = c.document_id"
        " WHERE c.rowid > ? ORDER BY c.rowid LIMIT 1000",
        (last,),
    ).fetchall():
        db.executemany(
            "UPDATE chunks SET stems = ? WHERE rowid = ?",
            [(" ".join(stems(terms, lang or "")), rowid) for rowid, terms, lang in rows],
        )
        last = rows[-1][0]
    db.execute(
        "CREATE VIRTUAL TABLE chunks_fts USING fts5("
        "terms, stems, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute(
        "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN"
        " INSERT INTO chunks_fts(rowid, terms, stems) VALUES (new.rowid, new.terms, new.stems); END"
    )
    db.execute(
        "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN"
        " INSERT INTO chunks_fts(chunks_fts, rowid, terms, stems) VALUES ('delete', old.rowid, old.terms, old.stems);"
        " END"
    )
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")


def _add_sentence_spans(db: sqlite3.Connection) -> None:
    """Version 2 -> 3: each chunk's sentence spans (a JSON list of [start, end] pairs into its text). Chunks
    written before stay NULL, and their readers split the text themselves."""
    db.execute("ALTER TABLE chunks ADD COLUMN sentences TEXT")


def _add_writer(db: sqlite3.Connection) -> None:
    """Version 3 -> 4: the writer of a document being written (an article longer than one batch is written over
    several; see vectorstore.store)."""
    db.execute("ALTER TABLE documents ADD COLUMN writer TEXT")


# What turns a catalog of version N into version N + 1, in place; tests/test_catalog_migrations.py runs each on a
# catalog made by version N's own CREATE statements. Version 1, the first, recorded no version (SQLite's
# user_version 0). A change to SCHEMA raises SCHEMA_VERSION and adds its step here: no store is ever refused
# for being old.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _add_stems,
    2: _add_sentence_spans,
    3: _add_writer,
}


StoredChunk = tuple[str, str, int, tuple[tuple[int, int], ...] | None]


def index_terms(text: str) -> str:
    """Text as the keyword index sees it: "10 000", "10,000" and "10.000" all become "10000"."""
    return _GROUPED_NUMBER.sub(lambda m: re.sub(r"\D", "", m.group()), text)


class Catalog(Protocol):
    """What the store needs of a catalog; both implementations pass the same tests (tests/test_store.py and
    tests/test_catalog.py run against each)."""

    def write_lock(self) -> AbstractContextManager[None]:
        """Held around each batch of the write protocol, so that writers of any process never interleave."""
        ...

    def generation(self) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def ready_hash(self, document_id: str) -> str | None: ...
    def ready_with_hash(self, content_hash: str) -> str | None: ...
    def exists(self, document_id: str) -> bool: ...
    def begin_documents(self, infos: list[DocumentInfo], writer: str) -> None: ...
    def written_by(self, writer: str, document_ids: list[str]) -> set[str]: ...
    def add_chunks(self, documents: list[tuple[DocumentInfo, list[ChunkRecord]]], complete: set[str]) -> None: ...
    def remove_document(self, document_id: str) -> bool: ...
    def documents(self, limit: int | None = None, offset: int = 0) -> list[dict[str, object]]: ...
    def count_documents(self) -> int: ...
    def has_documents(self) -> bool: ...
    def source_names(self) -> list[str]: ...
    def count_matching(self, filters: SearchFilters) -> int: ...
    def newest_leads(self, limit: int, filters: SearchFilters | None = None) -> list[tuple[str, StoredChunk]]: ...
    def count_chunks(self) -> int: ...
    def chunk_ids(self) -> set[str]: ...
    def document_info(self, ids: list[str]) -> dict[str, dict[str, object]]: ...
    def keyword_search(
        self, terms: list[str], limit: int, filters: SearchFilters | None = None, lang: str | None = None
    ) -> list[tuple[str, str, float]]: ...
    def chunk_dates(self, chunk_ids: list[str]) -> dict[str, int]: ...
    def chunk_texts(self, chunk_ids: list[str]) -> dict[str, StoredChunk]: ...
    def chunk_languages(self, chunk_ids: list[str]) -> dict[str, str]: ...
    def languages(self) -> set[str]: ...
    def language_sample(self, per_language: int) -> dict[str, list[str]]: ...
    def close(self) -> None: ...


# Keyword search ranks this many times the results it needs inside FTS5 before reading their documents.
PREFETCH = 4


def query_words(terms: list[str], lang: str | None) -> list[str]:
    """The distinct words a keyword search looks for: stems in `lang`, or the exact words without one."""
    text = index_terms(" ".join(terms))
    return list(dict.fromkeys(stems(text, lang) if lang else _WORD.findall(text)))


def filter_sql(filters: SearchFilters | None, placeholder: str = "?") -> tuple[list[str], list[object]]:
    """SQL conditions on documents (aliased `d`) for ready documents that pass the filters, and their values;
    `placeholder` is the driver's parameter mark (sqlite3's `?`, psycopg's `%s`)."""
    where: list[str] = ["d.state = 'ready'"]
    params: list[object] = []
    if filters and filters.since is not None:
        where.append(f"d.date_int >= {placeholder}")
        params.append(filters.since)
    if filters and filters.until is not None:
        where.append(f"d.date_int <= {placeholder}")
        params.append(filters.until)
    if filters and filters.source:
        where.append(f"d.source = {placeholder}")
        params.append(filters.source)
    return where, params


class SqliteCatalog:
    """Documents, chunks and keyword search in one SQLite file (WAL mode, safe for several processes).

    Each thread has its own connection: the bot answers in worker threads while a feed or an upload is written
    in another, and with one shared connection a reader's queries ran inside the writer's open transaction and
    saw rows that might never be committed. With a connection each, WAL gives every read the last committed
    state, and writers queue on SQLite's lock.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._connections_lock = threading.Lock()
        self._use_wal()
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        has_tables = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0
        if has_tables and version != SCHEMA_VERSION:
            self._migrate()
        # One transaction, so that a process opening the file meanwhile never sees tables without their version.
        try:
            self._db.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """A file lock (`write.lock` beside the catalog): writers on this host queue on it."""
        with open(self.path.parent / "write.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _use_wal(self) -> None:
        """WAL is a property of the file: set once, every connection uses it. Switching a new file to it takes
        the file's lock without waiting on SQLite's busy timeout, so several processes opening a new catalog at
        once can see "database is locked": they wait and try again, as the timeout would have."""
        deadline = time.monotonic() + 60
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use; those of threads that have ended are closed then."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._connections_lock:
                for ended in [thread for thread in self._connections if not thread.is_alive()]:
                    self._connections.pop(ended).close()
                self._connections[threading.current_thread()] = db
        return db

    def _migrate(self) -> None:
        """Bring an existing catalog to SCHEMA_VERSION in place, in one transaction (another process may be
        doing the same, so the version is read inside it); a catalog newer than this code is a clear error."""
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0] or 1  # version 1 recorded none
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path} was written by a newer newsdesk (catalog schema {version}; this one reads up to"
                    f" {SCHEMA_VERSION}): upgrade newsdesk to open it"
                )
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections.values():
                db.close()
            self._connections.clear()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def generation(self) -> int:
        """A number that grows with every completed write, from any process."""
        return int(self.get_meta("generation") or 0)

    def ready_hash(self, document_id: str) -> str | None:
        """The content hash of a completely written document, or None when absent or half-written."""
        row = self._db.execute(
            "SELECT content_hash FROM documents WHERE id = ? AND state = 'ready'", (document_id,)
        ).fetchone()
        return row[0] if row else None

    def ready_with_hash(self, content_hash: str) -> str | None:
        """The id of a completely written document with this content, if any (the same article by another path)."""
        row = self._db.execute(
            "SELECT id FROM documents WHERE content_hash = ? AND state = 'ready' LIMIT 1", (content_hash,)
        ).fetchone()
        return row[0] if row else None

    def exists(self, document_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM documents WHERE id = ?", (document_id,)).fetchone() is not None

    def begin_documents(self, infos: list[DocumentInfo], writer: str) -> None:
        """Record the documents' new metadata, mark them as being written by `writer` and drop their old chunks
        (only `ready` documents are searched, so those are already out of sight), so that a crash before
        `add_chunks` completes them is redone next time."""
        rows = [
            (i.id, i.title, i.date, i.date_int, i.url, i.source, i.lang, i.origin, i.content_hash, time.time(), writer)
            for i in infos
        ]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO documents(id, title, date, date_int, url, source, lang, origin, content_hash,"
                " chunks, state, added_at, writer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'writing', ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET title = excluded.title, date = excluded.date,"
                " date_int = excluded.date_int, url = excluded.url, source = excluded.source, lang = excluded.lang,"
                " origin = excluded.origin, content_hash = excluded.content_hash, state = 'writing',"
                " writer = excluded.writer",
                rows,
            )
            db.executemany("DELETE FROM chunks WHERE document_id = ?", [(info.id,) for info in infos])

    def written_by(self, writer: str, document_ids: list[str]) -> set[str]:
        """Those of the documents that are still being written by `writer` (not completed, removed, or begun
        again by another writer since)."""
        if not document_ids:
            return set()
        marks = ",".join("?" * len(document_ids))
        rows = self._db.execute(
            f"SELECT id FROM documents WHERE id IN ({marks}) AND state = 'writing' AND writer = ?",
            [*document_ids, writer],
        )
        return {row[0] for row in rows}

    def add_chunks(self, documents: list[tuple[DocumentInfo, list[ChunkRecord]]], complete: set[str]) -> None:
        """Add chunks to documents being written and mark those in `complete` ready, all in one transaction."""
        rows = []
        for info, chunks in documents:
            for c in chunks:
                terms = index_terms(c.text)
                stemmed = " ".join(stems(terms, info.lang))
                sentences = None if c.sentences is None else json.dumps(c.sentences, separators=(",", ":"))
                rows.append((c.id, info.id, c.position, c.start, c.end, c.text, terms, stemmed, sentences))
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO chunks(id, document_id, position, start, end, text, terms, stems, sentences)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if complete:
                db.executemany(
                    "UPDATE documents SET state = 'ready', writer = NULL, added_at = ?,"
                    " chunks = (SELECT COUNT(*) FROM chunks WHERE document_id = documents.id) WHERE id = ?",
                    [(time.time(), document_id) for document_id in complete],
                )
                self._bump_generation(db)

    def remove_document(self, document_id: str) -> bool:
        with self._transaction() as db:
            db.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            gone = db.execute("DELETE FROM documents WHERE id = ?", (document_id,)).rowcount > 0
            self._bump_generation(db)
        return gone

    @staticmethod
    def _bump_generation(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('generation', '1')"
            " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def documents(self, limit: int | None = None, offset: int = 0) -> list[dict[str, object]]:
        """Ready documents, newest first (by date, then by when they were added)."""
        rows = self._db.execute(
            "SELECT id, title, date, url, source, lang, chunks, origin FROM documents WHERE state = 'ready'"
            " ORDER BY date_int DESC, added_at DESC LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),
        ).fetchall()
        keys = ("id", "title", "date", "url", "source", "lang", "chunks", "origin")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def count_documents(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM documents WHERE state = 'ready'").fetchone()[0]

    def has_documents(self) -> bool:
        """Whether any document is ready; asked before every question, where counting 100,000 took 9 ms."""
        return bool(self._db.execute("SELECT EXISTS (SELECT 1 FROM documents WHERE state = 'ready')").fetchone()[0])

    def source_names(self) -> list[str]:
        """The distinct sources of ready documents (what a --source filter can name)."""
        rows = self._db.execute("SELECT DISTINCT source FROM documents WHERE state = 'ready' AND source != ''")
        return [row[0] for row in rows]

    def count_matching(self, filters: SearchFilters) -> int:
        """How many ready documents the filters let through."""
        where, params = filter_sql(filters)
        return self._db.execute(f"SELECT COUNT(*) FROM documents d WHERE {' AND '.join(where)}", params).fetchone()[0]

    def newest_leads(self, limit: int, filters: SearchFilters | None = None) -> list[tuple[str, StoredChunk]]:
        """(chunk id, (document id, text, position, sentence spans or None)) of the first chunk of the `limit`
        newest ready documents."""
        where, params = filter_sql(filters)
        rows = self._db.execute(
            "SELECT c.id, c.document_id, c.text, c.position, c.sentences FROM documents d"
            " JOIN chunks c ON c.document_id = d.id AND c.position = 0"
            f" WHERE {' AND '.join(where)} ORDER BY d.date_int DESC, d.added_at DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [(r[0], (r[1], r[2], r[3], _spans(r[4]))) for r in rows]

    def count_chunks(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def chunk_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT id FROM chunks")}

    def document_info(self, ids: list[str]) -> dict[str, dict[str, object]]:
        """Metadata of the given documents, by id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT id, title, date, date_int, url, source, lang FROM documents WHERE id IN ({marks})", ids
        ).fetchall()
        keys = ("id", "title", "date", "date_int", "url", "source", "lang")
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}

    def keyword_search(
        self, terms: list[str], limit: int, filters: SearchFilters | None = None, lang: str | None = None
    ) -> list[tuple[str, str, float]]:
        """BM25 over chunk text: (chunk id, document id, score >= 0, higher is better) for any of `terms`.

        With `lang`, only documents in that language are searched, by their stems; without, by exact words
        (for names and numbers, which read the same across languages).

        Why in two steps: joining every matching chunk to its document before ranking took ~10 ms per question
        at 100,000 chunks, where common words match most of them. So the best `PREFETCH` x `limit` matches are
        ranked inside FTS5 first and only those joined and filtered; when fewer than `limit` pass and there were
        more matches, the whole join runs (the result is the same either way: a passing chunk outside the
        prefetched ones ranks below all of them).
        """
        words = query_words(terms, lang)
        if not words:
            return []
        column = "stems" if lang else "terms"
        match = f"{{{column}}} : (" + " OR ".join('"' + w.replace('"', "") + '"' for w in words) + ")"
        where, params = filter_sql(filters)
        if lang:
            where.append("d.lang = ?")
            params.append(lang)
        ranked = self._db.execute(
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
            " ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, PREFETCH * limit),
        ).fetchall()
        if not ranked:
            return []
        scores = dict(ranked)
        marks = ",".join("?" * len(ranked))
        found = self._db.execute(
            "SELECT c.rowid, c.id, c.document_id FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE c.rowid IN ({marks}) AND {' AND '.join(where)}",
            [*scores, *params],
        ).fetchall()
        rows = sorted(((cid, doc, scores[rowid]) for rowid, cid, doc in found), key=lambda r: -r[2])[:limit]
        if len(rows) < limit and len(ranked) == PREFETCH * limit:  # the prefetched ones were not enough
            where.insert(0, "chunks_fts MATCH ?")
            rows = self._db.execute(
                "SELECT c.id, c.document_id, -bm25(chunks_fts) FROM chunks_fts"
                " JOIN chunks c ON c.rowid = chunks_fts.rowid JOIN documents d ON d.id = c.document_id"
                f" WHERE {' AND '.join(where)} ORDER BY bm25(chunks_fts) LIMIT ?",
                [match, *params, limit],
            ).fetchall()
        return [(r[0], r[1], float(r[2])) for r in rows]

    def chunk_dates(self, chunk_ids: list[str]) -> dict[str, int]:
        """The date (YYYYMMDD, 0 when unknown) of each given chunk's document, for chunks of completely written
        documents: while a document is rewritten its old chunks are still here under its new title."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db.execute(
            f"SELECT chunks.id, documents.date_int FROM chunks JOIN documents ON documents.id = chunks.document_id"
            f" WHERE chunks.id IN ({marks}) AND documents.state = 'ready'",
            chunk_ids,
        ).fetchall()
        return {cid: int(date_int or 0) for cid, date_int in rows}

    def chunk_texts(self, chunk_ids: list[str]) -> dict[str, StoredChunk]:
        """(document id, text, position, sentence spans or None) of the given chunks, by chunk id."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db.execute(
            f"SELECT id, document_id, text, position, sentences FROM chunks WHERE id IN ({marks})", chunk_ids
        ).fetchall()
        return {r[0]: (r[1], r[2], r[3], _spans(r[4])) for r in rows}

    def chunk_languages(self, chunk_ids: list[str]) -> dict[str, str]:
        """The language of each given chunk's document, for chunks the catalog holds."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db.execute(
            f"SELECT chunks.id, documents.lang FROM chunks JOIN documents ON documents.id = chunks.document_id"
            f" WHERE chunks.id IN ({marks})",
            chunk_ids,
        ).fetchall()
        return dict(rows)

    def language_sample(self, per_language: int) -> dict[str, list[str]]:
        """For each document language, the first chunk of up to `per_language` ready documents: those first by
        content hash, which spreads them over the archive, stays the same between calls, and walks an index
        (~1 ms per language at 50k documents; ordering chunks by id instead took ~1.5 s)."""
        return {
            lang: [
                row[0]
                for row in self._db.execute(
                    "SELECT c.id FROM documents d JOIN chunks c ON c.document_id = d.id AND c.position = 0"
                    " WHERE d.lang = ? AND d.state = 'ready' ORDER BY d.content_hash LIMIT ?",
                    (lang, per_language),
                )
            ]
            for lang in self.languages()
        }

    def languages(self) -> set[str]:
        """The languages of the ready documents."""
        return {row[0] for row in self._db.execute("SELECT DISTINCT lang FROM documents WHERE state = 'ready'")}


def _spans(stored: str | None) -> tuple[tuple[int, int], ...] | None:
    return None if stored is None else tuple((start, end) for start, end in json.loads(stored))
