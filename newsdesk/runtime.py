"""Builds the long-lived pieces (embedder, store) from settings, once per process."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from newsdesk.settings import Settings, SettingsError, setting
from vectorstore.errors import UserError

if TYPE_CHECKING:
    from bot.engine import AnswerEngine
    from bot.reader import Reader
    from ingest.feeds import FeedLog, PollerLock
    from vectorstore.embeddings import NewsEmbeddings
    from vectorstore.store import Store


def quiet_libraries() -> None:
    """Keep third-party chatter (telemetry notices, progress bars, hub checks) out of our output."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("chromadb", "httpx", "sentence_transformers", "trafilatura", "htmldate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _warm_up(embedder: NewsEmbeddings) -> None:
    """First-use costs paid while the main thread opens the store, not by the first question: the language
    identifier decompresses its model (~0.3-0.5 s) and the embedder's first pass maps its weights from the page
    cache. Both release the GIL, so they overlap with the store's imports on another core. Not a daemon: a
    command that ends first waits for it rather than tearing a library down under it."""
    try:
        from text.language import detect_language

        detect_language("warm up the language identifier")
        embedder.encode_queries(["warm up"])
    except Exception:  # a warm-up must never break a command; the real call reports real errors
        logging.getLogger(__name__).debug("warm-up failed", exc_info=True)


def open_store(settings: Settings) -> Store:
    """The store named by the settings, with the configured embedder loaded (and warmed in the background)."""
    quiet_libraries()
    from vectorstore.embeddings import load_embedder
    from vectorstore.store import Store

    try:
        embedder = load_embedder(settings.embedder, settings.threads)
    except UserError as exc:
        raise SettingsError(f"{setting('NEWSDESK_EMBEDDER', settings.embedder)}: {exc}") from None
    threading.Thread(target=_warm_up, args=(embedder,), name="newsdesk-warm-up", daemon=False).start()
    return Store(
        settings.data_dir,
        embedder,
        settings.collection,
        settings.chroma_host,
        settings.chroma_port,
        database_url=database_url(settings),
        chroma_tenant=settings.chroma_tenant,
        chroma_database=settings.chroma_database,
        chroma_headers=settings.chroma_header_map(),
    )


def database_url(settings: Settings) -> str | None:
    return settings.database_url.get_secret_value() if settings.database_url else None


def open_feed_log(settings: Settings) -> FeedLog:
    """The feed log: in the database when NEWSDESK_DATABASE_URL is set, else in the data folder."""
    from ingest.feeds import FeedLog

    return FeedLog.opened(settings.data_dir, database_url(settings))


def feed_poller_lock(settings: Settings) -> PollerLock | None:
    """With a shared database, the lock that lets one process of all those sharing it poll the feeds; with the
    embedded default there is no one to share with."""
    from ingest.feeds import PollerLock

    url = database_url(settings)
    return PollerLock(url) if url else None


def build_engine(settings: Settings) -> AnswerEngine:
    """The answering engine over the configured store, with the LLM when `LLM` is set and the reranker when
    `NEWSDESK_RERANKER` is."""
    from bot.engine import AnswerEngine

    llm = None
    if settings.llm:
        from bot.llm import make_llm

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        try:
            llm = make_llm(settings.llm, settings.llm_base_url, key, settings.llm_timeout)
        except UserError as exc:
            raise SettingsError(f"{setting('LLM', settings.llm)}: {exc}") from None
    store = open_store(settings)  # first: it sets HF_HUB_OFFLINE before the reranker asks the hub
    reranker = None
    if settings.reranker:
        from bot.rerank import CrossEncoderReranker

        reranker = CrossEncoderReranker(settings.reranker)
    return AnswerEngine(store, llm, answer_model=load_answer_model(settings), reranker=reranker)


def load_answer_model(settings: Settings) -> Reader | None:
    """The answer model NEWSDESK_ANSWER_MODEL names: none ("off"), the reader shipped in bot/, or a reader file
    made by `python -m training`."""
    if settings.answer_model == "off":
        return None
    from bot.reader import SHIPPED_READER, Reader
    from vectorstore.e5_model import load_model

    path = SHIPPED_READER if settings.answer_model == "shipped" else Path(settings.answer_model).expanduser()
    return Reader(path, settings.embedder, load_model())
