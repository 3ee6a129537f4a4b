"""The store against real Chroma (embedded and a `chroma run` server) and the real default embedder."""

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TypeVar

import pytest

from bot.engine import AnswerEngine
from ingest.articles import Article
from ingest.pipeline import Ingester
from vectorstore.chroma import EmbedderMismatch
from vectorstore.database import connect
from vectorstore.embeddings import load_embedder
from vectorstore.pg_catalog import PostgresCatalog
from vectorstore.records import SearchFilters
from vectorstore.store import Store

T = TypeVar("T")

PESKOV = Article(
    id="kremlin",
    title="Le Kremlin met en garde",
    date="2024-06-02",
    source="Agence A",
    text=(
        "Le Kremlin a réagi vendredi. « Les instructeurs ne bénéficient d'aucune immunité », a déclaré "
        "Dmitri Peskov, porte-parole du Kremlin. Des instructeurs français ont formé 10 000 soldats."
    ),
)
RAIN = Article(
    id="rain",
    title="Heavy rain in Brennock",
    date="2023-11-02",
    source="Evening Post",
    text="Heavy rain flooded the lower town on Tuesday. The river rose two metres overnight.",
)


def stored_ids(store: Store) -> tuple[set[str], set[str]]:
    return store.vectors.ids(), store.catalog.chunk_ids()


def test_cross_language_search_filters_and_remove(store: Store) -> None:
    report = Ingester(store).ingest([PESKOV, RAIN])
    assert (report.new, report.failed) == (2, 0)
    hits = store.search("What did Peskov say about the instructors?", k=2)
    assert hits[0].article_id == "kremlin"
    assert hits[0].title == "Le Kremlin met en garde" and hits[0].date == "2024-06-02"
    assert store.search("10,000 soldiers trained", k=1)[0].article_id == "kremlin"
    assert {h.article_id for h in store.search("river", 5, SearchFilters(since=20240101))} == {"kremlin"}
    assert {h.article_id for h in store.search("Peskov", 5, SearchFilters(source="Evening Post"))} == {"rain"}
    assert store.remove_document("kremlin")
    assert not store.remove_document("kremlin")
    assert {h.article_id for h in store.search("Peskov", k=5)} == {"rain"}


def test_keyword_search_in_the_question_language_runs_only_where_articles_have_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[str | None] = []
    plain = store.catalog.keyword_search

    def spied(terms: list[str], limit: int, filters: SearchFilters | None = None, lang: str | None = None) -> list:
        searched.append(lang)
        return plain(terms, limit, filters, lang)

    monkeypatch.setattr(store.catalog, "keyword_search", spied)
    Ingester(store).ingest([PESKOV])
    assert store.search("What did Peskov say about the instructors?", k=1)[0].article_id == "kremlin"
    assert searched == [None], "no English article: only the names are looked up, in every language"
    searched.clear()
    assert store.search("Qu'a déclaré le porte-parole du Kremlin ?", k=1)[0].article_id == "kremlin"
    assert searched == ["fr", None], "in French, and the name Kremlin in every language"
    Ingester(store).ingest([RAIN])  # a write: the archive's languages are read again
    searched.clear()
    assert store.search("Which town did the heavy rain flood?", k=1)[0].article_id == "rain"
    assert searched == ["en"]


def test_reingest_is_idempotent_and_updates_leave_no_stale_chunks(hashing_store: Store) -> None:
    store = hashing_store
    ingester = Ingester(store, chunk_tokens=20, chunk_overlap=0)
    first = ingester.ingest([PESKOV, RAIN])
    vectors, catalog = stored_ids(store)
    assert vectors == catalog and len(vectors) == first.chunks
    again = ingester.ingest([PESKOV, RAIN])
    assert (again.new, again.updated, again.unchanged, again.chunks) == (0, 0, 2, 0)
    changed = Article(id="rain", title=RAIN.title, date=RAIN.date, source=RAIN.source, text="Short now.")
    update = ingester.ingest([changed])
    assert (update.updated, update.chunks) == (1, 1)
    vectors, catalog = stored_ids(store)
    assert vectors == catalog
    assert len([c for c in vectors if c.startswith(ingester.chunks_of(changed)[0].id.split("-")[0])]) == 1


def test_same_article_by_two_paths_is_stored_once(hashing_store: Store, tmp_path: Path) -> None:
    from ingest.pipeline import load_paths

    store = hashing_store
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("title Un\n\nUn article sur le budget de la ville.")
    (folder / "sub" / "copy.txt").write_text("title Un\n\nUn article sur le budget de la ville.")
    report = Ingester(store).ingest(load_paths([folder, folder / "a.txt"], 10**6))
    assert (report.new, report.unchanged) == (1, 2)
    assert store.catalog.count_documents() == 1


def test_interrupted_write_is_redone(hashing_store: Store) -> None:
    store = hashing_store
    ingester = Ingester(store)
    chunks = ingester.chunks_of(PESKOV)
    store.catalog.begin_documents([PESKOV.info()], "a killed run")  # as if killed right after step 1
    store.vectors.add([chunks[0].id], store.embed_passages([chunks[0].text]), [{"article_id": "kremlin"}])
    assert not store.is_current("kremlin", PESKOV.content_hash)
    report = ingester.ingest([PESKOV])
    assert report.new + report.updated == 1
    assert store.is_current("kremlin", PESKOV.content_hash)
    assert stored_ids(store)[0] == stored_ids(store)[1] == {c.id for c in chunks}


