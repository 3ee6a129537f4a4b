"""The e5 encoders' vectors stay what they were when their internals change (layout, batching, kernels), and the
numpy engine gives the torch engine's vectors.

tests/e5_reference.npz holds vectors made by the torch encoder before the speed work of issue 16 (padded
attention with a mask), in bfloat16 and float32, for texts of every length from one word to over two
windows of 512 tokens, embedded together so that batches mix lengths as ingest's do.
"""

from __future__ import annotations

import math
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.test_attention_kernel import skip_unless_the_kernel_builds
from vectorstore.e5_model import load_model
from vectorstore.e5_numpy import NumpyE5Encoder, erf
from vectorstore.e5_torch import E5Encoder

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).with_name("e5_reference.npz")
SOURCES = ["fr/valmont-budget-2024.txt", "en/brennock-heatwave-water-restrictions.txt", "fr/greve-sncr-2024-03.txt"]
WORD_COUNTS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 70, 89, 95, 100, 110, 120, 144, 150, 160, 233, 377]


def reference_texts() -> list[str]:
    """Prefixes of the example articles, of many lengths (several per batch, some of equal token length), and
    the three articles joined (over 1,024 tokens: three windows)."""
    words = [(ROOT / "examples" / "articles" / name).read_text(encoding="utf-8").split() for name in SOURCES]
    texts = [" ".join(w[:n]) for w in words for n in WORD_COUNTS]
    texts += [" ".join(words[0][:n]) for n in (89, 89, 90)]  # equal lengths: one attention call, no padding
    texts.append(" ".join(w for ws in words for w in ws))
    return ["passage: " + t for t in texts]


