"""The default answerer: no LLM, it quotes the retrieved sentences that best answer the question.

Each candidate sentence (from the best passages) is scored by the embedder against the question, plus small
cues: the question's names and numbers found in the sentence, its rarer words found in the sentence (compared
only between sentences of one language), a number when the question asks "how many", and the rank of the
passage it came from. The answer is the best sentence, followed by the next best ones while they score close
to it and the answer stays short.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from text.language import UNSPACED
from text.sentences import split_sentences
from text.words import anchor_words, content_words, stems
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.records import Hit

MAX_SENTENCES = 3
MAX_WORDS = 80
PASSAGES = 3
# Weights of the cues next to the embedder's cosine; small, because the cosine carries most of the signal.
ANCHOR_WEIGHT = 0.03
# The rarer-words cue takes 0 to -1 (see `rare_word_overlap`), so this is what the sentence with the fewest of the
# question's words gives up. Chosen with MARGIN on the answer model's training cases (XQuAD pages 0-17, PIAF
# 0-149): the answer's sentence among those quoted 0.814 -> 0.829 at the same 2.0 sentences an answer (it was
# exact words, unleveled, at 0.02 with a margin of 0.08); docs/quality.md has the measure part.
OVERLAP_WEIGHT = 0.1
NUMBER_WEIGHT = 0.015
RANK_WEIGHT = 0.01
# The top passages are put in order by their retrieval score plus this times their best sentence's cosine: a
# passage with one sentence that answers the question beats one that is only about the same topic (measured on
# ../shared/eval, both halves and both languages: hit@1 +2 to +3 points; see docs/quality.md). It was 8 when
# search scores ran up to 2.1; they are now that score's share, 0 to 1, so 8 / 2.1.
SENTENCE_EVIDENCE_WEIGHT = 3.8
# A further sentence joins the answer only when it scores within this margin of the best one (the cues spread
# the scores, so the margin follows OVERLAP_WEIGHT).
MARGIN = 0.1

_QUANTITY = re.compile(r"\b(how (many|much)|combien|wie viele|wieviel|cu[aá]nt[oa]s?|quant[oa]s?|сколько)\b", re.I)
_DIGIT = re.compile(r"\d")


@dataclass
class Candidate:
    """A sentence of a retrieved passage, with its score and the hit it came from."""

    text: str
    hit_index: int
    order: int
    score: float = 0.0
    cosine: float = 0.0
    same_language: bool = False
    lang: str = ""  # the passage's


def candidates(hits: list[Hit], passages: int = PASSAGES, question_lang: str = "") -> list[Candidate]:
    """The sentences of the best passages, each once (overlapping chunks repeat sentences)."""
    seen: set[str] = set()
    found: list[Candidate] = []
    for index, hit in enumerate(hits[:passages]):
        for order, (start, end) in enumerate(sentence_spans(hit)):
            text = hit.text[start:end]
            key = " ".join(text.split())
            if key in seen or not _says_something(key):
                continue
            seen.add(key)
            same_language = bool(question_lang) and hit.lang == question_lang
            found.append(Candidate(text, index, order, same_language=same_language, lang=hit.lang))
    return found


def sentence_spans(hit: Hit) -> tuple[tuple[int, int], ...]:
    """The (start, end) of each sentence of the hit's text: as found at ingest, or split now for a chunk stored
    before sentences were kept."""
    if hit.sentences is not None:
        return hit.sentences
    return tuple((span.start, span.end) for span in split_sentences(hit.text))


def _says_something(sentence: str) -> bool:
    """Worth quoting: two content words, or (in Chinese, Japanese or Thai, written without spaces between words)
    as many letters as two short words have."""
    return len(content_words(sentence)) >= 2 or len(UNSPACED.findall(sentence)) >= 4


def _fold(word: str) -> str:
    return word.lower()


CUES = ("anchors", "overlap", "number")


def cue_matrix(question: str, found: list[Candidate], question_lang: str) -> np.ndarray:
    """The cheap evidence of each candidate, one row each, columns as CUES names them: the share of the
    question's names and numbers in the sentence, `rare_word_overlap`, and a figure when it asks "how many"."""
    anchors = {_fold(a) for a in anchor_words(question)}
    wants_number = bool(_QUANTITY.search(question))
    overlap = rare_word_overlap(question, found, question_lang)
    rows = []
    for candidate, shared in zip(found, overlap, strict=True):
        sentence_words = {_fold(w) for w in content_words(candidate.text)}
        rows.append(
            (
                len(anchors & sentence_words) / len(anchors) if anchors else 0.0,
                shared,
                1.0 if wants_number and _DIGIT.search(candidate.text) else 0.0,
            )
        )
    return np.array(rows, dtype=np.float32).reshape(len(found), len(CUES))


