"""The Chroma side of the store: an embedded PersistentClient by default, an HttpClient when a server is named."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx
import numpy as np

from vectorstore.embeddings import ChromaEmbeddingFunction, NewsEmbeddings
from vectorstore.errors import StoreUnavailable, UserError
from vectorstore.records import SearchFilters


class EmbedderMismatch(UserError):
    """The collection was built by another embedder; its vectors would be garbage for this one."""


P = ParamSpec("P")
R = TypeVar("R")


def _server_call(
    method: Callable[Concatenate[ChromaCollection, P], R],
) -> Callable[Concatenate[ChromaCollection, P], R]:
    """A Chroma server that went away is StoreUnavailable (callers say "try again later"), not a raw httpx
    error; the HTTP client reconnects by itself once the server is back."""

    @wraps(method)
    def wrapper(self: ChromaCollection, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"lost the Chroma server at {self._host}:{self._port}: {exc}") from exc

    return wrapper


def where_clause(filters: SearchFilters | None) -> dict[str, Any] | None:
    """Chroma's `where` for our filters (None when there is nothing to filter on)."""
    if not filters:
        return None
    parts: list[dict[str, Any]] = []
    if filters.since is not None:
        parts.append({"date_int": {"$gte": filters.since}})
    if filters.until is not None:
        parts.append({"date_int": {"$lte": filters.until}})
    if filters.source:
        parts.append({"source": filters.source})
    return parts[0] if len(parts) == 1 else {"$and": parts}


class ChromaCollection:
    """One cosine-space collection, tagged with the embedder that built it."""

    def __init__(
        self,
        embedder: NewsEmbeddings,
        name: str,
        path: Path,
        host: str | None = None,
        port: int = 8000,
        *,
        tenant: str | None = None,
        database: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """`tenant`, `database` and `headers` (auth tokens: never shown in messages) are the server's; an
        embedded client has Chroma's defaults."""
        self._embedder = embedder
        self._name = name
        self._path = path
        self._host = host
        self._port = port
        self._tenant = tenant
        self._database = database
        self._headers = headers
        self.server_mode = host is not None
        self._open()

    def _open(self) -> None:
        import chromadb
        from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self._host:
            try:
                self._client = chromadb.HttpClient(
                    host=self._host,
                    port=self._port,
                    headers=self._headers,
                    settings=chroma_settings,
                    tenant=self._tenant or DEFAULT_TENANT,
                    database=self._database or DEFAULT_DATABASE,
                )
                self._client.heartbeat()
            except Exception as exc:
                where = f"{self._host}:{self._port} (CHROMA_HOST)"
                if self._tenant or self._database:
                    tenant, database = self._tenant or DEFAULT_TENANT, self._database or DEFAULT_DATABASE
                    where += f", tenant {tenant!r}, database {database!r}"
                raise StoreUnavailable(f"cannot reach the Chroma server at {where}: {exc}") from exc
        else:
            self._path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(self._path), settings=chroma_settings)
        self._collection = self._client.get_or_create_collection(
            self._name,
            embedding_function=ChromaEmbeddingFunction(self._embedder),  # type: ignore[arg-type]
            metadata={"hnsw:space": "cosine", "embedder": self._embedder.name},
        )
        built_by = (self._collection.metadata or {}).get("embedder")
        if built_by != self._embedder.name:
            raise EmbedderMismatch(
                f"collection {self._name!r} was built with embedder {built_by!r}, not {self._embedder.name!r}:"
                f" set NEWSDESK_EMBEDDER={built_by} or use another NEWSDESK_DATA_DIR / NEWSDESK_COLLECTION"
            )
        self._batch = max(1, min(self._client.get_max_batch_size(), 4000))

    def reopen(self) -> None:
        """See other processes' writes: an embedded client only reads the files again after a fresh open."""
        if self.server_mode:
            return
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        self._open()

    @_server_call
    def add(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]]) -> None:
        """Upsert in batches under the client's maximum batch size. Vectors and metadata only: the catalog holds
        the texts, and Chroma indexing them too (its own full-text index) took 40% of an ingest's writes."""
        for start in range(0, len(ids), self._batch):
            end = start + self._batch
            self._collection.upsert(
                ids=ids[start:end],
                embeddings=vectors[start:end],
                metadatas=metadatas[start:end],  # type: ignore[arg-type]
            )

    @_server_call
    def delete_documents(self, document_ids: list[str]) -> None:
        if document_ids:
            self._collection.delete(where={"article_id": {"$in": document_ids}})

    @_server_call
    def query(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks, best first.

        No `count()` first: Chroma answers an empty collection or k above its size with what it has, and at 100k
        chunks counting costs ~10 ms per question (a full scan in its SQLite)."""
        result = self._collection.query(
            query_embeddings=[vector], n_results=k, where=where_clause(filters), include=["distances"]
        )
        ids = result["ids"][0] if result["ids"] else []
        distances = (result.get("distances") or [[]])[0]
        return [(cid, 1.0 - float(d)) for cid, d in zip(ids, distances, strict=True)]

    @_server_call
    def vectors_of(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the given chunks, by id (chunks Chroma lacks are left out)."""
        if not ids:
            return {}
        from chromadb.errors import InternalError

        try:
            got = self._collection.get(ids=ids, include=["embeddings"])
        except InternalError:  # an embedded client mid-way through another process's write: "Error finding id"
            return {}
        return dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))

    @_server_call
    def ids(self) -> set[str]:
        return set(self._collection.get(include=[])["ids"])
