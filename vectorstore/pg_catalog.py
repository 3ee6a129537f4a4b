"""The catalog in PostgreSQL (`NEWSDESK_DATABASE_URL`): one archive for bot replicas and ingest workers on
several hosts.

Same tables and write protocol as the SQLite catalog, and the same keyword ranking: chunks are tokenized by
SQLite's own FTS5 tokenizer (vectorstore/fts_tokens.py), each token's count per chunk and column is kept in a
postings table, the row count and token total in a one-row table, and keyword_search computes FTS5's bm25()
from them (same k1 and b, same IDF floor, document length over both columns, document frequency within the
searched column, every chunk counted whatever its state). Writers serialise on an advisory lock, so writers on
any host queue as those of one host do on the file lock. Tables are prefixed with the collection's name, so
several collections share a database as they share a data folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from text.words import stems
from vectorstore.catalog import StoredChunk, filter_sql, index_terms, query_words
from vectorstore.database import connect, lost
from vectorstore.errors import UserError
from vectorstore.fts_tokens import K1, B, phrase_tokens, row_terms
from vectorstore.records import ChunkRecord, DocumentInfo, SearchFilters

if TYPE_CHECKING:
    import psycopg

# The version of the tables below. A change raises it and adds the step that upgrades a database in place, as
# vectorstore.catalog.MIGRATIONS does for SQLite; a database written by a newer newsdesk is refused.
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {documents} (
    id text PRIMARY KEY, title text NOT NULL, date text NOT NULL, date_int bigint NOT NULL,
    url text NOT NULL, source text NOT NULL, lang text NOT NULL, origin text NOT NULL,
    content_hash text NOT NULL, chunks integer NOT NULL, state text NOT NULL,
    added_at double precision NOT NULL, writer text
);
CREATE INDEX IF NOT EXISTS {documents_date} ON {documents}(date_int);
CREATE INDEX IF NOT EXISTS {documents_hash} ON {documents}(content_hash);
CREATE TABLE IF NOT EXISTS {chunks} (
    row_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text UNIQUE NOT NULL, document_id text NOT NULL,
    position integer NOT NULL, start_at integer NOT NULL, end_at integer NOT NULL, text text NOT NULL,
    sentences text, length integer NOT NULL
);
CREATE INDEX IF NOT EXISTS {chunks_document} ON {chunks}(document_id);
CREATE TABLE IF NOT EXISTS {postings} (
    col smallint NOT NULL, term text NOT NULL,
    chunk bigint NOT NULL REFERENCES {chunks}(row_id) ON DELETE CASCADE, freq integer NOT NULL,
    PRIMARY KEY (col, term, chunk)
);
CREATE INDEX IF NOT EXISTS {postings_chunk} ON {postings}(chunk);
CREATE TABLE IF NOT EXISTS {totals} (
    single boolean PRIMARY KEY DEFAULT true CHECK (single), chunks bigint NOT NULL, tokens bigint NOT NULL
);
INSERT INTO {totals}(single, chunks, tokens) VALUES (true, 0, 0) ON CONFLICT DO NOTHING;
"""
TABLES = ("meta", "documents", "documents_date", "documents_hash", "chunks", "chunks_document", "postings",
          "postings_chunk", "totals")  # fmt: skip

COLUMNS = {"terms": 0, "stems": 1}


def table_prefix(collection: str) -> str:
    """The collection's name as a prefix of table names, within PostgreSQL's 63 bytes (long names are cut and
    told apart by a hash)."""
    if len(collection.encode()) <= 40:
        return collection
    return collection.encode()[:24].decode(errors="ignore") + "_" + hashlib.sha1(collection.encode()).hexdigest()[:12]


