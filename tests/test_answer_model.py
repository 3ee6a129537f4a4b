"""The trained answer model: shipped and loaded offline, answering and refusing through the real engine, one-line
errors for a bad file, and the training command end to end on a small slice of ../shared/eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.answer_model import SHIPPED_MODEL, AnswerModel, AnswerModelError
from bot.engine import AnswerEngine
from ingest.pipeline import Ingester, load_paths
from newsdesk.cli import cli
from tests.conftest import EXAMPLES, ROOT, SEED, SHARED, needs_seed
from vectorstore.store import Store


@pytest.fixture(scope="module")
def trained_engine(tmp_path_factory: pytest.TempPathFactory, embedder) -> AnswerEngine:  # type: ignore[no-untyped-def]
    store = Store(tmp_path_factory.mktemp("answer-model"), embedder)
    Ingester(store).ingest(load_paths([EXAMPLES, SEED] if SEED.exists() else [EXAMPLES], 10**7))
    return AnswerEngine(store, answer_model=AnswerModel.load(SHIPPED_MODEL, "e5-small"))


def test_the_shipped_model_is_small_and_made_for_e5() -> None:
    assert SHIPPED_MODEL.stat().st_size < 5_000_000
    model = AnswerModel.load(SHIPPED_MODEL, "e5-small")
    assert model.u.shape == model.v.shape and model.u.shape[1] == 384 and 0 < model.threshold < 1


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
    for path, says in ((tmp_path / "missing.npz", "not found"), (corrupt, "not a readable"), (foreign, "lacks")):
        monkeypatch.setenv("NEWSDESK_ANSWER_MODEL", str(path))
        result = runner.invoke(cli, ["ask", "When did the Port of Kestrel reopen?"])
        assert result.exit_code == 1 and str(path) in result.output and says in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    with pytest.raises(AnswerModelError, match="trained on e5-small vectors"):
        AnswerModel.load(SHIPPED_MODEL, "minilm")
    for setting in ("off", "shipped"):
        monkeypatch.setenv("NEWSDESK_ANSWER_MODEL", setting)
        result = runner.invoke(cli, ["ask", "--json", "When did the Port of Kestrel reopen?"])
        assert result.exit_code == 0 and "6 a.m." in json.loads(result.output)["answer"], setting


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "eval" / "xquad").is_dir(), reason="../shared/eval is absent")
def test_training_runs_end_to_end_on_a_small_slice(tmp_path: Path) -> None:
    out, report = tmp_path / "model.npz", tmp_path / "report.json"
    command = [sys.executable, "-m", "training", "--articles", "1", "--epochs", "5", "--variants", "1"]
    command += ["--out", str(out), "--cache", str(tmp_path / "cache"), "--report", str(report)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=600)
    model = AnswerModel.load(out, "e5-small")
    figures = json.loads(report.read_text())
    assert model.u.shape[1] == 384 and figures["train_cases"] > 0
    assert set(figures["trained"]["all"]) == {"top_sentence", "answerable_refused", "unanswerable_refused", "cases"}


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "eval" / "xquad").is_dir(), reason="../shared/eval is absent")
def test_the_cross_encoder_experiment_runs_end_to_end_on_a_small_slice(tmp_path: Path) -> None:
    """docs/answer-model.md reports its figures, so the command must keep working: cases, the probe, some
    fine-tuning steps, the figures of every group, and weights that load again."""
    import torch

    report, weights = tmp_path / "report.json", tmp_path / "cross.pt"
    command = [sys.executable, "-m", "training.cross_encoder", "--articles", "1", "--variants", "1"]
    command += ["--minutes", "0.2", "--probe", "20", "--holdout", "20", "--cache", str(tmp_path / "cache")]
    command += ["--report", str(report), "--save", str(weights)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=600, capture_output=True)
    figures = json.loads(report.read_text())
    assert figures["steps"] > 0 and figures["probe_loss"][1] <= figures["probe_loss"][0]
    overall = figures["k6"]["measure"]["all"]
    assert overall["answerable"] > 0 and set(overall["top_sentence"]) == {"cosine", "trained"}
    assert 0.0 <= overall["unanswerable_refused"]["trained"] <= 1.0
    saved = torch.load(weights)
    assert saved["head"]["weight"].shape == (1, 384)
