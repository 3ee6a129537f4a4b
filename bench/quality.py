"""Write docs/quality.md: retrieval and answer quality of the default pipeline on ../shared/eval.

Run: `.venv/bin/python bench/quality.py [--limit N]` (about 30 minutes on 2 cores for the full sets; the
eval stores are cached under NEWSDESK_DATA_DIR/eval, so a second run skips the embedding). Every set is
measured on its measure part (the pages a trained model never sees) and on all its pages. Sections of
docs/quality.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->` lines are written by other scripts
(bench/ranking_variants.py, ...) or by hand (`not-adopted`: what was tried and measured, and why it is not in
the product) and kept as they are.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model  # noqa: E402
from newsdesk.evaluation import evaluate_answers, evaluate_retrieval  # noqa: E402
from newsdesk.settings import Settings  # noqa: E402
from vectorstore.e5_torch import bf16_is_faster  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
XQUAD = EVAL / "xquad"
ONE_LANGUAGE: dict[str, tuple[Path, Path]] = {
    "XQuAD en->de": (XQUAD / "xquad.de.dev.json", XQUAD / "xquad.en.dev.json"),
    "XQuAD en->es": (XQUAD / "xquad.es.dev.json", XQUAD / "xquad.en.dev.json"),
    "XQuAD en->ru": (XQUAD / "xquad.ru.dev.json", XQUAD / "xquad.en.dev.json"),
    "PIAF fr": (EVAL / "piaf/piaf-v1.0.json", EVAL / "piaf/piaf-v1.0.json"),
}
ANSWERED = ("XQuAD en->de", "XQuAD en->es", "PIAF fr")  # the one-language sets whose answers are measured too
# The mixed-language archive: each XQuAD paragraph in one of these languages. XQuAD has no French, so the
# questions are asked in English, German and Spanish.
MIXED_LANGUAGES = ("en", "de", "es", "ro", "ru", "tr", "vi", "el")
MIXED_QUESTIONS = ("en", "de", "es")
PARTS = ("measure", "all")
MARKED = re.compile(r"^<!-- ([\w-]+):begin -->$.*?^<!-- \1:end -->$", re.S | re.M)


def mixed_contexts() -> list[Path]:
    return [XQUAD / f"xquad.{lang}.dev.json" for lang in MIXED_LANGUAGES]


def all_sets() -> dict[str, tuple[Path | list[Path], Path]]:
    mixed: dict[str, tuple[Path | list[Path], Path]] = {
        f"mixed, {lang} questions": (mixed_contexts(), XQUAD / f"xquad.{lang}.dev.json") for lang in MIXED_QUESTIONS
    }
    return {**ONE_LANGUAGE, **mixed}


def is_answered(name: str) -> bool:
    """Whether a set's answers are measured (not only its retrieval): ANSWERED and every mixed set."""
    return name in ANSWERED or name.startswith("mixed")


def extra_gold(name: str) -> Path | None:
    """Gold answers counted beside the set's own: XQuAD's English answers for its sets over other languages."""
    return XQUAD / "xquad.en.dev.json" if name.startswith("XQuAD") else None


def kept_sections(doc: Path) -> list[str]:
    """The sections other scripts wrote into the page, each between its marker lines."""
    return [m.group(0) for m in MARKED.finditer(doc.read_text(encoding="utf-8"))] if doc.exists() else []


def by_language_rows(results: dict[tuple[str, str], dict[str, Any]], measure: str) -> list[str]:
    """A table row per mixed set and part: `measure` per language of the gold paragraph, with the counts."""
    langs = sorted(MIXED_LANGUAGES)
    rows = [
        "| set | part | " + " | ".join(langs) + " |",
        "|---|---|" + "---|" * len(langs),
    ]
    for (name, part), figures in results.items():
        if not name.startswith("mixed"):
            continue
        table = figures["by_language"]
        cells = [f"{table[lang][measure]} ({table[lang]['questions']})" if lang in table else "-" for lang in langs]
        rows.append(f"| {name} | {part} | " + " | ".join(cells) + " |")
    return rows


class Progress:
    """Each set's results saved as it finishes, so that an interrupted run (these take half an hour) resumes
    where it stopped; results are reused only by a run of the same commit, with no uncommitted change, and the
    same --limit."""

    def __init__(self, path: Path, limit: int | None) -> None:
        self.path = path
        self.key = {"commit": _commit(), "limit": limit}
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.results: dict[str, Any] = saved.get("results", {}) if saved.get("key") == self.key else {}
        if self.results:
            print(f"reusing {len(self.results)} results of an earlier run of this commit ({path})", flush=True)

    def measured(self, name: str, measure: Any, *args: Any, **kwargs: Any) -> Any:
        """`measure(*args, **kwargs)`, or what it gave in the run this one resumes."""
        if name not in self.results:
            self.results[name] = measure(*args, **kwargs)
            if self.key["commit"]:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps({"key": self.key, "results": self.results}), encoding="utf-8")
        return self.results[name]


