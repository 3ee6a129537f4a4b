"""Answering: questions (any message in a private chat; in a group a mention, a reply to the bot or /ask), and
the commands around them: /start, /help, /reset, /sources with its ◀ ▶ buttons.

The guard has admitted every update that reaches these handlers. One chat's questions are answered in order,
each in that chat's conversation.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from html import escape
from math import ceil
from weakref import WeakValueDictionary

from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.answers import Answer
from bot.engine import AnswerEngine
from bot.filters import split_filters
from bot.render import MESSAGE_LIMIT, answer_html, article_html, telegram_length
from bot.telegram.guards import FRESH, Access, Route, Rule, admitted_message
from bot.telegram.memory import ChatMemory
from bot.telegram.replies import language, reply, reply_plain, typing, user_language
from bot.texts import text
from vectorstore.errors import UserError
from vectorstore.records import SearchFilters

MAX_QUESTION_CHARS = 1000  # a question, not an article: longer text would cost seconds of embedding
SOURCES_PER_PAGE = 5
# A /sources page must be one message, or its ◀ ▶ buttons would edit only the last part of it: titles and
# source names are shortened, and each line has a fifth of what a message holds after the header.
SOURCES_TITLE_CHARS = 120
SOURCES_NAME_CHARS = 40
SOURCES_LINE_LIMIT = (MESSAGE_LIMIT - 200) // SOURCES_PER_PAGE
COMMAND_NAMES = ("start", "help", "sources", "reset", "ask")
_SOURCES_PAGE = re.compile(r"^sources:(\d{1,6})$")


class QuestionHandlers:
    """The engine's face in a chat. `admin_help` is what /help adds for admins, in a language."""

    def __init__(
        self, engine: AnswerEngine, memory: ChatMemory, access: Access, admin_help: Callable[[str], str]
    ) -> None:
        self.engine = engine
        self.memory = memory
        self.access = access
        self.admin_help = admin_help
        self._chat_locks: WeakValueDictionary[int, asyncio.Lock] = WeakValueDictionary()

    def routes(self) -> list[Route]:
        """The handlers, in order: the last message handler takes any command left in a private chat."""
        command = Rule("command")
        addressed = FRESH & filters.TEXT & ~filters.COMMAND & _ADDRESSED
        return [
            (CommandHandler("start", self.start, filters=FRESH), command),
            (CommandHandler("help", self.help, filters=FRESH), command),
            (CommandHandler("sources", self.sources, filters=FRESH), command),
            (CommandHandler("reset", self.reset, filters=FRESH), command),
            (CommandHandler("ask", self.ask, filters=FRESH), Rule("question", _ask_words)),
            (MessageHandler(addressed, self.question), Rule("question", _question)),
            (MessageHandler(FRESH & filters.ChatType.PRIVATE & filters.COMMAND, self.unknown_command), command),
            (CallbackQueryHandler(self.sources_page, pattern=_SOURCES_PAGE), Rule("button")),
            (CallbackQueryHandler(self.stale_button), Rule("open")),
        ]

    async def publish_commands(self, bot: Bot) -> None:
        """The command menu, in French too."""
        await bot.set_my_commands(_commands("en"))
        await bot.set_my_commands(_commands("fr"), language_code="fr")

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: what the bot does, with an example question."""
        message = admitted_message(update)
        lang = language(message)
        await reply(message, text("tg_start", lang).format(example=escape(text("tg_example", lang))))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: how to ask, and the commands (admins also learn how to add articles)."""
        message = admitted_message(update)
        lang = language(message)
        help_text = text("tg_help", lang).format(mention=escape(f"@{context.bot.username}"))
        if message.from_user and self.access.is_admin(message.from_user.id):
            help_text += self.admin_help(lang)
        await reply(message, help_text)

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ask [--since DATE] [--until DATE] [--source NAME] QUESTION: asks in a group without mentioning the
        bot, and narrows the search by date or source anywhere."""
        message = admitted_message(update)
        await self._answer(message, _ask_words(message))

    async def question(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text message addressed to the bot."""
        message = admitted_message(update)
        await self._answer(message, _question(message))

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/reset: forget this chat's conversation, so the next question starts afresh."""
        message = admitted_message(update)
        async with self._chat_lock(message.chat_id):
            await asyncio.to_thread(self.memory.clear, message.chat_id)
        await reply_plain(message, text("tg_reset", language(message)))

    async def sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/sources: the latest articles, five a page, with ◀ ▶ buttons."""
        message = admitted_message(update)
        page, keyboard = await asyncio.to_thread(self._sources_page, 1, language(message))
        await reply(message, page, keyboard)

    async def sources_page(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A ◀ or ▶ press: show that page of /sources in the same message."""
        query = update.callback_query
        assert query is not None  # a callback query handler
        match = _SOURCES_PAGE.match(query.data or "")
        assert match is not None  # the handler's pattern
        lang = user_language(query.from_user.language_code)
        page, keyboard = await asyncio.to_thread(self._sources_page, int(match.group(1)), lang)
        await query.answer()
        if query.message is None and query.inline_message_id is None:
            return
        try:
            await query.edit_message_text(page, reply_markup=keyboard)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # a double tap shows the same page again
                raise

    async def stale_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button we do not know (an old keyboard, forged data): stop the client's spinner, nothing else."""
        if update.callback_query is not None:
            await update.callback_query.answer()

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command we do not have, in a private chat (in groups it may be another bot's)."""
        message = admitted_message(update)
        await reply_plain(message, text("tg_unknown_command", language(message)))

    async def _answer(self, message: Message, question: str) -> None:
        """Answer in the chat's conversation, replying to the question; one chat's questions go in order.
        Options before the question (--since, --until, --source) narrow the search."""
        try:
            question, search_filters = split_filters(question)
        except UserError as exc:
            await reply_plain(message, str(exc))
            return
        if not question:
            lang = language(message)
            await reply_plain(message, text("tg_empty", lang).format(example=text("tg_example", lang)))
            return
        if len(question) > MAX_QUESTION_CHARS:
            lang = language(message, question[:MAX_QUESTION_CHARS])
            limit = f"{MAX_QUESTION_CHARS:,}".replace(",", "\u202f" if lang == "fr" else ",")
            await reply_plain(message, text("tg_too_long", lang).format(limit=limit))
            return
        async with self._chat_lock(message.chat_id):
            async with typing(message):
                answer = await asyncio.to_thread(self._ask, message.chat_id, question, search_filters)
            await reply(message, answer_html(answer))

    def _ask(self, chat_id: int, question: str, search_filters: SearchFilters | None) -> Answer:
        """In a worker thread: ask in the chat's conversation, and keep the turn the engine added to it (none
        when it answered without searching: an empty question, no articles)."""
        conversation = self.memory.get(chat_id)
        last = conversation.turns[-1] if conversation.turns else None
        answer = self.engine.ask(question, conversation, filters=search_filters)
        if conversation.turns and conversation.turns[-1] is not last:
            self.memory.append(chat_id, conversation.turns[-1])
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

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock


def _commands(lang: str) -> list[BotCommand]:
    return [BotCommand(name, text(f"tg_command_{name}", lang)) for name in COMMAND_NAMES]


def _ask_words(message: Message) -> str:
    """The question after /ask."""
    parts = (message.text or "").split(None, 1)
    return parts[1] if len(parts) > 1 else ""


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


def _question(message: Message) -> str:
    """The question in a message addressed to the bot."""
    bot = message.get_bot()
    return _addressed_question(message, bot.id, bot.username) or ""


class _AddressedToBot(filters.MessageFilter):
    """Messages for the bot: any in a private chat; in a group a mention of the bot or a reply to it. Other group
    chatter is not the bot's business: it is neither answered nor counted."""

    def filter(self, message: Message) -> bool:
        bot = message.get_bot()
        return _addressed_question(message, bot.id, bot.username) is not None


_ADDRESSED = _AddressedToBot(name="addressed to the bot")


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
