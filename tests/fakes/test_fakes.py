"""Prove the fakes speak the real protocols: drive them with real PTB and real ChatOpenAI.

pytest-asyncio is not installed, so async scenarios run under ``asyncio.run`` in sync tests,
and blocking fake helpers are awaited through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from .llm_server import Error, FakeOpenAI, Slow
from .telegram_server import FakeBotApi

TOKEN = "123456:TEST-TOKEN"
CHAT = 42


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi(TOKEN, max_poll_seconds=0.5) as fake:
        yield fake


@pytest.fixture
def llm_api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default_reply="default answer") as fake:
        yield fake


def build_app(fake: FakeBotApi, rate_limiter: AIORateLimiter | None = None) -> Application:
    builder = Application.builder().token(TOKEN).base_url(f"{fake.url}/bot")
    builder = builder.base_file_url(f"{fake.url}/file/bot")
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    return builder.build()


@contextlib.asynccontextmanager
async def polling(app: Application) -> AsyncIterator[Application]:
    """Run the real updater against the fake for the duration of the block."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=dt.timedelta(seconds=1))
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


def test_echo_round_trip_through_real_polling(bot_api: FakeBotApi) -> None:
    async def scenario() -> list[dict]:
        app = build_app(bot_api)
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
        async with polling(app):
            bot_api.send_text(CHAT, "hello")
            bot_api.send_text(7, "other chat")
            return await asyncio.to_thread(bot_api.wait_for_messages, CHAT, 1, 5)

    sent = asyncio.run(scenario())
    assert sent[0]["text"] == "echo: hello"
    assert sent[0]["chat"]["id"] == CHAT
    assert sent[0]["from"]["username"] == "newsdesk_test_bot"
    assert [m["text"] for m in bot_api.sent_messages(7)] == ["echo: other chat"]
    methods = [c["method"] for c in bot_api.calls()]
    assert methods[:2] == ["getMe", "deleteWebhook"]
    assert "getUpdates" in methods
    assert bot_api.pending_updates() == []  # PTB confirmed both updates via offset on shutdown


