"""Where the default answerer loses containment, so that the next change aims at the largest loss.

For every answered set and part, each question's answer (the cosine answerer over the search's hits) is put in
one class: quoted (a gold answer is in it), refused, or why the answer's sentence was not quoted:

- not among the sentences read: no candidate sentence of the first passages holds a gold answer (with whether
  the question's own paragraph was among the search's hits at all);
- another article: only a sentence of an article other than the one quoted holds it;
- over the budget: the quoted article's sentence holding it scored within the runners-up' margin of the best,
  but the answer's word or sentence limit left it out;
- below the margin: it scored further below the best than the margin lets a runner-up be.

A second table splits the questions by whether they name anything (a name or a number: `anchor_words`), the
only words that read the same in every language. SQuAD-style questions were written with their paragraph in
view, and many of those that name nothing ("Where does she retire?") cannot be placed in an archive.

Run: `.venv/bin/python bench/answer_misses.py [--limit N]`; writes its tables into docs/quality.md between
`<!-- answer-misses:begin -->` and `<!-- answer-misses:end -->`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model, write_marked_section  # noqa: E402
from bench.quality import ANSWERED, MIXED_QUESTIONS  # noqa: E402
from bench.sentence_context import searched_once  # noqa: E402
from bot import extractive  # noqa: E402
from bot.engine import AnswerEngine  # noqa: E402
from newsdesk.evaluation import Question, contains_any  # noqa: E402
from text.language import detect_language  # noqa: E402
from text.words import anchor_words, asks_for_recent  # noqa: E402
from vectorstore.records import Hit  # noqa: E402

DOC = ROOT / "docs" / "quality.md"
SECTION = "answer-misses"
SETS = (*ANSWERED, *(f"mixed, {lang} questions" for lang in MIXED_QUESTIONS))
CLASSES = (
    "quoted",
    "refused",
    "not among the sentences read, own paragraph not in the hits",
    "not among the sentences read, own paragraph in the hits",
    "another article",
    "over the budget",
    "below the margin",
)


def classify(engine: AnswerEngine, question: Question, hits: list[Hit], lang: str, gold: set[str]) -> str:
    """The class (CLASSES) of one question's answer from `hits` (the search's, all of them)."""
    answer = engine.answer_from_hits(question.text, hits[: engine.k], lang)
    if answer.refused:
        return "refused"
    if contains_any(answer.answer, gold):
        return "quoted"
    # the answerer's reading again, to see where the gold sentence stood
    question_lang = detect_language(question.text)
    read = hits[: engine.k]
    found = extractive.candidates(read, question_lang=question_lang)
    extractive.score_candidates(question.text, found, engine.store.embedder, question_lang)
    if not asks_for_recent(question.text):
        read = extractive.order_by_evidence(found, read)
    holding = [c for c in found if contains_any(c.text, gold)]
    if not holding:
        retrieved = question.article_id in {h.article_id for h in hits}
        return CLASSES[3] if retrieved else CLASSES[2]
    ranked = sorted(found, key=lambda c: -extractive.ranked_score(c))
    quoted_article = read[ranked[0].hit_index].article_id
    same = [c for c in holding if read[c.hit_index].article_id == quoted_article]
    if not same:
        return "another article"
    gap = extractive.ranked_score(ranked[0]) - max(extractive.ranked_score(c) for c in same)
    return "over the budget" if gap < extractive.MARGIN else "below the margin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=150, help="questions per set and part")
    args = parser.parse_args()
    started = time.time()
    miss_rows, naming_rows = [], []
    for name, part, engine, cases, gold in searched_once(SETS, args.limit):
        counts: Counter[str] = Counter()
        by_naming: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
        coverage = 0.0
        for question, hits, lang in cases:
            kind = classify(engine, question, hits, lang, gold[question.id])
            counts[kind] += 1
            names = bool(anchor_words(question.text))
            by_naming[names]["questions"] += 1
            by_naming[names]["quoted"] += kind == "quoted"
            first = hits[0].article_id if hits else ""
            by_naming[names]["first"] += first == question.article_id
            coverage += extractive.anchor_coverage(question.text, hits[: engine.k])
        n = max(1, len(cases))
        shares = " | ".join(f"{counts[c] / n:.3f}" for c in CLASSES)
        miss_rows.append(f"| {name} | {part} | {len(cases)} | {shares} |")
        cells = []
        for names in (True, False):
            group = by_naming[names]
            size = max(1, group["questions"])
            cells.append(f"{group['questions'] / n:.2f} | {group['first'] / size:.3f} | {group['quoted'] / size:.3f}")
        naming_rows.append(f"| {name} | {part} | {len(cases)} | {coverage / n:.3f} | " + " | ".join(cells) + " |")
        print(f"{name}, {part}: done", flush=True)
    text = "\n".join(
        [
            "## Where containment is lost (`bench/answer_misses.py`)",
            "",
            f"Measured {date.today()} on {cpu_model()} in {time.time() - started:.0f} s by"
            f" `.venv/bin/python bench/answer_misses.py --limit {args.limit}`: the default answerer over the search's",
            "hits, each question in one class (shares of the set; the script's docstring defines them). \"Over the",
            "budget\": the answer's sentence scored within the runners-up' margin but the 80-word, 3-sentence answer",
            "left it out, a matter of telling close sentences apart.",
            "",
            "| set | part | questions | " + " | ".join(CLASSES) + " |",
            "|---|---|---|" + "---|" * len(CLASSES),
            *miss_rows,
            "",
            "The mean share of a question's names and numbers found in the passages read (`anchor_coverage`, which",
            "adds up to 0.04 to the refusal's confidence); then questions that name something and questions that",
            "name nothing: their share, the search's recall@1 and the answers' containment.",
            "",
            "| set | part | questions | names found | naming: share | recall@1 | containment"
            " | naming nothing: share | recall@1 | containment |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *naming_rows,
        ]
    )
    write_marked_section(DOC, SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
