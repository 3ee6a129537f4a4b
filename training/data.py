"""Training and measuring cases for the answer model, from ../shared/eval, split by article.

A case is what the answerer meets: a question and the sentences of three passages. Answerable cases hold the
question's own paragraph and the two paragraphs of other articles most like the question; unanswerable ones
hold the three most like it from other articles only (the whole Wikipedia page held out, since its other
paragraphs often state the answer too). XQuAD's paragraphs are translations of one another, so a case draws
each paragraph's language at random among the twelve: English questions meet German, Russian or Chinese
sentences, and the language a sentence shares with the question stops being a hint that it answers.

Split (eval/SOURCES.md): XQuAD articles 0-17 and PIAF articles 0-149 train; the rest measure.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
XQUAD_TRAIN_ARTICLES = 18
PIAF_TRAIN_ARTICLES = 150
PASSAGES = 3


@dataclass(frozen=True)
class Paragraph:
    key: str  # `corpus:lang:article#index`
    page: str  # `corpus:article`: paragraphs of one page are never distractors for each other
    lang: str
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    lang: str
    paragraph: str  # the key of the paragraph holding the answer, in the context language
    answer_start: int
    answers: tuple[str, ...]


@dataclass
class Corpus:
    """Paragraphs and questions of one split."""

    paragraphs: dict[str, Paragraph]
    questions: list[Question]


def _articles(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def load_split(eval_dir: Path, split: str, articles: int | None = None) -> Corpus:
    """The train or measure part of XQuAD (every language) and PIAF; only its first `articles` articles of
    each set when given (a quick run)."""
    paragraphs: dict[str, Paragraph] = {}
    questions: list[Question] = []
    english = {}
    for lang in XQUAD_LANGUAGES:
        for number, article in enumerate(_articles(eval_dir / "xquad" / f"xquad.{lang}.dev.json")):
            if not _wanted(number, XQUAD_TRAIN_ARTICLES, split, articles):
                continue
            for index, paragraph in enumerate(article["paragraphs"]):
                key = f"xquad:{lang}:{number}#{index}"
                paragraphs[key] = Paragraph(key, f"xquad:{number}", lang, paragraph["context"])
                for qa in paragraph["qas"]:
                    answer = qa["answers"][0]
                    if lang == "en":
                        english[qa["id"]] = qa["question"]
                    questions.append(
                        Question(qa["id"], qa["question"], lang, key, answer["answer_start"], (answer["text"],))
                    )
    for question in list(questions):  # the English question of each translated one: the cross-lingual case
        if question.lang != "en" and question.id in english:
            questions.append(
                Question(question.id, english[question.id], "en", question.paragraph, question.answer_start, ())
            )
    for number, article in enumerate(_articles(eval_dir / "piaf" / "piaf-v1.0.json")):
        if not _wanted(number, PIAF_TRAIN_ARTICLES, split, articles):
            continue
        for index, paragraph in enumerate(article["paragraphs"]):
            key = f"piaf:fr:{number}#{index}"
            paragraphs[key] = Paragraph(key, f"piaf:{number}", "fr", paragraph["context"])
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                questions.append(
                    Question(qa["id"], qa["question"], "fr", key, answer["answer_start"], (answer["text"],))
                )
    return Corpus(paragraphs, questions)


def _wanted(number: int, first_measured: int, split: str, articles: int | None) -> bool:
    """Whether article `number` (file order) is in `split`, and among its first `articles` when limited."""
    in_train = number < first_measured
    if in_train != (split == "train"):
        return False
    return articles is None or (number if in_train else number - first_measured) < articles


@dataclass(frozen=True)
class Case:
    """A question and the paragraphs the answerer reads, in retrieval's order; `answerable` when the question's
    own paragraph is among them."""

    question: Question
    paragraphs: tuple[str, ...]
    answerable: bool


def make_cases(corpus: Corpus, similarity: dict[str, list[str]], per_question: int, seed: int) -> list[Case]:
    """An answerable and an unanswerable case for each question. `similarity[qkey]` lists paragraph keys most
    like the question first (any language); XQuAD distractors come in a language drawn per case."""
    rng = random.Random(seed)
    cases = []
    for question in _sample(corpus.questions, per_question, rng):
        own = corpus.paragraphs[question.paragraph]
        ranked = [corpus.paragraphs[key] for key in similarity[question_key(question)]]
        others = _one_per_paragraph([p for p in ranked if p.page != own.page], rng)
        answerable = sorted([own, *others[: PASSAGES - 1]], key=lambda p: ranked.index(p) if p in ranked else 0)
        cases.append(Case(question, tuple(p.key for p in answerable), True))
        cases.append(Case(question, tuple(p.key for p in others[:PASSAGES]), False))
    return cases


def _sample(questions: list[Question], per_question: int, rng: random.Random) -> list[Question]:
    """At most `per_question` variants (context languages) of each question id and question language: an English
    question has twelve, one per language of its paragraph, the cross-lingual case the product exists for."""
    groups: dict[tuple[str, str], list[Question]] = {}
    for question in questions:
        groups.setdefault((question.id, question.lang), []).append(question)
    picked = []
    for group in groups.values():
        picked += rng.sample(group, min(per_question, len(group)))
    return picked


def _one_per_paragraph(paragraphs: list[Paragraph], rng: random.Random) -> list[Paragraph]:
    """Each translated paragraph once, in one language drawn at random (the most similar one first)."""
    by_source: dict[str, list[Paragraph]] = {}
    for paragraph in paragraphs:
        source = paragraph.key.split(":", 2)[0] + ":" + paragraph.key.split(":", 2)[2]
        by_source.setdefault(source, []).append(paragraph)
    return [rng.choice(group) for group in by_source.values()]


def question_key(question: Question) -> str:
    return f"{question.lang}:{question.paragraph}:{question.id}"
