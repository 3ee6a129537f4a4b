"""What was tried for language-neutral ranking: the search's hit@1 / hit@5 under variants of its scoring, on
the mixed-language corpus and the one-language ones, train and measure parts apart.

Writes its table into docs/quality.md between `<!-- ranking-variants:begin -->` and `<!-- ranking-variants:end -->`
(bench/quality.py keeps that section). Run: `.venv/bin/python bench/ranking_variants.py [--limit N]`; the eval
stores are the ones `newsdesk eval` and bench/quality.py build (cached under NEWSDESK_DATA_DIR/eval).

The variants swap parts of the product's search in this process only: the dense offsets (none, one per passage
language, one per question and passage language) and the per-language leveling of keyword evidence.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model, write_marked_section  # noqa: E402
from bench.quality import XQUAD, all_sets  # noqa: E402
from newsdesk.evaluation import build_eval_store, corpus_articles, in_split, questions_for, ranked_articles  # noqa: E402
from newsdesk.settings import Settings  # noqa: E402
from vectorstore import calibration  # noqa: E402
from vectorstore.fusion import Fusion, Scores  # noqa: E402
from vectorstore.store import Store  # noqa: E402

SECTION = "ranking-variants"  # its marked section of docs/quality.md
REFERENCE = "reference: one-language corpora, weighted as mixed"
Offsets = Callable[[Store, str], dict[str, float]]


def no_offsets(store: Store, query_lang: str) -> dict[str, float]:
    return {}


def per_passage_language(store: Store, query_lang: str) -> dict[str, float]:
    """One offset per passage language whatever the question's: the probes of every language averaged."""
    return PRODUCT_OFFSETS(store, "")


class PlainFusion(Fusion):
    """Fusion without its last step: keyword evidence may lift one language over another."""

    def level(self, fused: Scores, dense_norm: Scores, langs: dict[str, str]) -> Scores:
        return fused


PRODUCT_OFFSETS: Offsets = Store.dense_offsets
DEFAULT = Fusion()
DENSE_ONLY = PlainFusion(same_language=0.0, anchors=0.0)

# name -> (dense offsets, fusion)
VARIANTS: dict[str, tuple[Offsets, Fusion]] = {
    "before: raw cosines, plain fusion": (no_offsets, PlainFusion()),
    "dense alone, raw cosines": (no_offsets, DENSE_ONLY),
    "dense alone, offset per passage language": (per_passage_language, DENSE_ONLY),
    "dense alone, offset per question x passage language": (PRODUCT_OFFSETS, DENSE_ONLY),
    "offsets, no same-language BM25, plain fusion": (PRODUCT_OFFSETS, PlainFusion(same_language=0.0)),
    "offsets, plain fusion": (PRODUCT_OFFSETS, PlainFusion()),
    "raw cosines, leveled fusion": (no_offsets, DEFAULT),
    "adopted: offsets, leveled fusion": (PRODUCT_OFFSETS, DEFAULT),
    "adopted, same-language weight 0.4": (PRODUCT_OFFSETS, Fusion(same_language=0.4)),
    "adopted, same-language weight 1.6": (PRODUCT_OFFSETS, Fusion(same_language=1.6)),
    "adopted, anchor weight 0": (PRODUCT_OFFSETS, Fusion(anchors=0.0)),
}


@contextmanager
def variant(store: Store, offsets: Offsets, fusion: Fusion) -> Iterator[None]:
    """The store searching with this variant's offsets and fusion, restored afterwards."""
    Store.dense_offsets = offsets  # type: ignore[method-assign]
    store.fusion = fusion
    try:
        yield
    finally:
        Store.dense_offsets = PRODUCT_OFFSETS  # type: ignore[method-assign]
        store.fusion = DEFAULT


_VECTORS: dict[str, Any] = {}


def cached_queries(store: Store, texts: list[str]) -> None:
    """Encode every question once (batched) and answer the store's per-query lookups from that (the stores
    share one embedder)."""
    missing = [text for text in dict.fromkeys(texts) if text not in _VECTORS]
    if missing:
        _VECTORS.update(zip(missing, store.embedder.encode_queries(missing), strict=True))
    store.embedder.query_vector = _VECTORS.__getitem__  # type: ignore[method-assign]


