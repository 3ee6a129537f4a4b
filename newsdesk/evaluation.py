"""Quality measurement on SQuAD-format data: each paragraph is one article (`title#index`).

The corpus goes into its own store under NEWSDESK_DATA_DIR/eval, so a second run reuses the vectors
(ingest skips unchanged articles) and the user's own articles are never mixed in. Several contexts files holding
the same paragraphs in several languages (XQuAD's) make a mixed-language archive: each paragraph is taken from
one of them, as a news archive mixes papers in several languages.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsdesk.settings import Settings
from vectorstore.errors import UserError

# Wikipedia pages (SQuAD `data` entries, in file order) that a trained model may learn from, by the first word of
# the file name; quality is reported on the others, the measure part (../shared/eval/SOURCES.md).
TRAIN_PAGES = {"xquad": 18, "piaf": 150}


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    article_id: str
    answers: tuple[str, ...]
    page: int = 0  # index of the Wikipedia page holding its paragraph, in file order (for the split)


def load_squad(path: Path) -> tuple[dict[str, str], list[Question]]:
    """Paragraph texts by article id, and the questions with the article that holds their answer."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs: dict[str, str] = {}
    questions: list[Question] = []
    for page, entry in enumerate(data):
        for index, paragraph in enumerate(entry["paragraphs"]):
            article_id = f"{entry['title']}#{index}"
            paragraphs[article_id] = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", []))
                questions.append(Question(qa["id"], qa["question"], article_id, answers, page))
    return paragraphs, questions


def file_language(path: Path) -> str:
    """The language code in a file name such as `xquad.de.dev.json`, or "" (ingest then detects it)."""
    match = re.search(r"(?<=[._-])[a-z]{2}(?=[._-])", path.name)
    return match.group() if match else ""


def _pick(article_id: str, choices: int) -> int:
    """A choice that depends on the article id alone, spread evenly: the same paragraph gets the same language
    on every run and whatever else is in the corpus."""
    return int.from_bytes(hashlib.sha256(article_id.encode()).digest()[:8], "big") % choices


def corpus_articles(contexts: Sequence[Path]) -> dict[str, tuple[str, str]]:
    """(text, language) by article id. With several files, which must hold the same paragraphs (XQuAD's
    translations do), each paragraph comes from one of them, chosen by a hash of its id."""
    files = sorted(contexts, key=lambda p: p.name)  # the choice must not depend on the order they were named in
    loaded = [load_squad(path)[0] for path in files]
    for path, paragraphs in zip(files[1:], loaded[1:], strict=True):
        if paragraphs.keys() != loaded[0].keys():
            raise UserError(f"{path} does not hold the same paragraphs as {files[0]}: cannot mix them")
    chosen = {aid: _pick(aid, len(files)) if len(files) > 1 else 0 for aid in loaded[0]}
    return {aid: (loaded[i][aid], file_language(files[i])) for aid, i in chosen.items()}


def _as_list(contexts: Path | Sequence[Path]) -> list[Path]:
    return [contexts] if isinstance(contexts, Path) else list(contexts)


def eval_settings(settings: Settings, contexts: Path | Sequence[Path]) -> Settings:
    """The same settings with the data folder moved to a per-corpus folder under eval/ and, with a database
    (NEWSDESK_DATABASE_URL), the catalog in a per-corpus collection there."""
    files = _as_list(contexts)
    name = files[0].stem
    if len(files) > 1:
        name = f"{name.split('.')[0]}.mixed." + "-".join(sorted(file_language(p) or p.stem for p in files))
    slug = re.sub(r"[^\w.-]+", "_", name)
    embedder = settings.embedder.replace(":", "_").replace("/", "_")
    folder = settings.data_dir / "eval" / embedder / slug
    update: dict[str, Any] = {"data_dir": folder, "chroma_host": None}
    if settings.database_url:
        update["collection"] = re.sub(r"[^A-Za-z0-9]+", "-", f"eval {embedder} {slug}")[:63].strip("-")
    return settings.model_copy(update=update)


