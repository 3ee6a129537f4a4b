"""Shared fixtures: every test's state lives in a tmp folder; the real embedder is loaded once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vectorstore.embeddings import NewsEmbeddings, load_embedder
from vectorstore.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_61284d4cebeaa770.txt"
EXAMPLES = ROOT / "examples" / "articles"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def needs_seed() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SEED.exists(), reason=f"../shared is absent ({SEED} not found)")


@pytest.fixture(scope="session")
def embedder() -> NewsEmbeddings:
    return load_embedder("e5-small")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every command of this test at its own store."""
    folder = tmp_path / "data"
    monkeypatch.setenv("NEWSDESK_DATA_DIR", str(folder))
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in
    return folder


def server_port() -> int | None:
    port = os.environ.get("CHROMA_TEST_PORT")
    return int(port) if port else None


@pytest.fixture(params=["embedded", "server"])
def store(request: pytest.FixtureRequest, data_dir: Path, embedder: NewsEmbeddings) -> Iterator[Store]:
    """A fresh store, embedded and (when scripts/test started one) against a `chroma run` server."""
    if request.param == "embedded":
        yield Store(data_dir, embedder, "articles")
        return
    port = server_port()
    if port is None:
        pytest.skip("no Chroma server: scripts/test starts one and sets CHROMA_TEST_PORT")
    collection = f"t{os.getpid()}_{abs(hash(str(data_dir))) % 10**8}"
    yield Store(data_dir, embedder, collection, chroma_host="127.0.0.1", chroma_port=port)
