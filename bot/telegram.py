"""`newsdesk bot`: the Telegram face of the answering engine, as thin as the REPL.

In a private chat every message is a question; in a group the bot answers when mentioned (@name), when replied
to, or on /ask. Each chat keeps its own conversation for follow-ups, stored in SQLite under the data folder so
a restart forgets nothing. The engine and ingest block (embedding, SQLite, Chroma), so they run in worker
threads and the event loop keeps serving other chats meanwhile; one chat's questions are answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import logging
import math
import re
import secrets
import sqlite3
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html import escape
from math import ceil
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from weakref import WeakValueDictionary

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest, RequestData

from bot.conversation import Conversation
from bot.engine import Answer, AnswerEngine
from bot.filters import split_filters
from bot.render import MESSAGE_LIMIT, answer_html, article_html, split_message, telegram_length
from bot.texts import reply_language, text
from ingest.articles import Article
from ingest.feeds import FeedLog, FeedWatcher
from ingest.loaders import SUFFIXES, load_file
from ingest.pipeline import Ingester, IngestReport, load_sources
from ingest.web import is_url
from newsdesk.settings import Settings
from vectorstore.chroma import StoreUnavailable
from vectorstore.errors import UserError
from vectorstore.language import detect_language
from vectorstore.records import SearchFilters

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
MAX_QUESTION_CHARS = 1000  # a question, not an article: longer text would cost seconds of embedding
MAX_UPLOAD_BYTES = 5_000_000
SOURCES_PER_PAGE = 5
# A /sources page must be one message, or its ◀ ▶ buttons would edit only the last part of it: titles and
# source names are shortened, and each line has a fifth of what a message holds after the header.
SOURCES_TITLE_CHARS = 120
SOURCES_NAME_CHARS = 40
SOURCES_LINE_LIMIT = (MESSAGE_LIMIT - 200) // SOURCES_PER_PAGE
NOTICE_GATHER = 1.0  # a burst of messages over the limit is reported in one notice
TYPING_EVERY = 4.0  # Telegram shows "typing…" for about 5 s
CHATS_FILE = "telegram_chats.sqlite3"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
COMMAND_NAMES = ("start", "help", "sources", "reset", "ask")
_SOURCES_PAGE = re.compile(r"^sources:(\d{1,6})$")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class Access:
    """Who may talk to the bot: with no allowlist everyone; else listed users anywhere and anyone in a listed
    chat. Admins are always let in, and alone may add articles."""

    users: frozenset[int]
    chats: frozenset[int]
    admins: frozenset[int]

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        return cls(settings.allowed_users, settings.allowed_chats, settings.admin_users)

    def allows(self, user_id: int, chat_id: int) -> bool:
        if not self.users and not self.chats:
            return True
        return user_id in self.users or user_id in self.admins or chat_id in self.chats

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins


@dataclass(frozen=True)
class FloodLimit:
    """At most `messages` questions from one user per `seconds`, and as many commands besides: commands are
    counted apart, so /help or /sources never costs a question. A user over the limit is told at most once per
    `notice_every` seconds how many messages were not answered."""

    messages: int = 8
    seconds: float = 30.0
    notice_every: float = 5.0


class FloodGuard:
    """Sliding-window counts per user, so one user cannot keep the engine busy for everyone else."""

    def __init__(self, limit: FloodLimit) -> None:
        self.limit = limit
        self._recent: dict[int, deque[float]] = {}

    def admit(self, user_id: int) -> bool:
        """True, and counted, when the user is under the limit; a message refused is not counted, so a user who
        keeps sending is let in again as soon as the window moves on."""
        now = time.monotonic()
        if len(self._recent) > 4096:  # forget users who have been quiet for a whole window
            for quiet in [u for u, times in self._recent.items() if times[-1] < now - self.limit.seconds]:
                del self._recent[quiet]
        times = self._recent.setdefault(user_id, deque())
        while times and times[0] < now - self.limit.seconds:
            times.popleft()
        if len(times) < self.limit.messages:
            times.append(now)
            return True
        return False

    def wait(self, user_id: int) -> float:
        """Seconds until the user's next message would be admitted (0 when it would be now)."""
        times = self._recent.get(user_id)
        if not times or len(times) < self.limit.messages:
            return 0.0
        return max(0.0, times[0] + self.limit.seconds - time.monotonic())


