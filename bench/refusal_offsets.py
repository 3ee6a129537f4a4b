"""Refusal against the archive's own cosine level, beside today's thresholds, on the answer model's cases.

Today the cosine answerer refuses when the best sentence's cosine (plus 0.04 x the share of the question's
names and numbers found) is under 0.80 across languages and 0.85 within one. The variant subtracts first the
offset of (question language, sentence language) that fusion already uses (vectorstore/calibration.py, here
measured on the cases' own paragraphs, as a store measures it on its archive) and refuses under one threshold,
chosen on the training cases to refuse 4% of their answerable ones. Printed as the table in
docs/answer-model.md ("Tried since, not shipped"), with the two rules' trade-off at equal answerable refusals.

Run: `.venv/bin/python bench/refusal_offsets.py` (a few minutes once `python -m training` has cached the
vectors under ~/.cache/newsdesk/training; the cases are the ones it builds, same split and seed).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import extractive  # noqa: E402
from bot.engine import ANCHOR_BONUS, cosine_confidence  # noqa: E402
from text.language import detect_language  # noqa: E402
from training.candidates import Prepared, VectorCache, group_of, prepare, score, similarity  # noqa: E402
from training.data import load_split, make_cases  # noqa: E402
from vectorstore import calibration  # noqa: E402
from vectorstore.embeddings import load_embedder  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
ANSWERABLE_REFUSED = 0.04


def offset_table(prepared: list[Prepared], cache: VectorCache, embedder) -> calibration.Table:  # type: ignore[no-untyped-def]
    """The offsets a store holding the cases' paragraphs would measure: probes against up to SAMPLE paragraphs
    per detected language."""
    paragraphs: dict[str, dict[str, None]] = {}
    for p in prepared:
        for hit in p.hits:
            paragraphs.setdefault(hit.lang, {})[hit.text] = None
    passages = {lang: cache.passages(list(texts)[: calibration.SAMPLE]) for lang, texts in paragraphs.items()}
    probes = {lang: embedder.encode_queries(list(questions)) for lang, questions in calibration.PROBES.items()}
    return calibration.offsets(probes, passages)


def confidences(p: Prepared, table: calibration.Table, languages: dict[str, str]) -> tuple[float, float]:
    """(today's margin: confidence minus its threshold, refused below 0; the offset rule's confidence) for one
    case."""
    score(p)
    question = p.case.question.text
    lang = languages.setdefault(question, detect_language(question))
    offsets = calibration.row(table, lang)
    coverage = extractive.anchor_coverage(question, p.hits)
    confidence, threshold = cosine_confidence(p.found, coverage)
    leveled = max(c.cosine - offsets.get(p.hits[c.hit_index].lang, 0.0) for c in p.found)
    return confidence - threshold, leveled + ANCHOR_BONUS * coverage


def main() -> None:
    embedder = load_embedder("e5-small")
    cache = VectorCache(embedder, Path.home() / ".cache" / "newsdesk" / "training")
    prepared = {}
    for split in ("train", "measure"):
        corpus = load_split(EVAL, split)
        prepared[split] = prepare(make_cases(corpus, similarity(corpus, cache), 12, 0), corpus, cache)
    table = offset_table(prepared["train"] + prepared["measure"], cache, embedder)
    languages: dict[str, str] = {}
    margins, leveled, answerable = {}, {}, {}
    for split, cases in prepared.items():
        rows = [confidences(p, table, languages) for p in cases]
        margins[split] = np.array([r[0] for r in rows])
        leveled[split] = np.array([r[1] for r in rows])
        answerable[split] = np.array([p.case.answerable for p in cases])
    threshold = float(np.quantile(leveled["train"][answerable["train"]], ANSWERABLE_REFUSED))
    refused = leveled["measure"] < threshold
    tallies: dict[str, list[list[bool]]] = defaultdict(lambda: [[], [], [], []])
    for i, p in enumerate(prepared["measure"]):
        for name in (group_of(p), "all"):
            kind = 0 if p.case.answerable else 2
            tallies[name][kind].append(bool(margins["measure"][i] < 0))
            tallies[name][kind + 1].append(bool(refused[i]))
    print(f"offset threshold {threshold:.4f} (4% of answerable training cases refused)\n")
    print("| group | answerable refused: today -> offsets | unanswerable refused: today -> offsets |")
    print("|---|---|---|")
    for name, (a_today, a_new, u_today, u_new) in sorted(tallies.items(), key=lambda item: (item[0] == "all", item[0])):
        answered = f"{np.mean(a_today):.3f} -> {np.mean(a_new):.3f}"
        print(f"| {name} | {answered} | {np.mean(u_today):.3f} -> {np.mean(u_new):.3f} |")
    print("\nUnanswerable refused at equal answerable refused (measure cases, each rule's threshold moved):")
    mask = answerable["measure"]
    for target in (0.03, 0.05, 0.10):
        shape, level = (_refused_unanswerable(values["measure"], mask, target) for values in (margins, leveled))
        print(f"- {target:.2f}: today's shape {shape:.3f}, offsets {level:.3f}")


def _refused_unanswerable(confidence: np.ndarray, answerable: np.ndarray, target: float) -> float:
    """Unanswerable refused when the threshold on `confidence` is moved until answerable refusals reach
    `target` (for today's rule, its margin: both thresholds moved by the same amount)."""
    level = np.quantile(confidence[answerable], target)
    return float((confidence[~answerable] < level).mean())


if __name__ == "__main__":
    main()