def _commit() -> str | None:
    """The commit the code is at; None when files differ from it (then nothing is saved to reuse)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return None if git("status", "--porcelain", "--untracked-files=no") else git("rev-parse", "HEAD") or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="questions per set and part (default: all)")
    args = parser.parse_args()
    settings = Settings()
    started = time.time()
    progress = Progress(settings.data_dir / "eval" / "quality-progress.json", args.limit)
    retrieval: dict[tuple[str, str], dict[str, Any]] = {}
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    with_model: dict[str, dict[str, Any]] = {}  # measure part, answered by the shipped answer model
    trained = settings.model_copy(update={"answer_model": "shipped"})
    for name, (contexts, questions) in all_sets().items():
        for part in PARTS:
            retrieval[name, part] = progress.measured(
                f"retrieval|{name}|{part}", evaluate_retrieval, settings, contexts, questions, args.limit, split=part
            )
            if is_answered(name):
                gold = extra_gold(name)
                answers[name, part] = progress.measured(
                    f"answers|{name}|{part}", evaluate_answers, settings, contexts, questions, gold, args.limit, part
                )
                if part == "measure":
                    with_model[name] = progress.measured(
                        f"model|{name}", evaluate_answers, trained, contexts, questions, gold, args.limit, part
                    )
            print(f"{name}, {part}: done", flush=True)
    rows_retrieval = [
        f"| {name} | {part} | {r['questions']} | {r['recall@1']} | {r['recall@5']} | {r['recall@10']} | {r['mrr']} |"
        for (name, part), r in retrieval.items()
    ]
    rows_answers = [
        f"| {name} | {part} | {a['questions']} | {a['hit@1']} | {a['hit@5']} | {a['contained']} |"
        f" {a['citation_in_retrieved']} | {a['citation_with_gold']} | {a['refused']} |"
        f" {a['refused_unanswerable']} | {a['refused_without_paragraph']} | {a['answers_over_80_words']} |"
        f" {a['latency_p50_ms']} | {a['latency_p95_ms']} |"
        for (name, part), a in answers.items()
    ]
    rows_models = [
        f"| {name} | {answerer} | {a['questions']} | {a['hit@1']} | {a['hit@5']} | {a['contained']} | {a['refused']} |"
        f" {a['refused_unanswerable']} | {a['latency_p50_ms']} |"
        for name, trained in with_model.items()
        for answerer, a in (("cosine (default)", answers[name, "measure"]), ("answer model", trained))
    ]
    calibration = {
        name: answers[name, "all"]["calibration"]
        for name in (*ANSWERED, "mixed, en questions")
        if (name, "all") in answers
    }
    gaps = []
    for part in PARTS:
        mixed, alone = answers["mixed, en questions", part], answers["XQuAD en->de", part]
        searched = retrieval["mixed, en questions", part]["recall@1"], retrieval["XQuAD en->de", part]["recall@1"]
        gaps.append(
            f"- {part}: hit@1 {mixed['hit@1']} mixed against {alone['hit@1']} all German"
            f" ({mixed['hit@1'] - alone['hit@1']:+.3f}); the search alone {searched[0]} against {searched[1]}."
        )
    limit = f" --limit {args.limit}" if args.limit else ""
    lines = [
        "# Quality",
        "",
        f"Measured {date.today()} on {cpu_model()} ({torch.get_num_threads()} threads), torch {torch.__version__},",
        f"embedder `{settings.embedder}` (torch in {'bfloat16' if bf16_is_faster() else 'float32'}, the faster here),"
        f" in {time.time() - started:.0f} s. Produced by:",
        "",
        "```",
        f".venv/bin/python bench/quality.py{limit}",
        "```",
        "",
        'What the trained reader\'s figures below mean, and why it is not the default yet: "End to end" in',
        "docs/answer-model.md, which also keeps the latencies measured on other CPUs.",
        "",
        "Each SQuAD paragraph is one article (`title#index`); a question's target is its own paragraph. Part:",
        "`measure` is the questions about XQuAD pages 18-23 and PIAF pages 150 on (`newsdesk eval --split",
        "measure`), which a trained model never sees (it may train on XQuAD 0-17 and PIAF 0-149); `all` is every",
        "page. Quality is reported on the measure part; XQuAD's measure part has 139 questions (+-0.08 at",
        "hit@1 ~.5, +-0.05 at ~.9), so `all` is shown beside it. The mixed-language sets are described below.",
        "",
        "## Retrieval (`newsdesk eval retrieval`, hybrid search)",
        "",
        "| set | part | questions | recall@1 | recall@5 | recall@10 | MRR |",
        "|---|---|---|---|---|---|---|",
        *rows_retrieval,
        "",
        "## Answers (`newsdesk eval answers`, default extractive answerer, k=5)",
        "",
        "hit@k: the question's paragraph among the first k articles in the order the answer uses them: the",
        "search's order, except that the answerer puts its top 3 passages in order by retrieval score (0-1) plus 3.8 x",
        "the cosine of their best sentence (so the retrieval table above, which is the search alone, differs).",
        "Containment: a SQuAD-normalised gold answer inside the answer (for XQuAD also the English gold; for the",
        "mixed sets a gold answer in any of the languages counts).",
        "Citations in retrieved: share of `[n]` pointing at a retrieved passage (by construction 1.0).",
        "Citations with gold: share of `[n]` whose passage contains a gold answer. Refused (answerable): share",
        "of answerable questions refused. Refused (unanswerable): the same questions asked of the corpus without",
        "their article (SQuAD's articles are Wikipedia pages: every paragraph of the question's page is held out;",
        "its sibling paragraphs often state the answer too). Without own paragraph: only the question's paragraph",
        "held out, a harder case where refusing is often wrong (not calibrated on). Latency: search + answer per",
        "question, warm, in ms.",
        "",
        "| set | part | questions | hit@1 | hit@5 | containment | citations in retrieved | citations with gold |"
        " refused (answerable) | refused (unanswerable) | refused (without own paragraph) | answers > 80 words |"
        " p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows_answers,
        "",
        "## The trained answer model beside the default (measure part, same run)",
        "",
        "`NEWSDESK_ANSWER_MODEL=shipped` (the reader, bot/reader.npz, docs/answer-model.md) against the cosine",
        "answerer, on the questions of pages the model never saw in training.",
        "",
        "| set | answerer | questions | hit@1 | hit@5 | containment | refused (answerable) |"
        " refused (unanswerable) | p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows_models,
        "",
        "## A mixed-language archive",
        "",
        "The 120 XQuAD paragraphs, each in one of " + ", ".join(MIXED_LANGUAGES) + " (chosen by a hash of the",
        "paragraph id: the same language on every run, 8 to 21 paragraphs per language), stored with that",
        "language; the questions in English, and the same questions in German and in Spanish (XQuAD has no",
        "French). The same command as for one file, with `--contexts` repeated (one per language):",
        "`newsdesk eval answers --contexts ../shared/eval/xquad/xquad.en.dev.json --contexts",
        "../shared/eval/xquad/xquad.de.dev.json ... --questions ../shared/eval/xquad/xquad.en.dev.json`.",
        "",
        "English questions, mixed archive against every paragraph in German (answers table):",
        "",
        *gaps,
        "",
        "hit@1 of the answer by language of the gold paragraph (questions in brackets):",
        "",
        *by_language_rows(answers, "hit@1"),
        "",
        "Containment by language of the gold paragraph:",
        "",
        *by_language_rows(answers, "contained"),
        "",
        'How the ranking was made language-neutral, and what else was tried, is in "Language-neutral ranking:',
        'what was tried" (bench/ranking_variants.py).',
        "",
        "## Refusal calibration",
        "",
        "Share refused at each threshold of the confidence (best sentence cosine + 0.04 x share of the",
        "question's names and numbers found in the passages), all pages. The engine refuses under 0.80 when the",
        "question and the best passage differ in language and under 0.85 when they share it (e5's cosines run",
        "higher within a language); the answer figures above use those thresholds.",
        "",
        "| threshold | " + " | ".join(f"{n} answerable / unanswerable refused" for n in calibration) + " |",
        "|---|" + "---|" * len(calibration),
    ]
    names = list(calibration)
    for i, row in enumerate(calibration[names[0]] if names else []):
        cells = [
            f"{calibration[n][i]['answerable_refused']} / {calibration[n][i]['unanswerable_refused']}" for n in names
        ]
        lines.append(f"| {row['threshold']} | " + " | ".join(cells) + " |")
    doc = ROOT / "docs" / "quality.md"
    kept = kept_sections(doc)
    page = "\n".join(lines) + "\n" + "".join(f"\n{section}\n" for section in kept)
    doc.write_text(page, encoding="utf-8")
    print(page)


if __name__ == "__main__":
    main()