def rare_word_overlap(question: str, found: list[Candidate], question_lang: str) -> list[float]:
    """For each candidate, the share of the question's word stems it holds, each weighted by how rare it is among
    the candidates (a word every sentence has, the topic, tells them apart the least), minus the best such share
    among the candidates of its language: from 0 down to -1. Leveled so, words reorder the sentences of one
    language but never lift a sentence in the question's language over a translation that says the same."""
    asked = set(stems(" ".join(content_words(question)), question_lang))
    held = [set(stems(" ".join(content_words(c.text)), question_lang)) for c in found]
    rarity = {w: math.log((len(held) + 1) / (sum(w in h for h in held) + 0.5)) for w in asked}
    total = sum(rarity.values())
    shares = [sum(rarity[w] for w in asked & h) / total if total else 0.0 for h in held]
    best: dict[str, float] = {}
    for candidate, share in zip(found, shares, strict=True):
        best[candidate.lang] = max(best.get(candidate.lang, 0.0), share)
    return [share - best[c.lang] for c, share in zip(found, shares, strict=True)]


COSINE_CUE_WEIGHTS = np.array([ANCHOR_WEIGHT, OVERLAP_WEIGHT, NUMBER_WEIGHT], dtype=np.float32)


def score_candidates(question: str, found: list[Candidate], embedder: NewsEmbeddings, question_lang: str) -> None:
    """Set each candidate's cosine and score: the cosine plus the cues described in the module docstring (the
    rank of its passage counts in `select`, once the passages are in their final order)."""
    if not found:
        return
    query = embedder.query_vector(question)
    vectors = embedder.encode_passages([c.text for c in found])
    cues = cue_matrix(question, found, question_lang)
    cosines = vectors @ query
    scores = cosines + cues @ COSINE_CUE_WEIGHTS
    for candidate, cosine, score in zip(found, cosines, scores, strict=True):
        candidate.cosine = float(cosine)
        candidate.score = float(score)


def order_by_evidence(found: list[Candidate], hits: list[Hit], by_score: bool = False) -> list[Hit]:
    """`hits` with the passages that gave candidates reordered by retrieval score plus the weighted cosine (or,
    `by_score`, the answer model's score) of their best sentence; candidates are re-pointed at the new
    positions. Ties keep retrieval's order (which puts the newer of two equal stories first)."""
    best: dict[int, float] = {}
    for candidate in found:
        evidence = candidate.score if by_score else candidate.cosine
        best[candidate.hit_index] = max(best.get(candidate.hit_index, -np.inf), evidence)
    scored = sorted(best, key=lambda i: -(hits[i].score + SENTENCE_EVIDENCE_WEIGHT * best[i]))
    slots = sorted(best)
    moved = dict(zip(scored, slots, strict=True))
    reordered = list(hits)
    for old, new in moved.items():
        reordered[new] = hits[old]
    for candidate in found:
        candidate.hit_index = moved[candidate.hit_index]
    return reordered


def best_first(found: list[Candidate]) -> list[int]:
    """Indices of `found` by score, best first; equal scores keep their order (the reader rereads the first k
    of this, and training builds its shortlists with it, so both see the same sentences)."""
    return sorted(range(len(found)), key=lambda i: -found[i].score)


def ranked_score(candidate: Candidate) -> float:
    """A candidate's score as `select` ranks it: a sentence from a later passage gives up a little."""
    return candidate.score - RANK_WEIGHT * candidate.hit_index


def select(found: list[Candidate], hits: list[Hit]) -> list[Candidate]:
    """The best sentence and close runners-up from the same article, at most MAX_SENTENCES and MAX_WORDS, in
    reading order."""
    ranked = sorted(found, key=lambda c: -ranked_score(c))
    if not ranked:
        return []
    chosen = [ranked[0]]
    words = len(ranked[0].text.split())
    for candidate in ranked[1:]:
        if len(chosen) >= MAX_SENTENCES or ranked_score(candidate) < ranked_score(ranked[0]) - MARGIN:
            break
        size = len(candidate.text.split())
        if words + size > MAX_WORDS or hits[candidate.hit_index].article_id != hits[ranked[0].hit_index].article_id:
            continue  # too long, or another story: an answer quotes one article
        chosen.append(candidate)
        words += size
    return sorted(chosen, key=lambda c: (c.hit_index, c.order))


def trim_words(text: str, limit: int = MAX_WORDS) -> str:
    """A sentence longer than the answer's word budget, cut at a word with an ellipsis."""
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit]) + "…"


def anchor_coverage(question: str, hits: list[Hit]) -> float:
    """Share of the question's names and numbers that appear in the retrieved passages (1.0 when it has none)."""
    anchors = {_fold(a) for a in anchor_words(question)}
    if not anchors:
        return 1.0
    present = {_fold(w) for hit in hits for w in content_words(hit.text + " " + hit.title)}
    return len(anchors & present) / len(anchors)


def enough_to_go_on(question: str, hits: list[Hit]) -> bool:
    """False for a question with no content words ("what?") or a lone word that no passage contains ("clear"):
    the embedder ranks some sentence first for any text, so such a question would get a random quote."""
    words = {_fold(w) for w in content_words(question)}
    if len(words) != 1:
        return bool(words)
    (word,) = words
    stem = word[: max(4, len(word) - 2)]  # "strikes" finds "strike", "grèves" finds "grève"
    return any(_fold(w).startswith(stem) for hit in hits for w in content_words(hit.text + " " + hit.title))