def build_eval_store(settings: Settings, contexts: Path | Sequence[Path]) -> Any:
    """A store holding every paragraph of `contexts` as an article, ingested (or reused) now. Each article's
    language is detected at ingest, as a user's articles are: the file's language is only what the figures are
    reported by (taking it as given hid that the detector read Arabic paragraphs as English)."""
    from ingest.articles import Article
    from ingest.pipeline import Ingester
    from newsdesk.runtime import open_store

    files = _as_list(contexts)
    store = open_store(eval_settings(settings, files))
    articles = [
        Article(id=aid, title=aid.split("#")[0].replace("_", " "), text=text, origin=str(files[0]))
        for aid, (text, _lang) in corpus_articles(files).items()
    ]
    Ingester(store, settings.chunk_tokens, settings.chunk_overlap).ingest(articles)
    return store


def in_split(path: Path, page: int, split: str) -> bool:
    """Whether the question about Wikipedia page number `page` of `path` belongs to `split` (see TRAIN_PAGES)."""
    if split == "all":
        return True
    dataset = re.split(r"[._-]", path.name)[0].lower()
    if dataset not in TRAIN_PAGES:
        raise UserError(f"no train/measure split is defined for {path.name} (only for {', '.join(TRAIN_PAGES)})")
    return (page < TRAIN_PAGES[dataset]) == (split == "train")


def page_of(article_id: str) -> str:
    """The Wikipedia page of an eval article id (`title#paragraph`)."""
    return article_id.rpartition("#")[0]


def ranked_articles(hits: list[Any]) -> list[str]:
    """Article ids in the order of their best chunk."""
    return list(dict.fromkeys(h.article_id for h in hits))


def questions_for(
    contexts: Path | Sequence[Path], questions_file: Path, limit: int | None, split: str = "all"
) -> list[Question]:
    """Questions from `questions_file` in `split`, pointed at the articles of `contexts` (same SQuAD ids)."""
    first = _as_list(contexts)[0]
    _, context_questions = load_squad(first)
    home = {q.id: q for q in context_questions}
    _, asked = load_squad(questions_file)
    chosen = [
        Question(q.id, q.text, home[q.id].article_id, q.answers, home[q.id].page)
        for q in asked
        if q.id in home and in_split(first, home[q.id].page, split)
    ]
    return chosen[:limit] if limit else chosen


def languages_of(store: Any, contexts: Path | Sequence[Path], questions: list[Question]) -> dict[str, str]:
    """The language of each question's article, by article id: its file's (XQuAD's are named by language),
    else the one detected at ingest."""
    info = store.catalog.document_info(list({q.article_id for q in questions}))
    given = {aid: lang for aid, (_text, lang) in corpus_articles(_as_list(contexts)).items()}
    return {aid: given.get(aid) or str(meta["lang"]) or "?" for aid, meta in info.items()}


def by_language(outcomes: list[tuple[str, dict[str, bool]]]) -> dict[str, dict[str, float]]:
    """Shares per language of the gold paragraph: (language, {measure: outcome}) per question in, then
    {language: {"questions": n, measure: share}} out, languages in alphabetical order."""
    table: dict[str, dict[str, float]] = {}
    for lang in sorted({lang for lang, _ in outcomes}):
        rows = [values for row_lang, values in outcomes if row_lang == lang]
        table[lang] = {"questions": len(rows)} | {
            name: round(sum(r[name] for r in rows) / len(rows), 3) for name in rows[0]
        }
    return table


def evaluate_retrieval(
    settings: Settings,
    contexts: Path | Sequence[Path],
    questions_file: Path,
    limit: int | None = None,
    k: int = 10,
    split: str = "all",
) -> dict[str, Any]:
    """Recall@1/5/10 and MRR@10 of each question's own paragraph, and recall@1 per language of that paragraph."""
    store = build_eval_store(settings, contexts)
    questions = questions_for(contexts, questions_file, limit, split)
    langs = languages_of(store, contexts, questions)
    hits_at = {1: 0, 5: 0, 10: 0}
    reciprocal = 0.0
    outcomes: list[tuple[str, dict[str, bool]]] = []
    for question in questions:
        ranking = ranked_articles(store.search(question.text, 2 * k))[:k]
        rank = ranking.index(question.article_id) + 1 if question.article_id in ranking else k + 1
        if rank <= k:
            reciprocal += 1.0 / rank
        for cutoff in hits_at:
            hits_at[cutoff] += rank <= cutoff
        outcomes.append((langs.get(question.article_id, "?"), {"recall@1": rank == 1}))
    n = max(1, len(questions))
    result: dict[str, Any] = {f"recall@{c}": round(v / n, 3) for c, v in hits_at.items()}
    result["mrr"] = round(reciprocal / n, 3)
    result["questions"] = len(questions)
    result["by_language"] = by_language(outcomes)
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


