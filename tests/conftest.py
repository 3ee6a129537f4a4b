"""Shared fixtures: every test's state lives in a tmp folder; the real embedder is loaded once per session, and a
hashing embedder stands in for it where the model is not the point.

Tests that load the real embedder (the `embedder` fixture, also behind `store`) are marked slow here; other slow
tests (a process started, a command that loads the model) say so with `@pytest.mark.slow`. `scripts/test --fast`
leaves them out."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vectorstore.embeddings import EMBEDDERS, NewsEmbeddings, load_embedder
from vectorstore.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_61284d4cebeaa770.txt"
EXAMPLES = ROOT / "examples" / "articles"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def needs_seed() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SEED.exists(), reason=f"../shared is absent ({SEED} not found)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whatever loads the real embedder is slow, however it reaches the fixture."""
    for item in items:
        if "embedder" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def embedder() -> NewsEmbeddings:
    return load_embedder("e5-small")


class HashingEmbeddings(NewsEmbeddings):
    """Each word hashed to one of a few hundred signed dimensions: texts that share words are near, nothing else
    is. Deterministic and instant (no model, no torch), for tests of storage, feeds and commands whose answers do
    not depend on what the vectors mean."""

    name = "hashing"
    max_tokens = 512
    dimensions = 256

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimensions + 1, dtype=np.float32)
        vector[-1] = 0.1  # no text is the zero vector, whose cosine is undefined
        for word in re.findall(r"\w+", text.lower()):
            digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
            vector[digest % self.dimensions] += 1.0 if digest >> 31 else -1.0
        return vector / np.linalg.norm(vector)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        vectors = [self._vector(text) for text in texts]
        return np.stack(vectors) if vectors else np.zeros((0, self.dimensions + 1), np.float32)

    encode_queries = encode_passages

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2


HASHING = HashingEmbeddings()


@pytest.fixture
def hashing_embedder(monkeypatch: pytest.MonkeyPatch) -> NewsEmbeddings:
    """The hashing embedder, also by name for the commands under test and for Chroma (NEWSDESK_EMBEDDER=hashing)."""
    monkeypatch.setitem(EMBEDDERS, HASHING.name, lambda threads: HASHING)
    monkeypatch.setenv("NEWSDESK_EMBEDDER", HASHING.name)
    return HASHING


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every command of this test at its own store."""
    folder = tmp_path / "data"
    monkeypatch.setenv("NEWSDESK_DATA_DIR", str(folder))
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in
    return folder


# The machine's PostgreSQL (scripts/test checks that it answers); each test gets a schema of its own in it.
TEST_DATABASE = os.environ.get("NEWSDESK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_problem() -> str | None:
    """Why the PostgreSQL tests cannot run here (None when they can): said as the skip reason, never silent."""
    try:
        from vectorstore.database import connect

        connect(TEST_DATABASE).close()
    except Exception as exc:
        return f"no PostgreSQL at {TEST_DATABASE} (set NEWSDESK_TEST_DATABASE_URL): {exc}"
    return None


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema of the test database (dropped afterwards): what a
    new `NEWSDESK_DATABASE_URL` database is, for this test and any process it starts."""
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    from urllib.parse import quote

    from vectorstore.database import connect

    schema = "t_" + hashlib.blake2b(f"{request.node.nodeid}{os.getpid()}".encode(), digest_size=8).hexdigest()
    with connect(TEST_DATABASE) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in TEST_DATABASE else "?"
    yield f"{TEST_DATABASE}{separator}options={quote(f'-csearch_path={schema}')}"
    with connect(TEST_DATABASE) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def server_port() -> int | None:
    port = os.environ.get("CHROMA_TEST_PORT")
    return int(port) if port else None


def server_collection(data_dir: Path) -> str:
    """A collection name of this test's own on the shared test server."""
    return f"t{os.getpid()}_{abs(hash(str(data_dir))) % 10**8}"


@pytest.fixture(params=["embedded", "server", "postgres"])
def store(request: pytest.FixtureRequest, data_dir: Path, embedder: NewsEmbeddings) -> Iterator[Store]:
    """A fresh store: embedded; against a `chroma run` server (when scripts/test started one); and with its
    catalog in PostgreSQL (vectors on that server when there is one, else embedded)."""
    yield from store_kinds(request, data_dir, embedder)


def store_kinds(request: pytest.FixtureRequest, data_dir: Path, embedder: NewsEmbeddings) -> Iterator[Store]:
    """The `store` fixture's stores, for fixtures with another embedder."""
    port = server_port()
    if request.param == "embedded":
        store = Store(data_dir, embedder, "articles")
    elif request.param == "server":
        if port is None:
            pytest.skip("no Chroma server: scripts/test starts one and sets CHROMA_TEST_PORT")
        store = Store(data_dir, embedder, server_collection(data_dir), chroma_host="127.0.0.1", chroma_port=port)
    else:
        url = request.getfixturevalue("database_url")
        host = None if port is None else "127.0.0.1"
        store = Store(data_dir, embedder, server_collection(data_dir), host, port or 8000, database_url=url)
    yield store
    store.catalog.close()


@pytest.fixture(params=["embedded", "server", "postgres"])
def hashing_store(request: pytest.FixtureRequest, data_dir: Path, hashing_embedder: NewsEmbeddings) -> Iterator[Store]:
    """The `store` fixture's stores with the hashing embedder: storage tests that need no model."""
    yield from store_kinds(request, data_dir, hashing_embedder)
