"""Sentences in every script, and the bench that measures them on ../shared/eval."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ingest.sentences import THAI_LONG, split_sentences


def sentences(text: str) -> list[str]:
    spans = split_sentences(text)
    assert all(text[s.start : s.end] == s.text for s in spans)
    return [s.text for s in spans]


@pytest.mark.parametrize(
    "expected, glue",
    [
        # Cyrillic, with initials (one and two letters) that do not end a sentence
        (["Путин заявил об этом в среду.", "Песков добавил, что инструкторы не имеют иммунитета.", "Это важно."], " "),
        (["Об этом сказал В. В. Путин.", "Галерея Т.Т. Цуй открылась в 1991 году."], " "),
        (["Η Αθήνα είναι πρωτεύουσα.", "Ο Πεσκόφ μίλησε χθες;", "Ναι, μίλησε."], " "),  # ";" is Greek's "?"
        # Arabic: full stop, the Arabic question mark, the Urdu full stop
        (["قال بيسكوف إن المدربين لا يتمتعون بالحصانة.", "هل هذا صحيح؟", "نعم۔", "انتهى."], " "),
        (["قال د. محمد إن المدربين لا يتمتعون بالحصانة.", "انتهى."], " "),  # "د." (Dr.) ends nothing
        (["פסקוב דיבר ביום רביעי.", "הוא אמר שאין חסינות."], " "),  # Hebrew
        (["पेसकोव ने बुधवार को यह कहा।", "प्रशिक्षकों को कोई छूट नहीं है।", "यह महत्वपूर्ण है।"], " "),  # danda
        (["पेसकोव ने बुधवार को यह कहा।", "यह महत्वपूर्ण है।"], ""),  # a danda needs no space after it
        # CJK: no space after the stop; a closing quote stays with its sentence
        (["北京是中国的首都。", "上海是最大的城市！", "真的吗？", "他说：“是的。”", "然后走了。"], ""),
        (["東京は日本の首都です。", "「本当ですか？」", "と聞いた。"], ""),
        # Latin script as before: abbreviations, initials, decimals, French and German quotes
        (["M. Dupont est arrivé à 9 h.", "Il a dit « Non. »", "Puis J. Biden parla de 12.5 % et 10 000 hommes !"], " "),
        (["Er sagte: „Das ist z.B. falsch.“", "Dann ging er.", "Peskov a parlé.", "Il a ajouté que..."], " "),
        # German ordinals in dates are not sentence ends; a number that ends a sentence still is
        (["Am 8. Februar 2007 gab BSkyB das bekannt.", "Tesla starb am 7. Januar 1943.", "Es war die Route 99."], " "),
        (["He played at age 39.", "The record was held by J. Smith (c. 1455).", "It rose to 100 Gbit/s.", "Then"], " "),
    ],
)
def test_sentence_ends_in_every_script(expected: list[str], glue: str) -> None:
    assert sentences(glue.join(expected)) == expected


def test_a_semicolon_ends_a_sentence_only_in_greek() -> None:
    assert len(sentences("He came; Peskov left.")) == 1
    assert len(sentences("Ήρθε; Ο Πεσκόφ έφυγε.")) == 2


def test_long_thai_is_cut_at_the_spaces_between_thai_runs_and_short_thai_is_not() -> None:
    clause = "ทีมรับของแพนเธอร์สเสียคะแนนเพียง 308 คะแนน"  # Thai marks no sentence ends; spaces separate clauses
    short = " ".join([clause] * 3)
    assert len(short) <= THAI_LONG and sentences(short) == [short]
    long = " ".join([clause] * 20)
    pieces = sentences(long)
    assert len(pieces) > 1 and all(len(p) <= THAI_LONG for p in pieces)
    assert " ".join(pieces) == long, "cut only at spaces"
    mixed = "Panthers " + "x" * 300 + " ทีม"  # a space between Latin and Thai is no weak boundary
    assert sentences(mixed) == [mixed]


def test_the_bench_replaces_only_its_section_and_skips_without_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import sentences as bench

    doc = tmp_path / "quality.md"
    doc.write_text("# Quality\n\nOther tables.\n", encoding="utf-8")
    bench.write_section("first", doc)
    assert doc.read_text(encoding="utf-8") == f"# Quality\n\nOther tables.\n\n{bench.BEGIN}\nfirst\n{bench.END}\n"
    doc.write_text(doc.read_text(encoding="utf-8") + "\n## Later section\n", encoding="utf-8")
    bench.write_section("second", doc)
    page = doc.read_text(encoding="utf-8")
    assert "first" not in page and f"{bench.BEGIN}\nsecond\n{bench.END}" in page
    assert page.startswith("# Quality\n\nOther tables.\n") and page.endswith("\n## Later section\n")

    monkeypatch.setattr(bench, "EVAL", tmp_path / "no-such-folder")
    monkeypatch.setattr(sys, "argv", ["bench/sentences.py"])
    bench.main()
    assert "skipped, no evaluation data in" in capsys.readouterr().out
