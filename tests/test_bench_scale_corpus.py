"""The latency benchmark's copies must cost the answerer what a real archive's passages cost it: the answerer
reads each distinct sentence once, so copies that shared sentences made the answer step at 10,000 and 100,000
chunks look cheaper (31 ms) than at 1,000 (82 ms)."""

from __future__ import annotations

from bench.scale import copy_text
from bot.extractive import candidates
from vectorstore.records import Hit

BASE = (
    "The council approved the budget on Monday. It grows by four percent! Critics asked why the bridge was left"
    " out? The mayor said work would start next year."
)


def test_copies_of_a_passage_give_the_answerer_all_their_sentences() -> None:
    texts = [BASE, *(copy_text(BASE, j) for j in range(1, 5))]
    hits = [Hit(f"c{j}", f"a{j}", text, 1.0) for j, text in enumerate(texts)]
    base_sentences = len(candidates(hits[:1]))
    assert base_sentences == 4
    assert len(candidates(hits, passages=len(hits))) == 5 * base_sentences


def test_a_copy_keeps_the_words_and_rotates_the_sentences() -> None:
    copy = copy_text(BASE, 1)
    assert copy.startswith("It grows by four percent (1)! Critics asked")
    assert copy.endswith("The council approved the budget on Monday (1).")
    assert sorted(copy.replace(" (1)", "").split()) == sorted(BASE.split())
