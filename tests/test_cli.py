"""The `newsdesk` command as a user runs it, in-process (CliRunner) and as real processes where it matters."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsdesk.cli import cli
from tests.conftest import EXAMPLES, ROOT, SEED, needs_seed
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


ONE_QUESTION = r"""
import sys
from newsdesk.cli import cli

cli(["ask", "--json", sys.argv[1]], standalone_mode=False)
print("torch imported:", "torch" in sys.modules)
"""


@pytest.mark.slow
def test_a_one_question_ask_never_imports_torch_and_answers_as_torch_would(
    data_dir: Path, embedder: NewsEmbeddings
) -> None:
    """Importing torch is ~0.9 s of a cold start: `newsdesk ask "..."` answers with the numpy engine, and its
    answer is the one the torch engine gives."""
    assert run("ingest", str(EXAMPLES))[0] == 0
    question = "What did the mayor of Valmont say about the budget?"
    proc = subprocess.run(
        [sys.executable, "-c", ONE_QUESTION, question],
        cwd=ROOT,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    printed, loaded = proc.stdout.strip().splitlines()
    assert loaded == "torch imported: False"
    embedder.torch_encoder()  # type: ignore[attr-defined]  # from now on this process's embedder is torch's
    embedder.__dict__.get("_query_cache", {}).clear()
    _, out = run("ask", "--json", question)
    numpy_answer, torch_answer = json.loads(printed), json.loads(out)
    assert not numpy_answer["refused"] and "Valmont" in numpy_answer["answer"]
    assert numpy_answer["answer"] == torch_answer["answer"]
    assert [s["chunk_id"] for s in numpy_answer["sources"]] == [s["chunk_id"] for s in torch_answer["sources"]]
    assert [h["chunk_id"] for h in numpy_answer["retrieved"]] == [h["chunk_id"] for h in torch_answer["retrieved"]]
