"""Long articles (issue 12 point 5): an article longer than one embedding batch goes through the embedder a batch
at a time, stays invisible to search until its last batch is stored, survives a crash mid-way, and moves the
progress callback with every batch. Real Chroma (embedded and a `chroma run` server) and the real embedder;
EMBED_BATCH is made small so a short article spans several batches."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ingest.chunking
import vectorstore.e5_torch
from ingest.articles import Article
from ingest.chunking import iter_chunks, sentence_spans
from ingest.pipeline import Ingester
from text.sentences import split_sentences
from vectorstore.database import connect
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.pg_catalog import PostgresCatalog
from vectorstore.store import Store

BATCH = 4
LAST_LINE = "The last barge carried a brass bell recovered from the wreck of the Orlen steamer."
DREDGING = Article(
    id="dredging-diary",
    title="Sella dredging diary",
    date="2024-09-30",
    source="Harbour Gazette",
    text=" ".join(
        f"On day {day} the crews of Sella moved {day * 70} tonnes of silt from the {side} basin."
        for day, side in zip(range(1, 31), itertools.cycle(["north", "south", "inner"]), strict=False)
    )
    + "\n\n"
    + LAST_LINE,
)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ingest.pipeline.EMBED_BATCH", BATCH)


def ingester(store: Store) -> Ingester:
    """Chunks of a sentence or two, so the diary makes about 20."""
    return Ingester(store, chunk_tokens=40, chunk_overlap=0)


def states(store: Store) -> dict[str, str]:
    """Each document's state as another connection reads it now (`writing` ones included)."""
    if isinstance(store.catalog, PostgresCatalog):
        with connect(store.catalog.url) as db:
            return dict(db.execute(f"SELECT id, state FROM {store.catalog.table('documents')}"))  # type: ignore[arg-type]
    with closing(sqlite3.connect(store.catalog.path)) as db:
        return dict(db.execute("SELECT id, state FROM documents"))


def found(store: Store, article_id: str) -> bool:
    return any(hit.article_id == article_id for hit in store.search("brass bell from the Orlen wreck", k=10))


@pytest.mark.usefixtures("small_batches")
def test_a_long_article_goes_through_the_embedder_a_batch_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded: list[int] = []
    embed = store.embed_passages

    def counting(texts: list[str]) -> np.ndarray:
        embedded.append(len(texts))
        return embed(texts)

    monkeypatch.setattr(store, "embed_passages", counting)
    progress: list[tuple[int, int]] = []
    chunks = ingester(store).chunks_of(DREDGING)
    assert len(chunks) > 3 * BATCH
    report = ingester(store).ingest([DREDGING], progress=lambda n, characters: progress.append((n, characters)))
    assert (report.new, report.chunks) == (1, len(chunks))
    assert max(embedded) <= BATCH and sum(embedded) == len(chunks), "the article is embedded a batch at a time"
    assert store.vectors.ids() == store.catalog.chunk_ids() == {c.id for c in chunks}
    assert states(store) == {"dredging-diary": "ready"} and found(store, "dredging-diary")
    assert len(progress) == len(embedded), "the progress moves after every batch, not once per article"
    assert [n for n, _ in progress] == embedded
    assert sum(characters for _, characters in progress) == len(DREDGING.text)
    assert all(characters > 0 for _, characters in progress)


@pytest.mark.usefixtures("small_batches")
def test_a_long_article_stays_invisible_until_its_last_batch_is_stored(store: Store) -> None:
    seen_between_batches: list[tuple[str, bool, int]] = []
    article_chunks = {c.id for c in ingester(store).chunks_of(DREDGING)}

    def look(chunks: int, characters: int) -> None:
        stored = store.vectors.ids()
        assert stored <= article_chunks
        seen_between_batches.append((states(store)["dredging-diary"], found(store, "dredging-diary"), len(stored)))

    ingester(store).ingest([DREDGING], progress=look)
    *between, after_last = seen_between_batches
    assert between and all(state == "writing" and not visible for state, visible, _ in between)
    assert [stored for _, _, stored in between] == [BATCH * n for n in range(1, len(between) + 1)], (
        "each batch's vectors are stored as it comes, not held until the article's end"
    )
    assert after_last == ("ready", True, len(article_chunks))