@dataclass
class _Unanswered:
    """A user's messages dropped since their last notice, and the notice that will report them."""

    count: int
    message: Message
    lang: str
    retry_at: float
    task: asyncio.Task[None] | None = None


class UnansweredNotices:
    """Tells a user over the flood limit how many of their messages were not answered, and how long to wait.

    Dropped messages are reported, not queued: the limit is there so one user cannot hold the engine for everyone
    else, and a queue would only postpone that work (growing without bound under a real flood) and deliver
    answers long after the user has moved on. So every dropped message is counted into a notice; the first
    notice waits NOTICE_GATHER seconds to take in the rest of a burst, and later ones come at most once per
    `every` seconds, so a flood of N messages costs that user's chat a handful of replies, never N, while each
    dropped message is still reported by some notice.
    """

    def __init__(self, every: float, send: Callable[[Message, str], Awaitable[None]]) -> None:
        self.every = every
        self._send = send
        self._pending: dict[int, _Unanswered] = {}
        self._last: dict[int, float] = {}

    def dropped(self, user_id: int, message: Message, lang: str, retry_in: float) -> None:
        """Count a message that will not be answered; the notice replies to the latest one, in its language."""
        now = time.monotonic()
        pending = self._pending.get(user_id)
        if pending is None:
            pending = self._pending[user_id] = _Unanswered(0, message, lang, now)
            delay = max(NOTICE_GATHER, self._last.get(user_id, -math.inf) + self.every - now)
            pending.task = asyncio.create_task(self._notify(user_id, delay))
        pending.count += 1
        pending.message, pending.lang = message, lang
        pending.retry_at = max(pending.retry_at, now + retry_in)

    async def _notify(self, user_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        pending = self._pending.pop(user_id)
        now = self._last[user_id] = time.monotonic()
        if len(self._last) > 4096:  # forget users whose last notice no longer holds back the next one
            for quiet in [u for u, at in self._last.items() if at < now - self.every]:
                del self._last[quiet]
        key = "tg_not_answered_one" if pending.count == 1 else "tg_not_answered_many"
        seconds = max(1, ceil(pending.retry_at - now))
        try:
            await self._send(pending.message, text(key, pending.lang).format(count=pending.count, seconds=seconds))
        except TelegramError as exc:
            log.warning("could not tell user %s that %d messages were not answered: %s", user_id, pending.count, exc)

    async def close(self) -> None:
        """Drop the notices still waiting (the bot is stopping)."""
        tasks = [p.task for p in self._pending.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()


class ChatMemory:
    """Each chat's conversation as JSON in a small SQLite file: follow-ups survive a restart, and a chat's
    conversation is read only when that chat speaks. Called from worker threads, hence the lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent; a crash may lose the last turn
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS conversations"
            " (chat_id INTEGER PRIMARY KEY, turns TEXT NOT NULL, updated_at REAL NOT NULL)"
        )

    def load(self, chat_id: int) -> Conversation:
        with self._lock:
            row = self._db.execute("SELECT turns FROM conversations WHERE chat_id = ?", (chat_id,)).fetchone()
        if row is None:
            return Conversation()
        try:
            return Conversation.from_json(row[0])
        except (ValueError, TypeError) as exc:  # a damaged row costs that chat its history, nothing more
            log.warning("chat %s: unreadable conversation, starting afresh (%s)", chat_id, exc)
            return Conversation()

    def save(self, chat_id: int, conversation: Conversation) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO conversations (chat_id, turns, updated_at) VALUES (?, ?, ?)",
                (chat_id, conversation.to_json(), time.time()),
            )

    def forget(self, chat_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM conversations WHERE chat_id = ?", (chat_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


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


class NewsdeskBot:
    """The handlers and what they share: the engine, each chat's conversation, who may ask, who floods."""

    def __init__(self, settings: Settings, engine: AnswerEngine, flood: FloodLimit) -> None:
        self.settings = settings
        self.engine = engine
        self.access = Access.from_settings(settings)
        self.floods = {"question": FloodGuard(flood), "command": FloodGuard(flood)}
        self.unanswered = UnansweredNotices(flood.notice_every, self._reply_plain)
        self.memory = ChatMemory(settings.data_dir / CHATS_FILE)
        self.max_upload = min(MAX_UPLOAD_BYTES, int(settings.max_file_mb * 1e6))
        self._chat_locks: WeakValueDictionary[int, asyncio.Lock] = WeakValueDictionary()
        self._ingest_lock = asyncio.Lock()
        self.watcher: FeedWatcher | None = None

    def register(self, app: Application) -> None:
        """Only new messages and button presses are handled: edits and channel posts are left alone."""
        fresh = filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler("start", self.start, filters=fresh))
        app.add_handler(CommandHandler("help", self.help, filters=fresh))
        app.add_handler(CommandHandler("sources", self.sources, filters=fresh))
        app.add_handler(CommandHandler("reset", self.reset, filters=fresh))
        app.add_handler(CommandHandler("ask", self.ask, filters=fresh))
        app.add_handler(CommandHandler("ingest", self.ingest_url, filters=fresh))
        app.add_handler(MessageHandler(fresh & filters.TEXT & ~filters.COMMAND, self.question))
        app.add_handler(MessageHandler(fresh & filters.ChatType.PRIVATE & filters.Document.ALL, self.document))
        app.add_handler(MessageHandler(fresh & filters.ChatType.PRIVATE & filters.COMMAND, self.unknown_command))
        app.add_handler(CallbackQueryHandler(self.sources_page, pattern=_SOURCES_PAGE))
        app.add_handler(CallbackQueryHandler(self.stale_button))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        """Publish the command menu (in French too); start polling the feeds, if any are set."""
        await app.bot.set_my_commands(_commands("en"))
        await app.bot.set_my_commands(_commands("fr"), language_code="fr")
        if self.settings.feed_urls and app.job_queue is not None:
            self.watcher = FeedWatcher(
                self.settings.feed_urls,
                Ingester(self.engine.store, self.settings.chunk_tokens, self.settings.chunk_overlap),
                FeedLog.in_folder(self.settings.data_dir),
                self.settings.feed_interval,
                int(self.settings.max_file_mb * 1e6),
                self.settings.fetch_timeout,
                allow_private=self.settings.allow_private_urls,
            )
            app.job_queue.run_once(self.poll_feeds, 0, name="feeds")
            log.info("polling %d feed(s) every %g s", len(self.settings.feed_urls), self.settings.feed_interval)

    async def post_shutdown(self, app: Application) -> None:
        """Drop the flood notices still waiting; close the conversations file."""
        await self.unanswered.close()
        self.memory.close()

    async def poll_feeds(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Job queue: ingest the feeds' new entries in a worker thread (questions are answered meanwhile), then
        come back when the next feed is due."""
        assert self.watcher is not None and context.job_queue is not None
        try:
            async with self._ingest_lock:
                await asyncio.to_thread(self.watcher.poll)
        except Exception:
            log.exception("polling the feeds failed; trying again later")
        finally:
            context.job_queue.run_once(self.poll_feeds, self.watcher.seconds_to_next(), name="feeds")

    # -- handlers ----------------------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: what the bot does, with an example question."""
        if message := await self._admit(update, "command"):
            lang = _language(message)
            await self._reply(message, text("tg_start", lang).format(example=escape(text("tg_example", lang))))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: how to ask, and the commands (admins also learn how to add articles)."""
        if not (message := await self._admit(update, "command")):
            return
        lang = _language(message)
        reply = text("tg_help", lang).format(mention=escape(f"@{context.bot.username}"))
        if message.from_user and self.access.is_admin(message.from_user.id):
            megabytes = self.max_upload // 1_000_000
            reply += text("tg_admin_help", lang).format(suffixes=", ".join(SUFFIXES), megabytes=megabytes)
        await self._reply(message, reply)

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ask [--since DATE] [--until DATE] [--source NAME] QUESTION: asks in a group without mentioning the
        bot, and narrows the search by date or source anywhere."""
        parts = (update.message.text or "").split(None, 1) if update.message else []
        question = parts[1] if len(parts) > 1 else ""
        if message := await self._admit(update, "question", question):
            await self._answer(message, question)

    async def question(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text message: a question in a private chat; in a group only when it mentions or replies to the bot."""
        message = update.message
        if message is None:
            return
        question = _addressed_question(message, context.bot.id, context.bot.username)
        if question is not None and await self._admit(update, "question", question):
            await self._answer(message, question)

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/reset: forget this chat's conversation, so the next question starts afresh."""
        if message := await self._admit(update, "command"):
            async with self._chat_lock(message.chat_id):
                await asyncio.to_thread(self.memory.forget, message.chat_id)
            await self._reply_plain(message, text("tg_reset", _language(message)))

    async def sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/sources: the latest articles, five a page, with ◀ ▶ buttons."""
        if message := await self._admit(update, "command"):
            page, keyboard = await asyncio.to_thread(self._sources_page, 1, _language(message))
            await self._reply(message, page, keyboard)

    async def sources_page(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A ◀ or ▶ press: show that page of /sources in the same message."""
        query = update.callback_query
        if query is None or not await self._admit_button(query):
            return
        match = _SOURCES_PAGE.match(query.data or "")
        assert match is not None  # the handler's pattern
        lang = _user_language(query.from_user.language_code)
        page, keyboard = await asyncio.to_thread(self._sources_page, int(match.group(1)), lang)
        await query.answer()
        if query.message is None and query.inline_message_id is None:
            return
        try:
            await query.edit_message_text(
                page, parse_mode=ParseMode.HTML, reply_markup=keyboard, link_preview_options=NO_PREVIEW
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # a double tap shows the same page again
                raise

    async def stale_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button we do not know (an old keyboard, forged data): stop the client's spinner, nothing else."""
        if update.callback_query is not None:
            await update.callback_query.answer()

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command we do not have, in a private chat (in groups it may be another bot's)."""
        if message := await self._admit(update, "command"):
            await self._reply_plain(message, text("tg_unknown_command", _language(message)))

    async def ingest_url(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ingest URL... (admins): fetch the pages, ingest them and report what was added."""
        if not (message := await self._admit(update, "question")) or not await self._admin(message):
            return
        urls = [arg for arg in context.args or [] if is_url(arg)]
        if not urls:
            await self._reply_plain(message, text("tg_url_ingest", _language(message)))
            return
        async with self._ingest_lock, self._typing(message):
            report = await asyncio.to_thread(self._ingest_urls, urls)
        await self._reply(message, escape("\n".join([report.summary(), *report.errors[:5]])))

    async def document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A file in a private chat (admins): ingest its articles and report what was added."""
        message = await self._admit(update, "question", (update.message.caption or "") if update.message else "")
        if message is None or message.document is None or not await self._admin(message):
            return
        lang = _language(message, message.caption or "")
        document = message.document
        suffix = Path(document.file_name or "").suffix.lower()
        if suffix not in SUFFIXES:
            await self._reply_plain(message, text("tg_file_type", lang).format(suffixes=", ".join(SUFFIXES)))
            return
        too_large = text("tg_file_size", lang).format(megabytes=self.max_upload // 1_000_000)
        if (document.file_size or 0) > self.max_upload:
            await self._reply_plain(message, too_large)
            return
        async with self._ingest_lock, self._typing(message):
            data = bytes(await (await document.get_file()).download_as_bytearray())
            if len(data) > self.max_upload:
                await self._reply_plain(message, too_large)
                return
            report = await asyncio.to_thread(self._ingest, data, suffix, document.file_name or f"file{suffix}")
        lines = [report.summary(), *report.errors[:5]]
        await self._reply(message, escape("\n".join(lines)))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
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
                await update.callback_query.answer(
                    text(key, _user_language(update.callback_query.from_user.language_code))
                )
            elif update.message is not None:
                message = update.message
                words = message.text if isinstance(message.text, str) else ""
                await message.reply_text(
                    text(key, _language(message, words)),
                    reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
                )

    # -- the work ----------------------------------------------------------------------------------------

    async def _answer(self, message: Message, question: str) -> None:
        """Answer in the chat's conversation, replying to the question; one chat's questions go in order.
        Options before the question (--since, --until, --source) narrow the search."""
        try:
            question, search_filters = split_filters(question)
        except UserError as exc:
            await self._reply_plain(message, str(exc))
            return
        if not question:
            lang = _language(message)
            await self._reply_plain(message, text("tg_empty", lang).format(example=text("tg_example", lang)))
            return
        if len(question) > MAX_QUESTION_CHARS:
            lang = _language(message, question[:MAX_QUESTION_CHARS])
            limit = f"{MAX_QUESTION_CHARS:,}".replace(",", "\u202f" if lang == "fr" else ",")
            await self._reply_plain(message, text("tg_too_long", lang).format(limit=limit))
            return
        async with self._chat_lock(message.chat_id):
            async with self._typing(message):
                answer = await asyncio.to_thread(self._ask, message.chat_id, question, search_filters)
            await self._reply(message, answer_html(answer))

    def _ask(self, chat_id: int, question: str, search_filters: SearchFilters | None) -> Answer:
        """In a worker thread: load the chat's conversation, ask, store the conversation with the new turn."""
        conversation = self.memory.load(chat_id)
        answer = self.engine.ask(question, conversation, filters=search_filters)
        self.memory.save(chat_id, conversation)
        return answer

    def _sources_page(self, page: int, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
        """In a worker thread: one page of the latest articles and its ◀ ▶ keyboard (pages past the end show
        the last one, since articles may have been removed since the buttons were drawn). Always one message."""
        total = self.engine.store.catalog.count_documents()
        if not total:
            return escape(text("no_articles", lang)), None
        pages = ceil(total / SOURCES_PER_PAGE)
        page = min(max(page, 1), pages)
        first = (page - 1) * SOURCES_PER_PAGE
        documents = self.engine.store.documents(SOURCES_PER_PAGE, first)
        lines = [_article_line(first + i + 1, doc, lang) for i, doc in enumerate(documents)]
        buttons = []
        if page > 1:
            buttons.append(InlineKeyboardButton("◀", callback_data=f"sources:{page - 1}"))
        if page < pages:
            buttons.append(InlineKeyboardButton("▶", callback_data=f"sources:{page + 1}"))
        header = text("tg_sources_header", lang).format(page=page, pages=pages, total=total)
        return header + "\n" + "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None

    def _ingest_urls(self, urls: list[str]) -> IngestReport:
        """In a worker thread: fetch and ingest web pages."""
        ingester = Ingester(self.engine.store, self.settings.chunk_tokens, self.settings.chunk_overlap)
        sources = load_sources(
            urls, self.max_upload, self.settings.fetch_timeout, allow_private=self.settings.allow_private_urls
        )
        return ingester.ingest(sources)

    def _ingest(self, data: bytes, suffix: str, shown_name: str) -> IngestReport:
        """In a worker thread: the upload goes to a temporary file whose name we make (only the checked suffix
        comes from the user), is ingested, and is deleted. Its article is known by the uploaded name, so sending
        an edited file again replaces the article instead of adding a second one."""
        with tempfile.TemporaryDirectory(prefix="newsdesk-upload-") as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(data)
            temporary_id = path.resolve().as_uri()
            articles = list(load_file(path, self.max_upload))
            for article in articles:
                if isinstance(article, Article) and article.id == temporary_id:
                    article.id, article.origin = f"telegram-upload:{shown_name[:200]}", shown_name
            ingester = Ingester(self.engine.store, self.settings.chunk_tokens, self.settings.chunk_overlap)
            report = ingester.ingest(articles)
        report.errors = [error.replace(str(path), shown_name) for error in report.errors]
        return report

    # -- plumbing ----------------------------------------------------------------------------------------

    async def _admit(self, update: Update, kind: Literal["question", "command"], words: str = "") -> Message | None:
        """The message to answer, or None when its sender is over the flood limit for its kind (it is counted
        into a "not answered" notice) or is not allowed (one polite line). `words` are the user's own, whose
        language the bot's replies follow."""
        message, user = update.message, update.effective_user
        if message is None or user is None:
            return None
        flood = self.floods[kind]
        if not flood.admit(user.id):
            self.unanswered.dropped(user.id, message, _language(message, words), flood.wait(user.id))
            return None
        if not self.access.allows(user.id, message.chat_id):
            log.info("refused user %s in chat %s", user.id, message.chat_id)
            await self._reply_plain(message, text("tg_not_allowed", _language(message, words)))
            return None
        return message

    async def _admit_button(self, query: CallbackQuery) -> bool:
        chat_id = query.message.chat.id if query.message else query.from_user.id
        if self.access.allows(query.from_user.id, chat_id):
            return True
        await query.answer(text("tg_not_allowed", _user_language(query.from_user.language_code)))
        return False

    async def _admin(self, message: Message) -> bool:
        """True for admins; anyone else is told that adding articles is for admins."""
        if message.from_user and self.access.is_admin(message.from_user.id):
            return True
        log.info("refused a non-admin's upload or /ingest in chat %s", message.chat_id)
        await self._reply_plain(message, text("tg_admins_only", _language(message)))
        return False

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def _typing(self, message: Message) -> AsyncIterator[None]:
        """Show "typing…" while the block runs, renewed every few seconds for long work."""

        async def keep_typing() -> None:
            while True:
                with contextlib.suppress(TelegramError):
                    await message.reply_chat_action(ChatAction.TYPING)
                await asyncio.sleep(TYPING_EVERY)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _reply(self, message: Message, html_text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
        """Send HTML as replies to `message`, split to Telegram's size; buttons go on the last part."""
        parts = split_message(html_text)
        for i, part in enumerate(parts):
            await message.reply_text(
                part,
                parse_mode=ParseMode.HTML,
                reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
                link_preview_options=NO_PREVIEW,
                reply_markup=keyboard if i == len(parts) - 1 else None,
            )

    async def _reply_plain(self, message: Message, plain: str) -> None:
        """Send our own words (or an error naming the user's input) as a reply, escaped."""
        await self._reply(message, escape(plain))


def _commands(lang: str) -> list[BotCommand]:
    return [BotCommand(name, text(f"tg_command_{name}", lang)) for name in COMMAND_NAMES]


def _user_language(language_code: str | None) -> str:
    """The bot's language for a Telegram user's `language_code` ("fr", "fr-CA"; often absent)."""
    return reply_language((language_code or "").split("-")[0].lower())


def _language(message: Message, words: str = "") -> str:
    """The language of the bot's own words in reply to `message`: that of the user's words when they are long
    enough to tell, else the user's Telegram language (a bare /start has no words)."""
    detected = detect_language(words) if words.strip() else ""
    if detected:
        return reply_language(detected)
    return _user_language(message.from_user.language_code if message.from_user else None)


def _article_line(n: int, doc: dict[str, object], lang: str) -> str:
    """A /sources line that fits SOURCES_LINE_LIMIT: shortened title and source name, and when that is still too
    long (a 2 kB address, or markup characters that escape to several) no link and shorter words, which fit
    even if every character escapes to five ("&amp;")."""
    title, source, date, url = (str(doc[key] or "") for key in ("title", "source", "date", "url"))
    date = date or text("undated", lang)
    line = article_html(n, _shorten(title, SOURCES_TITLE_CHARS), date, _shorten(source, SOURCES_NAME_CHARS), url)
    if telegram_length(line) <= SOURCES_LINE_LIMIT:
        return line
    return article_html(n, _shorten(title, 60), _shorten(date, 20), _shorten(source, 20), "")


def _shorten(words: str, limit: int) -> str:
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def _addressed_question(message: Message, bot_id: int, bot_username: str) -> str | None:
    """The question a message puts to the bot, or None when it is not for the bot."""
    text_in = message.text or ""
    if message.chat.type == ChatType.PRIVATE:
        return text_in
    mention = re.compile(rf"(?<![\w@])@{re.escape(bot_username)}\b", re.IGNORECASE)
    if mention.search(text_in):
        return mention.sub(" ", text_in)
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return text_in
    return None


def _token(settings: Settings) -> str:
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    if not token:
        raise UserError("no Telegram bot token: set TELEGRAM_TOKEN (from @BotFather) in the environment or .env")
    return token


def file_url(base_url: str) -> str:
    """Where files are downloaded, next to the API: https://api.telegram.org/bot -> .../file/bot."""
    root, _, _ = base_url.rstrip("/").rpartition("/bot")
    return f"{root}/file/bot"


def build_application(settings: Settings, engine: AnswerEngine, flood: FloodLimit | None = None) -> Application:
    """The bot as a python-telegram-bot Application, not yet started; raises UserError without a token."""
    token = _token(settings)
    newsdesk = NewsdeskBot(settings, engine, flood or FloodLimit())
    app = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .base_file_url(file_url(settings.telegram_base_url))
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .get_updates_request(SkipMalformedUpdates(connection_pool_size=1))
        .post_init(newsdesk.post_init)
        .post_shutdown(newsdesk.post_shutdown)
        .build()
    )
    newsdesk.register(app)
    return app


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


@contextlib.asynccontextmanager
async def polling(
    app: Application, poll_timeout: float = 10.0, allowed_updates: list[str] | None = None
) -> AsyncIterator[Application]:
    """Run the bot by long polling inside an event loop that is already running (tests, benchmarks), with the
    start-up and shut-down hooks `run_polling` calls."""
    assert app.updater is not None
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        await app.updater.start_polling(
            timeout=dt.timedelta(seconds=poll_timeout),
            allowed_updates=ALLOWED_UPDATES if allowed_updates is None else allowed_updates,
        )
        await app.start()
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


def run_bot(
    settings: Settings,
    webhook_url: str | None = None,
    listen: str = "0.0.0.0",
    port: int = 8443,
    secret_token: str | None = None,
) -> None:
    """Serve until interrupted: long polling, or a webhook at `webhook_url` (Telegram must reach it over HTTPS
    and send `secret_token`, generated when not given)."""
    token = _token(settings)  # settings are checked before the models load, so mistakes show at once
    if webhook_url is not None:
        if secret_token is not None and not _SECRET_TOKEN.fullmatch(secret_token):
            raise UserError("the secret token must be 1-256 letters, digits, _ or -")
        if importlib.util.find_spec("tornado") is None:
            raise UserError('webhook mode needs tornado: pip install "python-telegram-bot[webhooks]"')
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets({"token": token, "api-key": api_key}))
    from newsdesk.runtime import build_engine

    app = build_application(settings, build_engine(settings))
    if webhook_url is None:
        app.run_polling(allowed_updates=ALLOWED_UPDATES)
        return
    app.run_webhook(
        listen=listen,
        port=port,
        url_path=urlsplit(webhook_url).path.lstrip("/"),
        webhook_url=webhook_url,
        secret_token=secret_token or secrets.token_urlsafe(32),
        allowed_updates=ALLOWED_UPDATES,
    )
