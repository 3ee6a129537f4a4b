"""The catalog's two implementations (SQLite file, PostgreSQL) behave alike: the same tests run against each, and
PostgreSQL's BM25 gives the very scores of SQLite's FTS5 bm25() on real articles."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from text.language import detect_language
from text.words import anchor_words, content_words
from vectorstore.catalog import Catalog, SqliteCatalog
from vectorstore.database import connect
from vectorstore.errors import StoreUnavailable
from vectorstore.fts_tokens import TOKENIZER
from vectorstore.pg_catalog import PostgresCatalog, table_prefix
from vectorstore.records import ChunkRecord, DocumentInfo, SearchFilters


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        opened: Catalog = SqliteCatalog(tmp_path / "articles.catalog.sqlite3")
    else:
        opened = PostgresCatalog(request.getfixturevalue("database_url"), "articles")
    yield opened
    opened.close()


def document(doc_id: str, text: str, lang: str = "en", date_int: int = 20240101, source: str = "Post") -> tuple:
    info = DocumentInfo(id=doc_id, title=doc_id, content_hash=f"h-{doc_id}-{hash(text)}", date_int=date_int,
                        date=str(date_int), source=source, lang=lang)  # fmt: skip
    return info, [ChunkRecord(id=f"{doc_id}-0", position=0, text=text, start=0, end=len(text), sentences=((0, 3),))]


def write(catalog: Catalog, *documents: tuple) -> None:
    catalog.begin_documents([info for info, _ in documents], "w")
    catalog.add_chunks(list(documents), {info.id for info, _ in documents})


def test_write_protocol_generation_and_removal(catalog: Catalog) -> None:
    assert catalog.generation() == 0 and catalog.count_documents() == 0 and not catalog.has_documents()
    rain = document("rain", "Heavy rain flooded Brennock on Tuesday; 10 000 sandbags went out.")
    catalog.begin_documents([rain[0]], "writer-a")
    assert catalog.written_by("writer-a", ["rain"]) == {"rain"} and not catalog.written_by("writer-b", ["rain"])
    assert catalog.exists("rain") and catalog.ready_hash("rain") is None and catalog.count_documents() == 0
    assert not catalog.has_documents(), "a document being written is not there yet"
    catalog.add_chunks([rain], set())
    assert catalog.keyword_search(["rain"], 5) == [], "a document being written is out of sight"
    catalog.add_chunks([], {"rain"})
    assert catalog.generation() == 1 and catalog.ready_hash("rain") == rain[0].content_hash
    assert catalog.has_documents()
    assert catalog.ready_with_hash(rain[0].content_hash) == "rain"
    assert [hit[0] for hit in catalog.keyword_search(["10,000"], 5)] == ["rain-0"], "grouped numbers match"
    assert catalog.chunk_texts(["rain-0"]) == {"rain-0": ("rain", rain[1][0].text, 0, ((0, 3),))}
    assert catalog.documents()[0]["chunks"] == 1 and catalog.count_chunks() == 1
    catalog.begin_documents([rain[0]], "writer-b")  # an update drops the old chunks at once
    assert catalog.chunk_ids() == set() and catalog.written_by("writer-a", ["rain"]) == set()
    catalog.add_chunks([rain], {"rain"})
    assert catalog.remove_document("rain") and not catalog.remove_document("rain")
    assert catalog.chunk_ids() == set() and catalog.generation() == 4 and not catalog.has_documents()
    catalog.set_meta("k", "v")
    assert catalog.get_meta("k") == "v"


def test_filters_languages_and_newest(catalog: Catalog) -> None:
    write(
        catalog,
        document("old", "Le conseil a voté le budget.", "fr", 20230101, "Courrier"),
        document("new", "Le conseil a voté la grève.", "fr", 20240101, "Gazette"),
        document("en", "The council voted the budget.", "en", 20240202, "Post"),
    )
    assert {h[1] for h in catalog.keyword_search(["conseil"], 5, lang="fr")} == {"old", "new"}
    assert catalog.keyword_search(["conseils"], 5, lang="fr"), "stems find other forms"
    assert [h[1] for h in catalog.keyword_search(["budget"], 5, SearchFilters(since=20230601))] == ["en"]
    assert [h[1] for h in catalog.keyword_search(["conseil"], 5, SearchFilters(source="Gazette"), "fr")] == ["new"]
    assert catalog.count_matching(SearchFilters(until=20231231)) == 1
    assert sorted(catalog.source_names()) == ["Courrier", "Gazette", "Post"]
    assert [cid for cid, _ in catalog.newest_leads(2)] == ["en-0", "new-0"]
    assert catalog.chunk_languages(["old-0", "en-0"]) == {"old-0": "fr", "en-0": "en"}
    assert catalog.chunk_dates(["old-0"]) == {"old-0": 20230101}
    assert {lang: len(ids) for lang, ids in catalog.language_sample(5).items()} == {"fr": 2, "en": 1}
    assert catalog.languages() == {"fr", "en"}


def test_keyword_search_finds_what_passes_its_filters_below_the_best_matches(catalog: Catalog) -> None:
    """SQLite ranks the best matches before it reads their documents' language, date and source: the best
    passing ones must be found even when every one of those best matches fails the filters."""
    storms = [document(f"en{i}", "Storm. " * (8 - i) + "It hit the coast.", "en", 20240101 + i) for i in range(6)]
    write(catalog, *storms, document("fr", "La tempête Storm a frappé la côte.", "fr", 20230101, "Courrier"))
    assert [h[1] for h in catalog.keyword_search(["Storm"], 1)] == ["en0"]
    assert [h[1] for h in catalog.keyword_search(["Storm"], 1, lang="fr")] == ["fr"]
    assert [h[1] for h in catalog.keyword_search(["Storm"], 1, SearchFilters(source="Courrier"))] == ["fr"]
    assert [h[1] for h in catalog.keyword_search(["Storm"], 2, SearchFilters(until=20240102))] == ["en0", "en1"]


def test_the_write_lock_serialises_writers(catalog: Catalog) -> None:
    """A second writer (another thread, so another connection or file handle) waits for the first."""
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait()
        with catalog.write_lock():
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with catalog.write_lock():
        inside.set()
        thread.join(0.5)
        order.append("first")
    thread.join()
    assert order == ["first", "second"]


def example_documents() -> list[tuple]:
    """Each paragraph of the example articles as a chunk, in its article's language."""
    documents = []
    for path in sorted(EXAMPLES.rglob("*")):
        if path.suffix not in (".txt", ".md"):
            continue
        paragraphs = [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        lang = detect_language(" ".join(paragraphs)[:2000])
        info = DocumentInfo(id=path.stem, title=path.stem, content_hash=path.stem, lang=lang)
        chunks = [ChunkRecord(f"{path.stem}-{n}", n, text, 0, len(text)) for n, text in enumerate(paragraphs)]
        documents.append((info, chunks))
    return documents


def test_postgres_bm25_scores_are_sqlite_fts5_scores(tmp_path: Path, database_url: str) -> None:
    """Every paragraph of the example articles as a query (its content words by stems in its language, its names
    and numbers as written): the same passages in the same order with the same scores."""
    documents = example_documents()
    sqlite, postgres = SqliteCatalog(tmp_path / "c.sqlite3"), PostgresCatalog(database_url, "articles")
    for catalog in (sqlite, postgres):
        write(catalog, *documents[:-1])
        catalog.begin_documents([documents[-1][0]], "w")  # written, not ready: counted in BM25 statistics
        catalog.add_chunks([documents[-1]], set())
    queries = 0
    for info, chunks in documents:
        for chunk in chunks:
            for words, lang in ((content_words(chunk.text)[:12], info.lang), (anchor_words(chunk.text), None)):
                expected = sqlite.keyword_search(words, 10, lang=lang)
                got = postgres.keyword_search(words, 10, lang=lang)
                assert [h[:2] for h in got] == [h[:2] for h in expected] or _tied(expected, got), words
                assert [h[2] for h in got] == pytest.approx([h[2] for h in expected], rel=1e-9), words
                queries += bool(expected)
    assert queries > 50


def _tied(expected: list[tuple[str, str, float]], got: list[tuple[str, str, float]]) -> bool:
    """Equal scores in another order: the two engines break ties differently."""
    return sorted((round(s, 9), c) for c, _, s in expected) == sorted((round(s, 9), c) for c, _, s in got)


def test_the_tokenizer_is_the_sqlite_catalogs() -> None:
    from vectorstore.catalog import SCHEMA

    assert f"tokenize='{TOKENIZER}'" in SCHEMA


def test_long_collection_names_make_distinct_table_names() -> None:
    long_a, long_b = "a" * 50 + "x", "a" * 50 + "y"
    assert table_prefix("articles") == "articles"
    assert table_prefix(long_a) != table_prefix(long_b) and len(table_prefix(long_a)) <= 40


def test_a_lost_database_connection_is_store_unavailable_then_reopened(database_url: str) -> None:
    """The database restarted or dropped our connection: that question gets "try again later" (StoreUnavailable,
    naming the database), the next one a new connection."""
    catalog = PostgresCatalog(database_url, "articles")
    write(catalog, document("rain", "Heavy rain flooded Brennock."))
    with connect(database_url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (catalog._db.info.backend_pid,))
    with pytest.raises(StoreUnavailable, match="lost the database at postgresql://"):
        catalog.count_documents()
    assert catalog.count_documents() == 1
