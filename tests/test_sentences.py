"""Sentences in every script, found once at ingest and kept with each chunk; a catalog written before the
spans were kept is migrated in place and keeps answering."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from bot.engine import AnswerEngine
from bot.extractive import candidates
from ingest.articles import Article
from ingest.chunking import chunk_text
from ingest.pipeline import Ingester
from tests.old_catalogs import SCHEMA_2
from text.sentences import THAI_LONG, split_sentences
from text.words import stems
from vectorstore.catalog import SCHEMA_VERSION, SqliteCatalog, index_terms
from vectorstore.records import Hit
from vectorstore.store import Store


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


def test_chunks_keep_their_sentences_relative_to_the_chunk() -> None:
    text = " ".join(f"Песков сказал {i} раз. Это было {i}-е заявление." for i in range(60))
    chunks = chunk_text(text, max_tokens=60, overlap=15)
    assert len(chunks) > 3
    article_sentences = {(s.start, s.end) for s in split_sentences(text)}
    for chunk in chunks:
        assert chunk.sentences and chunk.sentences[0][0] == 0 and chunk.sentences[-1][1] == len(chunk.text)
        assert {(chunk.start + a, chunk.start + b) for a, b in chunk.sentences} <= article_sentences


def test_candidates_are_the_sentences_stored_with_the_hit() -> None:
    text = "Le maire a parlé. Il a dit que le pont rouvre lundi. Les travaux ont duré deux ans."
    stored = Hit("c", "a", text, 1.0, sentences=((0, 52), (53, len(text))))  # as found at ingest
    assert [c.text for c in candidates([stored])] == [text[:52], text[53:]]
    old = Hit("c", "a", text, 1.0)  # a chunk stored before spans were kept: split now
    assert [c.text for c in candidates([old])] == [s.text for s in split_sentences(text)]


def test_chinese_sentences_without_spaces_are_candidates() -> None:
    text = "北京是中国的首都。上海是最大的城市。"
    assert [c.text for c in candidates([Hit("c", "a", text, 1.0)])] == ["北京是中国的首都。", "上海是最大的城市。"]


PESKOV = Article(
    id="peskov-ru",
    title="Песков об инструкторах",
    date="2024-06-02",
    source="Агентство",
    text=(
        "Кремль отреагировал в пятницу. Песков заявил, что французские инструкторы не имеют никакого иммунитета."
        " Французские инструкторы обучили десять тысяч солдат."
    ),
)
RAIN = Article(
    id="rain",
    title="Heavy rain in Brennock",
    date="2023-11-02",
    source="Evening Post",
    text="Heavy rain flooded the lower town on Tuesday. The river rose two metres overnight.",
)


def test_ingest_stores_the_sentences_and_search_returns_them(data_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    store = Store(data_dir, embedder)
    Ingester(store).ingest([PESKOV])
    hit = store.search("What did Peskov say about the instructors?", k=1)[0]
    assert hit.sentences is not None
    assert [hit.text[a:b] for a, b in hit.sentences] == [s.text for s in split_sentences(PESKOV.text)]


def write_schema_2_catalog(path: Path, article: Article) -> str:
    """A catalog file holding `article` as one ready chunk, written as schema 2 did; returns the chunk id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_2)
    db.execute(
        "INSERT INTO documents VALUES (?, ?, ?, ?, '', ?, 'ru', '', 'hash', 1, 'ready', 0)",
        (article.id, article.title, article.date, int(article.date.replace("-", "")), article.source),
    )
    terms = index_terms(article.text)
    db.execute(
        "INSERT INTO chunks(id, document_id, position, start, end, text, terms, stems) VALUES (?, ?, 0, 0, ?, ?, ?, ?)",
        (f"{article.id}-0", article.id, len(article.text), article.text, terms, " ".join(stems(terms, "ru"))),
    )
    db.commit()
    db.close()
    return f"{article.id}-0"


def test_a_schema_2_catalog_is_migrated_in_place_and_keeps_answering(data_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    chunk_id = write_schema_2_catalog(data_dir / "articles.catalog.sqlite3", PESKOV)
    store = Store(data_dir, embedder)  # migrates the catalog
    vector = store.embed_passages([PESKOV.title + "\n" + PESKOV.text])
    metadata = {"article_id": PESKOV.id, "position": 0, "start": 0, "end": len(PESKOV.text), "title": PESKOV.title}
    store.vectors.add([chunk_id], vector, [{**metadata, "date_int": 20240602, "lang": "ru"}])

    db = sqlite3.connect(store.catalog.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT text, sentences FROM chunks").fetchall() == [(PESKOV.text, None)]
    db.close()
    assert store.catalog.keyword_search(["Песков"], 5) and store.catalog.count_documents() == 1

    hit = store.search("What did Peskov say about the instructors?", k=1)[0]
    assert hit.chunk_id == chunk_id and hit.sentences is None
    answer = AnswerEngine(store).ask("Что сказал Песков об инструкторах?")
    assert not answer.refused and "иммунитета" in answer.answer
    assert "Кремль отреагировал" not in answer.answer, "quotes sentences, not the whole passage"

    Ingester(store).ingest([RAIN])  # new writes keep their sentences beside the old chunks
    assert store.search("How high did the river rise?", k=1)[0].sentences is not None
    assert SqliteCatalog(store.catalog.path).chunk_texts([chunk_id])[chunk_id][3] is None, "opening again is a no-op"


def test_the_bench_replaces_only_its_section_and_skips_without_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import sentences as bench
    from bench.common import write_marked_section

    begin, end = "<!-- sentences:begin -->", "<!-- sentences:end -->"
    doc = tmp_path / "quality.md"
    doc.write_text("# Quality\n\nOther tables.\n", encoding="utf-8")
    write_marked_section(doc, bench.SECTION, "first")
    assert doc.read_text(encoding="utf-8") == f"# Quality\n\nOther tables.\n\n{begin}\nfirst\n{end}\n"
    doc.write_text(doc.read_text(encoding="utf-8") + "\n## Later section\n", encoding="utf-8")
    write_marked_section(doc, bench.SECTION, "second")
    page = doc.read_text(encoding="utf-8")
    assert "first" not in page and f"{begin}\nsecond\n{end}" in page
    assert page.startswith("# Quality\n\nOther tables.\n") and page.endswith("\n## Later section\n")

    monkeypatch.setattr(bench, "EVAL", tmp_path / "no-such-folder")
    monkeypatch.setattr(sys, "argv", ["bench/sentences.py"])
    bench.main()
    assert "skipped, no evaluation data in" in capsys.readouterr().out
