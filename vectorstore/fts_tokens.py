"""Text as the SQLite catalog's FTS5 index tokenizes it, for the keyword index kept in PostgreSQL.

The tokens come from SQLite's own tokenizer (an in-memory FTS5 table read through `fts5vocab`), not from a copy
of its rules: case folding, diacritics and which characters split words are then exactly FTS5's, so BM25
computed from these terms ranks passages as the SQLite catalog's bm25() does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

# The tokenizer of the SQLite catalog's chunks_fts (vectorstore/catalog.py SCHEMA; a test keeps them equal).
TOKENIZER = "unicode61 remove_diacritics 2"
# FTS5's bm25() constants (sqlite/ext/fts5/fts5_aux.c).
K1 = 1.2
B = 0.75

_local = threading.local()


def _tokenizer() -> sqlite3.Connection:
    """This thread's in-memory FTS5 table (two columns, as chunks_fts has) and its instance view."""
    db: sqlite3.Connection | None = getattr(_local, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute(f"CREATE VIRTUAL TABLE tokens USING fts5(terms, stems, tokenize='{TOKENIZER}')")
        db.execute("CREATE VIRTUAL TABLE instances USING fts5vocab(tokens, 'instance')")
        _local.db = db
    return db


def row_terms(rows: list[tuple[str, str]]) -> list[tuple[int, Counter[tuple[int, str]]]]:
    """For each (terms, stems) row: its length in tokens over both columns (FTS5's document length) and how often
    each (column, token) occurs in it, column 0 for terms and 1 for stems."""
    db = _tokenizer()
    db.execute("BEGIN")
    try:
        numbered = [(number, *row) for number, row in enumerate(rows)]
        db.executemany("INSERT INTO tokens(rowid, terms, stems) VALUES (?, ?, ?)", numbered)
        counts: list[Counter[tuple[int, str]]] = [Counter() for _ in rows]
        for doc, column, term in db.execute("SELECT doc, col, term FROM instances"):
            counts[doc][(0 if column == "terms" else 1, term)] += 1
    finally:
        db.execute("ROLLBACK")
    return [(sum(count.values()), count) for count in counts]


def phrase_tokens(phrases: list[str]) -> list[list[str]]:
    """The tokens of each quoted phrase of an FTS5 query, in order."""
    db = _tokenizer()
    db.execute("BEGIN")
    try:
        db.executemany("INSERT INTO tokens(rowid, terms, stems) VALUES (?, ?, '')", list(enumerate(phrases)))
        tokens: list[list[tuple[int, str]]] = [[] for _ in phrases]
        for doc, offset, term in db.execute("SELECT doc, offset, term FROM instances"):
            tokens[doc].append((offset, term))
    finally:
        db.execute("ROLLBACK")
    return [[term for _, term in sorted(found)] for found in tokens]
