"""Is refusal limited by the threshold or by the confidence? Each answerer's separation, end to end.

For every answered set (measure part) and both answerers (the cosine answerer, the default; the shipped
reader, NEWSDESK_ANSWER_MODEL=shipped), `newsdesk eval answers` pairs each question's confidence with its
confidence over the passages of other pages (unanswerable). `separation` gives the AUC of the two and the
share of unanswerable questions refused at the bar that refuses 5% of the answerable ones, chosen per set:
the best any one threshold could do on that set. Issue 13 asks for >= .90 there with one threshold for all.

Run: `NEWSDESK_DATA_DIR=... .venv/bin/python bench/refusal_separation.py [--limit N]` (the evaluation stores
of bench/quality.py are reused from that data dir); writes its table into docs/quality.md between
`<!-- refusal-separation:begin -->` and `<!-- refusal-separation:end -->`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model, write_marked_section  # noqa: E402
from bench.quality import all_sets, extra_gold, is_answered  # noqa: E402
from newsdesk.evaluation import evaluate_answers  # noqa: E402
from newsdesk.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=300, help="questions per set")
    args = parser.parse_args()
    settings = Settings()
    answerers = {"cosine (default)": settings, "reader": settings.model_copy(update={"answer_model": "shipped"})}
    rows = [
        "| set | answerer | questions | answerable refused / unanswerable refused, at the product's threshold "
        "| AUC | bar refusing 5% of answerable | unanswerable refused at that bar |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for name, (contexts, questions) in all_sets().items():
        if not is_answered(name):
            continue
        for label, answerer in answerers.items():
            r = evaluate_answers(answerer, contexts, questions, extra_gold(name), args.limit, "measure")
            s = r["separation"]
            rows.append(
                f"| {name} | {label} | {r['questions']} | {r['refused']} / {r['refused_unanswerable']} "
                f"| {s['auc']} | {s['bar']} | {s['unanswerable_refused']} |"
            )
            print(rows[-1], flush=True)
    text = "\n".join(
        [
            "## Refusal: threshold or confidence? (`bench/refusal_separation.py`)",
            "",
            f"Measured {date.today()} on {cpu_model()}, measure part, {args.limit} questions per set at most. "
            "Produced by `NEWSDESK_DATA_DIR=/tmp/qdata .venv/bin/python bench/refusal_separation.py`. "
            + (__doc__ or "").split("\n\n")[1].replace("\n", " "),
            "",
            *rows,
        ]
    )
    write_marked_section(ROOT / "docs" / "quality.md", "refusal-separation", text)


if __name__ == "__main__":
    main()
