"""Property and fuzz tests of the pieces that take untrusted text: the sentence splitter and the chunker, the
Telegram HTML renderer and splitter, and every loader fed random and truncated bytes.

Example counts stay modest so the file runs in well under a minute; `HYPOTHESIS_PROFILE=fuzz` runs many more.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.answers import Answer, Source
from bot.render import (
    MESSAGE_LIMIT,
    answer_html,
    is_web_link,
    link_attribute,
    plain_text,
    split_message,
    telegram_length,
)
from ingest.articles import Article, LoadError
from ingest.chunking import chunk_text, count_tokens
from ingest.loaders import SUFFIXES, load_file
from tests.conftest import EXAMPLES
from tests.fakes.telegram_server import ApiError, _parse_html
from text.sentences import split_sentences
from vectorstore.records import Hit

settings.register_profile("default", max_examples=40, deadline=None)
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]

# -- text strategies --------------------------------------------------------------------------------------

WORDS = st.sampled_from(
    [
        "le", "président", "a", "déclaré", "M.", "Dr.", "U.S.", "Jan.", "10", "000", "4.2", "«", "»", "—", "(AFP)",
        "said", "the", "mayor", "J.", "Biden", "l’État", "etc.", "n°", "!", "?", "…", "&", "<b>", "Ω", "😀", "中文",
        "Supercalifragilisticexpialidocious", "x" * 60, "ab" * 150, "https://example.org/a?b=1&c=2",
        "Песков", "В.", "Ναι", "قال", "؟", "۔", "הוא", "कहा।", "北京是首都。", "？”", "ทีมรับของแพนเธอร์ส", "z.B.", "„",
    ]
)  # fmt: skip
GLUE = st.sampled_from(
    [" ", " ", " ", ". ", "! ", "? ", ".\n", "\n\n", "\n- ", "\u00a0", "\t", ", ", ".» ", "  ", "; ", "。", ""]
)


@st.composite
def prose(draw: st.DrawFn, max_words: int = 300) -> str:
    """News-like text: words, sentence ends, paragraphs, lists, odd spacing, emoji; sometimes raw unicode."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=400))
    words = draw(st.lists(WORDS, max_size=max_words))
    glue = draw(st.lists(GLUE, min_size=len(words), max_size=len(words)))
    return "".join(word + space for word, space in zip(words, glue, strict=True))


def covered(text: str, spans: list[tuple[int, int]]) -> bool:
    """Every non-whitespace character of `text` lies inside one of the spans."""
    inside = [False] * len(text)
    for start, end in spans:
        inside[start:end] = [True] * (end - start)
    return all(inside[i] or ch.isspace() for i, ch in enumerate(text))


# -- sentences and chunks ----------------------------------------------------------------------------------


@settings(suppress_health_check=SLOW)
@given(prose())
def test_sentences_map_back_to_the_text_and_lose_nothing(text: str) -> None:
    spans = split_sentences(text)
    for span in spans:
        assert text[span.start : span.end] == span.text == span.text.strip() != ""
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans)), "in order, not overlapping"
    assert covered(text, [(s.start, s.end) for s in spans])


@settings(suppress_health_check=SLOW)
@given(prose(), st.integers(8, 120), st.integers(0, 60))
@example("Le président a déclaré. " * 40, 32, 40)  # overlap larger than the chunk
@example("😀" * 300, 8, 0)  # a "sentence" of multi-token characters, cut inside
@example("ab" * 2000, 16, 4)  # one unbroken word
@example(" ".join(["ทีมรับของแพนเธอร์สเสียคะแนน"] * 40), 32, 8)  # Thai: weak boundaries at spaces
def test_chunks_map_back_fit_their_limit_and_lose_nothing(text: str, max_tokens: int, overlap: int) -> None:
    chunks = chunk_text(text, max_tokens=max_tokens, overlap=overlap)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text == chunk.text.strip() != ""
        assert count_tokens(chunk.text) <= max_tokens
        for start, end in chunk.sentences:  # kept for the answerer: whole pieces of the chunk, in order
            assert chunk.text[start:end] == chunk.text[start:end].strip() != ""
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(chunk.sentences))
        assert covered(chunk.text, list(chunk.sentences))
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)), "each chunk starts after the previous one"
    assert all(a.end <= b.end for a, b in itertools.pairwise(chunks))
    assert covered(text, [(c.start, c.end) for c in chunks])
    assert bool(chunks) == bool(text.strip())


