"""Sentence splitting on ../shared/eval, before and after issue 17: per language, sentences per paragraph, the
share of gold answers that lie inside one sentence, and paragraphs split per second.

The XQuAD paragraphs are the same 120 texts translated into 12 languages, so every language should have about
as many sentences per paragraph as English (Thai, which marks no sentence ends, excepted); an answer cut by a
sentence boundary is one the extractive answerer can never quote whole.

Run: `.venv/bin/python bench/sentences.py [--pysbd]` (a few seconds; `--pysbd` also measures the pysbd library,
when it is installed, for the comparison in text/sentences.py). Writes its section of docs/quality.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model, write_marked_section  # noqa: E402
from text.sentences import split_sentences  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
XQUAD = ("en", "es", "de", "ro", "tr", "vi", "ru", "el", "ar", "hi", "zh", "th")
DOC = ROOT / "docs" / "quality.md"
SECTION = "sentences"  # its marked section of docs/quality.md
# The last commit of main before issue 17's splitter: the "before" column.
BEFORE = "8a25aa9"
TOLERANCE = 0.25  # sentences per paragraph within 25% of English
CONTAINED = 0.95  # share of gold answers inside one sentence
# pysbd's language for each set (it has no rules for Romanian, Turkish, Vietnamese or Thai: English's then).
PYSBD_LANGUAGE = {"piaf": "fr", "ro": "en", "tr": "en", "vi": "en", "th": "en"}

FIGURES = (("sentences", "{:.2f}"), ("inside", "{:.3f}"), ("per_second", "{:,.0f}"))

Splitter = Callable[[str], list[tuple[int, int]]]


def sets() -> dict[str, Path]:
    found = {lang: EVAL / "xquad" / f"xquad.{lang}.dev.json" for lang in XQUAD}
    found["piaf"] = EVAL / "piaf" / "piaf-v1.0.json"
    return found


def paragraphs(path: Path) -> list[tuple[str, list[tuple[int, int]]]]:
    """(context, [(answer start, answer end)]) of every paragraph; the first gold answer of each question."""
    found = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            answers = []
            for qa in paragraph["qas"]:
                if qa["answers"]:
                    start = qa["answers"][0]["answer_start"]
                    answers.append((start, start + len(qa["answers"][0]["text"])))
            found.append((paragraph["context"], answers))
    return found


def splitter_at(revision: str) -> Splitter:
    """The sentence splitter as it was at `revision` (ingest/sentences.py then), loaded as a module of its own."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:ingest/sentences.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"bench/sentences.py: cannot read ingest/sentences.py at {revision} from git ({exc})")
    module = ModuleType("sentences_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:ingest/sentences.py", "exec"), module.__dict__)
    return lambda text: [(s.start, s.end) for s in module.split_sentences(text)]


def pysbd_splitter(lang: str) -> Splitter:
    import pysbd

    segmenter = pysbd.Segmenter(language=PYSBD_LANGUAGE.get(lang, lang), clean=False, char_span=True)

    def split(text: str) -> list[tuple[int, int]]:
        # pysbd's spans keep the whitespace after a sentence: trim it, as ours do.
        spans = []
        for s in segmenter.segment(text):
            stripped = s.sent.rstrip()
            lead = len(stripped) - len(stripped.lstrip())
            spans.append((s.start + lead, s.start + len(stripped)))
        return spans

    return split


def measure(split: Splitter, data: list[tuple[str, list[tuple[int, int]]]]) -> dict[str, float]:
    """Sentences per paragraph, share of answers inside one sentence, and paragraphs per second of this process's
    CPU time (other processes share the cores, so wall time says more about them), the fastest pass of those
    made in half a second."""
    fastest, spent = float("inf"), 0.0
    while spent < 0.5:
        started = time.process_time()
        spans = [split(context) for context, _ in data]
        elapsed = time.process_time() - started
        fastest, spent = min(fastest, elapsed), spent + elapsed
    answers = [(a, s) for (_, gold), s in zip(data, spans, strict=True) for a in gold]
    inside = sum(any(start <= a0 and a1 <= end for start, end in s) for (a0, a1), s in answers)
    return {
        "sentences": sum(map(len, spans)) / len(data),
        "inside": inside / len(answers),
        "per_second": len(data) / fastest,
    }


def section(rows: dict[str, dict[str, dict[str, float]]], command: str) -> str:
    names = list(next(iter(rows.values())))
    english = rows["en"]["after"]["sentences"]
    lines = [
        "## Sentences (`bench/sentences.py`)",
        "",
        f"Measured {date.today()} on {cpu_model()}. Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        "Sentences per paragraph, the share of gold answers (the first of each question, by `answer_start`)",
        "inside one sentence, and paragraphs split per second of CPU time (the fastest of repeated passes).",
        "XQuAD is the same 120 paragraphs in 12 languages; PIAF is 761 French paragraphs. Before: the splitter",
        f"at commit {BEFORE} (main before issue 17); after: text/sentences.py now. Targets: sentences per",
        f"paragraph within {TOLERANCE:.0%} of English ({english * (1 - TOLERANCE):.2f}-"
        f"{english * (1 + TOLERANCE):.2f}) in every language but Thai, and >= {CONTAINED} of answers inside one",
        f"sentence. Each cell: {' / '.join(names)}.",
        *(
            [
                "pysbd: the library (not a dependency), with its rules for each language; it has none for ro, tr,",
                "vi or th, which get its English rules.",
            ]
            if "pysbd" in names
            else []
        ),
        "",
        "| set | sentences per paragraph | answers inside one sentence | paragraphs split per second | targets met |",
        "|---|---|---|---|---|",
    ]
    for lang, by_name in rows.items():
        after = by_name["after"]
        close = lang in ("th", "piaf") or abs(after["sentences"] - english) <= TOLERANCE * english
        met = "yes" if close and after["inside"] >= CONTAINED else "no"
        cells = [" / ".join(form.format(by_name[n][key]) for n in names) for key, form in FIGURES]
        lines.append(f"| {lang} | {' | '.join(cells)} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pysbd", action="store_true", help="also measure the pysbd library (if installed)")
    parser.add_argument("--no-doc", action="store_true", help="print the section only")
    args = parser.parse_args()
    if not (EVAL / "xquad").is_dir() or not (EVAL / "piaf").is_dir():
        print(f"bench/sentences.py: skipped, no evaluation data in {EVAL} (needs xquad/ and piaf/)")
        return
    if args.pysbd and importlib.util.find_spec("pysbd") is None:
        sys.exit("bench/sentences.py: --pysbd needs the pysbd package (.venv/bin/pip install pysbd)")
    before = splitter_at(BEFORE)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for lang, path in sets().items():
        data = paragraphs(path)
        rows[lang] = {
            "before": measure(before, data),
            "after": measure(lambda text: [(s.start, s.end) for s in split_sentences(text)], data),
        }
        if args.pysbd:
            rows[lang]["pysbd"] = measure(pysbd_splitter(lang), data)
    command = ".venv/bin/python bench/sentences.py" + (" --pysbd" if args.pysbd else "")
    text = section(rows, command)
    print(text)
    if not args.no_doc:
        write_marked_section(DOC, SECTION, text)
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
