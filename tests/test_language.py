"""The language identifier's uncompressed copy: the same answers as py3langid's own model, and never a reason to
fail."""

from __future__ import annotations

from pathlib import Path

from py3langid import langid

from text.language import LANGUAGES, detect_language, load_identifier

SAMPLES = [
    "What did the mayor of Valmont say about the budget?",
    "Combien de trains ont été supprimés le premier jour de la grève ?",
    "Die Regierung hat am Dienstag 10 000 neue Wohnungen angekündigt.",
    "Правительство объявило о строительстве новых домов.",
    "Уряд оголосив про будівництво нових будинків.",
    "El gobierno anunció nuevas viviendas el martes.",
    "Rząd ogłosił budowę nowych domów.",
]


def test_the_copy_answers_as_the_packaged_model(tmp_path: Path) -> None:
    packaged = langid._load_identifier(norm_probs=True, langs=list(LANGUAGES))
    made = load_identifier(tmp_path)
    copies = list(tmp_path.glob("langid-*.npz"))
    assert len(copies) == 1
    read = load_identifier(tmp_path)
    for sample in SAMPLES:
        assert made.classify(sample) == read.classify(sample) == packaged.classify(sample), sample


def test_a_damaged_copy_is_made_again(tmp_path: Path) -> None:
    load_identifier(tmp_path)
    (copy,) = tmp_path.glob("langid-*.npz")
    copy.write_bytes(b"not an npz")
    assert load_identifier(tmp_path).classify(SAMPLES[1])[0] == "fr"
    assert load_identifier(tmp_path).classify(SAMPLES[0])[0] == "en"
    assert copy.stat().st_size > 1_000_000


def test_an_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("where the cache folder should be")
    assert load_identifier(blocker).classify(SAMPLES[2])[0] == "de"


# One sentence of ours per language of XQuAD's mixed archive that the first identifier (ten languages) could not
# name: it read Arabic as English and Romanian as Italian.
NAMED = {
    "ro": "Guvernul a anunțat marți construirea a zece mii de locuințe noi în capitală.",
    "tr": "Hükümet salı günü başkentte on bin yeni konut yapılacağını açıkladı.",
    "vi": "Chính phủ đã công bố kế hoạch xây dựng mười nghìn căn nhà mới vào thứ Ba.",
    "el": "Η κυβέρνηση ανακοίνωσε την Τρίτη την κατασκευή δέκα χιλιάδων νέων κατοικιών.",
    "ar": "أعلنت الحكومة يوم الثلاثاء عن بناء عشرة آلاف مسكن جديد في العاصمة.",
    "zh": "政府周二宣布将在首都新建一万套住房。",
    "hi": "सरकार ने मंगलवार को राजधानी में दस हज़ार नए घर बनाने की घोषणा की।",
    "th": "รัฐบาลประกาศเมื่อวันอังคารว่าจะสร้างบ้านใหม่หนึ่งหมื่นหลังในเมืองหลวง",
    "en": SAMPLES[0],
    "fr": SAMPLES[1],
    "uk": SAMPLES[4],
}


def test_languages_outside_the_stemmed_ones_are_named_not_forced_into_them() -> None:
    for lang, sentence in NAMED.items():
        assert detect_language(sentence) == lang, sentence
