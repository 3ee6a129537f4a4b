"""The training cases as the answerer meets them: candidates, vectors and the cosine answerer's scores.

Every case goes through the product's own code: `extractive.candidates` picks the sentences, `cue_matrix` the
cues, the product's embedder the vectors, so the reader learns to reread exactly what it will be given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot import extractive
from text.language import detect_language
from text.sentences import split_sentences
from training.data import Case, Corpus, question_key
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.records import Hit


class VectorCache:
    """Embeddings of texts, kept on disk by content hash so a second run embeds nothing."""

    def __init__(self, embedder: NewsEmbeddings, folder: Path) -> None:
        self.embedder = embedder
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _get(self, texts: list[str], kind: str) -> np.ndarray:
        path = self.folder / f"{self.embedder.name}-{kind}.npz"
        stored: dict[str, np.ndarray] = dict(np.load(path)) if path.exists() else {}
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in stored}.items())
        if missing:
            encode = self.embedder.encode_queries if kind == "query" else self.embedder.encode_passages
            for start in range(0, len(missing), 512):
                batch = missing[start : start + 512]
                for (key, _), vector in zip(batch, encode([t for _, t in batch]), strict=True):
                    stored[key] = vector
            np.savez(path, **stored)
        return np.stack([stored[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._get(texts, "query")

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._get(texts, "passage")


def similarity(corpus: Corpus, cache: VectorCache) -> dict[str, list[str]]:
    """For each question, every paragraph key, most like the question first (e5 cosine, as dense search)."""
    keys = list(corpus.paragraphs)
    paragraphs = cache.passages([corpus.paragraphs[k].text for k in keys])
    questions = cache.queries([q.text for q in corpus.questions])
    ranking = {}
    for question, vector in zip(corpus.questions, questions, strict=True):
        order = np.argsort(-(paragraphs @ vector))[:40]
        ranking[question_key(question)] = [keys[i] for i in order] + [question.paragraph]
    return ranking


@dataclass
class Prepared:
    """One case ready for the model: its candidates, their vectors and cues, and the gold candidate (-1: none)."""

    case: Case
    found: list[extractive.Candidate]
    hits: list[Hit]
    query: np.ndarray
    vectors: np.ndarray
    cues: np.ndarray
    gold: int


def prepare(cases: list[Case], corpus: Corpus, cache: VectorCache) -> list[Prepared]:
    """Candidates as the answerer builds them; the gold one is the sentence holding the answer's start."""
    langs = {k: detect_language(p.text) for k, p in corpus.paragraphs.items()}
    prepared = []
    for case in cases:
        question = case.question
        hits = [
            Hit(key, corpus.paragraphs[key].page, corpus.paragraphs[key].text, 1.0 - i / 10, lang=langs[key])
            for i, key in enumerate(case.paragraphs)
        ]
        found = extractive.candidates(hits, question_lang=detect_language(question.text))
        if not found:
            continue
        gold = -1
        if case.answerable:
            own = case.paragraphs.index(question.paragraph)
            spans = split_sentences(corpus.paragraphs[question.paragraph].text)
            sentence = next((s.text for s in spans if s.start <= question.answer_start < s.end), None)
            gold = next((i for i, c in enumerate(found) if c.hit_index == own and c.text == sentence), -1)
            if gold < 0:
                continue  # the answer's sentence is not a candidate (too short): nothing to learn from
        prepared.append(Prepared(case, found, hits, np.zeros(0), np.zeros(0), np.zeros(0), gold))
    texts = sorted({c.text for p in prepared for c in p.found})
    vectors = dict(zip(texts, cache.passages(texts), strict=True))
    questions = sorted({p.case.question.text for p in prepared})
    queries = dict(zip(questions, cache.queries(questions), strict=True))
    for p in prepared:
        p.query = queries[p.case.question.text]
        p.vectors = np.stack([vectors[c.text] for c in p.found])
        p.cues = extractive.cue_matrix(p.case.question.text, p.found, detect_language(p.case.question.text))
    return prepared


def score(p: Prepared) -> None:
    """Each candidate's cosine and the cosine answerer's score, as bot.extractive.score_candidates sets them."""
    cosines = p.vectors @ p.query
    scores = cosines + p.cues @ extractive.COSINE_CUE_WEIGHTS
    for candidate, cosine, value in zip(p.found, cosines, scores, strict=True):
        candidate.cosine, candidate.score = float(cosine), float(value)


def group_of(p: Prepared) -> str:
    """The figure a case counts in: PIAF, XQuAD with the question in the paragraph's language, or across."""
    question = p.case.question
    if question.paragraph.startswith("piaf"):
        return "PIAF fr"
    context = question.paragraph.split(":")[1]
    return "XQuAD same language" if context == question.lang else f"XQuAD en->{context}"
