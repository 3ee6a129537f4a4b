"""Quality measurement on SQuAD-format data: each paragraph is one article (`title#index`).

The corpus goes into its own store under NEWSDESK_DATA_DIR/eval, so a second run reuses the vectors
(ingest skips unchanged articles) and the user's own articles are never mixed in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsdesk.settings import Settings


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    article_id: str
    answers: tuple[str, ...]


def load_squad(path: Path) -> tuple[dict[str, str], list[Question]]:
    """Paragraph texts by article id, and the questions with the article that holds their answer."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs: dict[str, str] = {}
    questions: list[Question] = []
    for entry in data:
        for index, paragraph in enumerate(entry["paragraphs"]):
            article_id = f"{entry['title']}#{index}"
            paragraphs[article_id] = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", []))
                questions.append(Question(qa["id"], qa["question"], article_id, answers))
    return paragraphs, questions


def eval_settings(settings: Settings, contexts: Path) -> Settings:
    """The same settings with the data folder moved to a per-corpus folder under eval/."""
    slug = re.sub(r"[^\w.-]+", "_", contexts.stem)
    folder = settings.data_dir / "eval" / settings.embedder.replace(":", "_").replace("/", "_") / slug
    return settings.model_copy(update={"data_dir": folder, "chroma_host": None})


def build_eval_store(settings: Settings, contexts: Path) -> Any:
    """A store holding every paragraph of `contexts` as an article, ingested (or reused) now."""
    from ingest.articles import Article
    from ingest.pipeline import Ingester
    from newsdesk.runtime import open_store

    paragraphs, _ = load_squad(contexts)
    store = open_store(eval_settings(settings, contexts))
    articles = [
        Article(id=aid, title=aid.split("#")[0].replace("_", " "), text=text, origin=str(contexts))
        for aid, text in paragraphs.items()
    ]
    Ingester(store, settings.chunk_tokens, settings.chunk_overlap).ingest(articles)
    return store


def page_of(article_id: str) -> str:
    """The Wikipedia page of an eval article id (`title#paragraph`)."""
    return article_id.rpartition("#")[0]


def ranked_articles(hits: list[Any]) -> list[str]:
    """Article ids in the order of their best chunk."""
    return list(dict.fromkeys(h.article_id for h in hits))


def questions_for(contexts: Path, questions_file: Path, limit: int | None) -> list[Question]:
    """Questions from `questions_file`, pointed at the articles of `contexts` (same SQuAD ids)."""
    _, context_questions = load_squad(contexts)
    home = {q.id: q.article_id for q in context_questions}
    _, asked = load_squad(questions_file)
    chosen = [Question(q.id, q.text, home[q.id], q.answers) for q in asked if q.id in home]
    return chosen[:limit] if limit else chosen


def evaluate_retrieval(
    settings: Settings, contexts: Path, questions_file: Path, limit: int | None = None, k: int = 10
) -> dict[str, float]:
    """Recall@1/5/10 and MRR@10 of each question's own paragraph."""
    store = build_eval_store(settings, contexts)
    questions = questions_for(contexts, questions_file, limit)
    hits_at = {1: 0, 5: 0, 10: 0}
    reciprocal = 0.0
    for question in questions:
        ranking = ranked_articles(store.search(question.text, 2 * k))[:k]
        if question.article_id in ranking:
            rank = ranking.index(question.article_id) + 1
            reciprocal += 1.0 / rank
            for cutoff in hits_at:
                hits_at[cutoff] += rank <= cutoff
    n = max(1, len(questions))
    result = {f"recall@{c}": round(v / n, 3) for c, v in hits_at.items()}
    result["mrr"] = round(reciprocal / n, 3)
    result["questions"] = len(questions)
    return result