class PostgresCatalog:
    """Documents, chunks and keyword search in PostgreSQL. Each thread has its own connection (autocommit; a
    write is one explicit transaction), as with SQLite: a reader never runs inside a writer's transaction."""

    def __init__(self, url: str, collection: str) -> None:
        from psycopg import sql

        self.url = url
        prefix = table_prefix(collection)
        self._tables = {name: f"{prefix}_{name}" for name in TABLES}
        self._names = {name: sql.Identifier(table) for name, table in self._tables.items()}
        self._lock_name = f"newsdesk write {prefix}"
        self._queries: dict[str, Any] = {}
        self._local = threading.local()
        self._connections: dict[threading.Thread, psycopg.Connection] = {}
        self._connections_lock = threading.Lock()
        self._create()

    def table(self, name: str) -> str:
        """The quoted name of one of this catalog's tables (`documents`, `chunks`...), for SQL of one's own."""
        return '"' + self._tables[name].replace('"', '""') + '"'

    def _sql(self, text: str) -> Any:
        """`text` with {table} names filled in, composed once."""
        query = self._queries.get(text)
        if query is None:
            from psycopg import sql

            query = self._queries[text] = sql.SQL(text).format(**self._names)  # type: ignore[arg-type]
        return query

    def _run(self, text: str, params: object = None, db: psycopg.Connection | None = None) -> psycopg.Cursor:
        """Run one statement; a database that went away is DatabaseUnavailable (a StoreUnavailable: the bot says
        "try again later", and the next statement reconnects)."""
        from psycopg import OperationalError

        try:
            return (db or self._db).execute(self._sql(text), params)  # type: ignore[arg-type]
        except OperationalError as exc:
            raise lost(self.url, exc) from exc

    @property
    def _db(self) -> psycopg.Connection:
        """This thread's connection, opened on first use and again after it broke (a database restart)."""
        db: psycopg.Connection | None = getattr(self._local, "db", None)
        if db is None or db.closed or db.broken:
            db = connect(self.url)
            self._local.db = db
            with self._connections_lock:
                for ended in [thread for thread in self._connections if not thread.is_alive()]:
                    self._connections.pop(ended).close()
                self._connections[threading.current_thread()] = db
        return db

    def _create(self) -> None:
        """Create the tables, or check the version of those there; under a transaction-wide advisory lock, as
        several processes may open a new database at once."""
        with self._transaction() as db:
            self._run("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || %s, 0))",
                      (f"{self._lock_name} schema",), db)  # fmt: skip
            self._run(SCHEMA, None, db)
            row = self._run("SELECT value FROM {meta} WHERE key = 'schema_version'", None, db).fetchone()
            version = int(row[0]) if row else SCHEMA_VERSION
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"the catalog tables {self._tables['meta']} were written by a newer newsdesk (schema"
                    f" {version}; this one reads up to {SCHEMA_VERSION}): upgrade newsdesk to open them"
                )
            self._run(
                "INSERT INTO {meta}(key, value) VALUES ('schema_version', %s) ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
                db,
            )

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections.values():
                db.close()
            self._connections.clear()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        from psycopg import OperationalError

        db = self._db
        try:
            with db.transaction():
                yield db
        except OperationalError as exc:
            raise lost(self.url, exc) from exc

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """A session advisory lock named after the schema and collection: writers on every host queue on it; a
        writer that dies (SIGKILL, lost host) loses its connection and so the lock."""
        db = self._db
        self._run("SELECT pg_advisory_lock(hashtextextended(current_schema() || %s, 0))", (self._lock_name,), db)
        try:
            yield
        finally:
            if not db.closed and not db.broken:
                self._run("SELECT pg_advisory_unlock(hashtextextended(current_schema() || %s, 0))",
                          (self._lock_name,), db)  # fmt: skip

    def get_meta(self, key: str) -> str | None:
        row = self._run("SELECT value FROM {meta} WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._run(
            "INSERT INTO {meta}(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def generation(self) -> int:
        """A number that grows with every completed write, from any process on any host."""
        return int(self.get_meta("generation") or 0)

    def ready_hash(self, document_id: str) -> str | None:
        row = self._run(
            "SELECT content_hash FROM {documents} WHERE id = %s AND state = 'ready'", (document_id,)
        ).fetchone()
        return row[0] if row else None

    def ready_with_hash(self, content_hash: str) -> str | None:
        row = self._run(
            "SELECT id FROM {documents} WHERE content_hash = %s AND state = 'ready' LIMIT 1", (content_hash,)
        ).fetchone()
        return row[0] if row else None

    def exists(self, document_id: str) -> bool:
        return self._run("SELECT 1 FROM {documents} WHERE id = %s", (document_id,)).fetchone() is not None

    def begin_documents(self, infos: list[DocumentInfo], writer: str) -> None:
        """See SqliteCatalog.begin_documents."""
        rows = [
            (i.id, i.title, i.date, i.date_int, i.url, i.source, i.lang, i.origin, i.content_hash, time.time(), writer)
            for i in infos
        ]
        with self._transaction() as db:
            db.cursor().executemany(
                self._sql(
                    "INSERT INTO {documents}(id, title, date, date_int, url, source, lang, origin, content_hash,"
                    " chunks, state, added_at, writer)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 'writing', %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET title = excluded.title, date = excluded.date,"
                    " date_int = excluded.date_int, url = excluded.url, source = excluded.source,"
                    " lang = excluded.lang, origin = excluded.origin, content_hash = excluded.content_hash,"
                    " state = 'writing', writer = excluded.writer"
                ),
                rows,
            )
            self._drop_chunks(db, [info.id for info in infos])

    def _drop_chunks(self, db: psycopg.Connection, document_ids: list[str]) -> None:
        """Delete the documents' chunks (their postings go with them) and take them out of the totals."""
        self._run(
            "WITH gone AS (DELETE FROM {chunks} WHERE document_id = ANY(%s) RETURNING length)"
            " UPDATE {totals} SET chunks = chunks - (SELECT COUNT(*) FROM gone),"
            " tokens = tokens - (SELECT COALESCE(SUM(length), 0) FROM gone)",
            (document_ids,),
            db,
        )

    def written_by(self, writer: str, document_ids: list[str]) -> set[str]:
        if not document_ids:
            return set()
        rows = self._run(
            "SELECT id FROM {documents} WHERE id = ANY(%s) AND state = 'writing' AND writer = %s",
            (document_ids, writer),
        )
        return {row[0] for row in rows}

    def add_chunks(self, documents: list[tuple[DocumentInfo, list[ChunkRecord]]], complete: set[str]) -> None:
        """Add chunks (with their postings) to documents being written and mark those in `complete` ready, all in
        one transaction."""
        chunks = [(info, c) for info, records in documents for c in records]
        indexed = row_terms([(terms := index_terms(c.text), " ".join(stems(terms, info.lang))) for info, c in chunks])
        columns: tuple[list[Any], ...] = tuple([] for _ in range(8))
        for (info, c), (length, _) in zip(chunks, indexed, strict=True):
            sentences = None if c.sentences is None else json.dumps(c.sentences, separators=(",", ":"))
            for column, value in zip(columns, (c.id, info.id, c.position, c.start, c.end, c.text, sentences, length),
                                     strict=True):  # fmt: skip
                column.append(value)
        with self._transaction() as db:
            row_ids = dict(
                self._run(
                    "INSERT INTO {chunks}(id, document_id, position, start_at, end_at, text, sentences, length)"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::int[], %s::int[], %s::text[],"
                    " %s::text[], %s::int[]) RETURNING id, row_id",
                    columns,
                    db,
                ).fetchall()
            )
            postings: tuple[list[Any], ...] = ([], [], [], [])
            for (_, c), (_, counts) in zip(chunks, indexed, strict=True):
                for (column, term), freq in counts.items():
                    for values, value in zip(postings, (column, term, row_ids[c.id], freq), strict=True):
                        values.append(value)
            self._run(
                "INSERT INTO {postings}(col, term, chunk, freq)"
                " SELECT * FROM unnest(%s::smallint[], %s::text[], %s::bigint[], %s::int[])",
                postings,
                db,
            )
            self._run(
                "UPDATE {totals} SET chunks = chunks + %s, tokens = tokens + %s",
                (len(chunks), sum(length for length, _ in indexed)),
                db,
            )
            if complete:
                self._run(
                    "UPDATE {documents} SET state = 'ready', writer = NULL, added_at = %s,"
                    " chunks = (SELECT COUNT(*) FROM {chunks} c WHERE c.document_id = {documents}.id)"
                    " WHERE id = ANY(%s)",
                    (time.time(), list(complete)),
                    db,
                )
                self._bump_generation(db)

    def remove_document(self, document_id: str) -> bool:
        with self._transaction() as db:
            self._drop_chunks(db, [document_id])
            gone = self._run("DELETE FROM {documents} WHERE id = %s", (document_id,), db).rowcount > 0
            self._bump_generation(db)
        return gone

    def _bump_generation(self, db: psycopg.Connection) -> None:
        self._run(
            "INSERT INTO {meta}(key, value) VALUES ('generation', '1')"
            " ON CONFLICT (key) DO UPDATE SET value = ({meta}.value::bigint + 1)::text",
            None,
            db,
        )

    def documents(self, limit: int | None = None, offset: int = 0) -> list[dict[str, object]]:
        rows = self._run(
            "SELECT id, title, date, url, source, lang, chunks, origin FROM {documents} WHERE state = 'ready'"
            " ORDER BY date_int DESC, added_at DESC LIMIT %s OFFSET %s",
            (limit, offset),
        ).fetchall()
        keys = ("id", "title", "date", "url", "source", "lang", "chunks", "origin")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def count_documents(self) -> int:
        return self._run("SELECT COUNT(*) FROM {documents} WHERE state = 'ready'").fetchone()[0]  # type: ignore[index]

    def has_documents(self) -> bool:
        """Whether any document is ready, without counting them (asked before every question)."""
        found = self._run("SELECT EXISTS (SELECT 1 FROM {documents} WHERE state = 'ready')").fetchone()
        return bool(found and found[0])

    def source_names(self) -> list[str]:
        rows = self._run("SELECT DISTINCT source FROM {documents} WHERE state = 'ready' AND source != ''")
        return [row[0] for row in rows]

    def count_matching(self, filters: SearchFilters) -> int:
        where, params = filter_sql(filters, "%s")
        query = f"SELECT COUNT(*) FROM {{documents}} d WHERE {' AND '.join(where)}"
        return self._run(query, params).fetchone()[0]  # type: ignore[index]

    def newest_leads(self, limit: int, filters: SearchFilters | None = None) -> list[tuple[str, StoredChunk]]:
        where, params = filter_sql(filters, "%s")
        rows = self._run(
            "SELECT c.id, c.document_id, c.text, c.position, c.sentences FROM {documents} d"
            " JOIN {chunks} c ON c.document_id = d.id AND c.position = 0"
            f" WHERE {' AND '.join(where)} ORDER BY d.date_int DESC, d.added_at DESC LIMIT %s",
            [*params, limit],
        ).fetchall()
        return [(r[0], (r[1], r[2], r[3], _spans(r[4]))) for r in rows]

    def count_chunks(self) -> int:
        return self._run("SELECT COUNT(*) FROM {chunks}").fetchone()[0]  # type: ignore[index]

    def chunk_ids(self) -> set[str]:
        return {row[0] for row in self._run("SELECT id FROM {chunks}")}

    def document_info(self, ids: list[str]) -> dict[str, dict[str, object]]:
        if not ids:
            return {}
        rows = self._run(
            "SELECT id, title, date, date_int, url, source, lang FROM {documents} WHERE id = ANY(%s)", (ids,)
        ).fetchall()
        keys = ("id", "title", "date", "date_int", "url", "source", "lang")
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}

    def keyword_search(
        self, terms: list[str], limit: int, filters: SearchFilters | None = None, lang: str | None = None
    ) -> list[tuple[str, str, float]]:
        """BM25 as the SQLite catalog's FTS5 bm25() computes it (see the module): (chunk id, document id, score)
        for any of `terms`, best first; with `lang`, by stems among documents in that language.

        Each query word is one FTS5 phrase; a word that the tokenizer cuts into several tokens (only words with
        an underscore) counts here as its tokens anywhere in the chunk, where FTS5 wants them adjacent."""
        phrases = phrase_tokens([word.replace('"', "") for word in query_words(terms, lang)])
        # A token that several query words share counts once per word, as a repeated phrase does in FTS5.
        weights: dict[str, int] = {}
        for token in (token for tokens in phrases for token in tokens):
            weights[token] = weights.get(token, 0) + 1
        if not weights:
            return []
        column = COLUMNS["stems" if lang else "terms"]
        chunks, tokens = self._run("SELECT chunks, tokens FROM {totals}").fetchone()  # type: ignore[misc]
        if not chunks:
            return []
        found = self._run(
            "SELECT term, COUNT(*) FROM {postings} WHERE col = %s AND term = ANY(%s) GROUP BY term",
            (column, list(weights)),
        ).fetchall()
        # FTS5 floors a negative IDF (a term in more than half the chunks) at 1e-6.
        idf = {term: max(math.log((chunks - hits + 0.5) / (hits + 0.5)), 0.0) or 1e-6 for term, hits in found}
        if not idf:
            return []
        where, params = filter_sql(filters, "%s")
        if lang:
            where.append("d.lang = %s")
            params.append(lang)
        query_terms = list(idf)
        rows = self._run(
            "WITH q(term, weight) AS (SELECT * FROM unnest(%s::text[], %s::float8[]))"
            " SELECT c.id, c.document_id, SUM(q.weight * p.freq * %s"
            "   / (p.freq + %s * (1 - %s + %s * c.length / %s))) AS score"
            " FROM q JOIN {postings} p ON p.col = %s AND p.term = q.term"
            " JOIN {chunks} c ON c.row_id = p.chunk JOIN {documents} d ON d.id = c.document_id"
            f" WHERE {' AND '.join(where)} GROUP BY c.row_id ORDER BY score DESC, c.row_id LIMIT %s",
            [
                query_terms,
                [weights[term] * idf[term] for term in query_terms],
                K1 + 1,
                K1,
                B,
                B,
                tokens / chunks,
                column,
                *params,
                limit,
            ],
        ).fetchall()
        return [(r[0], r[1], float(r[2])) for r in rows]

    def chunk_dates(self, chunk_ids: list[str]) -> dict[str, int]:
        if not chunk_ids:
            return {}
        rows = self._run(
            "SELECT c.id, d.date_int FROM {chunks} c JOIN {documents} d ON d.id = c.document_id"
            " WHERE c.id = ANY(%s) AND d.state = 'ready'",
            (chunk_ids,),
        ).fetchall()
        return {cid: int(date_int or 0) for cid, date_int in rows}

    def chunk_texts(self, chunk_ids: list[str]) -> dict[str, StoredChunk]:
        if not chunk_ids:
            return {}
        rows = self._run(
            "SELECT id, document_id, text, position, sentences FROM {chunks} WHERE id = ANY(%s)", (chunk_ids,)
        ).fetchall()
        return {r[0]: (r[1], r[2], r[3], _spans(r[4])) for r in rows}

    def chunk_languages(self, chunk_ids: list[str]) -> dict[str, str]:
        if not chunk_ids:
            return {}
        rows = self._run(
            "SELECT c.id, d.lang FROM {chunks} c JOIN {documents} d ON d.id = c.document_id WHERE c.id = ANY(%s)",
            (chunk_ids,),
        ).fetchall()
        return dict(rows)  # type: ignore[arg-type]

    def language_sample(self, per_language: int) -> dict[str, list[str]]:
        return {
            lang: [
                row[0]
                for row in self._run(
                    "SELECT c.id FROM {documents} d JOIN {chunks} c ON c.document_id = d.id AND c.position = 0"
                    " WHERE d.lang = %s AND d.state = 'ready' ORDER BY d.content_hash LIMIT %s",
                    (lang, per_language),
                )
            ]
            for lang in self.languages()
        }

    def languages(self) -> set[str]:
        return {row[0] for row in self._run("SELECT DISTINCT lang FROM {documents} WHERE state = 'ready'")}


def _spans(stored: str | None) -> tuple[tuple[int, int], ...] | None:
    return None if stored is None else tuple((start, end) for start, end in json.loads(stored))
