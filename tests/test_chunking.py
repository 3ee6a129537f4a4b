from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import chunk_text, count_tokens
from text.sentences import split_sentences

PROSE = (
    "M. Dupont est arrivé à 9 h. Il a dit « Non. » Puis J. Biden a parlé de 12.5 % et de 10 000 soldats ! "
    "Le texte continue ici.\n\nUn nouveau paragraphe commence. Et il finit là."
)


def test_sentences_keep_abbreviations_quotes_and_offsets() -> None:
    spans = split_sentences(PROSE)
    assert [s.text for s in spans][:3] == [
        "M. Dupont est arrivé à 9 h.",
        "Il a dit « Non. »",
        "Puis J. Biden a parlé de 12.5 % et de 10 000 soldats !",
    ]
    assert all(PROSE[s.start : s.end] == s.text for s in spans)


def test_chunks_respect_limits_and_overlap() -> None:
    text = " ".join(f"Phrase numéro {i} avec quelques mots de plus pour compter." for i in range(200))
    chunks = chunk_text(text, max_tokens=60, overlap=15)
    assert len(chunks) > 5
    assert all(count_tokens(c.text) <= 60 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert chunks[1].start < chunks[0].end, "consecutive chunks overlap"


def test_overlong_sentence_is_cut_and_embedder_limit_is_checked() -> None:
    text = "mot " * 1000
    chunks = chunk_text(text, max_tokens=100, overlap=0, fits=lambda t: len(t.split()) <= 80)
    assert all(count_tokens(c.text) <= 100 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 1000


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("abcdé XYZ.!?«»\n0123 ,;:—-’'\"()漢字😀")), max_size=600), st.integers(8, 80)
)
def test_chunking_loses_nothing(text: str, limit: int) -> None:
    chunks = chunk_text(text, max_tokens=limit, overlap=limit // 4)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert all(count_tokens(c.text) <= limit for c in chunks)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
