"""multilingual-e5-small's forward pass in numpy, float32: what a new process answers with before torch is loaded.

Importing torch costs ~0.9 s of a cold start, more than a question's encoding: a one-question `newsdesk ask`
never pays it. The engine is plain BERT (post-LayerNorm, 12 layers, exact GELU, mean pooling) on the weights
that vectorstore/e5_model.py maps; its vectors match the torch engine's to cosine >= 0.9999. Per token it is
slower than torch in bfloat16, so bulk work (ingest) goes to torch.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vectorstore.e5_model import E5Model, Window, batches, combine, length_runs

# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (+-1 beyond, where erf is 1 to float32): the rational approximation
# of Eigen and XLA for float32, within 7e-8 of erf. It is evaluated in float64 (as fast here as float32, whose
# rounding near +-1 cost 7 units in the last place) and rounded once: numpy has no erf, and scipy's import is slow.
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


# Elements per pass of GELU, so that erf's float64 temporaries stay in the CPU's cache. Over whole arrays
# (a question's 15 sentences make 12 of 700 x 1536) every step streamed them through memory, and GELU took half
# of the encoding on a 2-core Xeon (352 of 697 ms).
_BLOCK = 32768


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of a float32 array, float32, within two units in the last place."""
    x = np.clip(x, -4.0, 4.0, dtype=np.float64)
    x2 = x * x
    p = np.full_like(x, _ERF_P[0])
    for c in _ERF_P[1:]:
        p *= x2
        p += c
    q = np.full_like(x, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q *= x2
        q += c
    p *= x
    p /= q
    return p.astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * (1 + erf(x / sqrt 2)) / 2, in place of x (a C-contiguous float32 array), a block at a
    time."""
    if not x.flags.c_contiguous:  # reshape would copy, and the copy, not x, would be changed
        raise ValueError("gelu works in place on a C-contiguous array")
    flat = x.reshape(-1)
    for start in range(0, len(flat), _BLOCK):
        block = flat[start : start + _BLOCK]
        e = erf(block * np.float32(0.7071067811865476))
        e += 1.0
        block *= e
        block *= 0.5
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x -= x.mean(axis=-1, keepdims=True)
    x /= np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps))
    x *= weight
    x += bias
    return x


class NumpyE5Encoder:
    """The e5 encoder on numpy arrays (read-only, mapped from the model cache: nothing is copied at load).

    A batch is shared among `threads` threads, each with its own windows, and numpy's BLAS is set to one thread
    (process-wide; torch does not use it): OpenBLAS's own threads spin while they wait for work, which on 2
    shared cores cost a cold start twice its CPU time, and matmuls of a few hundred rows gain little from them.
    """

    dimension = 384
    batch_tokens = 2048

    def __init__(self, model: E5Model, threads: int | None = None) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
        self.model = model
        self._t = model.tensors
        self._h = model.header
        self.threads = threads or len(os.sched_getaffinity(0))
        self._pool: ThreadPoolExecutor | None = None

    def _attention(self, qkv: np.ndarray, runs: list[tuple[int, int]]) -> np.ndarray:
        """Per run of equal-length windows: softmax(q k^T / sqrt(d)) v for every head, without padding."""
        h, heads = self._h.hidden, self._h.heads
        d = h // heads
        out = np.empty((len(qkv), h), dtype=np.float32)
        start = 0
        for count, n in runs:
            block = qkv[start : start + count * n].reshape(count, n, 3, heads, d)
            q = block[:, :, 0].transpose(0, 2, 1, 3)  # [count, heads, n, d]
            k = block[:, :, 1].transpose(0, 2, 3, 1)  # [count, heads, d, n]
            v = block[:, :, 2].transpose(0, 2, 1, 3)
            scores = np.matmul(q, k)
            scores *= np.float32(1.0 / np.sqrt(d))
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            out[start : start + count * n] = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(count * n, h)
            start += count * n
        return out

    def _forward(self, windows: list[list[int]]) -> np.ndarray:
        """Mean-pooled (not normalised) vectors of token windows that include <s> and </s>, sorted by length."""
        t, eps = self._t, self._h.eps
        runs = length_runs(windows)
        ids = np.array([token for w in windows for token in w])
        positions = np.concatenate([np.tile(np.arange(n), count) for count, n in runs])
        x = self.model.word_embeddings(ids)
        x += t["emb.pos"][positions]
        x += t["emb.type"]
        x = _layer_norm(x, t["emb.ln.w"], t["emb.ln.b"], eps)
        for i in range(self._h.layers):
            p = f"l{i}."
            qkv = x @ t[p + "qkv.w"].T
            qkv += t[p + "qkv.b"]
            y = self._attention(qkv, runs) @ t[p + "ao.w"].T
            y += t[p + "ao.b"]
            y += x
            x = _layer_norm(y, t[p + "aln.w"], t[p + "aln.b"], eps)
            f = x @ t[p + "fi.w"].T
            f += t[p + "fi.b"]
            y = gelu(f) @ t[p + "fo.w"].T
            y += t[p + "fo.b"]
            y += x
            x = _layer_norm(y, t[p + "oln.w"], t[p + "oln.b"], eps)
        pooled, start = [], 0
        for count, n in runs:
            pooled.append(x[start : start + count * n].reshape(count, n, -1).mean(axis=1, dtype=np.float32))
            start += count * n
        return np.concatenate(pooled)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, as E5Encoder.encode makes them."""
        return self.encode_windows(len(texts), self.model.windows(texts), batch_size)

    def encode_windows(self, count: int, windows: list[Window], batch_size: int = 32) -> np.ndarray:
        """`encode` of `count` texts already cut into windows (E5Model.windows, shortest first)."""
        if not windows:
            return np.zeros((count, self.dimension), dtype=np.float32)
        parts = min(self.threads, len(windows))
        if parts == 1:
            return combine(count, windows, self._pooled(windows, batch_size))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="newsdesk-e5-numpy")
        # dealt in turn, so that each part has windows of every length and about as many tokens
        done = list(self._pool.map(lambda k: self._pooled(windows[k::parts], batch_size), range(parts)))
        pooled = np.empty((len(windows), self.dimension), dtype=np.float32)
        for k, part in enumerate(done):
            pooled[k::parts] = part
        return combine(count, windows, pooled)

    def _pooled(self, windows: list[Window], batch_size: int) -> np.ndarray:
        return np.concatenate(
            [self._forward([w for _, w in chunk]) for chunk in batches(windows, batch_size, self.batch_tokens)]
        )
