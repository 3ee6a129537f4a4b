"""The catalog's CREATE statements as each older version of newsdesk ran them, verbatim from git history: the
stores that vectorstore/catalog.py's MIGRATIONS must upgrade."""

# Version 1 (commit 7d58108), the first: no stems, and no version recorded (SQLite's user_version stays 0).
SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT NOT NULL, date_int INTEGER NOT NULL,
    url TEXT NOT NULL, source TEXT NOT NULL, lang TEXT NOT NULL, origin TEXT NOT NULL,
    content_hash TEXT NOT NULL, chunks INTEGER NOT NULL, state TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date_int);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, document_id TEXT NOT NULL, position INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, terms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    terms, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, terms) VALUES (new.rowid, new.terms);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, terms) VALUES ('delete', old.rowid, old.terms);
END;
"""

# Version 2 (commit 38c674c): Snowball stems beside the terms, both indexed; the version recorded.
SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT NOT NULL, date_int INTEGER NOT NULL,
    url TEXT NOT NULL, source TEXT NOT NULL, lang TEXT NOT NULL, origin TEXT NOT NULL,
    content_hash TEXT NOT NULL, chunks INTEGER NOT NULL, state TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date_int);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, document_id TEXT NOT NULL, position INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, terms TEXT NOT NULL,
    stems TEXT NOT NULL
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
PRAGMA user_version = 2;
"""

SCHEMA_3 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT NOT NULL, date_int INTEGER NOT NULL,
    url TEXT NOT NULL, source TEXT NOT NULL, lang TEXT NOT NULL, origin TEXT NOT NULL,
    content_hash TEXT NOT NULL, chunks INTEGER NOT NULL, state TEXT NOT NULL,
    added_at REAL NOT NULL
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
PRAGMA user_version = 3;
"""

# By version: what a catalog of that version was made with.
CREATE_STATEMENTS = {1: SCHEMA_1, 2: SCHEMA_2, 3: SCHEMA_3}