@pytest.mark.slow  # loads the model (and emulates bfloat16 where the CPU lacks it: ~35 s on 2 AVX2 cores)
@pytest.mark.parametrize("attention", ["compiled", "torch"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_vectors_match_the_reference(dtype: str, attention: str) -> None:
    if attention == "compiled":
        skip_unless_the_kernel_builds()
    reference = np.load(REFERENCE)[dtype].astype(np.float32)
    texts = reference_texts()
    encoder = E5Encoder(dtype=dtype, compiled_attention=attention == "compiled")
    assert encoder.attention == attention
    together = encoder.encode(texts)
    cosines = np.sum(together * reference, axis=1)
    assert cosines.min() >= 0.9999, f"worst text {int(cosines.argmin())}: cosine {cosines.min():.6f}"
    one_by_one = np.stack([encoder.encode([t])[0] for t in texts[::7]])
    assert np.sum(one_by_one * reference[::7], axis=1).min() >= 0.9999


@pytest.mark.slow  # loads the model
def test_the_numpy_engine_matches_the_reference() -> None:
    reference = np.load(REFERENCE)["float32"].astype(np.float32)
    texts = reference_texts()
    encoder = NumpyE5Encoder(load_model())
    together = encoder.encode(texts)
    cosines = np.sum(together * reference, axis=1)
    assert cosines.min() >= 0.9999, f"worst text {int(cosines.argmin())}: cosine {cosines.min():.6f}"
    one_by_one = np.stack([encoder.encode([t])[0] for t in texts[::7]])
    assert np.sum(one_by_one * reference[::7], axis=1).min() >= 0.9999
    torch_float32 = E5Encoder(dtype="float32", model=encoder.model).encode(texts[::5])
    assert np.sum(together[::5] * torch_float32, axis=1).min() >= 0.99999


def test_erf_is_exact_to_float32() -> None:
    x = np.linspace(-7, 7, 100_001, dtype=np.float32)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    ours = erf(x)
    assert ours.dtype == np.float32
    ulps = np.abs(ours - exact) / np.spacing(np.abs(exact).astype(np.float32))
    assert ulps.max() <= 2.0, f"{ulps.max():.2f} units in the last place at x = {x[ulps.argmax()]}"


def write_reference() -> None:
    """Regenerate tests/e5_reference.npz: only when the model's numbers are meant to change."""
    texts = reference_texts()
    vectors = {dtype: E5Encoder(dtype=dtype).encode(texts) for dtype in ("bfloat16", "float32")}
    np.savez_compressed(REFERENCE, **{k: v.astype(np.float16) for k, v in vectors.items()})


@pytest.mark.parametrize(
    ("has_instructions", "seconds", "expected"),
    [
        (True, {"bfloat16": 1.0, "float32": 2.0}, True),  # AMX-like: bfloat16 twice as fast
        (True, {"bfloat16": 0.95, "float32": 1.0}, False),  # within 10%: not worth the precision
        (True, {"bfloat16": 1.5, "float32": 1.0}, False),  # avx512_bf16 without AMX, as measured on a Xeon
        (False, {"bfloat16": 1.0, "float32": 2.0}, False),  # emulated: not even timed
    ],
)
def test_bfloat16_is_chosen_only_where_it_is_measured_faster(
    monkeypatch: pytest.MonkeyPatch, has_instructions: bool, seconds: dict[str, float], expected: bool
) -> None:
    import torch

    from vectorstore import e5_torch

    timed: list[bool] = []

    def fake_seconds() -> dict[torch.dtype, float]:
        timed.append(True)
        return {torch.bfloat16: seconds["bfloat16"], torch.float32: seconds["float32"]}

    monkeypatch.setattr(e5_torch, "cpu_has_bf16", lambda: has_instructions)
    monkeypatch.setattr(e5_torch, "_matmul_seconds", fake_seconds)
    e5_torch.bf16_is_faster.cache_clear()
    try:
        assert e5_torch.bf16_is_faster() is expected
        assert e5_torch.bf16_is_faster() is expected and len(timed) == has_instructions, "timed once"
    finally:
        e5_torch.bf16_is_faster.cache_clear()


def test_the_matmul_timing_runs_in_both_types() -> None:
    import torch

    from vectorstore.e5_torch import _matmul_seconds

    seconds = _matmul_seconds()
    assert set(seconds) == {torch.bfloat16, torch.float32} and all(0 < s < 5 for s in seconds.values())


def test_gelu_by_blocks_is_gelu_of_the_whole_array_in_place() -> None:
    from vectorstore import e5_numpy

    x = (np.random.default_rng(0).standard_normal((3, e5_numpy._BLOCK // 2 + 7)) * 3).astype(np.float32)
    whole = x * (1 + e5_numpy.erf(x * np.float32(0.7071067811865476))) * np.float32(0.5)  # spans three blocks
    result = e5_numpy.gelu(x)
    assert result is x and np.array_equal(x, whole)
    with pytest.raises(ValueError, match="C-contiguous"):
        e5_numpy.gelu(np.ones((4, 6), dtype=np.float32).T)


def test_every_caller_thread_runs_the_encoder_on_one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread that runs torch ops keeps an OpenMP team of its own, and with more of them than cores every op
    sleeps and wakes (answers 30% slower): a bot's question threads, its ingests and the main thread all hand the
    encoder's work to one thread, and get the same vectors as encoding there directly."""
    import vectorstore.e5_torch

    ran_on: set[str] = set()
    linear = vectorstore.e5_torch._Linear.__call__

    def recording(self, x, *args, **kwargs):  # type: ignore[no-untyped-def]
        ran_on.add(threading.current_thread().name)
        return linear(self, x, *args, **kwargs)

    monkeypatch.setattr(vectorstore.e5_torch._Linear, "__call__", recording)
    encoder = E5Encoder()
    texts = reference_texts()
    from_main = encoder.encode(texts)
    with ThreadPoolExecutor(2) as callers:
        from_others = list(callers.map(lambda text: encoder.encode([text]), texts))
    assert len(ran_on) == 1 and next(iter(ran_on)).startswith(vectorstore.e5_torch.TORCH_THREAD), ran_on
    assert threading.current_thread().name not in ran_on
    assert np.allclose(np.vstack(from_others), from_main, atol=1e-3)


def test_a_question_during_a_long_encode_waits_for_one_pass_of_it_not_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one torch thread serves callers in turn: a question asked while an ingest encodes a batch (seconds on 2
    cores) goes between two of the batch's forward passes (~2k tokens each), not after the whole batch."""
    encoder = E5Encoder()
    long_started = threading.Event()
    forward = E5Encoder._forward
    finished: list[str] = []

    def signalling(self: E5Encoder, windows: list[list[int]]):  # type: ignore[no-untyped-def]
        long_started.set()
        return forward(self, windows)

    long_texts = ["passage: " + " ".join(f"word{i}" for i in range(300))] * 40  # ~20 forward passes

    def ingest() -> None:
        encoder.encode(long_texts)
        finished.append("ingest")

    def question() -> None:
        long_started.wait(60)
        encoder.encode(["query: when does the ferry sail again?"])
        finished.append("question")

    monkeypatch.setattr(E5Encoder, "_forward", signalling)
    threads = [threading.Thread(target=ingest), threading.Thread(target=question)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert finished == ["question", "ingest"]


if __name__ == "__main__" and sys.argv[1:] == ["--write-reference"]:
    write_reference()
