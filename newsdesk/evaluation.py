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