@settings(suppress_health_check=SLOW)
@given(prose(), st.integers(40, 120))
def test_chunks_respect_the_embedders_own_limit_when_they_can(text: str, max_tokens: int) -> None:
    """`fits` (the embedder's check) is honoured whenever the chunk holds more than one sentence."""
    limit = 200

    def fits(chunk: str) -> bool:
        return len(chunk) <= limit

    for chunk in chunk_text(text, max_tokens=max_tokens, overlap=10, fits=fits):
        assert fits(chunk.text) or len(split_sentences(chunk.text)) == 1


# -- Telegram HTML -----------------------------------------------------------------------------------------

FREE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
URLS = st.one_of(
    st.just(""),
    st.just("file:///home/x/a.txt"),
    st.builds(lambda path: f"https://example.org/{path}", st.text(max_size=40)),
    st.builds(lambda q: f'https://ex.com/?q="{q}"&a=<1>', st.text(max_size=20)),
)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    """Answers whose every field comes from an article: text, titles, sources, urls with markup characters."""
    sources = []
    for n in range(1, draw(st.integers(0, 6)) + 1):
        hit = Hit(
            chunk_id=f"c{n}",
            article_id=draw(st.sampled_from(["file:///a.txt", "id<1>", "https://example.org/x"])),
            text="",
            score=1.0,
            title=draw(FREE_TEXT),
            date=draw(st.sampled_from(["", "2024-06", "<date>"])),
            url=draw(URLS),
            source=draw(FREE_TEXT),
        )
        sources.append(Source(n=n, hit=hit, quote=""))
    return Answer(
        question="q",
        answer=draw(st.one_of(FREE_TEXT, prose(900))),
        refused=False,
        lang=draw(st.sampled_from(["en", "fr"])),
        sources=sources,
        note=draw(st.one_of(st.just(""), FREE_TEXT)),
    )


def telegram_accepts(part: str) -> str:
    """The text Telegram shows for `part`; the fake Bot API's parser fails the test the way Telegram would
    refuse the message (unbalanced or unsupported tags, a stray `<`)."""
    try:
        shown, _ = _parse_html(part)
    except ApiError as error:
        pytest.fail(f"Telegram would refuse {part!r}: {error.description}")
    return shown


def no_space(value: str) -> str:
    return re.sub(r"\s", "", value)


@settings(suppress_health_check=SLOW)
@given(answers())
def test_answer_html_escapes_everything_from_articles(answer: Answer) -> None:
    rendered = answer_html(answer)
    shown, entities = _parse_html(rendered)
    assert shown.startswith(answer.answer)
    for source in answer.sources:
        assert (source.hit.title or source.hit.article_id) in shown
        if source.hit.source:
            assert source.hit.source in shown
    linked = [e["url"] for e in entities if e["type"] == "text_link"]
    assert linked == [s.hit.url for s in answer.sources if is_web_link(s.hit.url)]


@given(st.text(max_size=300))
def test_link_attribute_round_trips_any_url(url: str) -> None:
    _, entities = _parse_html(f'<a href="{link_attribute(url)}">x</a>')
    assert entities[0]["url"] == url


@settings(suppress_health_check=SLOW)
@given(answers(), st.integers(120, 700))
def test_split_answers_fit_are_balanced_and_lose_nothing(answer: Answer, limit: int) -> None:
    """Small limits stand in for Telegram's 4096 so that answers of a few hundred words need cutting."""
    rendered = answer_html(answer)
    parts = split_message(rendered, limit)
    for part in parts:
        assert telegram_length(part) <= limit
        assert telegram_accepts(part).strip()
    whole = telegram_accepts(rendered)
    assert no_space("".join(telegram_accepts(p) for p in parts)) == no_space(whole)
    if telegram_length(rendered.strip()) <= limit and whole.strip():
        assert parts == [rendered.strip()]


@settings(suppress_health_check=SLOW, max_examples=10)
@given(st.lists(answers(), min_size=4, max_size=12))
def test_split_at_telegram_size(batch: list[Answer]) -> None:
    rendered = "\n\n".join(answer_html(a) for a in batch) * 3
    parts = split_message(rendered)
    assert all(telegram_length(p) <= MESSAGE_LIMIT for p in parts)
    assert no_space("".join(telegram_accepts(p) for p in parts)) == no_space(telegram_accepts(rendered))


@given(st.text(st.sampled_from("ab <>&;\n😀é"), max_size=3000), st.integers(1, 60))
@example("&amp;" * 50, 3)  # the entity alone is longer than the limit
@example("😀" * 40, 1)  # a character of two UTF-16 units that cannot fit at all
def test_split_escaped_text_never_cuts_an_entity(raw: str, limit: int) -> None:
    escaped = html.escape(raw, quote=False)
    parts = split_message(escaped, limit)
    for part in parts:
        assert not re.search(r"&(?!(?:amp|lt|gt);)", part), "an entity was cut"
        assert telegram_length(part) <= limit or len(part) == 1 or re.fullmatch(r"&\w+;", part)
    assert no_space(html.unescape("".join(parts))) == no_space(raw)