@pytest.mark.usefixtures("small_batches")
def test_a_crash_mid_article_leaves_nothing_half_visible_and_a_rerun_completes_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = Article(id="dredging-diary", title="Sella dredging diary", text="The dredging starts on Monday.")
    ingester(store).ingest([earlier])
    calls = itertools.count(1)
    embed = store.embed_passages

    def crashing(texts: list[str]) -> np.ndarray:
        if next(calls) == 3:
            raise RuntimeError("killed")
        return embed(texts)

    monkeypatch.setattr(store, "embed_passages", crashing)
    with pytest.raises(RuntimeError, match="killed"):
        ingester(store).ingest([DREDGING])
    assert states(store) == {"dredging-diary": "writing"}
    assert store.vectors.ids(), "the first batches were stored before the crash"
    assert not found(store, "dredging-diary") and store.documents() == []
    assert not any(hit.article_id == "dredging-diary" for hit in store.search("When does the dredging start?"))
    monkeypatch.setattr(store, "embed_passages", embed)
    report = ingester(store).ingest([DREDGING])
    assert (report.updated, report.failed) == (1, 0)
    chunks = {c.id for c in ingester(store).chunks_of(DREDGING)}
    assert store.vectors.ids() == store.catalog.chunk_ids() == chunks, "nothing lost, nothing stale"
    assert found(store, "dredging-diary") and store.documents()[0]["chunks"] == len(chunks)


@pytest.mark.usefixtures("small_batches")
def test_another_writer_that_begins_the_same_article_takes_it_over(store: Store) -> None:
    """A second ingest that begins the same article while the first is between batches (the catalog now names
    it as the writer) wins: the first writes no more of it, and its parts are not marked complete."""

    def other_ingest_begins(chunks: int, characters: int) -> None:
        if states(store)["dredging-diary"] == "writing":
            store.catalog.begin_documents([DREDGING.info()], "another run")

    report = ingester(store).ingest([DREDGING], progress=other_ingest_begins)
    assert (report.new, report.unchanged, report.chunks) == (0, 1, BATCH)
    assert states(store) == {"dredging-diary": "writing"} and not found(store, "dredging-diary")
    assert store.catalog.chunk_ids() == set(), "the other writer dropped what the first had written"


def test_the_encoder_meets_few_row_counts(embedder: NewsEmbeddings, monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN keeps a kernel (~1.3 MB) per row count a matmul meets: passes of 40 different token counts must
    not make 40 row counts (they grew a 30 MB ingest past 3 GB)."""
    rows: set[int] = set()
    linear = vectorstore.e5_torch._Linear.__call__

    def recording(self, x, *args, **kwargs):  # type: ignore[no-untyped-def]
        rows.add(x.shape[0])
        return linear(self, x, *args, **kwargs)

    monkeypatch.setattr(vectorstore.e5_torch._Linear, "__call__", recording)
    encoder = embedder.torch_encoder()  # type: ignore[attr-defined]
    texts = ["passage: " + " ".join(f"word{i}" for i in range(n)) for n in range(10, 50)]
    singly = np.vstack([encoder.encode([text]) for text in texts])
    assert 0 < len(rows) <= len(texts) // 3, sorted(rows)
    together = encoder.encode(texts)
    assert np.allclose((singly * together).sum(axis=1), 1.0, atol=1e-3), "filler rows change no vector"


def test_chunks_are_made_from_a_window_of_text_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths: list[int] = []

    def recording(text: str):  # type: ignore[no-untyped-def]
        lengths.append(len(text))
        return split_sentences(text)

    monkeypatch.setattr(ingest.chunking, "split_sentences", recording)
    text = "The council met again. " * 200_000  # 4.6 MB
    first = next(iter_chunks(text, 200, 40))
    assert first.start == 0 and lengths == [ingest.chunking.SENTENCE_WINDOW]


PIECES = [*"abcdé XYZ.!?«»\n0123,;:—-’'\"()漢字。ทีมรับ", "M. ", "am 8. ", "\n\n", ". A", "U.S. "]
PROSE = st.lists(st.sampled_from(PIECES), max_size=300).map("".join)


@settings(max_examples=300, deadline=None)
@given(PROSE, st.integers(0, 40), st.integers(4, 60))
def test_sentences_found_a_window_at_a_time_are_those_of_the_whole_text(text: str, margin: int, small: int) -> None:
    whole = split_sentences(text)
    window = 2 * max((s.end - s.start for s in whole), default=0) + 8 + margin
    assert list(sentence_spans(text, window)) == whole
    pieces = list(sentence_spans(text, small))  # windows shorter than sentences: cut, but nothing lost
    assert all(text[p.start : p.end] == p.text == p.text.strip() != "" and len(p.text) <= small for p in pieces)
    assert all(a.end <= b.start for a, b in itertools.pairwise(pieces))
    assert "".join("".join(p.text for p in pieces).split()) == "".join("".join(s.text for s in whole).split())
