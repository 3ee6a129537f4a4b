"""The compiled attention kernel (vectorstore/attention.c): the same numbers as torch's attention at every window
length the encoder meets, one call for windows of mixed lengths, a clear error past 512 tokens, built once per
machine, and torch's attention wherever it cannot be built."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vectorstore import attention
from vectorstore.attention import OPENMP_RUNTIME, AttentionKernel, find_compiler, load_kernel
from vectorstore.e5_model import load_model
from vectorstore.e5_torch import E5Encoder, cpu_flags

HEADS, DIM = 12, 32


def skip_unless_the_kernel_builds() -> None:
    """Skip, saying why, on machines the kernel is not for; elsewhere it must build (a failure fails the test)."""
    if "avx512f" not in cpu_flags():
        pytest.skip("this CPU has no AVX-512F: the encoder runs torch's attention here")
    if not find_compiler():
        pytest.skip("no C compiler on this machine: the encoder runs torch's attention here")
    if not OPENMP_RUNTIME.exists():
        pytest.skip("this torch has no bundled libgomp for the kernel to share")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> AttentionKernel:
    skip_unless_the_kernel_builds()
    built = load_kernel(tmp_path_factory.mktemp("cache"))
    assert built is not None, "the kernel did not build on a machine it is written for"
    return built


def torch_attention(qkv: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Each window's attention by torch's SDPA, in qkv's type."""
    parts, start = [], 0
    for n in lengths:
        q, k, v = qkv[start : start + n].view(n, 3, HEADS, DIM).permute(1, 2, 0, 3)
        parts.append(F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, HEADS * DIM))
        start += n
    return torch.cat(parts)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_window_length_gets_torchs_attention(kernel: AttentionKernel, dtype: torch.dtype) -> None:
    """Lengths around the kernel's 16-wide blocks and 8-query groups, the shortest and the longest, all in one
    call: off the exact figure (float64) by about what torch's own attention in the same type is (float32: 1.09e-5
    against 1.01e-5 here; bfloat16: the output's rounding, alike)."""
    lengths = [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 131, 200, 511, 512]
    generator = torch.Generator().manual_seed(0)
    qkv = (torch.randn(sum(lengths), 3 * HEADS * DIM, generator=generator) * 2).to(dtype)
    out = torch.full((sum(lengths) + 5, HEADS * DIM), 7.0, dtype=dtype)  # 5 rows past the windows: left alone
    lengths_t = torch.tensor(lengths)
    kernel(qkv, out, torch.cumsum(lengths_t, 0) - lengths_t, lengths_t)
    exact = torch_attention(qkv.double(), lengths)
    ours = (out[: len(exact)].double() - exact).abs().max().item()
    torchs = (torch_attention(qkv, lengths).double() - exact).abs().max().item()
    assert ours <= 1.5 * torchs, f"largest error {ours:.2e}, torch's {torchs:.2e}"
    assert torch.all(out[len(exact) :] == 7.0)


def test_a_window_over_512_tokens_is_refused_by_name(kernel: AttentionKernel) -> None:
    qkv = torch.zeros(600, 3 * HEADS * DIM)
    out = torch.zeros(600, HEADS * DIM)
    with pytest.raises(ValueError, match=r"1 to 512 tokens, not \[600\]"):
        kernel(qkv, out, torch.tensor([0]), torch.tensor([600]))
    with pytest.raises(ValueError, match="one type"):
        kernel(qkv.to(torch.bfloat16), out, torch.tensor([0]), torch.tensor([6]))


def test_built_once_then_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skip_unless_the_kernel_builds()
    compiler = find_compiler()
    calls = tmp_path / "calls"
    wrapper = tmp_path / "cc"
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = --version ] || echo build >> {calls}\nexec {compiler} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    for _ in range(2):
        load_kernel.cache_clear()  # as a new process would
        assert load_kernel(tmp_path / "cache") is not None
    assert calls.read_text().split() == ["build"]
    assert [p.suffix for p in (tmp_path / "cache" / "kernels").iterdir()] == [".so"]


def test_a_kernel_that_cannot_be_built_leaves_torchs_attention_and_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A compiler that fails (here one that rejects everything, as a CPU without AVX-512 makes the real one do
    with the source's #error) costs one try per machine, says why, and the encoder runs torch's attention."""
    from tests.test_e5_encoder import REFERENCE, reference_texts  # that module imports this one

    calls = tmp_path / "calls"
    failing = tmp_path / "cc"
    failing.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && exit 0\necho build >> {calls}\n'
        'echo "attention.c:20:2: error: #error this kernel needs AVX-512F" >&2\nexit 1\n'
    )
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    caplog.set_level(logging.INFO, logger=attention.__name__)
    load_kernel.cache_clear()
    try:
        encoder = E5Encoder(dtype="float32", model=load_model(), cache_dir=tmp_path / "cache")
        load_kernel.cache_clear()
        assert load_kernel(tmp_path / "cache") is None
    finally:
        load_kernel.cache_clear()
    assert encoder.attention == "torch"
    assert calls.read_text().split() == ["build"]
    assert "this kernel needs AVX-512F" in caplog.text
    reference = np.load(REFERENCE)["float32"].astype(np.float32)[:5]
    assert np.sum(encoder.encode(reference_texts()[:5]) * reference, axis=1).min() >= 0.9999
