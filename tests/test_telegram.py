"""The Telegram bot end to end: the real python-telegram-bot Application polls a fake Bot API on 127.0.0.1 and
answers from a real store over examples/; the tests play the users. Plus property tests of split_message.

pytest-asyncio is not installed: each scenario runs under asyncio.run, and the fake's blocking helpers are
awaited through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import itertools
import json
import logging
import math
import re
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from telegram import Update
from telegram.ext import TypeHandler

import bot.telegram.replies as replies_module
from bot.answers import Answer, Source
from bot.conversation import MAX_TURNS, Turn
from bot.engine import AnswerEngine
from bot.render import answer_html, split_message, telegram_length
from bot.telegram.app import RedactSecrets, Webhook, polling, webhook_serving
from bot.telegram.flood import FloodGuard, FloodLimit, LocalFloodGuard, PostgresFloodGuard
from bot.telegram.memory import CHATS_FILE, ChatMemory, PostgresChatMemory, SqliteChatMemory
from ingest.articles import Article
from ingest.pipeline import Ingester, load_paths
from newsdesk.cli import cli
from newsdesk.settings import Settings
from newsdesk.telegram_bot import run_telegram_bot, telegram_application
from tests.conftest import EXAMPLES
from tests.fakes.pages import serve_pages
from tests.fakes.telegram_server import FakeBotApi
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.errors import UserError
from vectorstore.records import Hit
from vectorstore.store import Store

TOKEN = "123456:TEST-TOKEN"
ADMIN = 7001
T = TypeVar("T")

MARKUP_TITLE = "Orlen <draft> budget & *bold* bridge plans"
MARKUP_ARTICLE = f"""title {MARKUP_TITLE}
date 2024-09-03
source Orlen Courier
url https://example.com/orlen/bridge?a=1&b=2

The Orlen town council approved on Tuesday a budget of 4.2 million euros for the new harbour bridge.
Construction of the Orlen harbour bridge is due to start in the spring and to last two years.
"""
UPLOAD = b"""---
title: Lake Orvin gets electric ferries
date: 2024-10-15
source: Orvin Daily
---

The Lake Orvin transport authority will buy 17 electric ferries to replace its diesel fleet by 2027.
The Orvin ferries will carry up to 300 passengers each and charge at the two main piers.
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder) -> AnswerEngine:  # type: ignore[no-untyped-def]
    """The examples plus one article whose title is full of markup characters."""
    folder = tmp_path_factory.mktemp("telegram")
    markup = folder / "orlen.txt"
    markup.write_text(MARKUP_ARTICLE, encoding="utf-8")
    store = Store(folder / "store", embedder)
    Ingester(store).ingest(load_paths([EXAMPLES, markup], 10**7))
    return AnswerEngine(store)


@pytest.fixture
def fake() -> Iterator[FakeBotApi]:
    with FakeBotApi(TOKEN, max_poll_seconds=0.5) as api:
        yield api


def bot_settings(data_dir: Path, fake: FakeBotApi, **extra: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        NEWSDESK_DATA_DIR=str(data_dir),
        TELEGRAM_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=fake.base_url,
        NEWSDESK_ALLOWED_USERS=extra.get("allowed_users", ""),
        NEWSDESK_ALLOWED_CHATS=extra.get("allowed_chats", ""),
        NEWSDESK_ADMIN_USERS=extra.get("admin_users", str(ADMIN)),
    )


@asynccontextmanager
async def running(settings: Settings, engine: AnswerEngine, flood: FloodLimit | None = None) -> AsyncIterator[None]:
    """The bot polling the fake; every update type is requested, so edits and channel posts reach it too."""
    app = telegram_application(settings, engine, flood)
    async with polling(app, poll_timeout=1, allowed_updates=Update.ALL_TYPES):
        yield