def hits(store: Store, questions: list[Any]) -> tuple[float, float]:
    first = five = 0
    for question in questions:
        ranking = ranked_articles(store.search(question.text, 20))
        first += ranking[:1] == [question.article_id]
        five += question.article_id in ranking[:5]
    n = max(1, len(questions))
    return round(first / n, 3), round(five / n, 3)


def one_language_reference(settings: Settings, contexts: list[Path], questions: list[Any]) -> tuple[float, float]:
    """hit@1 and hit@5 of each question asked of the one-language corpus in its paragraph's language in the
    mix: what the mixed corpus would reach if the ranking did not care which languages sit beside each other."""
    mixed = corpus_articles(contexts)
    by_language: dict[str, list[Any]] = {}
    for question in questions:
        by_language.setdefault(mixed[question.article_id][1], []).append(question)
    first = five = 0.0
    for lang, asked in by_language.items():
        store = build_eval_store(settings, XQUAD / f"xquad.{lang}.dev.json")
        cached_queries(store, [q.text for q in asked])
        at1, at5 = hits(store, asked)
        first, five = first + at1 * len(asked), five + at5 * len(asked)
    n = max(1, len(questions))
    return round(first / n, 3), round(five / n, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="questions per set and part (default: all)")
    args = parser.parse_args()
    settings = Settings()
    started = time.time()
    short = {"mixed, en questions": "mixed en", "mixed, de questions": "mixed de", "mixed, es questions": "mixed es"}
    parts: dict[str, list[str]] = {"train": [], "measure": []}  # column headers
    rows = [*VARIANTS, REFERENCE]
    results: dict[tuple[str, str], list[str]] = {(name, part): [] for name in rows for part in parts}
    for set_name, (contexts, questions_file) in sorted(all_sets().items(), key=lambda s: not s[0].startswith("mix")):
        store = build_eval_store(settings, contexts)
        first = contexts[0] if isinstance(contexts, list) else contexts  # whose pages the split counts
        everything = questions_for(contexts, questions_file, None)
        chosen = {part: [q for q in everything if in_split(first, q.page, part)][: args.limit] for part in parts}
        cached_queries(store, list({q.text: None for part in parts for q in chosen[part]}))
        for part, questions in chosen.items():
            parts[part].append(f"{short.get(set_name, set_name)} ({len(questions)})")
            for name, pieces in VARIANTS.items():
                with variant(store, *pieces):
                    at1, at5 = hits(store, questions)
                results[name, part].append(f"{at1:.3f} / {at5:.3f}")
            if isinstance(contexts, list):
                at1, at5 = one_language_reference(settings, contexts, questions)
                results[REFERENCE, part].append(f"{at1:.3f} / {at5:.3f}")
            else:
                results[REFERENCE, part].append("-")
        print(f"{set_name}: done", flush=True)
    limit = f" --limit {args.limit}" if args.limit else ""
    section = [
        "## Language-neutral ranking: what was tried",
        "",
        f"Measured {date.today()} on {cpu_model()} in {time.time() - started:.0f} s by",
        f"`.venv/bin/python bench/ranking_variants.py{limit}`: the search alone (no answerer), hit@1 / hit@5 of",
        "the question's paragraph (questions in brackets). Tuned on the train part (XQuAD pages 0-17, PIAF",
        "0-149); the measure part (XQuAD 18-23, PIAF 150 on) was only read. Offsets: the mean cosine of generic",
        f"probe questions (vectorstore/calibration.py, {sum(map(len, calibration.PROBES.values()))} in"
        f" {len(calibration.PROBES)} languages) to the first passage of up to {calibration.SAMPLE} articles per",
        "language, subtracted from each cosine before fusion. Leveled fusion: keyword evidence reorders passages",
        "within a language but does not lift one language over another. On a one-language corpus both change",
        "nothing by construction. Weights: same-language BM25 0.8 and anchors (names, numbers) 0.3 unless named.",
        f"The last row ({REFERENCE}) asks each question of the one-language corpus in the language its",
        "paragraph has in the mix (adopted ranking): the figure a language-neutral ranking should reach.",
    ]
    for part, headers in parts.items():
        section += [
            "",
            f"{part.capitalize()} part:",
            "",
            "| variant | " + " | ".join(headers) + " |",
            "|---|" + "---|" * len(headers),
            *(f"| {name} | " + " | ".join(results[name, part]) + " |" for name in rows),
        ]
    text = "\n".join(section)
    write_marked_section(ROOT / "docs" / "quality.md", SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
