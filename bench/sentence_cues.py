"""Which lexical cue picks the answer's sentence: the question's words as they are, or its rarer word stems?

The default answerer scores a candidate sentence by its e5 cosine to the question plus small cues. Until
2026-12-06 one cue was the share of the question's words found in the sentence, exactly as written, at 0.02; it
is now the share of its word stems weighted by how rare each is among the candidates, leveled within each
language (`extractive.rare_word_overlap`), at 0.1. The wider spread of scores that brings would cut the runners-up
an answer quotes, so the margin they must fall within is a variant too. Everything else (search, the passages'
order, refusal) is the same in every variant, which answers the same hits.

Run: `.venv/bin/python bench/sentence_cues.py [--limit N]`; writes its table into docs/quality.md between
`<!-- sentence-cues:begin -->` and `<!-- sentence-cues:end -->`. Choose on the train part; the measure part is
only read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model, write_marked_section  # noqa: E402
from bench.quality import ANSWERED, MIXED_QUESTIONS  # noqa: E402
from bench.sentence_context import answered, searched_once  # noqa: E402
from bot import extractive  # noqa: E402
from text.words import content_words  # noqa: E402

DOC = ROOT / "docs" / "quality.md"
SECTION = "sentence-cues"  # its marked section of docs/quality.md
SETS = (*ANSWERED, *(f"mixed, {lang} questions" for lang in MIXED_QUESTIONS))
# name: (which words, the cue's weight, the runners-up's margin)
VARIANTS: dict[str, tuple[str, float, float]] = {
    "before: exact words 0.02, margin 0.08": ("exact", 0.02, 0.08),
    "exact words 0.02, margin 0.10": ("exact", 0.02, 0.10),
    "rarer stems 0.10, margin 0.08": ("rarer", 0.10, 0.08),
    "adopted: rarer stems 0.10, margin 0.10": ("rarer", 0.10, 0.10),
}


def exact_word_overlap(question: str, found: list[extractive.Candidate], question_lang: str) -> list[float]:
    """The cue before 2026-12-06: the share of the question's words found, as written, in each sentence."""
    words = {w.lower() for w in content_words(question)}
    shares = []
    for candidate in found:
        held = {w.lower() for w in content_words(candidate.text)}
        shares.append(len(words & held) / len(words) if words else 0.0)
    return shares


@contextmanager
def cue(words: str, weight: float, margin: float) -> Iterator[None]:
    """The answerer with this overlap cue, weight and margin, for the duration of the block."""
    saved = extractive.rare_word_overlap, extractive.COSINE_CUE_WEIGHTS, extractive.MARGIN
    if words == "exact":
        extractive.rare_word_overlap = exact_word_overlap
    extractive.COSINE_CUE_WEIGHTS = np.array(
        [extractive.ANCHOR_WEIGHT, weight, extractive.NUMBER_WEIGHT], dtype=np.float32
    )
    extractive.MARGIN = margin
    try:
        yield
    finally:
        extractive.rare_word_overlap, extractive.COSINE_CUE_WEIGHTS, extractive.MARGIN = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=150, help="questions per set and part")
    args = parser.parse_args()
    started = time.time()
    rows = []
    for name, part, engine, cases, gold in searched_once(SETS, args.limit):
        cells = []
        for variant in VARIANTS.values():
            with cue(*variant):
                cells.append(answered(engine, cases, gold))
        rows.append(f"| {name} | {part} | {len(cases)} | " + " | ".join(cells) + " |")
        print(f"{name}, {part}: done", flush=True)
    text = "\n".join(
        [
            "## Sentence choice: the question's rarer words (`bench/sentence_cues.py`)",
            "",
            f"Measured {date.today()} on {cpu_model()} in {time.time() - started:.0f} s by"
            f" `.venv/bin/python bench/sentence_cues.py --limit {args.limit}`: the default answerer with each",
            "overlap cue, weight and margin (bench/sentence_cues.py's docstring says what they are), over the same",
            "hits. Each cell: hit@1 / containment / words per answer (refusals count as not containing; hit@1 and",
            "refusals do not depend on the cue). Chosen on the train part.",
            "",
            "| set | part | questions | " + " | ".join(VARIANTS) + " |",
            "|---|---|---|" + "---|" * len(VARIANTS),
            *rows,
        ]
    )
    write_marked_section(DOC, SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
