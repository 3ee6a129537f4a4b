"""A multilingual archive: its evaluation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsdesk.cli import cli
from newsdesk.evaluation import corpus_articles, file_language, in_split, load_squad

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
XQUAD = EVAL / "xquad"
MIXED_LANGUAGES = ("en", "de", "es", "ro", "ru", "tr", "vi", "el")


def test_mixed_corpus_is_deterministic_and_spread_over_the_files() -> None:
    if not (XQUAD / "xquad.en.dev.json").exists():
        pytest.skip(f"no evaluation data in {EVAL}")
    files = [XQUAD / f"xquad.{lang}.dev.json" for lang in MIXED_LANGUAGES]
    mixed = corpus_articles(files)
    assert mixed == corpus_articles(files[::-1]), "the order the files are named in does not matter"
    shares = {
        lang: sum(1 for _, paragraph_lang in mixed.values() if paragraph_lang == lang) for lang in MIXED_LANGUAGES
    }
    assert min(shares.values()) >= 5 and sum(shares.values()) == 120
    german = load_squad(XQUAD / "xquad.de.dev.json")[0]
    assert all(text == german[aid] for aid, (text, lang) in mixed.items() if lang == "de")


def squad(path: Path, pages: list[tuple[str, list[tuple[str, str, str, str]]]]) -> Path:
    """A SQuAD file: pages of (context, question id, question, answer) paragraphs."""
    data = [
        {
            "title": title,
            "paragraphs": [
                {"context": context, "qas": [{"id": qid, "question": question, "answers": [{"text": answer}]}]}
                for context, qid, question, answer in paragraphs
            ],
        }
        for title, paragraphs in pages
    ]
    path.write_text(json.dumps({"data": data}), encoding="utf-8")
    return path


def test_eval_mixes_languages_and_reports_each(tmp_path: Path, data_dir: Path) -> None:
    question = "When does the ferry leave?"
    english = squad(
        tmp_path / "tiny.en.json",
        [
            ("Ferry", [("The ferry leaves at seven.", "q1", question, "seven")]),
            ("Bridge", [("The bridge opened in 1990.", "q2", "When did the bridge open?", "1990")]),
            ("Market", [("The market is held on Fridays.", "q3", "When is the market held?", "Fridays")]),
        ],
    )
    german = squad(
        tmp_path / "tiny.de.json",
        [
            ("Ferry", [("Die Fähre fährt um sieben Uhr ab.", "q1", "Wann fährt die Fähre ab?", "sieben Uhr")]),
            ("Bridge", [("Die Brücke wurde 1990 eröffnet.", "q2", "Wann wurde die Brücke eröffnet?", "1990")]),
            ("Market", [("Der Markt findet freitags statt.", "q3", "Wann ist der Markt?", "freitags")]),
        ],
    )
    assert (file_language(english), file_language(german)) == ("en", "de")
    result = CliRunner().invoke(
        cli, ["eval", "retrieval", "--contexts", str(english), "--contexts", str(german), "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    mixed = corpus_articles([english, german])
    assert figures["questions"] == 3
    assert {lang: row["questions"] for lang, row in figures["by_language"].items()} == Counter(
        lang for _, lang in mixed.values()
    )
    refused = CliRunner().invoke(cli, ["eval", "retrieval", "--contexts", str(english), "--split", "measure"])
    assert refused.exit_code != 0
    assert "no train/measure split is defined for tiny.en.json" in refused.output


def test_split_follows_the_pages_a_model_may_train_on() -> None:
    xquad, piaf = Path("xquad.de.dev.json"), Path("piaf-v1.0.json")
    assert in_split(xquad, 17, "train") and in_split(xquad, 18, "measure") and not in_split(xquad, 18, "train")
    assert in_split(piaf, 149, "train") and in_split(piaf, 150, "measure")
    assert in_split(Path("anything.json"), 0, "all")
