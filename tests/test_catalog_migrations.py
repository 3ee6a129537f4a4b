"""Catalog schema migrations: a store made by any older version of newsdesk is upgraded in place and keeps
working, each migration is checked from a catalog made by its version's own CREATE statements, a store newer
than the code is a one-line error (never a request to ingest again), and a new catalog is never mistaken for an
old one."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsdesk.cli import cli
from tests.old_catalogs import CREATE_STATEMENTS
from text.words import stems
from vectorstore.catalog import MIGRATIONS, SCHEMA_VERSION, SqliteCatalog, index_terms
from vectorstore.errors import UserError
from vectorstore.records import ChunkRecord, DocumentInfo

# (id, lang, text) of the articles an old catalog holds, one chunk each.
ARTICLES = [
    ("greve", "fr", "Les trains ont été supprimés par la grève des cheminots. Dmitri Peskov n'a rien dit."),
    ("rain", "en", "Heavy rain flooded Brennock on Tuesday, and 10,000 homes lost power."),
]


def old_catalog(path: Path, version: int) -> None:
    """A catalog file made by `version`'s CREATE statements, holding ARTICLES as that version wrote them."""
    db = sqlite3.connect(path)
    db.executescript(CREATE_STATEMENTS[version])
    for article_id, lang, text in ARTICLES:
        db.execute(
            "INSERT INTO documents VALUES (?, ?, '2024-06-02', 20240602, '', 'Agence A', ?, '', ?, 1, 'ready', 0)",
            (article_id, article_id.title(), lang, f"hash-{article_id}"),
        )
        terms = index_terms(text)
        row = {"id": f"{article_id}-0", "document_id": article_id, "position": 0, "start": 0, "end": len(text)}
        row |= {"text": text, "terms": terms}
        if version >= 2:
            row["stems"] = " ".join(stems(terms, lang))
        db.execute(f"INSERT INTO chunks({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    db.commit()
    db.close()


def structure(db: sqlite3.Connection) -> dict[str, object]:
    """What a catalog's schema is made of: each table's columns (name, type, not null, primary key) and each
    index's, trigger's and virtual table's statement (without its spacing or IF NOT EXISTS)."""
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    statements = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') OR sql LIKE"
        " 'CREATE VIRTUAL%' ORDER BY name"
    ).fetchall()
    return {
        "columns": {name: [row[1:4] + row[5:] for row in db.execute(f"PRAGMA table_info({name})")] for name in tables},
        "statements": {name: re.sub(r"\s+|IF NOT EXISTS", "", sql or "") for name, sql in statements},
    }


def test_every_older_version_has_its_migration_and_its_create_statements() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION)), "a new SCHEMA_VERSION needs its migration"
    assert sorted(CREATE_STATEMENTS) == sorted(MIGRATIONS), "and the CREATE statements it migrates from"


@pytest.mark.parametrize("version", sorted(MIGRATIONS))
def test_each_migration_makes_the_next_version_of_the_catalog(tmp_path: Path, version: int) -> None:
    old_catalog(tmp_path / "old.sqlite3", version)
    db = sqlite3.connect(tmp_path / "old.sqlite3", isolation_level=None)
    db.execute("BEGIN")
    MIGRATIONS[version](db)
    db.execute("COMMIT")
    if version + 1 < SCHEMA_VERSION:
        old_catalog(tmp_path / "next.sqlite3", version + 1)
    else:
        SqliteCatalog(tmp_path / "next.sqlite3").close()
    assert structure(db) == structure(sqlite3.connect(tmp_path / "next.sqlite3"))


@pytest.mark.parametrize("version", sorted(MIGRATIONS))
def test_a_catalog_of_every_older_version_is_upgraded_in_place_and_keeps_working(tmp_path: Path, version: int) -> None:
    path = tmp_path / "articles.catalog.sqlite3"
    old_catalog(path, version)
    catalog = SqliteCatalog(path)
    assert catalog._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert catalog.count_documents() == 2
    assert catalog.chunk_texts(["greve-0"]) == {"greve-0": ("greve", ARTICLES[0][2], 0, None)}, "no spans: split"
    assert [cid for cid, *_ in catalog.keyword_search(["supprimé"], 5, lang="fr")] == ["greve-0"], "French stems"
    assert catalog.keyword_search(["supprimé"], 5, lang="en") == []
    assert {cid for cid, *_ in catalog.keyword_search(["Peskov", "10000"], 5)} == {"greve-0", "rain-0"}, "anchors"

    info = DocumentInfo("storm", "Storm", "hash-storm", lang="en")
    catalog.begin_documents([info], "a test")
    storm = ChunkRecord("storm-0", 0, "Storms flooded Brennock again.", 0, 30, ((0, 30),))
    catalog.add_chunks([(info, [storm])], complete={"storm"})
    assert {cid for cid, *_ in catalog.keyword_search(["flooding"], 5, lang="en")} == {"rain-0", "storm-0"}
    assert catalog.remove_document("rain")
    assert [cid for cid, *_ in catalog.keyword_search(["flooding"], 5, lang="en")] == ["storm-0"], "index follows"
    assert catalog.chunk_texts(["storm-0"])["storm-0"][3] == ((0, 30),)
    catalog.close()
    assert SqliteCatalog(path).count_documents() == 2, "opening again changes nothing"


def test_a_catalog_newer_than_this_newsdesk_is_a_one_line_error(data_dir: Path) -> None:
    path = data_dir / "articles.catalog.sqlite3"
    data_dir.mkdir(parents=True)
    SqliteCatalog(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(UserError) as raised:
        SqliteCatalog(path)
    expected = (
        f"{path} was written by a newer newsdesk (catalog schema {SCHEMA_VERSION + 1}; this one reads up to"
        f" {SCHEMA_VERSION}): upgrade newsdesk to open it"
    )
    assert str(raised.value) == expected
    result = CliRunner().invoke(cli, ["sources"])
    assert (result.exit_code, result.output) == (1, f"Error: {expected}\n")
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1, "left alone"


def test_a_new_catalog_opened_by_several_at_once_is_never_taken_for_an_old_one(tmp_path: Path) -> None:
    """The tables and their version are written in one transaction: an opener that saw tables without a version
    would take the new catalog for version 1 and try to migrate it."""
    failures: list[Exception] = []

    def open_catalog(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            SqliteCatalog(path).close()
        except Exception as exc:
            failures.append(exc)

    for attempt in range(100):
        start = threading.Barrier(6)
        path = tmp_path / f"{attempt}.sqlite3"
        openers = [threading.Thread(target=open_catalog, args=(path, start)) for _ in range(6)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failures == []
