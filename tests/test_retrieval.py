"""Retrieval: each part of Store.search on its own (dense search, keyword search, fusion, recency ordering), and
Store.search over a fixed archive giving exactly the ids and scores it gave before search was split into parts
(issue 14).

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
from vectorstore.fusion import Fused, Fusion, KeywordScores, level_languages, normalised
from vectorstore.recency import Recency
from vectorstore.records import ChunkRecord, SearchFilters
from vectorstore.store import DocumentPart, Store

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
    store.write_parts(
        [
            DocumentPart(a.info(), [ChunkRecord(f"{a.id}-0", 0, a.text, 0, len(a.text))], vectors[i : i + 1])
            for i, a in enumerate(ARCHIVE)
        ],
        writer="test_retrieval",
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


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return fixed_store(tmp_path_factory.mktemp("archive") / "data", recorded_embedder())


def test_dense_search_gives_each_passage_its_cosine_to_the_question(archive: Store) -> None:
    question = "Who won the final?"
    query = archive.embedder.encode_queries([question])[0]
    vectors = archive.embedder.encode_passages(passage_texts())
    cosines = dict(zip([f"{a.id}-0" for a in ARCHIVE], vectors @ query, strict=True))
    found = archive.dense_search(question, 30)
    assert found.keys() == cosines.keys()
    assert found == pytest.approx(cosines, abs=1e-5)
    nearest = sorted(cosines, key=cosines.__getitem__, reverse=True)[:3]
    assert list(archive.dense_search(question, 3)) == nearest
    assert archive.dense_search(question, 30, SearchFilters(source="Tagesblatt")).keys() == {"strom-0", "passau-0"}


def test_keyword_search_matches_stems_within_the_question_language_and_anchors_across(archive: Store) -> None:
    found = archive.keyword_search("Quels trains ont été supprimés par la grève ?", "fr", 30)
    assert found.same_language.keys() == {"greve-0"}, "French stems, French articles only ('trains' is English too)"
    assert found.anchors == {}, "no names or numbers in the question"
    named = archive.keyword_search("What did the council give Ana Ruiz?", "en", 30)
    assert named.same_language.keys() == {"budget-en-0"}
    assert named.anchors.keys() == {"budget-en-0", "budget-fr-0"}, "'Ruiz' in every language"
    assert all(score > 0 for score in [*named.same_language.values(), *named.anchors.values()])
    assert archive.keyword_search("What did the council give Ana Ruiz?", "", 30).same_language == {}, "no language"
    assert archive.keyword_search("Ana Ruiz", "en", 30, SearchFilters(source="Le Monde")).anchors.keys() == {
        "budget-fr-0"
    }
    skipped = archive.keyword_search("What did the council give Ana Ruiz?", "en", 30, same_language=False)
    assert skipped.same_language == {} and skipped.anchors == named.anchors
    assert archive.keyword_search("What did the council give Ana Ruiz?", "en", 30, anchors=False).anchors == {}


def test_keyword_scores_report_the_same_language_score_where_both_searches_found_a_passage() -> None:
    keywords = KeywordScores(same_language={"a": 2.0}, anchors={"a": 5.0, "b": 1.0})
    assert keywords.by_chunk() == {"a": 2.0, "b": 1.0}


def test_normalisation_scales_scores_to_between_0_and_1() -> None:
    assert normalised({"a": 0.9, "b": 0.7, "c": 0.8}) == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.5})
    assert normalised({"a": 0.4, "b": 0.4}) == {"a": 1.0, "b": 1.0}, "equal scores are all the best"
    assert normalised({}) == {}


def test_fusion_levels_languages_normalises_and_weighs_as_computed_by_hand() -> None:
    dense = {"a": 0.9, "b": 0.8, "c": 0.75}
    langs = {"a": "en", "b": "en", "c": "fr", "d": "en"}
    offsets = {"en": 0.1, "fr": 0.05}  # English cosines run 0.05 higher: levelled, a .8, b .7, c .7
    keywords = KeywordScores(same_language={"b": 2.0, "d": 1.0}, anchors={"c": 3.0})
    fused = Fusion().fuse(dense, keywords, langs, offsets)
    assert fused.dense == pytest.approx({"a": 0.8, "b": 0.7, "c": 0.7})
    # normalised dense a 1, b 0, c 0, d (keywords only) 0; plus 0.8 x BM25 / best and 0.3 x anchors / best:
    # a 1, b 0.8, d 0.4, c 0.3. French rose 0.3 above its best dense score, English not at all: French -0.3.
    assert fused.scores == pytest.approx({"a": 1.0, "b": 0.8, "c": 0.0, "d": 0.4})
    assert Fusion().most == pytest.approx(2.1)
    plain = Fusion(same_language=0.4, anchors=0.0).fuse(dense, KeywordScores(same_language={"b": 2.0}), langs, {})
    assert plain.scores == pytest.approx({"a": 1.0, "b": 1 / 3 + 0.4, "c": 0.0}), "no offsets: b .8 is 1/3 of the way"
    assert Fusion(same_language=0.4, anchors=0.0).most == pytest.approx(1.4)


def test_levelling_keeps_keywords_from_lifting_one_language_over_another() -> None:
    dense = {"en": 0.2, "de": 1.0}
    langs = {"en": "en", "de": "de"}
    assert level_languages({"en": 1.1, "de": 1.0}, dense, langs) == pytest.approx({"en": 0.2, "de": 1.0})
    assert level_languages({"en": 1.1, "de": 1.0}, dense, {}) == {"en": 1.1, "de": 1.0}, "one language: unchanged"


def test_recency_orders_by_relevance_then_newest_and_newest_first_for_latest_questions() -> None:
    fused = Fused(
        scores={"old": 1.0, "new": 0.99996, "other": 0.9, "undated": 0.5},
        dense={"old": 0.80, "new": 0.78, "other": 0.60, "undated": 0.79},
    )
    dates = {"old": 20240101, "new": 20240301, "other": 20240401, "undated": 0}
    assert Recency().order(fused, dates, asks_for_recent=False) == ["new", "old", "other", "undated"], (
        "equal to 4 decimals: the newer first"
    )
    assert Recency().order(fused, dates, asks_for_recent=True) == ["new", "old", "undated", "other"], (
        "within 0.03 of the best cosine: newest first, undated last among them"
    )
    assert Recency(margin=0.0).order(fused, dates, asks_for_recent=True) == ["old", "new", "other", "undated"]
    assert Recency().order(fused, {"old": 20240101, "other": 20240401}, asks_for_recent=False) == ["old", "other"], (
        "only passages with a date (of completely written articles) are ordered"
    )
    undated = {cid: 0 for cid in dates}
    assert Recency().order(fused, undated, asks_for_recent=True) == ["old", "new", "other", "undated"], (
        "nothing dated among the most relevant: relevance alone (a tie in the order given)"
    )


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