def normalise_answer(value: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no English articles, single spaces."""
    value = re.sub(r"\[\d+\]", " ", value.lower())
    value = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in value)
    return " ".join(w for w in value.split() if w not in {"a", "an", "the"})


def contains_any(text: str, answers: set[str]) -> bool:
    haystack = f" {normalise_answer(text)} "
    return any(f" {a} " in haystack for a in answers if a)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def evaluate_answers(
    settings: Settings, contexts: Path, questions_file: Path, extra_gold: Path | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Answer quality as the issue defines it, plus the refusal calibration table.

    Unanswerable cases are the same questions asked of the corpus without their article: SQuAD's articles are
    Wikipedia pages, so every paragraph of the question's page is held out of the results (its sibling
    paragraphs often state the answer too). The harder case of holding out only the question's own paragraph is
    reported as well, but not calibrated on.
    """
    import time

    from bot.engine import AnswerEngine, cited_numbers
    from vectorstore.language import detect_language

    store = build_eval_store(settings, contexts)
    engine = AnswerEngine(store)
    questions = questions_for(contexts, questions_file, limit)
    gold: dict[str, set[str]] = {}
    for path in {contexts, questions_file, *([extra_gold] if extra_gold else [])}:
        for q in load_squad(path)[1]:
            gold.setdefault(q.id, set()).update(normalise_answer(a) for a in q.answers)
    counts = {
        "hit@1": 0,
        "hit@5": 0,
        "contained": 0,
        "refused": 0,
        "refused_unanswerable": 0,
        "refused_without_paragraph": 0,
    }
    cited = cited_valid = cited_in_retrieved = 0
    latencies: list[float] = []
    confidences: list[tuple[float, float]] = []
    too_long = 0
    for question in questions:
        started = time.perf_counter()
        hits = store.search(question.text, 20)
        lang = detect_language(question.text, default="en")
        answer = engine.answer_from_hits(question.text, hits[: engine.k], lang)
        latencies.append((time.perf_counter() - started) * 1000)
        ranking = ranked_articles(answer.retrieved + hits[engine.k :])  # in the order the answer puts them
        counts["hit@1"] += question.article_id in ranking[:1]
        counts["hit@5"] += question.article_id in ranking[:5]
        counts["refused"] += answer.refused
        counts["contained"] += (not answer.refused) and contains_any(answer.answer, gold[question.id])
        too_long += len(re.sub(r"\[\d+\]", "", answer.answer).split()) > 80
        for n in cited_numbers(answer.answer):
            cited += 1
            source = next((s for s in answer.sources if s.n == n), None)
            cited_in_retrieved += source is not None and source.hit in answer.retrieved
            cited_valid += source is not None and contains_any(source.hit.text, gold[question.id])
        page = page_of(question.article_id)
        other_pages = [h for h in store.search(question.text, 60) if page_of(h.article_id) != page][: engine.k]
        unanswerable = engine.answer_from_hits(question.text, other_pages, lang)
        counts["refused_unanswerable"] += unanswerable.refused
        without_paragraph = [h for h in hits if h.article_id != question.article_id][: engine.k]
        counts["refused_without_paragraph"] += engine.answer_from_hits(question.text, without_paragraph, lang).refused
        confidences.append((answer.confidence, unanswerable.confidence))
    n = max(1, len(questions))
    result: dict[str, Any] = {name: round(value / n, 3) for name, value in counts.items()}
    result.update(
        questions=len(questions),
        citation_in_retrieved=round(cited_in_retrieved / max(1, cited), 3),
        citation_with_gold=round(cited_valid / max(1, cited), 3),
        answers_over_80_words=too_long,
        latency_p50_ms=round(_percentile(latencies, 0.5), 1),
        latency_p95_ms=round(_percentile(latencies, 0.95), 1),
        calibration=calibration_table(confidences),
    )
    return result


def calibration_table(confidences: list[tuple[float, float]]) -> list[dict[str, float]]:
    """For candidate thresholds: the share of answerable questions refused and of unanswerable ones refused."""
    rows = []
    n = max(1, len(confidences))
    for step in range(70, 92):
        threshold = step / 100
        rows.append(
            {
                "threshold": threshold,
                "answerable_refused": round(sum(a < threshold for a, _ in confidences) / n, 3),
                "unanswerable_refused": round(sum(u < threshold for _, u in confidences) / n, 3),
            }
        )
    return rows
