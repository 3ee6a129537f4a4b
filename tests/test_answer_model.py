"""The trained answer model, the reader: shipped and loaded offline, answering and refusing through the real
engine, one-line errors for a bad file, and the training command end to end on a small slice of ../shared/eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.engine import AnswerEngine
from bot.reader import ADAPTED, SHIPPED_READER, AnswerModelError, Reader
from ingest.pipeline import Ingester, load_paths
from newsdesk.cli import cli
from tests.conftest import EXAMPLES, ROOT, SEED, SHARED, needs_seed
from vectorstore.e5_model import load_model
from vectorstore.store import Store


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader(SHIPPED_READER, "e5-small", load_model())


@pytest.fixture(scope="module")
def trained_engine(tmp_path_factory: pytest.TempPathFactory, embedder, reader: Reader) -> AnswerEngine:  # type: ignore[no-untyped-def]
    store = Store(tmp_path_factory.mktemp("answer-model"), embedder)
    Ingester(store).ingest(load_paths([EXAMPLES, SEED] if SEED.exists() else [EXAMPLES], 10**7))
    return AnswerEngine(store, answer_model=reader)


def test_the_shipped_reader_is_small_and_reads_pairs(reader: Reader) -> None:
    """A few MB on top of the e5 weights the embedder ships; the sentence that answers scores above the one
    that only shares the topic."""
    assert SHIPPED_READER.stat().st_size < 10_000_000
    assert 0 < reader.threshold < 1 and reader.k >= 3
    logits = reader.logits(
        "How many trains were cancelled?",
        ["The strike was called by the drivers' union.", "412 of the 1,030 regional trains were cancelled."],
        np.zeros(2, dtype=np.float32),
    )
    assert logits[1] > logits[0]


def test_the_product_reads_pairs_as_training_did(reader: Reader) -> None:
    """The product runs the merged adapters in the embedder's fused torch engine (bfloat16 where faster, no
    padding); training ran them unmerged in a padded module: the same pair scores, or the reader's threshold
    and scale would not mean what training fitted."""
    import torch

    from training.pair_encoder import PairEncoder, pair_vectors

    model = load_model()
    encoder = PairEncoder(model)
    with np.load(SHIPPED_READER) as fields:
        encoder.add_adapters(int(fields["rank"]), float(fields["alpha"]))
        with torch.no_grad():
            for index, layer in enumerate(encoder.layers):
                for name in ADAPTED:
                    getattr(layer, name).a.copy_(torch.from_numpy(fields[f"l{index}.{name}.a"].astype(np.float32)))
                    getattr(layer, name).b.copy_(torch.from_numpy(fields[f"l{index}.{name}.b"].astype(np.float32)))
    question = "How many trains were cancelled?"
    sentences = [
        "412 of the 1,030 regional trains were cancelled.",
        "The strike was called by the union.",
        "Le trafic ferroviaire régional était fortement perturbé ce mardi 12 mars, premier jour de la grève.",
    ]
    pairs = [reader.tokens(question, sentence) for sentence in sentences]
    expected = pair_vectors(encoder, pairs, bf16=False).detach().numpy() @ reader.head_weight + reader.head_bias
    got = reader.logits(question, sentences, np.zeros(3, dtype=np.float32))
    assert np.abs(got - expected).max() < 0.02
    assert len(set(np.argsort(got))) == 3 and list(np.argsort(got)) == list(np.argsort(expected))


@needs_seed()
def test_trained_model_answers_peskov_with_his_statement(trained_engine: AnswerEngine) -> None:
    answer = trained_engine.ask("What did Peskov say?")
    assert not answer.refused and "immunité" in answer.answer and "[1]" in answer.answer


def test_trained_model_refuses_what_the_articles_do_not_say(trained_engine: AnswerEngine) -> None:
    for question in ("What is the capital of Australia?", "Who won the 1998 football World Cup?"):
        refused = trained_engine.ask(question)
        assert refused.refused and not refused.sources, question
    answered = trained_engine.ask("When did the Port of Kestrel reopen?")
    assert not answered.refused and "6 a.m." in answered.answer
    assert 0 < answered.confidence <= 1 and answered.confidence >= trained_engine.answer_model.threshold  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_missing_or_corrupt_model_is_one_line_naming_it_and_off_still_answers(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(EXAMPLES)]).exit_code == 0
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a model")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with np.load(SHIPPED_READER) as shipped:
        fields = {key: shipped[key] for key in shipped.files}
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, **{key: value for key, value in fields.items() if not key.startswith("l11.")})
    cases = (
        (tmp_path / "missing.npz", "not found"),
        (corrupt, "not a readable"),
        (foreign, "not a newsdesk reader"),
        (truncated, "not a complete newsdesk reader"),
    )
    for path, says in cases:
        monkeypatch.setenv("NEWSDESK_ANSWER_MODEL", str(path))
        result = runner.invoke(cli, ["ask", "When did the Port of Kestrel reopen?"])
        assert result.exit_code == 1 and str(path) in result.output and says in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    with pytest.raises(AnswerModelError, match="NEWSDESK_EMBEDDER is minilm"):
        Reader(SHIPPED_READER, "minilm", load_model())
    for setting in ("off", "shipped"):
        monkeypatch.setenv("NEWSDESK_ANSWER_MODEL", setting)
        result = runner.invoke(cli, ["ask", "--json", "When did the Port of Kestrel reopen?"])
        assert result.exit_code == 0 and "6 a.m." in json.loads(result.output)["answer"], setting


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "eval" / "xquad").is_dir(), reason="../shared/eval is absent")
def test_training_runs_end_to_end_on_a_small_slice(tmp_path: Path) -> None:
    """docs/answer-model.md reports its figures and the shipped reader comes from it, so the command must keep
    working: cases, the probe, some training steps, the figures of every group, and a reader file that the
    product loads."""
    report, weights = tmp_path / "report.json", tmp_path / "reader.npz"
    command = [sys.executable, "-m", "training", "--articles", "1", "--variants", "1"]
    command += ["--minutes", "0.2", "--probe", "20", "--holdout", "20", "--cache", str(tmp_path / "cache")]
    command += ["--report", str(report), "--save", str(weights)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=600, capture_output=True)
    figures = json.loads(report.read_text())
    assert figures["steps"] > 0 and figures["probe_loss"][1] <= figures["probe_loss"][0]
    overall = figures["k6"]["measure"]["all"]
    assert overall["answerable"] > 0 and set(overall["top_sentence"]) == {"cosine", "trained"}
    assert 0.0 <= overall["unanswerable_refused"]["trained"] <= 1.0
    reader = Reader(weights, "e5-small", load_model())
    assert reader.k == 6 and 0.0 < reader.threshold < 1.0
    logits = reader.logits("When did the strike start?", ["The strike started on Monday.", "It rained."], np.zeros(2))
    assert logits.shape == (2,) and np.isfinite(logits).all()
