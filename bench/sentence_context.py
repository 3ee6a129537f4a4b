"""Does a sentence read with its neighbours pick the answer better than the sentence alone?

The default answerer scores each candidate sentence by the cosine of its own e5 vector to the question's, so a
sentence that answers through a pronoun ("It opened in 1995") loses to one that names the topic. The variants
mix in the cosine of a window (the sentence with the one before it, or with both neighbours):
`score = (1 - g) cos(q, sentence) + g cos(q, window) + cues`, at twice the encoding. Refusal and the passages'
order still read the sentence's own cosine, so only the choice of sentence changes.

Run: `.venv/bin/python bench/sentence_context.py [--limit N]`; writes its table into docs/quality.md between
`<!-- sentence-context:begin -->` and `<!-- sentence-context:end -->`. Searches run once per question; each
variant answers the same hits.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model, write_marked_section  # noqa: E402
from bench.quality import ANSWERED, XQUAD, all_sets  # noqa: E402
from bot import extractive  # noqa: E402
from bot.engine import AnswerEngine  # noqa: E402
from newsdesk.evaluation import (  # noqa: E402
    build_eval_store,
    contains_any,
    gold_answers,
    questions_for,
    ranked_articles,
)
from newsdesk.settings import Settings  # noqa: E402
from text.language import detect_language  # noqa: E402

DOC = ROOT / "docs" / "quality.md"
SECTION = "sentence-context"  # its marked section of docs/quality.md
SETS = (*ANSWERED, "mixed, en questions")
# (sentences before, sentences after, weight of the window's cosine); None: the sentence alone (today).
VARIANTS: dict[str, tuple[int, int, float] | None] = {
    "sentence alone (default)": None,
    "with the sentence before, g=0.3": (1, 0, 0.3),
    "with both neighbours, g=0.3": (1, 1, 0.3),
}


@contextmanager
def windowed(before: int, after: int, weight: float) -> Iterator[None]:
    """The answerer scoring sentences with their windows, for the duration of the block."""
    plain_candidates, plain_scores = extractive.candidates, extractive.score_candidates
    windows: dict[str, str] = {}

    def candidates(hits: list[Any], passages: int = extractive.PASSAGES, question_lang: str = "") -> list[Any]:
        found = plain_candidates(hits, passages, question_lang)
        windows.clear()
        for candidate in found:
            hit = hits[candidate.hit_index]
            spans = extractive.sentence_spans(hit)
            first, last = max(0, candidate.order - before), min(len(spans) - 1, candidate.order + after)
            windows[candidate.text] = hit.text[spans[first][0] : spans[last][1]]
        return found

    def score_candidates(question: str, found: list[Any], embedder: Any, question_lang: str) -> None:
        plain_scores(question, found, embedder, question_lang)
        if not found:
            return
        query = embedder.query_vector(question)
        around = embedder.encode_passages([windows[c.text] for c in found]) @ query
        for candidate, window_cosine in zip(found, around, strict=True):
            candidate.score += weight * (float(window_cosine) - candidate.cosine)

    extractive.candidates, extractive.score_candidates = candidates, score_candidates
    try:
        yield
    finally:
        extractive.candidates, extractive.score_candidates = plain_candidates, plain_scores


Cases = list[tuple[Any, list[Any], str]]  # (question, its hits, its language)


def searched_once(
    names: Sequence[str], limit: int
) -> Iterator[tuple[str, str, AnswerEngine, Cases, dict[str, set[str]]]]:
    """For each set and part (train, then measure): the engine, the questions with their hits, searched once so
    that every variant answers the same hits, and the gold answers."""
    settings = Settings()
    sets = all_sets()
    for name in names:
        contexts, questions_file = sets[name]
        store = build_eval_store(settings, contexts)
        store.embedder.prepare()  # the vectors a warm bot computes, as bench/quality.py
        engine = AnswerEngine(store)
        extra = XQUAD / "xquad.en.dev.json" if name.startswith("XQuAD") else None  # as bench/quality.py
        gold = gold_answers(contexts, questions_file, extra)
        for part in ("train", "measure"):
            questions = questions_for(contexts, questions_file, limit, part)
            cases = [(q, store.search(q.text, 20), detect_language(q.text, default="en")) for q in questions]
            yield name, part, engine, cases, gold


def answered(engine: AnswerEngine, cases: Cases, gold: dict[str, set[str]]) -> str:
    """hit@1 / containment / words per answer over the cases."""
    first = contained = words = 0
    for question, hits, lang in cases:
        answer = engine.answer_from_hits(question.text, hits[: engine.k], lang)
        first += question.article_id in ranked_articles(answer.retrieved + hits[engine.k :])[:1]
        contained += not answer.refused and contains_any(answer.answer, gold[question.id])
        words += len(re.sub(r"\[\d+\]", "", answer.answer).split())
    n = max(1, len(cases))
    return f"{first / n:.3f} / {contained / n:.3f} / {words / n:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=100, help="questions per set and part")
    args = parser.parse_args()
    columns: list[str] = []
    cells: dict[str, list[str]] = {name: [] for name in VARIANTS}
    for name, part, engine, cases, gold in searched_once(SETS, args.limit):
        columns.append(f"{name}, {part} ({len(cases)})")
        for variant, window in VARIANTS.items():
            if window is None:
                cells[variant].append(answered(engine, cases, gold))
            else:
                with windowed(*window):
                    cells[variant].append(answered(engine, cases, gold))
        print(f"{name}, {part}: done", flush=True)
    text = "\n".join(
        [
            "## A sentence read with its neighbours (tried, not adopted)",
            "",
            f"Measured {date.today()} on {cpu_model()} by `.venv/bin/python bench/sentence_context.py"
            f" --limit {args.limit}`: the default answerer",
            "with each candidate sentence's cosine mixed with its window's, `(1 - g) cos(q, sentence) + g cos(q,",
            "window)`, twice the encoding; refusal and the passages' order unchanged. Each cell: hit@1 / containment /",
            "words per answer (refusals count as not containing).",
            "",
            "| variant | " + " | ".join(columns) + " |",
            "|---|" + "---|" * len(columns),
            *(f"| {variant} | " + " | ".join(row) + " |" for variant, row in cells.items()),
        ]
    )
    write_marked_section(DOC, SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
