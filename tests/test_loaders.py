import json
from pathlib import Path

import pytest

from ingest.articles import Article, LoadError
from ingest.loaders import load_file, split_header_lines
from tests.conftest import SEED, needs_seed
from text.dates import date_to_int, normalise_date

BIG = 10**7


def load(path: Path) -> list[Article | LoadError]:
    return list(load_file(path, BIG))


def test_header_lines_are_metadata_even_when_the_body_shares_the_date_line() -> None:
    meta, body = split_header_lines(" date 2024-06 Le président a parlé.\n\nSuite.")
    assert meta == {"date": "2024-06"}
    assert body.startswith("Le président a parlé.")
    meta, body = split_header_lines("title Grève\nsource Le Courrier\n\nLe corps.")
    assert meta == {"title": "Grève", "source": "Le Courrier"}
    assert body.strip() == "Le corps."


@needs_seed()
def test_seed_article_metadata() -> None:
    (article,) = load(SEED)
    assert isinstance(article, Article)
    assert article.date == "2024-06" and article.date_int == 20240601
    assert article.lang == "fr"
    assert not article.text.startswith("date")
    assert "Peskov" in article.text


def test_markdown_front_matter_and_html_extraction(tmp_path: Path) -> None:
    md = tmp_path / "a.md"
    md.write_text(
        "---\ntitle: Un titre\ndate: 2024-05-21\nurl: https://example.org/a\n---\n# Un titre\n\nLe **corps** ici."
    )
    (article,) = load(md)
    assert isinstance(article, Article)
    assert (article.title, article.date, article.id) == ("Un titre", "2024-05-21", "https://example.org/a")
    assert "corps ici" in article.text and "**" not in article.text
    html = tmp_path / "p.html"
    paragraph = "<p>" + "Le conseil municipal a voté le budget de la ville après un long débat. " * 3 + "</p>"
    html.write_text(
        "<html><head><title>Vote du budget</title><meta name='date' content='2024-02-06'></head><body>"
        "<nav><a href='/'>Accueil</a> <a href='/sport'>Sport</a></nav><article><h1>Vote du budget</h1>"
        f"{paragraph}{paragraph}</article><footer>Tous droits réservés</footer></body></html>"
    )
    (page,) = load(html)
    assert isinstance(page, Article)
    assert page.title == "Vote du budget" and page.date == "2024-02-06"
    assert "Tous droits" not in page.text and "Accueil" not in page.text


def test_json_records_keep_their_ids_and_bad_lines_are_named(tmp_path: Path) -> None:
    lines = tmp_path / "feed.jsonl"
    good = {"id": "dépêche-1", "title": "T", "text": "Un texte.", "date": "2024-10-07", "lang": "fr"}
    lines.write_text(json.dumps(good) + "\n{broken\n" + json.dumps({"title": "no text"}) + "\n")
    results = load(lines)
    assert isinstance(results[0], Article) and results[0].id == "dépêche-1"
    assert isinstance(results[1], LoadError) and "feed.jsonl:2" in str(results[1])
    assert isinstance(results[2], LoadError) and "feed.jsonl:3" in str(results[2])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bin.txt", b"\x00\x01\x02binary", "binary"),
        ("empty.txt", b"", "empty"),
        ("latin.txt", "Élysée".encode("latin-1"), "not UTF-8"),
        ("bad.json", b"{not json", "malformed JSON"),
        ("blank.html", b"<html><body><div></div></body></html>", "no article text"),
        ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
    ],
)
def test_bad_files_are_named_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    (result,) = load(path)
    assert isinstance(result, LoadError)
    assert name in str(result) and message in str(result)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("mot " * 1000)
    (result,) = list(load_file(path, max_bytes=100))
    assert isinstance(result, LoadError) and "too large" in str(result)


def test_dates() -> None:
    assert normalise_date("Fri, 07 Jun 2024 10:00:00 GMT") == "2024-06-07"
    assert normalise_date("2024-06-07T10:00:00Z") == "2024-06-07"
    assert normalise_date("07/06/2024") == "2024-06-07"
    assert normalise_date("someday") == ""
    assert date_to_int("2024-06") == 20240601


def test_folder_ingest_names_what_it_skips(data_dir: Path, tmp_path: Path) -> None:
    """Files of other types, links back into the folder (a loop) and links to nothing are named as skipped, not
    counted as failures; a link to a folder elsewhere is followed."""
    from click.testing import CliRunner

    from newsdesk.cli import cli

    folder, elsewhere = tmp_path / "articles", tmp_path / "elsewhere"
    (folder / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (folder / "a.txt").write_text("title Budget\n\nThe council voted the harbour budget on Monday.")
    (elsewhere / "b.txt").write_text("title Ferry\n\nA new ferry line to Orlen opens in May.")
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4")
    (folder / "sub" / "README").write_text("not an article")
    (folder / "sub" / "up").symlink_to("..")
    (folder / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (folder / "more").symlink_to(elsewhere)
    (folder / ".hidden.pdf").write_bytes(b"%PDF-1.4")
    result = CliRunner().invoke(cli, ["ingest", "--json", str(folder)])
    report = json.loads(result.output.strip().splitlines()[-1])
    assert result.exit_code == 0, result.output
    assert (report["new"], report["failed"]) == (2, 0), "a.txt, and b.txt through the link"
    assert sorted(report["skipped"]) == [
        f"{folder / 'gone.txt'}: a link to nothing",
        f"{folder / 'notes.pdf'}: newsdesk does not read .pdf files (only .txt, .md, .markdown, .html, .htm,"
        " .json, .jsonl)",
        f"{folder / 'sub' / 'README'}: newsdesk does not read files without an extension (only .txt, .md,"
        " .markdown, .html, .htm, .json, .jsonl)",
        f"{folder / 'sub' / 'up'}: a link back to {folder}, not followed (it would loop)",
    ]
    assert f"skipped: {folder / 'notes.pdf'}: newsdesk does not read .pdf files" in result.output
    result = CliRunner().invoke(cli, ["ingest", str(folder)])
    assert "0 new, 0 updated, 2 unchanged, 0 failed; 4 skipped; 0 chunks in" in result.output


def test_counts_of_one_are_singular(data_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from newsdesk.cli import cli

    (tmp_path / "a.txt").write_text("title Budget\n\nThe council voted the harbour budget on Monday.")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "a.txt")])
    assert "1 new, 0 updated, 0 unchanged, 0 failed; 1 chunk in " in result.output, result.output
    listing = CliRunner().invoke(cli, ["sources"]).output
    assert " 1 chunk  Budget" in listing and "chunks" not in listing
