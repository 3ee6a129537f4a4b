"""Several hosts sharing one archive: two stores with data folders of their own, one PostgreSQL database (the
catalog) and one Chroma server (the vectors), as a bot on host B and an ingest worker on host A would have."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.engine import AnswerEngine
from ingest.pipeline import Ingester
from tests.conftest import server_collection, server_port
from tests.test_store import PESKOV, RAIN
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
