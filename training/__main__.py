"""Rebuild the answer model: `.venv/bin/python -m training` (~20 minutes on 2 cores, ~5 with cached vectors; see
docs/answer-model.md). Trains on XQuAD articles 0-17 and PIAF articles 0-149, then prints the measure split's
figures for the cosine answerer and the trained model side by side."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "bot" / "answer_model.npz")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "newsdesk" / "training")
    parser.add_argument("--variants", type=int, default=12, help="context languages per English XQuAD question")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--articles", type=int, default=None, help="articles per set and split (a quick check)")
    parser.add_argument("--report", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not (args.eval_dir / "xquad").is_dir():
        sys.exit(f"training data not found: {args.eval_dir} (../shared/eval beside the checkout)")

    import torch

    from newsdesk.runtime import quiet_libraries
    from training.data import load_split, make_cases
    from training.fit import VectorCache, fit, measure, prepare, similarity
    from vectorstore.embeddings import load_embedder

    quiet_libraries()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.time()
    embedder = load_embedder("e5-small")
    cache = VectorCache(embedder, args.cache)
    prepared = {}
    for split in ("train", "measure"):
        corpus = load_split(args.eval_dir, split, args.articles)
        cases = make_cases(corpus, similarity(corpus, cache), args.variants, args.seed)
        prepared[split] = prepare(cases, corpus, cache)
        print(f"{split}: {len(prepared[split])} cases", file=sys.stderr)
    model = fit(prepared["train"], embedder.name, args.epochs, args.seed)
    model.save(args.out)
    figures = {
        "cosine": measure(prepared["measure"], None),
        "trained": measure(prepared["measure"], model),
        "threshold": round(model.threshold, 4),
        "train_cases": len(prepared["train"]),
        "seconds": round(time.time() - started),
    }
    text = json.dumps(figures, indent=1)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1000} kB) in {figures['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