def test_plain_text_leaves_escapes_alone() -> None:
    assert plain_text('<a href="x">&lt;b&gt;</a>') == "&lt;b&gt;"


# -- loaders: random and truncated bytes ----------------------------------------------------------------


def valid_files() -> list[tuple[str, bytes]]:
    """Real inputs of every kind to truncate: the examples plus small made-up ones."""
    samples = [(p.suffix, p.read_bytes()[:6000]) for p in sorted(EXAMPLES.rglob("*")) if p.suffix in SUFFIXES]
    samples += [
        (".md", b"---\ntitle: A\ndate: 2024-05-21\nurl: https://e.org/a\n---\n# A\n\nThe **body** here.\n"),
        (".json", json.dumps([{"title": "A", "text": "Body one.", "id": 1}, {"title": "B", "text": "Two."}]).encode()),
        (".jsonl", b'{"title": "A", "text": "Body."}\n{"title": "B", "text": "Deux."}\n'),
        (".txt", "title Grève\ndate 2024-06 Le président a parlé.\n\nSuite.".encode()),
        (".html", b"<html><head><title>T</title></head><body><article><p>Some text here.</p></article></body>"),
        (".txt", "\ufeffBOM text".encode("utf-16")),
    ]
    return samples


VALID = valid_files()
HOSTILE = [
    (".json", b"[" * 100_000),  # nesting deeper than the parser's recursion limit
    (".jsonl", b'{"text": ' + b"[" * 100_000 + b"\n"),
    (".json", b'{"title": "T", "text": "x", "date": ' + b"9" * 5000 + b"}"),  # past int's digit limit
    (".md", b"---\ntitle: " + b"[" * 50_000 + b"\n---\nbody"),
    (
        ".md",
        b"---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"title: &t [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n---\nbody",
    ),
    (".md", b"---\ntitle: !!python/object:os.system echo\n---\nbody"),
    (".md", b"---\ndate: 99999-99-99\ntitle: [a, b]\n---\nbody"),
    (".json", b'{"text": "a", "title": {"x": 1}, "id": [1, 2], "date": "\\ud800"}'),
    (".txt", b"date 0000-00-00\n\nbody"),
    (".txt", b"\xff\xfe\x00"),  # a UTF-16 BOM then half a character
    (".html", b"<html>" + b"<div>" * 5000),
]


def check_load(tmp_path: Path, suffix: str, data: bytes) -> None:
    """Loading never raises: every result is an Article with text, or a LoadError that names the file."""
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    for result in load_file(path, max_bytes=1_000_000):
        assert isinstance(result, Article | LoadError)
        if isinstance(result, LoadError):
            assert str(path) in str(result)
        else:
            assert result.text and all(
                isinstance(v, str) for v in (result.id, result.title, result.date, result.url, result.source)
            )


@pytest.mark.parametrize(("suffix", "data"), HOSTILE, ids=[f"{s}-{i}" for i, (s, _) in enumerate(HOSTILE)])
def test_hostile_inputs_are_named_errors(tmp_path: Path, suffix: str, data: bytes) -> None:
    check_load(tmp_path, suffix, data)


@settings(suppress_health_check=[*SLOW, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SUFFIXES), st.binary(max_size=2000))
def test_loaders_survive_random_bytes(tmp_path: Path, suffix: str, data: bytes) -> None:
    check_load(tmp_path, suffix, data)


@settings(suppress_health_check=[*SLOW, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(VALID), st.data())
def test_loaders_survive_truncated_and_corrupted_files(tmp_path: Path, sample: tuple[str, bytes], data) -> None:  # type: ignore[no-untyped-def]
    suffix, content = sample
    cut = data.draw(st.integers(0, len(content)))
    damaged = bytearray(content[:cut])
    for _ in range(data.draw(st.integers(0, 3))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    check_load(tmp_path, suffix, bytes(damaged))


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"%PDF-1.7\n%\xe2\xe3", "a PDF document"), (b"PK\x03\x04\x14\x00", "a ZIP archive"), (b"\x89PNG\r\n", "PNG")],
)
def test_files_are_judged_by_content_not_name(tmp_path: Path, data: bytes, kind: str) -> None:
    path = tmp_path / "story.txt"
    path.write_bytes(data + b"more bytes")
    [error] = load_file(path, 10**6)
    assert isinstance(error, LoadError) and kind in str(error)
