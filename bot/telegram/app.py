"""The python-telegram-bot Application and its transport: the builder and defaults, the error handler, long
polling and the webhook, and keeping the token out of the logs."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, Defaults, Updater
from telegram.request import HTTPXRequest, RequestData

from bot.engine import AnswerEngine
from bot.telegram.admin import AdminHandlers, ArticleWriter, Feeds
from bot.telegram.flood import FloodGuards, FloodLimit
from bot.telegram.guards import Access, Guard
from bot.telegram.memory import ChatMemory
from bot.telegram.questions import QuestionHandlers
from bot.telegram.replies import language, reply_plain, user_language
from bot.texts import text
from vectorstore.chroma import StoreUnavailable
from vectorstore.errors import UserError

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# Every message the bot sends is Telegram HTML without link previews, and quotes the message it answers (sent
# even if that message was deleted meanwhile).
DEFAULTS = Defaults(
    parse_mode=ParseMode.HTML,
    link_preview_options=LinkPreviewOptions(is_disabled=True),
    do_quote=True,
    allow_sending_without_reply=True,
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class BotConfig:
    """The plain values the bot runs with: its token and Bot API address, who may use it, how often, and the
    largest file an admin may send."""

    token: str
    base_url: str
    access: Access
    max_upload: int
    flood: FloodLimit


def build_application(
    config: BotConfig,
    engine: AnswerEngine,
    memory: ChatMemory,
    writer: ArticleWriter,
    feeds: Feeds | None = None,
    flood_guards: FloodGuards | None = None,
) -> Application:
    """The bot as a python-telegram-bot Application, not yet started. It owns `memory` and the flood guards (this
    process's counts unless `flood_guards` makes shared ones) and closes them at shutdown."""
    guard = Guard(config.access, config.flood, flood_guards)
    admin = AdminHandlers(writer, config.max_upload, feeds)
    questions = QuestionHandlers(engine, memory, config.access, admin.help_text)

    async def post_init(app: Application) -> None:
        await questions.publish_commands(app.bot)
        admin.start_feeds(app.job_queue)

    async def post_shutdown(app: Application) -> None:
        """Drop the flood notices still waiting; close the flood counts and the conversations."""
        await guard.close()
        memory.close()

    app = (
        Application.builder()
        .token(config.token)
        .base_url(config.base_url)
        .base_file_url(file_url(config.base_url))
        .defaults(DEFAULTS)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .get_updates_request(SkipMalformedUpdates(connection_pool_size=1))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    # Admins' routes first: the questions' last message handler takes any command left in a private chat.
    guard.install(app, [*admin.routes(), *questions.routes()])
    app.add_error_handler(on_error)
    return app


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure and tell the user briefly: one bad update must never stop the bot."""
    update_id = update.update_id if isinstance(update, Update) else None
    store_down = isinstance(context.error, StoreUnavailable)
    if store_down:  # expected while a Chroma server restarts: one line, not a traceback
        log.warning("update %s: %s", update_id, context.error)
    else:
        log.error("update %s failed", update_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    key = "tg_store_down" if store_down else "tg_error"
    with contextlib.suppress(TelegramError):
        if update.callback_query is not None:
            await update.callback_query.answer(text(key, user_language(update.callback_query.from_user.language_code)))
        elif update.message is not None:
            message = update.message
            words = message.text if isinstance(message.text, str) else ""
            await reply_plain(message, text(key, language(message, words)))


def file_url(base_url: str) -> str:
    """Where files are downloaded, next to the API: https://api.telegram.org/bot -> .../file/bot."""
    root, _, _ = base_url.rstrip("/").rpartition("/bot")
    return f"{root}/file/bot"


class SkipMalformedUpdates(HTTPXRequest):
    """getUpdates that turns updates python-telegram-bot cannot parse into empty ones.

    PTB parses a batch as a whole: one malformed update makes it log and fetch the same batch again, forever,
    and the bot goes deaf. An empty update keeps its id, so polling moves past it.
    """

    async def post(  # type: ignore[override]
        self, url: str, request_data: RequestData | None = None, **timeouts: Any
    ) -> dict[str, Any] | list[dict[str, Any]] | bool:
        result = await super().post(url, request_data, **timeouts)
        if not isinstance(result, list):
            return result
        return [_parseable(raw) for raw in result if isinstance(raw, dict) and isinstance(raw.get("update_id"), int)]


def _parseable(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        Update.de_json(raw, None)
    except Exception as exc:  # any parse failure: keyed fields missing, wrong types, nonsense
        log.warning("update %s is malformed and was skipped (%s: %s)", raw["update_id"], type(exc).__name__, exc)
        return {"update_id": raw["update_id"]}
    return raw


@contextlib.asynccontextmanager
async def polling(
    app: Application, poll_timeout: float = 10.0, allowed_updates: list[str] | None = None
) -> AsyncIterator[Application]:
    """Run the bot by long polling inside an event loop that is already running (tests, benchmarks)."""
    updates = ALLOWED_UPDATES if allowed_updates is None else allowed_updates

    def start(updater: Updater) -> Awaitable[object]:
        return updater.start_polling(timeout=dt.timedelta(seconds=poll_timeout), allowed_updates=updates)

    async with _running(app, start):
        yield app


@contextlib.asynccontextmanager
async def _running(app: Application, start_updates: Callable[[Updater], Awaitable[object]]) -> AsyncIterator[None]:
    """The Application started and stopped with the hooks `run_polling` and `run_webhook` call, its updater
    receiving updates as `start_updates` starts it."""
    assert app.updater is not None
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        await start_updates(app.updater)
        await app.start()
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


@dataclass(frozen=True)
class Webhook:
    """Receive updates at `url` (Telegram must reach it over HTTPS and send `secret_token` with every call) from a
    server listening on `listen`:`port`. Checked when made, before any model loads.

    Replicas behind one URL share one fixed secret, and only one of them registers the webhook (`register`); the
    others serve it as registered. No process deletes it when it stops (python-telegram-bot's Updater does not),
    so the registering process's restart never cuts the replicas off; `newsdesk bot` in polling mode deletes it
    at start, as polling requires.
    """

    url: str
    secret_token: str
    listen: str = "0.0.0.0"
    port: int = 8443
    register: bool = True

    def __post_init__(self) -> None:
        if not _SECRET_TOKEN.fullmatch(self.secret_token):
            raise UserError("the secret token must be 1-256 letters, digits, _ or -")
        if importlib.util.find_spec("tornado") is None:
            raise UserError('webhook mode needs tornado: pip install "python-telegram-bot[webhooks]"')

    def arguments(self) -> dict[str, Any]:
        """`Application.run_webhook`'s and `Updater.start_webhook`'s arguments."""
        return {
            "listen": self.listen,
            "port": self.port,
            "url_path": urlsplit(self.url).path.lstrip("/"),
            "webhook_url": self.url,
            "secret_token": self.secret_token,
            "allowed_updates": ALLOWED_UPDATES,
        }


class ReplicaUpdater(Updater):
    """python-telegram-bot's Updater for a replica (--no-set-webhook): it serves the webhook and checks the secret
    of every call, but never calls setWebhook or deleteWebhook. PTB's `start_webhook` always registers the
    webhook, in `Updater._bootstrap` (pinned PTB 22.8); tests/test_telegram.py checks that a replica makes no such
    call, so a PTB that moved it would fail there, not in production."""

    async def _bootstrap(self, *args: Any, **kwargs: Any) -> None:
        log.info("serving the webhook as registered by another process (--no-set-webhook)")


def as_webhook_server(app: Application, webhook: Webhook) -> None:
    """Prepare `app` to serve `webhook`: a replica gets the updater that leaves the registration alone."""
    if not webhook.register:
        app.updater = ReplicaUpdater(app.bot, app.update_queue)


@contextlib.asynccontextmanager
async def webhook_serving(app: Application, webhook: Webhook) -> AsyncIterator[Application]:
    """Serve the webhook inside an event loop that is already running (tests)."""
    as_webhook_server(app, webhook)
    async with _running(app, lambda updater: updater.start_webhook(**webhook.arguments())):
        yield app


def serve(app: Application, webhook: Webhook | None = None) -> None:
    """Serve until interrupted: long polling, or the webhook."""
    if webhook is None:
        app.run_polling(allowed_updates=ALLOWED_UPDATES)
        return
    as_webhook_server(app, webhook)
    app.run_webhook(**webhook.arguments())


def log_without_secrets(secrets: dict[str, str]) -> None:
    """Log to stderr (unless logging is set up already), with the secrets' values replaced by their names."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(secrets))


class RedactSecrets(logging.Filter):
    """Replace secrets wherever they would reach a log: the bot token is in every Bot API url, and an LLM
    provider may quote the API key back in an error."""

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__()
        self.secrets = {value: f"<{name}>" for name, value in secrets.items() if value}

    def _redact(self, text: str) -> str:
        for value, mask in self.secrets.items():
            text = text.replace(value, mask)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (redacted := self._redact(message)) != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True
