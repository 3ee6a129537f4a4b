"""`newsdesk bot` from the settings: the Telegram bot (bot/telegram/) reads no settings and knows nothing of
`ingest`, so here its plain values are read from the settings, and its chats' memory and its article writer
(uploads, /ingest, feeds) are built from `ingest` and the store."""

from __future__ import annotations

import logging
import secrets
import tempfile
from pathlib import Path

from telegram.ext import Application

from bot.engine import AnswerEngine
from bot.telegram.admin import WriteReport
from bot.telegram.app import BotConfig, Webhook, build_application, log_without_secrets, serve
from bot.telegram.flood import FloodGuards, FloodLimit, PostgresFloodGuard
from bot.telegram.guards import Access
from bot.telegram.memory import CHATS_FILE, ChatMemory, PostgresChatMemory, SqliteChatMemory
from ingest.articles import Article, LoadError
from ingest.feeds import FeedWatcher
from ingest.loaders import SUFFIXES, load_file
from ingest.pipeline import Ingester, IngestReport
from ingest.web import fetch_article
from newsdesk.runtime import build_engine, database_url, feed_poller_lock, open_feed_log
from newsdesk.settings import Settings
from vectorstore.errors import UserError
from vectorstore.store import Store

log = logging.getLogger(__name__)

MAX_CHAT_BYTES = 5_000_000  # the most an admin's upload or /ingest page may weigh, whatever NEWSDESK_MAX_FILE_MB


def bot_config(settings: Settings, flood: FloodLimit | None = None) -> BotConfig:
    """The bot's values from the settings; UserError naming the setting that is missing or wrong."""
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    if not token:
        raise UserError("no Telegram bot token: set TELEGRAM_TOKEN (from @BotFather) in the environment or .env")
    access = Access(settings.allowed_users, settings.allowed_chats, settings.admin_users)
    max_upload = min(MAX_CHAT_BYTES, _max_file_bytes(settings))
    return BotConfig(token, settings.telegram_base_url, access, max_upload, flood or FloodLimit())


def _max_file_bytes(settings: Settings) -> int:
    return int(settings.max_file_mb * 1e6)


class IngestWriter:
    """The bot's ArticleWriter, over `ingest`: what admins send goes through the same pipeline as
    `newsdesk ingest`; a file or page may weigh up to `max_bytes`."""

    suffixes = SUFFIXES

    def __init__(self, store: Store, settings: Settings, max_bytes: int) -> None:
        self.ingester = Ingester(store, settings.chunk_tokens, settings.chunk_overlap)
        self.max_bytes = max_bytes
        self.fetch_timeout = settings.fetch_timeout
        self.allow_private = settings.allow_private_urls

    def add_file(self, data: bytes, suffix: str, name: str) -> WriteReport:
        """The upload goes to a temporary file whose name we make (only the suffix comes from the user), is
        ingested, and is deleted. Its article is known by the uploaded name, so sending an edited file again
        replaces the article instead of adding a second one."""
        with tempfile.TemporaryDirectory(prefix="newsdesk-upload-") as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(data)
            temporary_id = path.resolve().as_uri()
            articles = list(load_file(path, self.max_bytes))
            for article in articles:
                if isinstance(article, Article) and article.id == temporary_id:
                    article.id, article.origin = f"telegram-upload:{name[:200]}", name
            report = self.ingester.ingest(articles)
        return WriteReport(report.summary(), [error.replace(str(path), name) for error in report.errors])

    def add_pages(self, urls: list[str]) -> WriteReport:
        """Fetched one by one: only web addresses, never a path on this host."""
        articles: list[Article | LoadError] = []
        for url in urls:
            try:
                articles.append(
                    fetch_article(url, self.max_bytes, self.fetch_timeout, allow_private=self.allow_private)
                )
            except LoadError as exc:
                articles.append(exc)
        return _plain(self.ingester.ingest(articles))


def _plain(report: IngestReport) -> WriteReport:
    return WriteReport(report.summary(), report.errors)


def telegram_application(settings: Settings, engine: AnswerEngine, flood: FloodLimit | None = None) -> Application:
    """The bot over `engine`, as the settings describe it, not yet started."""
    return _application(settings, bot_config(settings, flood), engine)


def _application(settings: Settings, config: BotConfig, engine: AnswerEngine) -> Application:
    feeds = None
    if settings.feed_urls:
        feeds = FeedWatcher(
            settings.feed_urls,
            Ingester(engine.store, settings.chunk_tokens, settings.chunk_overlap),
            open_feed_log(settings),
            settings.feed_interval,
            _max_file_bytes(settings),
            settings.fetch_timeout,
            allow_private=settings.allow_private_urls,
            lock=feed_poller_lock(settings),  # with a shared database, one process of all polls
        )
        log.info("polling %d feed(s) every %g s", len(settings.feed_urls), settings.feed_interval)
    writer = IngestWriter(engine.store, settings, config.max_upload)
    return build_application(config, engine, chat_memory(settings), writer, feeds, flood_guards(settings, config))


def chat_memory(settings: Settings) -> ChatMemory:
    """The chats' conversations: in the database when there is one (replicas share them), else in the data
    folder."""
    url = database_url(settings)
    return PostgresChatMemory(url) if url else SqliteChatMemory(settings.data_dir / CHATS_FILE)


def flood_guards(settings: Settings, config: BotConfig) -> FloodGuards | None:
    """With a database, the flood counts are kept there, so replicas enforce one limit per user together; without
    one, each process counts for itself (the bot's default)."""
    url = database_url(settings)
    if url is None:
        return None
    return lambda kind: PostgresFloodGuard(url, config.flood, kind)


def run_telegram_bot(
    settings: Settings,
    webhook_url: str | None = None,
    listen: str = "0.0.0.0",
    port: int = 8443,
    secret_token: str | None = None,
    set_webhook: bool = True,
) -> None:
    """Serve until interrupted: long polling, or a webhook at `webhook_url` (registered with Telegram unless
    `set_webhook` is False: a replica). The settings are checked before the models load, so mistakes show at
    once."""
    config = bot_config(settings)
    if webhook_url is None and not set_webhook:
        raise UserError("--no-set-webhook is for a --webhook replica")
    webhook = None
    if webhook_url is not None:
        secret = webhook_secret(settings, secret_token, set_webhook)
        webhook = Webhook(webhook_url, secret, listen, port, register=set_webhook)
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    log_without_secrets(
        {"token": config.token, "api-key": api_key, "webhook-secret": webhook.secret_token if webhook else ""}
    )
    engine = build_engine(settings)
    application = _application(settings, config, engine)
    engine.store.embedder.prepare_in_background()  # a server runs for long: the faster engine, while it starts
    serve(application, webhook)


def webhook_secret(settings: Settings, option: str | None, registers: bool) -> str:
    """The secret Telegram must send with every webhook call: --secret-token, else TELEGRAM_WEBHOOK_SECRET, else a
    random one for this process alone. A random one suits a single process that registers the webhook, never
    replicas, which would each invent their own: they are possible as soon as NEWSDESK_DATABASE_URL is set (the
    chats' memory and flood limits are shared then), and a process that does not register is one."""
    if option is not None:
        return option
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    if not registers:
        raise UserError("--no-set-webhook serves the webhook another process registered: set TELEGRAM_WEBHOOK_SECRET"
                        " to its secret")  # fmt: skip
    if settings.database_url is not None:
        raise UserError("webhook replicas are possible with NEWSDESK_DATABASE_URL set, and they must share one"
                        " secret: set TELEGRAM_WEBHOOK_SECRET")  # fmt: skip
    return secrets.token_urlsafe(32)
