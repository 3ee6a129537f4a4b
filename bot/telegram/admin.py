"""Admins' writes: a file sent in a private chat, /ingest URL..., and the feeds polled in the background.

The bot does not ingest by itself: it is given an `ArticleWriter` (and the `Feeds`, when there are any) by
whoever builds it, and reports what they did. Writes go one at a time, in worker threads, so questions are
answered meanwhile. The guard lets only admins' uploads and /ingest reach these handlers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Protocol

from telegram import Message, Update
from telegram.ext import CommandHandler, ContextTypes, JobQueue, MessageHandler, filters

from bot.telegram.guards import FRESH, Route, Rule, admitted_message
from bot.telegram.replies import language, reply, reply_plain, typing
from bot.texts import text

log = logging.getLogger(__name__)

ERRORS_SHOWN = 5


@dataclass(frozen=True)
class WriteReport:
    """What a write did, as the admin is told: a one-line summary, and each input that failed and why."""

    summary: str
    errors: list[str]


class ArticleWriter(Protocol):
    """Adds articles to the store the engine answers from. Calls block; the bot makes them from worker threads."""

    suffixes: tuple[str, ...]  # the file types it reads, e.g. ".md"

    def add_file(self, data: bytes, suffix: str, name: str) -> WriteReport:
        """The articles of an uploaded file; `name` is the name the user gave it, a label and never a path."""
        ...

    def add_pages(self, urls: list[str]) -> WriteReport:
        """The articles of web pages, fetched."""
        ...


class Feeds(Protocol):
    """RSS and Atom feeds to watch. Calls block."""

    def poll(self) -> object:
        """Ingest the new entries of the feeds that are due."""
        ...

    def seconds_to_next(self) -> float: ...


class AdminHandlers:
    """Uploads (files up to `max_upload` bytes) and /ingest, through `writer`; the feeds, if any."""

    def __init__(self, writer: ArticleWriter, max_upload: int, feeds: Feeds | None = None) -> None:
        self.writer = writer
        self.max_upload = max_upload
        self.feeds = feeds
        self._write_lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            (CommandHandler("ingest", self.ingest_url, filters=FRESH), Rule("question", admins_only=True)),
            (
                MessageHandler(FRESH & filters.ChatType.PRIVATE & filters.Document.ALL, self.document),
                Rule("question", _caption, admins_only=True),
            ),
        ]

    def help_text(self, lang: str) -> str:
        """What /help tells admins about adding articles."""
        suffixes = ", ".join(self.writer.suffixes)
        return text("tg_admin_help", lang).format(suffixes=suffixes, megabytes=self.max_upload // 1_000_000)

    def start_feeds(self, job_queue: JobQueue | None) -> None:
        """Poll the feeds, if there are any, from now on (without a job queue there is nothing to poll with)."""
        if self.feeds is not None and job_queue is not None:
            job_queue.run_once(self.poll_feeds, 0, name="feeds")

    async def poll_feeds(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Job queue: ingest the feeds' new entries in a worker thread (questions are answered meanwhile), then
        come back when the next feed is due."""
        assert self.feeds is not None and context.job_queue is not None
        try:
            async with self._write_lock:
                await asyncio.to_thread(self.feeds.poll)
        except Exception:
            log.exception("polling the feeds failed; trying again later")
        finally:
            context.job_queue.run_once(self.poll_feeds, self.feeds.seconds_to_next(), name="feeds")

    async def ingest_url(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ingest URL...: fetch the pages, ingest them and report what was added."""
        message = admitted_message(update)
        urls = [arg for arg in context.args or [] if arg.startswith(("http://", "https://"))]
        if not urls:
            await reply_plain(message, text("tg_url_ingest", language(message)))
            return
        async with self._write_lock, typing(message):
            report = await asyncio.to_thread(self.writer.add_pages, urls)
        await _report(message, report)

    async def document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A file in a private chat: ingest its articles and report what was added."""
        message = admitted_message(update)
        document = message.document
        assert document is not None  # the handler's filter
        lang = language(message, _caption(message))
        suffix = Path(document.file_name or "").suffix.lower()
        if suffix not in self.writer.suffixes:
            await reply_plain(message, text("tg_file_type", lang).format(suffixes=", ".join(self.writer.suffixes)))
            return
        too_large = text("tg_file_size", lang).format(megabytes=self.max_upload // 1_000_000)
        if (document.file_size or 0) > self.max_upload:
            await reply_plain(message, too_large)
            return
        async with self._write_lock, typing(message):
            data = bytes(await (await document.get_file()).download_as_bytearray())
            if len(data) > self.max_upload:
                await reply_plain(message, too_large)
                return
            name = document.file_name or f"file{suffix}"
            report = await asyncio.to_thread(self.writer.add_file, data, suffix, name)
        await _report(message, report)


def _caption(message: Message) -> str:
    return message.caption or ""


async def _report(message: Message, report: WriteReport) -> None:
    await reply(message, escape("\n".join([report.summary, *report.errors[:ERRORS_SHOWN]])))
