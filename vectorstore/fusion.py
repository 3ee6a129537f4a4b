"""Fusion: the dense ranking and the keyword rankings of one search made into one relevance score per passage.

Pure arithmetic over scores by chunk id, so every step can be checked by hand (tests/test_retrieval.py):
1. levelling across languages: each dense cosine minus the offset of its passage's language for the question's
   language (vectorstore/calibration.py), so e5's higher cosines within a language do not decide;
2. normalisation: the levelled cosines scaled min-max over the candidates, 0 to 1;
3. weights: each keyword ranking scaled to its best score and weighted, and added;
4. levelling of the keyword evidence (`level_languages`): it reorders passages within a language but does not
   lift one language over another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Scores = dict[str, float]  # chunk id -> score, higher is better


@dataclass(frozen=True)
class KeywordScores:
    """BM25 scores of one question's two keyword searches (see Store.keyword_search)."""

    same_language: Scores = field(default_factory=dict)
    anchors: Scores = field(default_factory=dict)

    def by_chunk(self) -> Scores:
        """The BM25 score a hit reports: the same-language search's where both found the passage."""
        return {**self.anchors, **self.same_language}


@dataclass(frozen=True)
class Fused:
    """The result of fusion: `scores` from 0 to Fusion.most, and the levelled dense cosines (step 1), which
    recency ordering compares."""

    scores: Scores
    dense: Scores


def normalised(scores: Scores) -> Scores:
    """Min-max scaled to 0..1 (all 1.0 when the scores are equal)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {key: (value - low) / span if span > 0 else 1.0 for key, value in scores.items()}


def level_languages(fused: Scores, dense: Scores, langs: dict[str, str]) -> Scores:
    """`fused` (dense plus keyword evidence) with each passage language's scores lowered by how much more its
    best score rose above its best dense score than the least raised language's did. Keywords then reorder
    passages within a language, but only the dense scores choose between languages: same-language BM25 is
    evidence that passages in other languages cannot get (docs/quality.md, "Language-neutral ranking"). With one
    language, nothing changes."""
    best_fused: dict[str, float] = {}
    best_dense: dict[str, float] = {}
    for cid, value in fused.items():
        lang = langs.get(cid, "")
        best_fused[lang] = max(best_fused.get(lang, value), value)
        best_dense[lang] = max(best_dense.get(lang, dense.get(cid, 0.0)), dense.get(cid, 0.0))
    rise = {lang: best_fused[lang] - best_dense[lang] for lang in best_fused}
    least = min(rise.values(), default=0.0)
    return {cid: value - (rise[langs.get(cid, "")] - least) for cid, value in fused.items()}


@dataclass(frozen=True)
class Fusion:
    """How keyword evidence is mixed into the dense ranking: a weighted sum of scores, each scaled over the
    candidates, so keywords reorder close dense scores but cannot overturn a clear dense winner.

    Same-language keyword hits use every content word of the question; cross-language ones only its anchors
    (names, numbers), because a passage that shares no word with the question must not be pulled up by BM25.
    A weight of 0 leaves that search out (Store.search does not run it).
    """

    same_language: float = 0.8
    anchors: float = 0.3

    @property
    def most(self) -> float:
        """The highest fused score: the best dense passage found first by both keyword searches."""
        return 1.0 + self.same_language + self.anchors

    def fuse(self, dense: Scores, keywords: KeywordScores, langs: dict[str, str], offsets: Scores) -> Fused:
        """One score for every passage that either ranking found; `langs` gives each passage's language and
        `offsets` the cosine level of each passage language for the question's language."""
        levelled = {cid: score - offsets.get(langs.get(cid, ""), 0.0) for cid, score in dense.items()}
        dense_norm = normalised(levelled)
        fused = {cid: dense_norm.get(cid, 0.0) for cid in {*dense, *keywords.same_language, *keywords.anchors}}
        for weight, scores in ((self.same_language, keywords.same_language), (self.anchors, keywords.anchors)):
            top = max(scores.values(), default=0.0)
            for cid, value in scores.items():
                fused[cid] += weight * value / top
        return Fused(self.level(fused, dense_norm, langs), levelled)

    def level(self, fused: Scores, dense_norm: Scores, langs: dict[str, str]) -> Scores:
        """Step 4 (module docstring); bench/ranking_variants.py measures fusion without it."""
        return level_languages(fused, dense_norm, langs)