def run_bot(settings: Settings, engine: AnswerEngine, scenario: Callable[[], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        async with running(settings, engine, **kw):
            return await scenario()

    return asyncio.run(main())


async def replies(fake: FakeBotApi, chat_id: int, count: int = 1, timeout: float = 30) -> list[dict]:
    return await asyncio.to_thread(fake.wait_for_messages, chat_id, count, timeout)


async def converse(
    fake: FakeBotApi, chat_id: int, *texts: str, user_id: int | None = None, language_code: str = "en"
) -> list[dict]:
    """Send each text once the previous one is answered (in a chat with no earlier replies): one reply each."""
    answered: list[dict] = []
    for number, text in enumerate(texts, 1):
        fake.send_text(chat_id, text, user_id=user_id, language_code=language_code)
        answered = await replies(fake, chat_id, number)
    return answered


async def until_sent(
    fake: FakeBotApi, chat_id: int, done: Callable[[list[dict]], bool], timeout: float = 60
) -> list[dict]:
    """The messages sent to a chat, once `done` holds for them."""
    deadline = time.monotonic() + timeout
    while not done(sent := fake.sent_messages(chat_id)):
        if time.monotonic() > deadline:
            raise AssertionError(f"chat {chat_id} got only {[m['text'] for m in sent]}")
        await asyncio.sleep(0.05)
    return sent


def sent_html(fake: FakeBotApi, chat_id: int) -> list[str]:
    """The HTML the bot sent to a chat, as it was on the wire."""
    return [
        c["params"]["text"]
        for c in fake.calls("sendMessage")
        if c["status"] == 200 and c["params"]["chat_id"] == chat_id
    ]


def links(message: dict) -> list[str]:
    return [e["url"] for e in message.get("entities", []) if e["type"] == "text_link"]


# -- answers -------------------------------------------------------------------------------------------


def test_question_gets_a_cited_answer_in_reply(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> None:
        asked = fake.send_text(101, "How many trains were cancelled on the first day of the SNCR strike?")
        [reply] = await replies(fake, 101)
        assert reply["reply_to_message"]["message_id"] == asked
        assert "412" in reply["text"] and "Sources" in reply["text"]
        assert any("example" in url for url in links(reply))
        [wire] = sent_html(fake, 101)
        assert '<a href="' in wire and "<b>Sources</b>" in wire

    run_bot(bot_settings(tmp_path, fake), engine, scenario)
    [call] = [c for c in fake.calls("sendMessage") if c["params"]["chat_id"] == 101]
    assert call["params"]["parse_mode"] == "HTML"
    assert any(c["params"]["action"] == "typing" for c in fake.calls("sendChatAction"))
    assert [c["command"] for c in fake.commands()] == ["start", "help", "sources", "reset", "ask"]


def test_unanswerable_question_is_refused(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> dict:
        fake.send_text(102, "What is the capital of Australia?")
        return (await replies(fake, 102))[0]

    reply = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert reply["text"] == "The articles I have do not say."
    assert "entities" not in reply


def test_titles_with_markup_characters_are_escaped(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> dict:
        fake.send_text(103, "How much is the budget for the Orlen harbour bridge?")
        return (await replies(fake, 103))[0]

    reply = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert "4.2 million" in reply["text"]
    assert MARKUP_TITLE in reply["text"]  # shown literally: no tag eaten, no Markdown applied
    assert links(reply) == ["https://example.com/orlen/bridge?a=1&b=2"]
    [wire] = sent_html(fake, 103)
    assert "Orlen &lt;draft&gt; budget &amp; *bold* bridge plans</a>" in wire


def test_follow_up_uses_the_chat_conversation(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> list[dict]:
        return await converse(fake, 104, "Which club did Yanis Koné join?", "And until when is his contract?")

    first, follow_up = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert "Lindenau" in first["text"]
    assert "2029" in follow_up["text"]


def test_conversation_survives_a_restart_and_reset_forgets_it(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    settings = bot_settings(tmp_path, fake)

    async def before() -> None:
        fake.send_text(105, "Which club did Yanis Koné join?")
        await replies(fake, 105, 1)

    async def after() -> list[dict]:
        fake.send_text(105, "And until when is his contract?")
        await replies(fake, 105, 2)
        fake.send_text(105, "/reset")
        return await replies(fake, 105, 3)

    run_bot(settings, engine, before)
    sent = run_bot(settings, engine, after)  # a new Application over the same data folder
    assert "2029" in sent[1]["text"]
    assert sent[2]["text"] == "Conversation forgotten."
    memory = SqliteChatMemory(tmp_path / CHATS_FILE)
    assert len(memory.get(105).turns) == 0
    memory.close()


# -- long answers --------------------------------------------------------------------------------------


def long_answer(sentences: int) -> Answer:
    hits = [
        Hit(f"c{i}", f"a{i}", "text", 1.0, title=f"Story {i} <&>", date=f"2024-05-0{i}", url=f"https://ex.com/{i}")
        for i in (1, 2)
    ]
    body = " ".join(
        f"Sentence {i} of a long answer that goes on and on about the news. [{i % 2 + 1}]" for i in range(sentences)
    )
    return Answer("q", body, False, "en", [Source(1, hits[0], "quote"), Source(2, hits[1], "quote")])


def test_a_long_answer_is_split_and_keeps_its_sources_with_the_text() -> None:
    html_text = answer_html(long_answer(120))
    assert telegram_length(html_text) > 2 * 4096
    parts = split_message(html_text)
    assert len(parts) == 3 and all(telegram_length(p) <= 4096 for p in parts)
    assert all(p.rstrip().endswith(("]", "</a> (2024-05-02)")) for p in parts)  # cut after whole sentences
    assert "<b>Sources</b>" in parts[-1] and not parts[-1].startswith("<b>Sources</b>")
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", html_text)


def test_a_long_answer_reaches_telegram_in_parts(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "ask", lambda question, conversation=None, **kw: long_answer(150))
    expected = len(split_message(answer_html(long_answer(150))))
    assert expected >= 3

    async def scenario() -> tuple[int, list[dict]]:
        asked = fake.send_text(106, "Tell me everything")
        return asked, await replies(fake, 106, expected)

    asked, parts = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert all(0 < len(p["text"]) <= 4096 and p["reply_to_message"]["message_id"] == asked for p in parts)
    assert len(parts) == expected
    assert parts[0]["text"].startswith("Sentence 0 ") and "Sentence 149 " in parts[-1]["text"]
    assert links(parts[-1]) == ["https://ex.com/1", "https://ex.com/2"]


# -- commands and buttons ------------------------------------------------------------------------------


def test_sources_pages_with_buttons_that_edit_the_message(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    pages = math.ceil(engine.store.catalog.count_documents() / 5)
    assert pages >= 2

    async def scenario() -> tuple[dict, dict]:
        fake.send_text(107, "/sources")
        [first] = await replies(fake, 107)
        fake.press_button(107, first["message_id"], "sources:2")
        await asyncio.to_thread(fake.wait_for, lambda c: c["method"] == "editMessageText", 10)
        return first, fake.message(107, first["message_id"])

    first, edited = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert f"page 1 of {pages}" in first["text"] and first["text"].count("\n") == 5
    assert [b["callback_data"] for b in first["reply_markup"]["inline_keyboard"][0]] == ["sources:2"]
    assert f"page 2 of {pages}" in edited["text"] and "\n6. " in edited["text"]
    assert edited["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "sources:1"
    [answered] = fake.calls("answerCallbackQuery")
    assert answered["status"] == 200


def test_ask_with_date_and_source_filters(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    """/ask --since/--until/--source narrow the search (the SNCR strike story is dated 2024-03-12)."""
    question = "How many trains were cancelled on the first day of the SNCR strike?"

    async def scenario() -> list[dict]:
        fake.send_text(111, f"/ask --since 2024-03-01 --until 2024-03-31 {question}")
        fake.send_text(112, f"/ask --since 2024-06-01 {question}")
        fake.send_text(113, f'/ask --source "Evening Post" {question}')
        fake.send_text(114, f"/ask --since yesterdayish {question}")
        fake.send_text(115, "/ask --until")
        return [(await replies(fake, chat))[0] for chat in (111, 112, 113, 114, 115)]

    in_range, too_late, other_paper, bad_date, no_value = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert "412" in in_range["text"] and "2024-03-12" in in_range["text"]
    assert "do not say" in too_late["text"] and "412" not in too_late["text"]
    assert "do not say" in other_paper["text"]
    assert "'yesterdayish' is not a date (use YYYY-MM-DD)" in bad_date["text"]
    assert "--until needs a value" in no_value["text"]


def test_start_and_help_describe_the_bot(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> list[dict]:
        return await converse(fake, 108, "/start", "/help", "/frobnicate")

    start, help_, unknown = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert "numbered sources" in start["text"] and "?" in start["text"]
    assert "@newsdesk_test_bot" in help_["text"] and "/reset" in help_["text"]
    assert "Admins" not in help_["text"]
    assert unknown["text"] == "Unknown command; /help lists them."


# -- access --------------------------------------------------------------------------------------------


def test_only_allowed_users_and_chats_are_answered(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> None:
        fake.send_text(202, "Which club did Yanis Koné join?")
        fake.send_text(201, "Which club did Yanis Koné join?")
        fake.send_text(-500, "/ask What is the capital of Australia?", chat_type="group", user_id=203)
        await replies(fake, 201)
        await replies(fake, 202)
        await replies(fake, -500)

    run_bot(bot_settings(tmp_path, fake, allowed_users="201", allowed_chats="-500"), engine, scenario)
    assert "Lindenau" in fake.sent_messages(201)[0]["text"]
    assert fake.sent_messages(-500)[0]["text"] == "The articles I have do not say."
    assert [m["text"] for m in fake.sent_messages(202)] == ["Sorry, this bot is private."]
    assert not [c for c in fake.calls("sendChatAction") if c["params"]["chat_id"] == 202]


def test_one_guard_stops_refused_updates_before_any_handler(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    """Access and flood are checked by one TypeHandler in a group ahead of the handlers': a stranger's command and
    question, and a question over the flood limit, stop there (a handler in a later group never sees them), while
    an allowed user's updates go on."""
    flood = FloodLimit(messages=2, seconds=60, notice_every=1.0)
    app = telegram_application(bot_settings(tmp_path, fake, allowed_users="201"), engine, flood)
    first_group = min(app.handlers)
    assert first_group < 0 and [type(h) for h in app.handlers[first_group]] == [TypeHandler]
    seen: list[tuple[int, str]] = []

    async def spy(update: Update, context: Any) -> None:
        if update.message is not None:
            seen.append((update.message.chat_id, update.message.text or ""))

    app.add_handler(TypeHandler(Update, spy), group=max(app.handlers) + 1)
    stranger, asked = 666, ["/help", "Which club did Yanis Koné join?", "And until when is his contract?"]

    async def main() -> None:
        async with polling(app, poll_timeout=1):
            fake.send_text(stranger, "/help")
            fake.send_text(stranger, "Which club did Yanis Koné join?")
            await converse(fake, 201, *asked)
            fake.send_text(201, "Who won the regional election in Haute-Corvelle?")  # the third question
            await replies(fake, 201, len(asked) + 1)
            await replies(fake, stranger, 2)

    asyncio.run(main())
    assert seen == [(201, text) for text in asked]
    assert [m["text"] for m in fake.sent_messages(stranger)] == ["Sorry, this bot is private."] * 2
    [(dropped, _)] = not_answered(fake.sent_messages(201)[len(asked) :])
    assert dropped == 1


def test_strangers_get_nothing_on_any_path(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    """With an allowlist, a stranger gets one polite line per message and nothing else, whatever the path:
    questions, every command, uploads, edits, a group, a channel post, a forged button press."""
    stranger, group, channel = 666, -900, -1009
    documents_before = engine.store.catalog.count_documents()

    async def scenario() -> None:
        fake.send_text(201, "/sources")
        [listing] = await replies(fake, 201)
        asked = fake.send_text(stranger, "Which club did Yanis Koné join?")
        for command in ("/start", "/help", "/sources", "/reset", "/ask Which club did Yanis Koné join?"):
            fake.send_text(stranger, command)
        fake.send_text(stranger, "/ingest https://example.org/news/story")
        fake.send_document(stranger, "../../etc/evil.md", UPLOAD, "text/markdown")
        fake.edit_text(stranger, asked, "Who won the election in Haute-Corvelle?")
        fake.send_text(group, "/ask Which club did Yanis Koné join?", chat_type="group", user_id=stranger)
        fake.send_update(
            {
                "channel_post": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": channel, "type": "channel"},
                    "text": "/sources",
                }
            }
        )
        fake.press_button(201, listing["message_id"], "sources:2", user_id=stranger)
        await asyncio.to_thread(fake.wait_for, lambda c: c["method"] == "answerCallbackQuery", 30)
        await replies(fake, stranger, 8)
        await replies(fake, group, 1)
        fake.send_text(201, "Which club did Yanis Koné join?")  # the bot still serves its users
        await replies(fake, 201, 2)

    flood = FloodLimit(messages=100)
    run_bot(bot_settings(tmp_path, fake, allowed_users="201"), engine, scenario, flood=flood)
    private = "Sorry, this bot is private."
    assert [m["text"] for m in fake.sent_messages(stranger)] == [private] * 8
    assert [m["text"] for m in fake.sent_messages(group)] == [private]
    assert fake.sent_messages(channel) == []
    [button] = fake.calls("answerCallbackQuery")
    assert button["params"].get("text") == private
    assert fake.calls("editMessageText") == [] and fake.calls("getFile") == []
    assert not [c for c in fake.calls("sendChatAction") if c["params"]["chat_id"] in (stranger, group)]
    assert engine.store.catalog.count_documents() == documents_before
    assert "Lindenau" in fake.sent_messages(201)[-1]["text"]


def test_admin_upload_is_ingested_and_then_answered(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    """The uploaded name is only a label (never a path); sending the file again, edited, replaces the article."""
    name = "../../etc/passwd.md"

    async def scenario() -> list[dict]:
        fake.send_document(ADMIN, name, UPLOAD, "text/markdown", user_id=ADMIN)
        await replies(fake, ADMIN, 1)
        fake.send_text(ADMIN, "How many electric ferries will Lake Orvin buy?")
        await replies(fake, ADMIN, 2)
        fake.send_document(ADMIN, name, UPLOAD.replace(b"17 electric", b"19 electric"), "text/markdown", user_id=ADMIN)
        await replies(fake, ADMIN, 3)
        fake.send_text(ADMIN, "How many electric ferries will Lake Orvin buy?")
        return await replies(fake, ADMIN, 4)

    report, answer, again, corrected = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert report["text"].startswith("1 new, 0 updated, 0 unchanged, 0 failed")
    assert "17" in answer["text"] and "Lake Orvin gets electric ferries" in answer["text"]
    assert again["text"].startswith("0 new, 1 updated, 0 unchanged, 0 failed")
    assert "19" in corrected["text"] and "17" not in corrected["text"]
    [stored] = [d for d in engine.store.documents() if d["title"] == "Lake Orvin gets electric ferries"]
    assert stored["id"] == f"telegram-upload:{name}"
    assert len(fake.calls("getFile")) == 2


def test_admin_ingests_a_web_page_then_it_is_answered(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    with serve_pages() as site:

        async def scenario() -> list[dict]:
            question = "How much silt will be removed from Sella harbour?"
            return await converse(fake, ADMIN, f"/ingest {site}/story {site}/missing", question, user_id=ADMIN)

        report, answer = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert report["text"].startswith("1 new, 0 updated, 0 unchanged, 1 failed")
    assert f"{site}/missing: HTTP 404" in report["text"]
    assert "ninety thousand" in answer["text"]
    sent_html = fake.calls("sendMessage")[-1]["params"]["text"]
    assert '<a href="https://example.org/news/sella-dredging">' in sent_html


def test_non_admins_cannot_add_articles(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    async def scenario() -> list[dict]:
        fake.send_document(301, "notes.txt", b"title Secret\n\nNot for the store.", "text/plain", user_id=301)
        await replies(fake, 301, 1)
        fake.send_text(301, "/ingest https://example.com/story")
        await replies(fake, 301, 2)
        fake.send_text(ADMIN, "/ingest", user_id=ADMIN)
        await replies(fake, ADMIN, 1)
        fake.send_document(ADMIN, "photo.png", b"\x89PNG", "image/png", user_id=ADMIN)
        return await replies(fake, ADMIN, 2)

    run_bot(bot_settings(tmp_path, fake), engine, scenario)
    refused = "Only the bot's admins can add articles."
    assert [m["text"] for m in fake.sent_messages(301)] == [refused, refused]
    url_reply, file_reply = (m["text"] for m in fake.sent_messages(ADMIN))
    assert "/ingest https://" in url_reply and file_reply.startswith("I can read .txt")
    assert fake.calls("getFile") == []


# -- groups --------------------------------------------------------------------------------------------


def test_group_messages_are_answered_only_when_addressed(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    group = -1001

    async def scenario() -> tuple[list[int], list[dict]]:
        fake.send_text(group, "Which club did Yanis Koné join?", chat_type="group")
        mention = fake.send_text(group, "@newsdesk_test_bot Which club did Yanis Koné join?", chat_type="group")
        [first] = await replies(fake, group, 1)
        reply = fake.send_text(
            group, "And until when is his contract?", chat_type="group", reply_to_bot_message_id=first["message_id"]
        )
        await replies(fake, group, 2)
        command = fake.send_text(group, "/ask@newsdesk_test_bot What is the capital of Australia?", chat_type="group")
        fake.send_text(group, "/ask@other_bot What is the capital of Australia?", chat_type="group")
        return [mention, reply, command], await replies(fake, group, 3)

    asked, sent = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert [m["reply_to_message"]["message_id"] for m in sent] == asked
    assert "Lindenau" in sent[0]["text"] and "2029" in sent[1]["text"]
    assert sent[2]["text"] == "The articles I have do not say."
    assert len(fake.sent_messages(group)) == 3


# -- faults and load -----------------------------------------------------------------------------------


def test_malformed_and_odd_updates_do_not_stop_the_bot(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    user = {"id": 109, "is_bot": False, "first_name": "Eve"}
    chat = {"id": 109, "type": "private"}

    async def scenario() -> list[dict]:
        fake.send_update({"message": {"text": "no id, no date, no chat"}})
        fake.send_update({"message": "not even an object"})
        fake.send_update({"something_new": {"a": 1}})
        fake.send_update({"channel_post": {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "channel"}}})
        fake.send_update({"callback_query": {"id": "cq1", "from": user, "chat_instance": "x", "data": "evil:1"}})
        fake.send_update({"callback_query": {"id": "cq2", "from": user, "chat_instance": "x", "data": "sources:9"}})
        fake.send_update({"message": {"message_id": 50, "date": 0, "chat": chat, "from": user, "text": 12345}})
        asked = fake.send_text(109, "What is the capital of Australia?")
        fake.edit_text(109, asked, "Which club did Yanis Koné join?")
        fake.send_text(109, "x" * 100_000)
        fake.send_text(110, "Which club did Yanis Koné join?")
        await replies(fake, 110)
        return await replies(fake, 109, 3)

    sent = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    texts = sorted(m["text"] for m in sent)
    assert texts == [
        "Please keep questions under 1,000 characters.",
        "Sorry, something went wrong; please try again.",  # the message whose text was a number
        "The articles I have do not say.",  # the edit was ignored
    ]
    assert "Lindenau" in fake.sent_messages(110)[0]["text"]


def test_engine_failure_is_apologised_for_and_the_next_question_answered(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ask = engine.ask
    calls = []

    def flaky(question: str, conversation: Any = None, **kw: Any) -> Answer:
        calls.append(question)
        if len(calls) == 1:
            raise RuntimeError("the store went away")
        return real_ask(question, conversation, **kw)

    monkeypatch.setattr(engine, "ask", flaky)

    async def scenario() -> list[dict]:
        fake.send_text(111, "Which club did Yanis Koné join?")
        await replies(fake, 111, 1)
        fake.send_text(111, "Which club did Yanis Koné join?")
        return await replies(fake, 111, 2)

    apology, answer = run_bot(bot_settings(tmp_path, fake), engine, scenario)
    assert apology["text"] == "Sorry, something went wrong; please try again."
    assert "Lindenau" in answer["text"]


def test_long_work_keeps_the_typing_action_going(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ask = engine.ask

    def slow(question: str, conversation: Any = None, **kw: Any) -> Answer:
        time.sleep(0.5)
        return real_ask(question, conversation, **kw)

    monkeypatch.setattr(engine, "ask", slow)
    monkeypatch.setattr(replies_module, "TYPING_EVERY", 0.1)

    async def scenario() -> None:
        fake.send_text(114, "Which club did Yanis Koné join?")
        await replies(fake, 114)

    run_bot(bot_settings(tmp_path, fake), engine, scenario)
    typing = [c for c in fake.calls("sendChatAction") if c["params"]["chat_id"] == 114]
    assert len(typing) >= 3
    [sent] = [c for c in fake.calls() if c["method"] == "sendMessage" and c["params"]["chat_id"] == 114]
    assert fake.calls().index(sent) > fake.calls().index(typing[-1])  # no "typing…" after the answer


REFUSAL = "The articles I have do not say."
NOT_ANSWERED = re.compile(r"^You are asking faster than I can answer: (\d+) messages? (?:was|were) not answered\. "
                          r"Please wait (\d+) s before sending (?:it|them) again\.$")  # fmt: skip


def not_answered(sent: list[dict]) -> list[tuple[int, int]]:
    """(messages not answered, seconds to wait) of each flood notice among `sent`."""
    return [(int(m[1]), int(m[2])) for m in (NOT_ANSWERED.match(s["text"]) for s in sent) if m]


def test_every_message_over_the_flood_limit_is_reported_in_rate_limited_notices(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    """Nothing is dropped silently: notices say how many messages were not answered and how long to wait, and a
    flood of them cannot make the bot flood Telegram (at most one notice per `notice_every` seconds)."""
    question = "What is the capital of Australia?"

    def counted(dropped: int) -> Callable[[list[dict]], bool]:
        return lambda sent: sum(n for n, _ in not_answered(sent)) == dropped

    async def scenario() -> None:
        for _ in range(6):
            fake.send_text(112, question)
        await until_sent(fake, 112, counted(4))
        for _ in range(30):
            fake.send_text(112, question)
            await asyncio.sleep(0.05)
        await until_sent(fake, 112, counted(34))
        fake.send_text(113, question)  # everyone else is still answered
        await replies(fake, 113, 1)

    run_bot(bot_settings(tmp_path, fake), engine, scenario, flood=FloodLimit(messages=2, seconds=60, notice_every=1.0))
    sent = fake.sent_messages(112)
    notices = not_answered(sent)
    assert [m["text"] for m in sent].count(REFUSAL) == 2 and len(sent) == 2 + len(notices)
    assert sum(n for n, _ in notices) == 34 and len(notices) <= 4, notices
    assert all(1 <= wait <= 60 for _, wait in notices)
    times = [
        c["at"] for c in fake.calls("sendMessage") if c["params"]["chat_id"] == 112 and "faster" in c["params"]["text"]
    ]
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times)), times
    assert fake.sent_messages(113)[0]["text"] == REFUSAL


def test_commands_do_not_count_against_the_question_limit(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    """Commands have a window of their own: three of them, then three questions, all answered under a limit of
    three; the fourth question is not."""
    question = "Which club did Yanis Koné join?"

    async def scenario() -> list[dict]:
        await converse(fake, 115, "/start", "/help", "/sources", question, question, question)
        fake.send_text(115, question)
        return await until_sent(fake, 115, lambda sent: len(sent) == 7)

    sent = run_bot(
        bot_settings(tmp_path, fake), engine, scenario, flood=FloodLimit(messages=3, seconds=60, notice_every=1.0)
    )
    texts = [m["text"] for m in sent]
    assert "numbered sources" in texts[0] and "/reset" in texts[1] and "Latest articles" in texts[2]
    assert all("Lindenau" in answer for answer in texts[3:6])
    assert [count for count, _ in not_answered(sent[6:])] == [1]


@pytest.fixture(params=["local", "postgres"])
def new_flood_guard(request: pytest.FixtureRequest) -> Iterator[Callable[[FloodLimit, str], FloodGuard]]:
    """Makes flood guards (a limit, a kind of message) as each replica would: this process's counts, or the
    database's; closed after the test."""
    made: list[FloodGuard] = []
    url = request.getfixturevalue("database_url") if request.param == "postgres" else ""

    def make(limit: FloodLimit, kind: str) -> FloodGuard:
        made.append(PostgresFloodGuard(url, limit, kind) if url else LocalFloodGuard(limit))
        return made[-1]

    yield make
    for guard in made:
        guard.close()


def test_a_flood_guard_admits_the_limit_then_says_how_long_to_wait(
    new_flood_guard: Callable[[FloodLimit, str], FloodGuard],
) -> None:
    """Three admitted, then refused (a refusal is not counted) with a wait within the window; other users and a
    window that has moved on are admitted again."""
    strict = new_flood_guard(FloodLimit(messages=3, seconds=60), "question")
    brief = new_flood_guard(FloodLimit(messages=1, seconds=0.2), "command")

    async def scenario() -> tuple[list[bool], float, float, bool, list[bool]]:
        admitted = [await strict.admit(5) for _ in range(5)]
        wait = await strict.wait(5)
        first = await brief.admit(5)
        await asyncio.sleep(0.3)
        return admitted, wait, await strict.wait(6), await strict.admit(6), [first, await brief.admit(5)]

    admitted, wait, nothing_to_wait, other_user, after_the_window = asyncio.run(scenario())
    assert admitted == [True, True, True, False, False]
    assert 0 < wait <= 60 and nothing_to_wait == 0
    assert other_user and after_the_window == [True, True]


def test_replicas_sharing_the_database_enforce_one_limit_per_user(database_url: str) -> None:
    """Two replicas' guards admit 40 messages of one user at once: 5 in all pass, as with one replica; the
    commands' count is apart from the questions'."""
    limit = FloodLimit(messages=5, seconds=60)
    guards = [PostgresFloodGuard(database_url, limit, "question") for _ in range(2)]
    commands = PostgresFloodGuard(database_url, limit, "command")

    async def scenario() -> list[bool]:
        return await asyncio.gather(*(guards[n % 2].admit(77) for n in range(40)))

    try:
        assert sum(asyncio.run(scenario())) == 5
        assert asyncio.run(commands.admit(77))
    finally:
        for guard in [*guards, commands]:
            guard.close()


def test_sources_pages_with_very_long_titles_are_one_message_each(
    embedder,  # type: ignore[no-untyped-def]
    fake: FakeBotApi,
    tmp_path: Path,
) -> None:
    """300-character titles full of markup characters, 1 kB addresses: a page is still one message, so ▶ and ◀
    replace all of it."""
    store = Store(tmp_path / "long", embedder)
    Ingester(store).ingest(
        Article(
            id=f"long-{n}",
            title=(f"Story {n} & <R&D> " + "the longest headline ever written " * 10)[:300],
            date=f"2024-01-{n:02d}",
            source="The Long & Winding <Gazette> " * 3,
            url=f"https://example.com/{n}/" + "a" * 1000,
            text=f"Short story number {n} about the harbour.",
        )
        for n in range(1, 8)
    )

    async def scenario() -> tuple[dict, dict, dict]:
        fake.send_text(120, "/sources")
        [first] = await replies(fake, 120)
        first = copy.deepcopy(first)
        fake.press_button(120, first["message_id"], "sources:2")
        await asyncio.to_thread(fake.wait_for, lambda c: c["method"] == "editMessageText", 10)
        second = fake.message(120, first["message_id"])
        fake.press_button(120, first["message_id"], "sources:1")
        await asyncio.to_thread(
            fake.wait_for, lambda c: len([c for c in fake.calls("editMessageText") if c["status"] == 200]) == 2, 10
        )
        return first, second, fake.message(120, first["message_id"])

    first, second, back = run_bot(bot_settings(tmp_path, fake), AnswerEngine(store), scenario)
    assert len(fake.sent_messages(120)) == 1
    assert first["text"].startswith("Latest articles (page 1 of 2, 7 in all)")
    assert [line.split(".")[0] for line in first["text"].splitlines()[1:]] == ["1", "2", "3", "4", "5"]
    assert "1. Story 7 & <R&D> the longest headline" in first["text"] and "…" in first["text"]
    assert second["text"].startswith("Latest articles (page 2 of 2, 7 in all)") and "\n7. Story 1 &" in second["text"]
    assert back["text"] == first["text"]
    assert all(telegram_length(html) <= 4096 for html in sent_html(fake, 120))


def test_the_bots_own_words_follow_the_users_language(engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path) -> None:
    """The words of a message decide; a command with none (/start) goes by the user's Telegram language."""
    french_question = "Combien de trains ont été supprimés le premier jour de la grève de la SNCR ?"

    async def scenario() -> list[dict]:
        start, help_, sources = await converse(fake, 130, "/start", "/help", "/sources", language_code="fr")
        fake.press_button(130, sources["message_id"], "sources:2", language_code="fr")
        await asyncio.to_thread(fake.wait_for, lambda c: c["method"] == "editMessageText", 10)
        for _ in range(4):  # a French question from a user whose Telegram is in English
            fake.send_text(131, french_question)
        await until_sent(fake, 131, lambda sent: len(sent) == 4)
        fake.send_text(666, "Qui a gagné l'élection régionale en Haute-Corvelle ?")
        fake.send_text(667, "/start", language_code="fr-CA")
        fake.send_text(668, "/start")
        return [start, help_, fake.message(130, sources["message_id"])] + [
            (await replies(fake, stranger))[0] for stranger in (666, 667, 668)
        ]

    settings = bot_settings(tmp_path, fake, allowed_users="130,131")
    flood = FloodLimit(messages=3, seconds=60, notice_every=1.0)
    start, help_, sources, stranger, stranger_fr, stranger_en = run_bot(settings, engine, scenario, flood=flood)
    assert start["text"].startswith("Je réponds aux questions") and "Qu'a dit le maire" in start["text"]
    assert help_["text"].startswith("Poser une question") and "/reset oublier cette conversation" in help_["text"]
    assert sources["text"].startswith("Derniers articles (page 2 sur ")
    answers = [m["text"] for m in fake.sent_messages(131)]
    assert sum("412" in answer for answer in answers) == 3
    assert "1 message est resté sans réponse. Attendez " in "".join(answers)
    assert stranger["text"] == stranger_fr["text"] == "Désolé, ce bot est privé."
    assert stranger_en["text"] == "Sorry, this bot is private."
    assert [c["command"] for c in fake.commands("fr")] == [c["command"] for c in fake.commands()]
    assert fake.commands("fr")[0]["description"] == "Ce que fait ce bot"


def test_fifty_chats_five_hundred_questions_each_answered_once_in_its_chat(
    engine: AnswerEngine, fake: FakeBotApi, tmp_path: Path
) -> None:
    """50 chats send 10 questions each, all at once: every question gets exactly one reply, in its own chat,
    replying to it, with the answer to that question."""
    questions = {
        "Which club did Yanis Koné join?": "Lindenau",
        "How many trains were cancelled on the first day of the SNCR strike?": "412",
        "What is the capital of Australia?": "The articles I have do not say.",
        "When did the Port of Kestrel reopen?": "6 a.m.",
        "How much is the budget for the Orlen harbour bridge?": "4.2 million",
    }
    texts = list(questions)
    per_chat = 10
    chats = [1000 + i for i in range(50)]

    async def scenario() -> dict[tuple[int, int], str]:
        asked = {}
        for round_ in range(per_chat):
            for chat in chats:
                question = texts[(chat + round_) % len(texts)]
                asked[(chat, fake.send_text(chat, question))] = question
        for chat in chats:
            await replies(fake, chat, per_chat, timeout=300)
        return asked

    asked = run_bot(bot_settings(tmp_path, fake), engine, scenario, flood=FloodLimit(messages=1000))
    answered = []
    for chat in chats:
        sent = fake.sent_messages(chat)
        assert len(sent) == per_chat
        for reply in sent:
            key = (reply["chat"]["id"], reply["reply_to_message"]["message_id"])
            assert questions[asked[key]] in reply["text"]
            answered.append(key)
    assert sorted(answered) == sorted(asked), "every question answered once, none twice, none in another chat"


# -- start-up, logs ------------------------------------------------------------------------------------


def test_without_a_token_the_bot_says_what_to_set(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["bot"])
    assert result.exit_code == 1
    assert "set TELEGRAM_TOKEN" in result.output and len(result.output.strip().splitlines()) == 1


def test_bad_settings_are_refused_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None, NEWSDESK_DATA_DIR=str(tmp_path), TELEGRAM_TOKEN=TOKEN)  # type: ignore[call-arg]
    with pytest.raises(UserError, match="secret token"):
        run_telegram_bot(settings, "https://bot.example.com/hook", secret_token="not secret!")
    monkeypatch.setenv("NEWSDESK_ALLOWED_USERS", "123, bob")
    with pytest.raises(UserError, match="NEWSDESK_ALLOWED_USERS='123, bob' \\(from the environment\\): 'bob' is not a"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("environment", "options", "expected"),
    [
        (
            {"NEWSDESK_DATABASE_URL": "postgresql://newsdesk@db.example/newsdesk"},
            [],
            "webhook replicas are possible with NEWSDESK_DATABASE_URL set, and they must share one secret: set"
            " TELEGRAM_WEBHOOK_SECRET",
        ),
        ({}, ["--no-set-webhook"], "--no-set-webhook serves the webhook another process registered: set"),
        (
            {"TELEGRAM_WEBHOOK_SECRET": "not secret!"},
            [],
            "TELEGRAM_WEBHOOK_SECRET=<hidden> (from the environment): must be 1-256 letters, digits, _ or -",
        ),
    ],
)
def test_webhook_replicas_need_one_fixed_secret(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], options: list[str], expected: str
) -> None:
    """Checked before anything starts (no database is reached, no model loads): one line naming the setting."""
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["bot", "--webhook", "https://bot.example.com/hook", *options])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert expected in result.output and "not secret!" not in result.output


def test_no_set_webhook_is_for_webhook_replicas(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    result = CliRunner().invoke(cli, ["bot", "--no-set-webhook"])
    assert result.exit_code == 1 and "--no-set-webhook is for a --webhook replica" in result.output


def test_the_token_and_api_key_never_reach_the_logs() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets({"token": TOKEN, "api-key": "sk-secret-42", "unset": ""}))
    logger = logging.getLogger("test_telegram.redact")
    logger.addHandler(handler)
    try:
        logger.error("POST https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TOKEN}/sendMessage")
        except ConnectionError:
            logger.exception("send failed")
        logger.warning("LLM said: invalid key %s", "sk-secret-42")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert TOKEN not in output and output.count("<token>") == 2
    assert "sk-secret-42" not in output and "<api-key>" in output


@pytest.fixture(params=["sqlite", "postgres"])
def new_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ChatMemory]:
    """Makes memories over one store, as each process (a bot, a replica) would open it: the SQLite file of one
    host, or the database replicas share."""
    if request.param == "sqlite":
        return lambda: SqliteChatMemory(tmp_path / CHATS_FILE)
    url = request.getfixturevalue("database_url")
    return lambda: PostgresChatMemory(url)


def test_two_memories_over_one_store_keep_each_others_turns(new_memory: Callable[[], ChatMemory]) -> None:
    """A turn is added to what the store holds, not to a copy read earlier: two processes (here two memories)
    appending to one chat in turn lose nothing, and the chat keeps its MAX_TURNS most recent turns."""
    first, second = new_memory(), new_memory()
    for number in range(MAX_TURNS + 2):
        (first, second)[number % 2].append(9, Turn(f"q{number}", f"q{number}", "a", False))
    assert [turn.question for turn in first.get(9).turns] == [f"q{n}" for n in range(2, MAX_TURNS + 2)]
    assert second.get(9).turns == first.get(9).turns and not second.get(10).turns
    second.clear(9)
    assert not first.get(9).turns
    first.close()
    second.close()


def test_the_database_keeps_only_each_chats_latest_turns(database_url: str) -> None:
    """Older turns are deleted as new ones come, not just left unread: a chat's rows never pile up."""
    from vectorstore.database import connect

    memory = PostgresChatMemory(database_url)
    for number in range(3 * MAX_TURNS):
        memory.append(9, Turn(f"q{number}", "q", "a", False))
    memory.append(10, Turn("other chat", "q", "a", False))
    memory.close()
    with connect(database_url) as db:
        rows = db.execute("SELECT chat_id, count(*) FROM chat_turns GROUP BY chat_id ORDER BY chat_id").fetchall()
    assert rows == [(9, MAX_TURNS), (10, 1)]


def test_turns_appended_at_the_same_moment_are_both_kept(new_memory: Callable[[], ChatMemory]) -> None:
    """Two replicas add a turn to one chat at the same moment, 20 times: after each round both turns are the
    chat's two latest (a memory that read the conversation, added its turn and wrote it back would lose one)."""
    memories = [new_memory(), new_memory()]
    start = threading.Barrier(2)
    rounds_seen: list[list[str]] = []

    def add(side: int, number: int) -> None:
        start.wait()
        memories[side].append(9, Turn(f"{side}-{number}", "q", "a", False))

    with ThreadPoolExecutor(2) as pool:
        for number in range(20):
            list(pool.map(add, [0, 1], [number, number]))
            rounds_seen.append(sorted(turn.question for turn in list(memories[1].get(9).turns)[-2:]))
    assert rounds_seen == [[f"0-{n}", f"1-{n}"] for n in range(20)]
    for memory in memories:
        memory.close()


def test_conversations_file_is_plain_sqlite(tmp_path: Path) -> None:
    memory = SqliteChatMemory(tmp_path / CHATS_FILE)
    memory.clear(5)
    memory.close()
    with sqlite3.connect(tmp_path / CHATS_FILE) as db:
        assert db.execute("SELECT chat_id, turns FROM conversations").fetchall() == [(5, "[]")]


# -- split_message properties --------------------------------------------------------------------------

_PLAIN = st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40), max_size=12).map(
    lambda words: " ".join(escape(w, quote=False) for w in words)
)
_SEPARATOR = st.sampled_from([" ", " ", ". ", "! ", "\n", "\n\n", "\n\n\n", ""])


@st.composite
def _html(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["text", "text", "b", "i", "a", "long"] if depth < 2 else ["text"]))
        if kind == "text":
            pieces.append(draw(_PLAIN))
        elif kind == "long":
            pieces.append("w" * draw(st.integers(50, 700)))
        elif kind == "a":
            pieces.append(
                f'<a href="https://ex.com/{draw(st.integers(0, 99))}?a=1&amp;b=2">{draw(_html(depth + 1))}</a>'
            )
        else:
            pieces.append(f"<{kind}>{draw(_html(depth + 1))}</{kind}>")
        pieces.append(draw(_SEPARATOR))
    return "".join(pieces)


def _balanced(part: str) -> bool:
    stack: list[str] = []
    for closing, name in re.findall(r"<(/?)([a-z]+)[^>]*>", part):
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def _visible(part: str) -> str:
    return re.sub(r"\s", "", re.sub(r"<[^>]*>", "", part))


@settings(max_examples=200, deadline=None)
@given(st.lists(_html(), min_size=1, max_size=8).map("\n\n".join), st.integers(200, 1200))
def test_split_message_properties(html_text: str, limit: int) -> None:
    parts = split_message(html_text, limit)
    assert all(telegram_length(p) <= limit for p in parts)
    assert all(_balanced(p) for p in parts)
    assert all(_visible(p) for p in parts)  # no blank message
    assert all(not re.search(r"&(?!(?:amp|lt|gt|quot);)", p) for p in parts)  # never inside an entity
    assert "".join(_visible(p) for p in parts) == _visible(html_text)


@settings(max_examples=50, deadline=None)
@given(st.lists(_PLAIN, min_size=1, max_size=400).map(" ".join))
def test_split_message_at_telegram_size_keeps_whole_words(html_text: str) -> None:
    parts = split_message(html_text)
    assert all(telegram_length(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == html_text.split()


@pytest.mark.slow
def test_webhook_mode_as_a_process(fake: FakeBotApi, tmp_path: Path) -> None:
    """`newsdesk bot --webhook`: it registers the webhook with the secret of TELEGRAM_WEBHOOK_SECRET, answers
    updates posted with the secret, and refuses posts without it; the secret never reaches its logs, even at DEBUG
    (python-telegram-bot logs setWebhook's parameters)."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "NEWSDESK_DATA_DIR": str(tmp_path / "data"),
        "TELEGRAM_TOKEN": fake.token,
        "TELEGRAM_BASE_URL": fake.base_url,
        "TELEGRAM_WEBHOOK_SECRET": "s3cret-of-the-replicas",
    }
    subprocess.run([sys.executable, "-m", "ingest", str(EXAMPLES)], env=env, check=True, capture_output=True)
    hook = f"http://127.0.0.1:{port}/hook"
    arguments = ["newsdesk", "bot", "--webhook", hook, "--listen", "127.0.0.1", "--port", str(port)]
    launch = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr); "
        f"sys.argv = {arguments!r}; from newsdesk.cli import main; main()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launch],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        registered = fake.wait_for(lambda c: c["method"] == "setWebhook", timeout=90)
        assert registered["params"]["url"] == hook
        assert registered["params"]["secret_token"] == "s3cret-of-the-replicas"

        def post(update: dict, secret: str) -> int:
            request = urllib.request.Request(
                hook,
                data=json.dumps(update).encode(),
                headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
            )
            for _ in range(50):  # the listener starts right after setWebhook
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        return response.status
                except urllib.error.HTTPError as error:
                    return error.code
                except urllib.error.URLError:
                    time.sleep(0.2)
            raise AssertionError("the webhook listener never came up")

        message = {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": 4242, "type": "private"},
            "from": {"id": 4242, "is_bot": False, "first_name": "W"},
            "text": "Who won the regional election in Haute-Corvelle?",
        }
        assert post({"update_id": 1, "message": message}, "wrong") == 403
        assert post({"update_id": 2, "message": message}, "s3cret-of-the-replicas") == 200
        [reply] = fake.wait_for_messages(4242, 1, timeout=60)
        assert "Guérin" in reply["text"]
        assert len(fake.sent_messages(4242)) == 1
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    logs = errors.decode()
    assert fake.token not in logs and "s3cret-of-the-replicas" not in logs and "<webhook-secret>" in logs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post_update(address: str, update: dict, secret: str | None) -> int:
    """POST an update to a webhook listener as Telegram would (with `secret`, unless None); the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(address, json.dumps(update).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_two_webhook_replicas_share_one_database(
    hashing_embedder: NewsEmbeddings, database_url: str, fake: FakeBotApi, tmp_path: Path
) -> None:
    """Two Applications behind one webhook URL, as two `newsdesk bot --webhook` replicas on two hosts, the second
    with --no-set-webhook, sharing one database; the fake Bot API delivers updates to them in turn, as a load
    balancer would. A follow-up that reaches the other replica is rewritten with the first one's turn; one
    user's flood limit holds across both; a call without the secret or with a wrong one is refused; only the
    first replica registers the webhook, and neither deletes it when it stops. (One engine serves both here, with
    the hashing embedder, under which the answers are refusals: the articles are not the point, the catalog's
    sharing is tested with the catalog, and the follow-up's rewritten search shows what the replica knew.)"""
    store = Store(tmp_path / "store", hashing_embedder)
    Ingester(store).ingest(load_paths([EXAMPLES], 10**7))
    engine = AnswerEngine(store)
    secret = "replica-secret_42"
    shared = {"database_url": SecretStr(database_url), "telegram_webhook_secret": SecretStr(secret)}
    hosts = [bot_settings(tmp_path / host, fake).model_copy(update=shared) for host in ("host-a", "host-b")]
    flood = FloodLimit(messages=2, seconds=60, notice_every=1.0)
    ports = [free_port(), free_port()]
    addresses = [f"http://127.0.0.1:{port}/hook" for port in ports]
    hooks = [
        Webhook("https://bot.example.com/hook", secret, "127.0.0.1", ports[0]),
        Webhook("https://bot.example.com/hook", secret, "127.0.0.1", ports[1], register=False),
    ]
    question, follow_up = "Which club did Yanis Koné join?", "And until when is his contract?"
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": 304, "type": "private"},
        "from": {"id": 304, "is_bot": False, "first_name": "W"},
        "text": question,
    }

    async def scenario() -> tuple[list[dict], list[dict], list[int]]:
        async with contextlib.AsyncExitStack() as replicas:
            for settings, hook in zip(hosts, hooks, strict=True):  # each with its own data folder, as on two hosts
                app = telegram_application(settings, engine, flood)
                await replicas.enter_async_context(webhook_serving(app, hook))
            fake.deliver_to(*addresses)
            conversation = await converse(fake, 301, question, follow_up)  # to the first replica, then the second
            fake.send_text(302, follow_up)  # the same follow-up in a new chat, to the first replica
            await replies(fake, 302)
            for _ in range(4):  # questions 1 and 3 reach the second replica, 2 and 4 the first
                fake.send_text(303, question)
            flooded = await until_sent(fake, 303, lambda sent: sum(n for n, _ in not_answered(sent)) >= 2)
            statuses = [
                await asyncio.to_thread(post_update, addresses[1], {"update_id": 900, "message": message}, None),
                await asyncio.to_thread(post_update, addresses[1], {"update_id": 901, "message": message}, "wrong"),
                await asyncio.to_thread(post_update, addresses[1], {"update_id": 902, "message": message}, secret),
            ]
            await replies(fake, 304)
        return conversation, flooded, statuses

    (first, second), flooded, statuses = asyncio.run(scenario())
    delivered = fake.deliveries()
    assert [d["address"] for d in delivered[:2]] == addresses and all(d["status"] == 200 for d in delivered)
    assert first["reply_to_message"]["text"] == question and second["reply_to_message"]["text"] == follow_up
    memory = PostgresChatMemory(database_url)
    [asked, followed] = memory.get(301).turns
    [on_its_own] = memory.get(302).turns
    memory.close()
    assert asked.search_query == question and followed.search_query == f"{follow_up} ({question})"
    assert on_its_own.search_query == follow_up  # the rewrite came from the chat's turn, not from the words
    answered = [m for m in flooded if not not_answered([m])]
    assert len(answered) == 2 and sum(n for n, _ in not_answered(flooded)) == 2
    assert statuses == [403, 403, 200] and len(fake.sent_messages(304)) == 1
    [registered] = fake.calls("setWebhook")
    assert registered["params"]["url"] == "https://bot.example.com/hook"
    assert registered["params"]["secret_token"] == secret
    assert fake.calls("deleteWebhook") == []


LATE_NEWS = """title Verdal opens a night train to the coast
date 2024-12-20
source Verdal Courier

The town of Verdal opened a night train to the coast on Friday. The first train left at 22:40 with
312 passengers on board, the operator said.
"""


@pytest.mark.parametrize("mode", ["embedded", "server"])
def test_running_bot_answers_from_an_article_ingested_by_another_process(
    embedder,  # type: ignore[no-untyped-def]
    fake: FakeBotApi,
    tmp_path: Path,
    mode: str,
) -> None:
    """The embedded Chroma client of a long-running bot does not see another process's writes by itself: the
    catalog's generation counter tells the engine to reopen it before the next question. A Chroma server sees
    them at once; the catalog (keywords, metadata) is shared through the data folder either way."""
    import os
    import subprocess
    import sys

    from tests.conftest import server_port

    data_dir = tmp_path / "live"
    env = {**os.environ, "NEWSDESK_DATA_DIR": str(data_dir)}
    env.pop("CHROMA_HOST", None)
    if mode == "embedded":
        store = Store(data_dir, embedder)
    else:
        if (port := server_port()) is None:
            pytest.skip("no Chroma server: scripts/test starts one and sets CHROMA_TEST_PORT")
        collection = f"live{os.getpid()}"
        store = Store(data_dir, embedder, collection, chroma_host="127.0.0.1", chroma_port=port)
        env |= {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port), "NEWSDESK_COLLECTION": collection}
    Ingester(store).ingest(load_paths([EXAMPLES], 10**7))
    live_engine = AnswerEngine(store)
    article = tmp_path / "verdal.txt"
    article.write_text(LATE_NEWS, encoding="utf-8")

    question = "How many passengers were on the first Verdal night train?"

    def reply_to(sent: list[dict], message_id: int) -> dict | None:
        return next((m for m in sent if m.get("reply_to_message", {}).get("message_id") == message_id), None)

    async def scenario() -> tuple[dict | None, dict | None]:
        asked_before = fake.send_text(601, question)
        await replies(fake, 601, 1)
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "ingest", str(article)], env=env, check=True, capture_output=True
        )
        asked_after = fake.send_text(601, question)
        # the answer quotes its question, so the reply to the second one is told apart from any other message
        sent = await until_sent(fake, 601, lambda sent: reply_to(sent, asked_after) is not None)
        return reply_to(sent, asked_before), reply_to(sent, asked_after)

    before, after = run_bot(bot_settings(tmp_path, fake), live_engine, scenario)
    shown = [(m.get("reply_to_message", {}).get("message_id"), m["text"]) for m in fake.sent_messages(601)]
    assert before is not None and "312" not in before["text"], shown
    assert after is not None and "312" in after["text"] and "Verdal opens a night train" in after["text"], shown


def test_bot_polls_feeds_and_answers_from_a_new_entry(
    embedder,  # type: ignore[no-untyped-def]
    fake: FakeBotApi,
    tmp_path: Path,
) -> None:
    """`newsdesk bot` with NEWSDESK_FEEDS: the job queue polls the feed, and an entry that appears while the bot
    runs is answered from, with no restart."""
    from tests.fakes import pages

    live_engine = AnswerEngine(Store(tmp_path / "feeds", embedder))
    question = "What new line did the Sella port board approve?"
    pages.FEED_ITEMS[:] = []
    fetched_before = pages.HITS.get("/second", 0)
    with serve_pages() as site:
        settings = bot_settings(tmp_path / "feeds", fake).model_copy(
            update={"feed_urls": [f"{site}/feed.xml"], "feed_interval": 1.0}
        )

        async def scenario() -> list[dict]:
            fake.send_text(701, question)
            [before] = await replies(fake, 701, 1)
            pages.FEED_ITEMS.append("/second")
            deadline = time.monotonic() + 60
            answers = [before]
            while "ferry" not in answers[-1]["text"] and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                fake.send_text(701, question)
                answers = await replies(fake, 701, len(answers) + 1)
            return answers

        answers = run_bot(settings, live_engine, scenario)
    assert "ferry" not in answers[0]["text"]
    assert "new ferry line" in answers[-1]["text"] and "sella-ferry" in " ".join(links(answers[-1]))
    assert pages.HITS["/second"] == fetched_before + 1, "an entry is fetched once, however often the feed is polled"


def writing_rows(data_dir: Path) -> set[tuple[str, str]]:
    """(id, content hash) of the documents the catalog has marked `writing`: step 1 of the write protocol is
    committed and step 3 is not."""
    catalog = next(data_dir.glob("*.catalog.sqlite3"), None)  # connecting would create it
    if catalog is None:
        return set()
    with contextlib.closing(sqlite3.connect(catalog, timeout=5)) as db:
        try:
            return set(db.execute("SELECT id, content_hash FROM documents WHERE state = 'writing'"))
        except sqlite3.OperationalError:  # the file is there a moment before its tables
            return set()


def test_two_ingests_and_a_running_bot_at_once(
    embedder,  # type: ignore[no-untyped-def]
    fake: FakeBotApi,
    tmp_path: Path,
) -> None:
    """Two `python -m ingest` processes write the same folder of articles, plus one article each, while the bot
    answers a question about an article they do not touch, over and over: every answer is right (no apology, no
    refusal), some were being answered while a write was half done, both new articles are found afterwards, and
    Chroma and the catalog agree on every chunk."""
    import os
    import subprocess
    import sys

    data_dir = tmp_path / "busy"
    store = Store(data_dir, embedder)
    Ingester(store).ingest(
        [Article(id="orvin-ferries", title="Lake Orvin gets electric ferries", text=UPLOAD.decode().split("---")[-1])]
    )
    live_engine = AnswerEngine(store)
    extras = []
    for number, town in enumerate(("Orlen", "Verdal"), 1):
        extra = tmp_path / town.lower()
        extra.mkdir()
        (extra / "library.txt").write_text(
            f"title {town} opens a library\ndate 2024-09-0{number}\n\nThe town of {town} opened its new library"
            f" on Monday. It holds {number * 20} thousand books, the mayor of {town} said.\n",
            encoding="utf-8",
        )
        extras.append(extra)
    env = {**os.environ, "NEWSDESK_DATA_DIR": str(data_dir)}
    questions: list[tuple[float, float]] = []  # when each question was sent and answered
    writes: list[float] = []  # moments a document was seen half-written

    async def watch_writes() -> None:
        while True:
            if await asyncio.to_thread(writing_rows, data_dir):
                writes.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def scenario() -> list[dict]:
        watcher = asyncio.create_task(watch_writes())
        ingests = [
            subprocess.Popen(
                [sys.executable, "-m", "ingest", "--json", str(EXAMPLES), str(extra)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            for extra in extras
        ]  # fmt: skip
        while any(p.poll() is None for p in ingests):
            sent = time.monotonic()
            fake.send_text(901, "How many electric ferries will Lake Orvin buy?")
            await replies(fake, 901, len(questions) + 1, timeout=60)
            questions.append((sent, time.monotonic()))
        watcher.cancel()
        reports = [json.loads(p.communicate()[0]) for p in ingests]
        assert [p.returncode for p in ingests] == [0, 0] and all(r["failed"] == 0 for r in reports)
        fake.send_text(902, "How many books does the new Orlen library hold?")
        fake.send_text(903, "How many books does the new Verdal library hold?")
        return [*(await replies(fake, 902)), *(await replies(fake, 903))]

    orlen, verdal = run_bot(bot_settings(tmp_path, fake), live_engine, scenario, flood=FloodLimit(messages=1000))
    assert "20 thousand" in orlen["text"] and "40 thousand" in verdal["text"]
    answers = [m["text"] for m in fake.sent_messages(901)]
    wrong = [a for a in answers if not ("17" in a and "Lake Orvin gets electric" in a)]
    assert len(answers) == len(questions) and not wrong, wrong[:3]
    during = [(sent, answered) for sent, answered in questions if any(sent <= t <= answered for t in writes)]
    assert writes and during, f"no question overlapped a write ({len(questions)} asked, {len(writes)} write samples)"
    assert store.vectors.ids() == store.catalog.chunk_ids()
    assert store.catalog.count_documents() == len(store.documents()) >= 10
