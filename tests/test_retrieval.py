"""Retrieval: Store.search over a fixed archive gives exactly the ids and scores it gave before search was split
into parts (issue 14).

The archive mixes four languages, a wire story in two papers on different dates and an undated article, so that
every part of the search has work to do: dense search, both keyword searches, the per-language levelling,
normalisation, recency ordering and filters. Its vectors and the expected results were recorded once from
e5-small into tests/golden/ (`.venv/bin/python -m tests.test_retrieval`): the vectors are frozen so that the
comparison is exact on every CPU (e5 runs in bfloat16 where the CPU has it, float32 elsewhere). Record again
only when a change to the ranking is meant, and say so in the commit.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ingest.articles import Article
from ingest.pipeline import embedding_text
from vectorstore import calibration
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.records import ChunkRecord, SearchFilters
from vectorstore.store import Store

GOLDEN = Path(__file__).resolve().parent / "golden"
VECTORS = GOLDEN / "retrieval.npz"
EXPECTED = GOLDEN / "retrieval.json"

ARCHIVE = [
    Article(
        id="kremlin",
        title="Le Kremlin met en garde",
        date="2024-06-02",
        source="Agence A",
        text="Le Kremlin a réagi vendredi. « Les instructeurs ne bénéficient d'aucune immunité », a déclaré "
        "Dmitri Peskov, porte-parole du Kremlin. Des instructeurs français ont formé 10 000 soldats.",
    ),
    Article(
        id="peskov-en",
        title="Kremlin promises a response",
        date="2024-06-05",
        source="Agence A",
        text="Dmitri Peskov said on Wednesday that the Kremlin would respond to any deployment of Western "
        "instructors. He gave no details.",
    ),
    Article(
        id="rain",
        title="Heavy rain in Brennock",
        date="2023-11-02",
        source="Evening Post",
        text="Heavy rain flooded the lower town on Tuesday. The river rose two metres overnight.",
    ),
    Article(
        id="budget-en",
        title="Harbour budget approved",
        date="2024-03-10",
        source="Evening Post",
        text="Mayor Ana Ruiz presented a budget of 4.2 million euros for the harbour. The council approved it "
        "by twelve votes to five.",
    ),
    Article(
        id="budget-fr",
        title="Le budget du port adopté",
        date="2024-03-11",
        source="Le Monde",
        text="La maire Ana Ruiz a présenté un budget de 4,2 millions d'euros pour le port. Le conseil l'a adopté "
        "par douze voix contre cinq.",
    ),
    Article(
        id="strike-1",
        title="Rail workers strike over pay",
        date="2024-05-01",
        source="Agence A",
        text="Rail workers walked out on Monday after talks on pay broke down. Most trains in the north were "
        "cancelled.",
    ),
    Article(
        id="strike-2",
        title="Rail workers strike over pay",
        date="2024-05-03",
        source="Evening Post",
        text="Rail workers walked out again on Wednesday after talks on pay broke down. Most trains in the north "
        "were cancelled.",
    ),
    Article(
        id="greve",
        title="Grève des cheminots",
        date="2024-05-02",
        source="Le Monde",
        text="Les cheminots sont en grève depuis lundi pour les salaires. La plupart des trains du nord ont été "
        "supprimés.",
    ),
    Article(
        id="strom",
        title="Strompreise sollen sinken",
        date="2024-02-14",
        source="Tagesblatt",
        text="Die Regierung kündigte am Montag an, die Strompreise zu senken. Die Entlastung soll ab Juli gelten.",
    ),
    Article(
        id="passau",
        title="Hochwasser in Passau",
        date="2024-06-03",
        source="Tagesblatt",
        text="In Passau stieg der Pegel der Donau auf zwölf Meter. Die Altstadt wurde evakuiert.",
    ),
    Article(
        id="betis",
        title="El Betis gana la final",
        date="2024-05-20",
        source="Diario Sur",
        text="El Real Betis ganó la final de la copa por dos goles a uno. Miles de aficionados celebraron en Sevilla.",
    ),
    Article(
        id="museum",
        title="Museum reopens",
        source="Evening Post",
        text="The city museum reopened after two years of renovation. Entry is free for the first month.",
    ),
]

QUERIES: list[tuple[str, int, SearchFilters | None]] = [
    ("What did Peskov say about the instructors?", 3, None),
    ("10,000 soldiers trained", 2, None),
    ("How much is the harbour budget?", 5, None),
    ("Qu'a dit la maire sur le budget ?", 3, None),
    ("latest news on the rail strike", 3, None),
    ("What happened today?", 3, None),
    ("Wie hoch stieg der Pegel in Passau?", 3, None),
    ("Who won the final?", 2, None),
    ("river", 5, SearchFilters(since=20240101)),
    ("Peskov", 5, SearchFilters(source="Evening Post")),
    ("strike", 5, None),
    ("what?", 3, None),
    ("Brennock", 3, None),
    ("Ana Ruiz", 12, SearchFilters(since=20240301, until=20240331)),
]


class RecordedEmbeddings(NewsEmbeddings):
    """e5-small's vectors for this module's texts, as recorded: the same numbers on every machine."""

    name = "e5-small"
    max_tokens = 512

    def __init__(self, passages: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> None:
        self.passages = passages
        self.queries = queries

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return np.array([self.passages[t] for t in texts], dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.array([self.queries[t] for t in texts], dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def passage_texts() -> list[str]:
    return [embedding_text(a.title, a.text) for a in ARCHIVE]


def query_texts() -> list[str]:
    probes = [probe for probes in calibration.PROBES.values() for probe in probes]
    return list(dict.fromkeys([*probes, *(query for query, _, _ in QUERIES)]))


def fixed_store(data_dir: Path, embedder: NewsEmbeddings) -> Store:
    """The archive, one chunk per article, written straight to the store (no chunker: it would need e5's
    tokenizer)."""
    store = Store(data_dir, embedder)
    vectors = embedder.encode_passages(passage_texts())
    store.write_documents(
        [
            (a.info(), [ChunkRecord(f"{a.id}-0", 0, a.text, 0, len(a.text))], vectors[i : i + 1])
            for i, a in enumerate(ARCHIVE)
        ]
    )
    return store


def results(store: Store) -> list[list[dict[str, object]]]:
    return [
        [
            {"chunk_id": h.chunk_id, "score": h.score, "dense": h.dense, "keyword": h.keyword}
            for h in store.search(query, k, filters)
        ]
        for query, k, filters in QUERIES
    ]


def recorded_embedder() -> RecordedEmbeddings:
    stored = np.load(VECTORS)
    return RecordedEmbeddings(
        dict(zip(passage_texts(), stored["passages"], strict=True)),
        dict(zip(query_texts(), stored["queries"], strict=True)),
    )


def test_search_results_are_those_recorded_before_search_was_split(tmp_path: Path) -> None:
    store = fixed_store(tmp_path / "data", recorded_embedder())
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    for (query, _, _), got, want in zip(QUERIES, results(store), expected, strict=True):
        assert [h["chunk_id"] for h in got] == [h["chunk_id"] for h in want], query
        for got_hit, want_hit in zip(got, want, strict=True):
            assert got_hit == pytest.approx(want_hit, abs=1e-6), query


def record() -> None:
    """Embed the archive and the queries with e5-small, and write their vectors and today's results."""
    from vectorstore.embeddings import load_embedder

    e5 = load_embedder("e5-small")
    passages, queries = passage_texts(), query_texts()
    np.savez_compressed(VECTORS, passages=e5.encode_passages(passages), queries=e5.encode_queries(queries))
    with tempfile.TemporaryDirectory() as folder:
        found = results(fixed_store(Path(folder), recorded_embedder()))
    EXPECTED.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {VECTORS} and {EXPECTED}")


if __name__ == "__main__":
    record()
