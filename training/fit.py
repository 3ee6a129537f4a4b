"""Fit the answer model on the train split and measure it, beside the cosine answerer, on the measure split.

Every case goes through the product's own code: `extractive.candidates` picks the sentences, `cue_matrix` the
cues, the product's embedder the vectors, so the model learns exactly what it will be given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bot import extractive
from bot.answer_model import CUES, REFUSAL_FEATURES, AnswerModel
from bot.engine import ANCHOR_BONUS, REFUSAL_THRESHOLD, REFUSAL_THRESHOLD_SAME_LANGUAGE
from text.language import detect_language
from text.sentences import split_sentences
from training.data import Case, Corpus, question_key
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.records import Hit

RANK = 16
ANSWERABLE_REFUSED = 0.04  # the share of answerable training cases the threshold may refuse


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
        p.cues = extractive.cue_matrix(p.case.question.text, p.found)
    return prepared


def _padded(prepared: list[Prepared]) -> tuple[torch.Tensor, ...]:
    n = max(len(p.found) for p in prepared)
    dim = prepared[0].query.shape[0]
    q = torch.tensor(np.stack([p.query for p in prepared]))
    s = torch.zeros(len(prepared), n, dim)
    c = torch.zeros(len(prepared), n, len(CUES))
    mask = torch.zeros(len(prepared), n, dtype=torch.bool)
    for i, p in enumerate(prepared):
        s[i, : len(p.found)] = torch.tensor(p.vectors)
        c[i, : len(p.found)] = torch.tensor(p.cues)
        mask[i, : len(p.found)] = True
    gold = torch.tensor([p.gold for p in prepared])
    return q, s, c, mask, gold


def train_scorer(prepared: list[Prepared], epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U, V and the cue weights, by a listwise softmax over each answerable case's candidates."""
    torch.manual_seed(seed)
    answerable = [p for p in prepared if p.gold >= 0]
    q, s, c, mask, gold = _padded(answerable)
    dim = q.shape[1]
    u = torch.nn.Parameter(torch.randn(RANK, dim) * 0.01)
    v = torch.nn.Parameter(torch.randn(RANK, dim) * 0.01)
    w = torch.nn.Parameter(torch.tensor(extractive.COSINE_CUE_WEIGHTS.copy()))
    temperature = torch.nn.Parameter(torch.tensor(30.0))
    optimiser = torch.optim.Adam([u, v, w, temperature], lr=0.01)
    for _ in range(epochs):
        optimiser.zero_grad()
        scores = torch.einsum("bnd,bd->bn", s, q) + torch.einsum("bnr,br->bn", s @ v.T, q @ u.T) + c @ w
        logits = (temperature * scores).masked_fill(~mask, -1e9)
        loss = torch.nn.functional.cross_entropy(logits, gold) + 1e-3 * (u.square().sum() + v.square().sum())
        loss.backward()
        optimiser.step()
    return u.detach().numpy(), v.detach().numpy(), w.detach().numpy()


def refusal_matrix(prepared: list[Prepared], model: AnswerModel | None) -> np.ndarray:
    """REFUSAL_FEATURES of each case, after scoring its candidates with `model` (None: the cosine answerer)."""
    rows = []
    for p in prepared:
        score(p, model)
        coverage = extractive.anchor_coverage(p.case.question.text, p.hits)
        rows.append(extractive.refusal_features(p.found, coverage))
    return np.stack(rows)


def score(p: Prepared, model: AnswerModel | None) -> None:
    cosines = p.vectors @ p.query
    scores = model.scores(p.query, p.vectors, p.cues) if model else cosines + p.cues @ extractive.COSINE_CUE_WEIGHTS
    for candidate, cosine, value in zip(p.found, cosines, scores, strict=True):
        candidate.cosine, candidate.score = float(cosine), float(value)


def train_refusal(features: np.ndarray, answerable: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Logistic weights (bias last) and the probability threshold that refuses ANSWERABLE_REFUSED of the
    answerable cases."""
    torch.manual_seed(seed)
    x = torch.tensor(features)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    y = torch.tensor(answerable, dtype=torch.float32)
    weights = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights, bias], max_iter=200)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(((x - mean) / std) @ weights + bias, y)
        loss.backward()
        return loss

    optimiser.step(closure)
    raw = (weights / std).detach()  # folded back onto unscaled features
    raw_bias = (bias - (mean / std) @ weights).detach()
    coefficients = np.concatenate([raw.numpy(), raw_bias.numpy()]).astype(np.float32)
    logits = features @ coefficients[:-1] + coefficients[-1]
    probabilities = 1 / (1 + np.exp(-logits))
    threshold = float(np.quantile(probabilities[answerable.astype(bool)], ANSWERABLE_REFUSED))
    return coefficients, threshold


def fit(prepared: list[Prepared], embedder: str, epochs: int, seed: int) -> AnswerModel:
    u, v, w = train_scorer(prepared, epochs, seed)
    scorer = AnswerModel(u, v, w, np.zeros(len(REFUSAL_FEATURES) + 1, np.float32), 0.0, embedder)
    features = refusal_matrix(prepared, scorer)
    answerable = np.array([p.case.answerable for p in prepared], dtype=np.float32)
    coefficients, threshold = train_refusal(features, answerable, seed)
    return AnswerModel(u, v, w, coefficients, threshold, embedder)


def group_of(p: Prepared) -> str:
    """The figure a case counts in: PIAF, XQuAD with the question in the paragraph's language, or across."""
    question = p.case.question
    if question.paragraph.startswith("piaf"):
        return "PIAF fr"
    context = question.paragraph.split(":")[1]
    return "XQuAD same language" if context == question.lang else f"XQuAD en->{context}"


def measure(prepared: list[Prepared], model: AnswerModel | None) -> dict[str, dict[str, float]]:
    """Per group: top sentence is the answer's (answerable cases), and the shares refused (both kinds)."""
    groups: dict[str, dict[str, list[float]]] = {}
    for p in prepared:
        score(p, model)
        coverage = extractive.anchor_coverage(p.case.question.text, p.hits)
        if model is None:
            best = max(p.found, key=lambda c: c.cosine)
            same = best.same_language
            refused = max(c.cosine for c in p.found) + ANCHOR_BONUS * coverage < (
                REFUSAL_THRESHOLD_SAME_LANGUAGE if same else REFUSAL_THRESHOLD
            )
        else:
            features = extractive.refusal_features(p.found, coverage)
            refused = model.answer_probability(features) < model.threshold
        top = max(range(len(p.found)), key=lambda i: p.found[i].score)
        for name in (group_of(p), "all"):
            figures = groups.setdefault(
                name, {"top_sentence": [], "answerable_refused": [], "unanswerable_refused": []}
            )
            if p.case.answerable:
                figures["top_sentence"].append(float(top == p.gold))
                figures["answerable_refused"].append(float(refused))
            else:
                figures["unanswerable_refused"].append(float(refused))
    return {
        name: {key: round(float(np.mean(values)), 3) if values else float("nan") for key, values in figures.items()}
        | {"cases": len(figures["top_sentence"])}
        for name, figures in sorted(groups.items())
    }
