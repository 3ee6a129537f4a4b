"""The `newsdesk` command as a user runs it, in-process (CliRunner) and as real processes where it matters."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsdesk.cli import cli
from tests.conftest import EXAMPLES, SEED, needs_seed
from vectorstore.embeddings import NewsEmbeddings


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.slow
def test_ingest_examples_then_search_sources_remove(data_dir: Path) -> None:
    code, out = run("ingest", "--json", str(EXAMPLES))
    report = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and report["failed"] == 0 and report["new"] >= 8 and report["chunks"] > report["new"]
    code, out = run("ingest", str(EXAMPLES))
    assert code == 0 and "0 new, 0 updated" in out and "unchanged" in out

    code, out = run("search", "How many trains were cancelled by the strike?", "-k", "3", "--json")
    hits = json.loads(out)
    assert {"text", "score", "article_id", "chunk_id", "title", "date", "url"} <= set(hits[0])
    assert "SNCR" in hits[0]["title"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores), scores
    code, out = run("search", "--source", "le courrier de valmont", "--json", "budget")
    assert code == 0 and {h["source"] for h in json.loads(out)} == {"Le Courrier de Valmont"}
    code, out = run("search", "--since", "2030-01-01", "budget")
    assert code == 1 and "no article matches these filters" in out

    code, out = run("sources", "--json")
    docs = json.loads(out)
    assert [d["date"] for d in docs] == sorted((d["date"] for d in docs), reverse=True)
    victim = docs[0]["id"]
    assert run("remove", victim)[0] == 0
    code, out = run("remove", victim)
    assert code != 0 and "no such article" in out


def test_bad_files_are_named_and_the_rest_goes_in(
    data_dir: Path, tmp_path: Path, hashing_embedder: NewsEmbeddings
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("title Bon\n\nLe conseil a voté le budget mardi soir.")
    (folder / "binary.txt").write_bytes(b"\x00\x00\xff")
    (folder / "lines.jsonl").write_text('{"title": "A", "text": "Un texte valable."}\n{oops\n')
    code, out = run("ingest", "--json", str(folder))
    report = json.loads(out.strip().splitlines()[-1])
    assert code == 1
    assert (report["new"], report["failed"]) == (2, 2)
    assert any("binary.txt" in e for e in report["errors"]) and any("lines.jsonl:2" in e for e in report["errors"])


def test_bad_date_is_a_usage_error(data_dir: Path, hashing_embedder: NewsEmbeddings) -> None:
    code, out = run("search", "budget", "--since", "last tuesday")
    assert code == 2 and "--since" in out


@pytest.mark.slow
@needs_seed()
def test_seed_search_ranks_peskov_first(data_dir: Path) -> None:
    run("ingest", str(EXAMPLES), str(SEED))
    _, out = run("search", "What did Peskov say?", "--json")
    top = json.loads(out)[0]
    assert top["article_id"] == SEED.resolve().as_uri()
    assert "immunité" in top["text"]