def test_group_command_and_inline_button(bot_api: FakeBotApi) -> None:
    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Sources", callback_data="src")]])
        await update.effective_message.reply_text(f"Q: {' '.join(context.args or [])}", reply_markup=keyboard)

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"<b>Sources</b> for {query.data}", parse_mode="HTML")

    async def scenario() -> None:
        app = build_app(bot_api)
        app.add_handler(CommandHandler("ask", ask))
        app.add_handler(CallbackQueryHandler(button))
        async with polling(app):
            bot_api.send_text(-100, "/ask@newsdesk_test_bot what happened", chat_type="group")
            [question] = await asyncio.to_thread(bot_api.wait_for_messages, -100, 1, 5)
            assert question["text"] == "Q: what happened"
            assert question["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "src"
            bot_api.press_button(-100, question["message_id"], "src")
            edit = await asyncio.to_thread(
                bot_api.wait_for, lambda c: c["method"] == "editMessageText" and c["status"] == 200, 5
            )
            assert edit["params"]["parse_mode"] == "HTML"

    asyncio.run(scenario())
    [answered] = bot_api.calls("answerCallbackQuery")
    assert answered["status"] == 200
    [final] = bot_api.sent_messages(-100)
    assert final["text"] == "Sources for src"
    assert final["entities"] == [{"type": "bold", "offset": 0, "length": 7}]
    assert "reply_markup" not in final  # editing without markup removes the keyboard


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB-internal retry_after
def test_scripted_429_is_retried_by_aio_rate_limiter(bot_api: FakeBotApi) -> None:
    bot_api.fail_next("sendMessage", error_code=429, retry_after=1)

    async def scenario() -> list[dict]:
        app = build_app(bot_api, AIORateLimiter(max_retries=2))
        app.add_handler(MessageHandler(filters.TEXT, echo))
        async with polling(app):
            bot_api.send_text(CHAT, "busy?")
            return await asyncio.to_thread(bot_api.wait_for_messages, CHAT, 1, 5)

    sent = asyncio.run(scenario())
    assert [m["text"] for m in sent] == ["echo: busy?"]
    attempts = bot_api.calls("sendMessage")
    assert [c["status"] for c in attempts] == [429, 200]
    assert attempts[0]["response"]["parameters"] == {"retry_after": 1}
    assert attempts[0]["response"]["description"] == "Too Many Requests: retry after 1"


def test_document_download_via_get_file(bot_api: FakeBotApi) -> None:
    content = b"%PDF-1.4 fake article\n" * 100

    async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.document is not None
        telegram_file = await update.message.document.get_file()
        data = await telegram_file.download_as_bytearray()
        await update.message.reply_text(f"{len(data)} {hashlib.sha256(data).hexdigest()}")

    async def scenario() -> list[dict]:
        app = build_app(bot_api)
        app.add_handler(MessageHandler(filters.Document.ALL, on_document))
        async with polling(app):
            bot_api.send_document(CHAT, "article.pdf", content, "application/pdf")
            return await asyncio.to_thread(bot_api.wait_for_messages, CHAT, 1, 5)

    sent = asyncio.run(scenario())
    assert sent[0]["text"] == f"{len(content)} {hashlib.sha256(content).hexdigest()}"
    [get_file] = bot_api.calls("getFile")
    assert get_file["response"]["result"]["file_path"].endswith(".pdf")


def test_bot_api_errors_match_telegram(bot_api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with Bot(TOKEN, base_url=bot_api.base_url, base_file_url=bot_api.base_file_url) as bot:
            await bot.set_my_commands([("ask", "Ask about the news")])
            with pytest.raises(BadRequest, match="Bot_command_invalid"):
                await bot.set_my_commands([("Ask-Now", "uppercase and dashes are rejected")])
            with pytest.raises(BadRequest, match="parse entities"):
                await bot.send_message(CHAT, "a < b", parse_mode="HTML")
            message = await bot.send_message(CHAT, "same")
            with pytest.raises(BadRequest, match="not modified"):
                await bot.edit_message_text("same", CHAT, message.message_id)
            with pytest.raises(BadRequest, match="too long"):
                await bot.send_message(CHAT, "x" * 4097)
        with pytest.raises(InvalidToken):
            async with Bot("999:wrong", base_url=bot_api.base_url):
                pass

    asyncio.run(scenario())
    assert bot_api.commands() == [{"command": "ask", "description": "Ask about the news"}]
    unknown = httpx.post(f"{bot_api.url}/bot{TOKEN}/noSuchMethod")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    with pytest.raises(AssertionError, match="sendMessage -> 400"):
        bot_api.wait_for(lambda c: c["method"] == "sendPhoto", timeout=0.1)


def make_chat(fake: FakeOpenAI, **kwargs: object) -> ChatOpenAI:
    options: dict = {"max_retries": 0, "timeout": 5} | kwargs
    return ChatOpenAI(base_url=f"{fake.url}/v1", api_key="test", model="scripted", **options)


def test_chat_openai_gets_scripted_replies_and_prompt_is_recorded(llm_api: FakeOpenAI) -> None:
    llm_api.script("Markets rose [1].", "second")
    chat = make_chat(llm_api)
    reply = chat.invoke([("system", "Answer from the articles."), ("human", "What happened?")])
    assert reply.content == "Markets rose [1]."
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 3
    assert chat.invoke("again").content == "second"
    assert chat.invoke("and again").content == "default answer"  # script exhausted -> default repeats
    first = llm_api.requests[0]
    assert first["model"] == "scripted"
    assert first["messages"] == [
        {"role": "system", "content": "Answer from the articles."},
        {"role": "user", "content": "What happened?"},
    ]
    assert "".join(str(c.content) for c in make_chat(llm_api).stream("stream it")) == "default answer"
    assert llm_api.last_request["stream"] is True


def test_chat_openai_scripted_errors_and_latency(llm_api: FakeOpenAI) -> None:
    llm_api.script(Error(400, "context too long"), Error(500), Error(429, "slow down", retry_after=0.01), "ok")
    chat = make_chat(llm_api)
    with pytest.raises(openai.BadRequestError, match="context too long"):
        chat.invoke("q")
    with pytest.raises(openai.InternalServerError):
        chat.invoke("q")
    assert make_chat(llm_api, max_retries=1).invoke("q").content == "ok"  # 429 honoured, then retried
    llm_api.script(Slow(3, "too late"))
    with pytest.raises(openai.APITimeoutError):
        make_chat(llm_api, timeout=0.2).invoke("q")
    assert len(llm_api.requests) == 5