def gold_answers(
    contexts: Path | Sequence[Path], questions_file: Path, extra_gold: Path | None = None
) -> dict[str, set[str]]:
    """Each question id's normalised gold answers, in every language the files give them (a mixed corpus's
    questions count as answered by the gold of whichever language their paragraph is in)."""
    gold: dict[str, set[str]] = {}
    for path in {*_as_list(contexts), questions_file, *([extra_gold] if extra_gold else [])}:
        for q in load_squad(path)[1]:
            gold.setdefault(q.id, set()).update(normalise_answer(a) for a in q.answers)
    return gold


def evaluate_answers(
    settings: Settings,
    contexts: Path | Sequence[Path],
    questions_file: Path,
    extra_gold: Path | None = None,
    limit: int | None = None,
    split: str = "all",
) -> dict[str, Any]:
    """Answer quality as the issue defines it, plus the refusal calibration table.

    Unanswerable cases are the same questions asked of the corpus without their article: SQuAD's articles are
    Wikipedia pages, so every paragraph of the question's page is held out of the results (its sibling
    paragraphs often state the answer too). The harder case of holding out only the question's own paragraph is
    reported as well, but not calibrated on. A gold answer in any of the corpus's languages counts.
    """
    import time

    from bot.answers import cited_numbers
    from bot.engine import AnswerEngine
    from newsdesk.runtime import load_answer_model
    from text.language import detect_language

    store = build_eval_store(settings, contexts)
    store.embedder.prepare()  # latency as a bot or chat answers once warm, and the same vectors on every run
    engine = AnswerEngine(store, answer_model=load_answer_model(settings))
    questions = questions_for(contexts, questions_file, limit, split)
    langs = languages_of(store, contexts, questions)
    gold = gold_answers(contexts, questions_file, extra_gold)
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
    outcomes: list[tuple[str, dict[str, bool]]] = []
    too_long = 0
    for question in questions:
        started = time.perf_counter()
        hits = store.search(question.text, 20)
        lang = detect_language(question.text, default="en")
        answer = engine.answer_from_hits(question.text, hits[: engine.k], lang)
        latencies.append((time.perf_counter() - started) * 1000)
        ranking = ranked_articles(answer.retrieved + hits[engine.k :])  # in the order the answer puts them
        found = {
            "hit@1": question.article_id in ranking[:1],
            "hit@5": question.article_id in ranking[:5],
            "contained": not answer.refused and contains_any(answer.answer, gold[question.id]),
            "refused": answer.refused,
        }
        for name, value in found.items():
            counts[name] += value
        outcomes.append((langs.get(question.article_id, "?"), found))
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
        separation=separation(confidences),
        by_language=by_language(outcomes),
    )
    return result


def separation(confidences: list[tuple[float, float]], answerable_refused: float = 0.05) -> dict[str, float]:
    """How well the answerer's confidence tells answerable questions from unanswerable ones, whatever its
    threshold: the chance that an answerable question is the more confident of a pair (AUC, ties half), and
    the share of unanswerable ones refused at the bar that refuses `answerable_refused` of the answerable. When
    this share is high but the answer figures' is not, the threshold is wrong; when it is low, the confidence
    itself must improve."""
    if not confidences:
        return {"auc": float("nan"), "bar": float("nan"), "unanswerable_refused": float("nan")}
    answerable = sorted(a for a, _ in confidences)
    unanswerable = [u for _, u in confidences]
    above = sum(a > u for a in answerable for u in unanswerable)
    ties = sum(a == u for a in answerable for u in unanswerable)
    bar = answerable[int(answerable_refused * len(answerable))]
    return {
        "auc": round((above + ties / 2) / (len(answerable) * len(unanswerable)), 3),
        "bar": round(bar, 3),
        "unanswerable_refused": round(sum(u < bar for u in unanswerable) / len(unanswerable), 3),
    }


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
