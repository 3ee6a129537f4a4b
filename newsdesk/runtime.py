"""Builds the long-lived pieces (embedder, store) from settings, once per process."""

from __future__ import annotations

import logging
import os

from newsdesk.settings import Settings
from vectorstore.store import Store


def quiet_libraries() -> None:
    """Keep third-party chatter (telemetry notices, progress bars, hub checks) out of our output."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("chromadb", "httpx", "sentence_transformers", "trafilatura", "htmldate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def open_store(settings: Settings) -> Store:
    """The store named by the settings, with the configured embedder loaded."""
    quiet_libraries()
    from vectorstore.embeddings import load_embedder

    embedder = load_embedder(settings.embedder, settings.threads)
    return Store(settings.data_dir, embedder, settings.collection, settings.chroma_host, settings.chroma_port)


def build_engine(settings: Settings):  # type: ignore[no-untyped-def]
    """The answering engine over the configured store, with the LLM when `LLM` is set."""
    from bot.engine import AnswerEngine

    llm = None
    if settings.llm:
        from bot.llm import make_llm

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        llm = make_llm(settings.llm, settings.llm_base_url, key, settings.llm_timeout)
    return AnswerEngine(open_store(settings), llm)