def test_opening_with_another_embedder_is_a_clear_error(data_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    Store(data_dir, embedder)
    with pytest.raises(EmbedderMismatch, match="built with embedder 'e5-small'"):
        Store(data_dir, load_embedder("use-m3"))


def wire_copy(article_id: str, date: str, source: str) -> Article:
    """The same agency story as two papers print it: equal text, other date and source."""
    return Article(id=article_id, title=RAIN.title, date=date, source=source, text=RAIN.text)


@pytest.mark.parametrize("order", ["older first", "newer first"])
def test_equal_relevance_lists_the_newer_article_first(store: Store, order: str) -> None:
    copies = [wire_copy("rain-monday", "2023-11-06", "Brennock Herald"), wire_copy("rain-friday", "2023-11-10", "Post")]
    Ingester(store).ingest(copies if order == "older first" else copies[::-1])
    hits = store.search("How high did the river rise in Brennock?", k=2)
    assert [h.article_id for h in hits] == ["rain-friday", "rain-monday"]
    assert hits[0].score == pytest.approx(hits[1].score, abs=1e-4)


STORM_STORIES = [
    Article(
        id="storm-night",
        title="Storm Elin hits Brennock",
        date="2023-11-02",
        text="Storm Elin hit Brennock overnight. The storm tore roofs off forty houses and cut power to the town.",
    ),
    Article(
        id="storm-cleanup",
        title="Brennock counts the cost",
        date="2023-11-09",
        text="A week after Storm Elin, Brennock has repaired most roofs and the council put the damage at 3 million.",
    ),
]


def test_questions_about_the_latest_news_favour_newer_articles(store: Store) -> None:
    from vectorstore.recency import Recency

    Ingester(store).ingest(STORM_STORIES)
    plain = store.search("What happened in Brennock during Storm Elin?", k=2)
    assert plain[0].article_id == "storm-night"
    latest = "What is the latest on Storm Elin in Brennock?"
    assert store.search(latest, k=2)[0].article_id == "storm-cleanup"
    store.recency = Recency(margin=0.0)
    assert store.search(latest, k=2)[0].article_id == "storm-night", "with no margin, relevance alone decides"


BRIDGE = Article(
    id="bridge",
    title="Orlen delays the bridge vote",
    date="2024-09-02",
    source="Orlen Courier",
    text="The Orlen council delayed its vote on the new harbour bridge until March, citing the cost.",
)
BRIDGE_EDITED = Article(
    id="bridge",
    title="Orlen approves the harbour bridge",
    date="2024-09-03",
    source="Orlen Courier",
    text="The Orlen council approved the new harbour bridge on Tuesday and set aside 4.2 million euros for it.",
)
FERRIES = Article(
    id="ferries",
    title="Lake Orvin gets electric ferries",
    date="2024-10-15",
    source="Orvin Daily",
    text="The Lake Orvin transport authority will buy 17 electric ferries to replace its diesel fleet by 2027.",
)
DURING_WRITES = ["What did the Orlen council decide about the harbour bridge?", "How many ferries will Lake Orvin buy?"]


class Held:
    """Parks the writer's thread at one step of the write protocol until the test releases it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def before(self, step: Callable[..., T]) -> Callable[..., T]:
        def held(*args: object, **kwargs: object) -> T:
            self.reached.set()
            assert self.release.wait(120), "the test never released the writer"
            return step(*args, **kwargs)

        return held


def committed(store: Store) -> dict[str, tuple[str, str, set[str]]]:
    """What another connection reads now: each document's title, state and chunk texts as committed."""
    if isinstance(store.catalog, PostgresCatalog):
        with connect(store.catalog.url) as db:
            rows = db.execute(f"SELECT id, title, state FROM {store.catalog.table('documents')}")
            documents = {d: (title, state, set()) for d, title, state in rows}
            texts = list(db.execute(f"SELECT document_id, text FROM {store.catalog.table('chunks')}"))
    else:
        with closing(sqlite3.connect(store.catalog.path)) as db:
            documents = {
                d: (title, state, set()) for d, title, state in db.execute("SELECT id, title, state FROM documents")
            }
            texts = list(db.execute("SELECT document_id, text FROM chunks"))
    for document_id, text in texts:
        documents[document_id][2].add(text)
    return documents


@pytest.mark.parametrize("step", ["before Chroma deletes the old vectors", "inside the last catalog transaction"])
def test_a_question_during_an_in_process_write_cites_only_committed_articles(
    store: Store, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The bot answers in worker threads while a feed or an upload is written in the same process. Hold the writer
    between the protocol's steps (an article edited, another added) and ask: every cited passage must be the
    committed text of a `ready` article under its committed title, as another connection reads it."""
    engine = AnswerEngine(store)
    Ingester(store).ingest([BRIDGE, RAIN])
    held = Held()
    if step == "before Chroma deletes the old vectors":
        monkeypatch.setattr(store.vectors, "delete_documents", held.before(store.vectors.delete_documents))
    else:  # the generation bump is the transaction's last statement before COMMIT
        monkeypatch.setattr(store.catalog, "_bump_generation", held.before(store.catalog._bump_generation))
    writer = threading.Thread(target=Ingester(store).ingest, args=([BRIDGE_EDITED, FERRIES],))
    writer.start()
    try:
        assert held.reached.wait(120)
        answers = [engine.ask(question) for question in DURING_WRITES]
        seen = committed(store)
    finally:
        held.release.set()
        writer.join()
    for answer in answers:
        for source in answer.sources:
            title, state, texts = seen[source.hit.article_id]
            assert state == "ready", f"{answer.question!r} cited {source.hit.article_id!r}, committed as {state!r}"
            assert source.hit.title == title and source.hit.text in texts
    after = [engine.ask(question) for question in DURING_WRITES]  # the questions do find the new versions
    assert after[0].sources[0].hit.title == BRIDGE_EDITED.title and "approved" in after[0].answer
    assert after[1].sources[0].hit.article_id == "ferries" and "17" in after[1].answer
