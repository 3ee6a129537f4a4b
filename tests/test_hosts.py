"""Several hosts sharing one archive: two stores with data folders of their own, one PostgreSQL database (the
catalog) and one Chroma server (the vectors), as a bot on host B and an ingest worker on host A would have."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bot.engine import AnswerEngine
from ingest.pipeline import Ingester
from newsdesk.runtime import open_store
from newsdesk.settings import Settings
from tests.conftest import server_collection, server_port
from tests.test_store import PESKOV, RAIN
from vectorstore.chroma import StoreUnavailable
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.store import Store


@contextmanager
def two_hosts(tmp_path: Path, database_url: str, embedder: NewsEmbeddings) -> Iterator[tuple[Store, Store]]:
    """Host A's and host B's stores."""
    port = server_port()
    if port is None:
        pytest.skip("no Chroma server: scripts/test starts one and sets CHROMA_TEST_PORT")
    collection = server_collection(tmp_path)
    a, b = (
        Store(tmp_path / host, embedder, collection, "127.0.0.1", port, database_url=database_url)
        for host in ("a", "b")
    )
    yield a, b
    a.catalog.close()
    b.catalog.close()


def test_articles_written_on_one_host_are_found_and_removable_on_another(
    tmp_path: Path, database_url: str, hashing_embedder: NewsEmbeddings
) -> None:
    with two_hosts(tmp_path, database_url, hashing_embedder) as (a, b):
        assert b.is_empty()
        Ingester(a).ingest([PESKOV, RAIN])
        assert b.refresh(), "B sees A's write from its next question on"
        assert not b.refresh()
        hits = b.search("Heavy rain in Brennock: how high did the river rise?", k=2)
        assert hits[0].article_id == "rain" and hits[0].title == RAIN.title
        assert b.keyword_search("Dmitri Peskov", "en", 5).anchors, "A's passages are in B's keyword index"
        assert b.remove_document("rain"), "B removes what A wrote"
        assert a.refresh() and {h.article_id for h in a.search("river rain Brennock", k=5)} == {"kremlin"}
        assert a.vectors.ids() == b.vectors.ids() == a.catalog.chunk_ids()
        assert not b.remove_document("rain")


def test_a_bot_on_another_host_cites_the_workers_articles_until_they_are_removed(
    tmp_path: Path, database_url: str, embedder: NewsEmbeddings
) -> None:
    question = "What did Peskov say about the instructors?"
    with two_hosts(tmp_path, database_url, embedder) as (worker, bot):
        engine = AnswerEngine(bot)
        assert engine.ask(question).refused
        Ingester(worker).ingest([PESKOV, RAIN])
        answer = engine.ask(question)
        assert not answer.refused and answer.sources[0].hit.article_id == "kremlin"
        assert "immunité" in answer.answer and "[1]" in answer.answer
        assert worker.remove_document("kremlin")
        assert all(source.hit.article_id != "kremlin" for source in engine.ask(question).sources)


def test_chroma_tenant_and_database_settings_reach_the_server(
    tmp_path: Path, hashing_embedder: NewsEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant and database made with Chroma's AdminClient on the test server: the store's collection is
    there, and not in the default tenant's default database."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    port = server_port()
    if port is None:
        pytest.skip("no Chroma server: scripts/test starts one and sets CHROMA_TEST_PORT")
    client_settings = ChromaSettings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI",
        chroma_server_host="127.0.0.1",
        chroma_server_http_port=port,
        anonymized_telemetry=False,
    )
    tenant, database, collection = f"newsroom-{uuid.uuid4().hex[:8]}", "archive", server_collection(tmp_path)
    admin = chromadb.AdminClient(client_settings)
    admin.create_tenant(tenant)
    admin.create_database(database, tenant)
    settings = Settings(  # type: ignore[call-arg]
        NEWSDESK_DATA_DIR=str(tmp_path / "data"),
        NEWSDESK_COLLECTION=collection,
        CHROMA_HOST="127.0.0.1",
        CHROMA_PORT=str(port),
        CHROMA_TENANT=tenant,
        CHROMA_DATABASE=database,
    )
    store = open_store(settings)
    Ingester(store).ingest([RAIN])
    assert store.search("river", k=1)[0].article_id == "rain"
    ours = chromadb.HttpClient("127.0.0.1", port, tenant=tenant, database=database, settings=client_settings)
    assert ours.get_collection(collection).count() == len(store.vectors.ids()) > 0
    default = chromadb.HttpClient("127.0.0.1", port, settings=client_settings)
    assert collection not in {c.name for c in default.list_collections()}


class HeaderRecorder(BaseHTTPRequestHandler):
    """A server that is not Chroma: it answers 500 and keeps the headers it was sent."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_chroma_headers_are_sent_and_never_shown(tmp_path: Path, hashing_embedder: NewsEmbeddings) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HeaderRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(  # type: ignore[call-arg]
        NEWSDESK_DATA_DIR=str(tmp_path / "data"),
        CHROMA_HOST="127.0.0.1",
        CHROMA_PORT=str(server.server_address[1]),
        CHROMA_HEADERS='{"X-Chroma-Token": "s3cret-token"}',
    )
    try:
        with pytest.raises(StoreUnavailable) as raised:
            open_store(settings)
    finally:
        server.shutdown()
    assert HeaderRecorder.seen and all(h.get("X-Chroma-Token") == "s3cret-token" for h in HeaderRecorder.seen)
    assert "s3cret" not in str(raised.value) and "s3cret" not in repr(settings)
