"""Who may use the bot, and how often: the allowlist, the admins, and the flood limits.

They are applied by one `TypeHandler` in a group before the handlers' (python-telegram-bot's idiom): an update
it refuses raises `ApplicationHandlerStop` and reaches no handler, so no handler repeats the checks. The guard
looks up which handler will take the update and that handler's `Rule`: what an update costs and who may send
it. An update no handler takes (an edit, a channel post, group chatter not addressed to the bot) is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from math import ceil
from typing import Literal

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, BaseHandler, ContextTypes, TypeHandler, filters

from bot.telegram.flood import FloodGuards, FloodLimit, LocalFloodGuard
from bot.telegram.replies import language, reply_plain, user_language
from bot.texts import text

log = logging.getLogger(__name__)

GUARD_GROUP = -1  # before the handlers' default group 0
FRESH = filters.UpdateType.MESSAGE  # the handlers take new messages only: edits and channel posts are left alone
NOTICE_GATHER = 1.0  # a burst of messages over the limit is reported in one notice


@dataclass(frozen=True)
class Access:
    """Who may talk to the bot: with no allowlist everyone; else listed users anywhere and anyone in a listed
    chat. Admins are always let in, and alone may add articles. Read from the settings at start and never changed
    at run time, so replicas started with the same settings agree without sharing anything."""

    users: frozenset[int] = frozenset()
    chats: frozenset[int] = frozenset()
    admins: frozenset[int] = frozenset()

    def allows(self, user_id: int, chat_id: int) -> bool:
        if not self.users and not self.chats:
            return True
        return user_id in self.users or user_id in self.admins or chat_id in self.chats

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins


def no_words(message: Message) -> str:
    return ""


@dataclass(frozen=True)
class Rule:
    """How the guard treats the updates one handler takes.

    `kind`: a message counted as a "question" or a "command" (each has its own flood count), a "button" press
    (checked for access only), or "open" (not checked: a stale button, whose handler only stops the client's
    spinner). `words`: the user's own words in the message, whose language a refusal follows. `admins_only`:
    everyone else is told that this is for admins.
    """

    kind: Literal["question", "command", "button", "open"]
    words: Callable[[Message], str] = no_words
    admins_only: bool = False


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


Route = tuple[BaseHandler, Rule]  # a handler and how the guard treats what it takes


class Guard:
    """The access and flood checks, in front of every handler. The counts are kept by `flood_guards` (this
    process's memory unless given: the database for replicas); the notices are sent by the replica that dropped
    the message, so a user flooding two replicas may hear from each."""

    def __init__(self, access: Access, flood: FloodLimit, flood_guards: FloodGuards | None = None) -> None:
        self.access = access
        make = flood_guards or (lambda kind: LocalFloodGuard(flood))
        self.floods = {"question": make("question"), "command": make("command")}
        self.unanswered = UnansweredNotices(flood.notice_every, reply_plain)
        self._routes: list[Route] = []

    def install(self, app: Application, routes: list[Route]) -> None:
        """Add the handlers in the order given (the first that takes an update handles it) behind the guard."""
        app.add_handler(TypeHandler(Update, self.check), group=GUARD_GROUP)
        for handler, _ in routes:
            app.add_handler(handler)
        self._routes = routes

    async def check(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Let the update through, or stop it. A failure while refusing stops it too: python-telegram-bot would
        otherwise report the error and go on to the handlers."""
        rule = next((rule for handler, rule in self._routes if _takes(handler, update)), None)
        if rule is None or rule.kind == "open":
            return
        try:
            admitted = await self._admits(update, rule)
        except Exception as exc:
            await context.application.process_error(update, exc)
            raise ApplicationHandlerStop from None
        if not admitted:
            raise ApplicationHandlerStop

    async def _admits(self, update: Update, rule: Rule) -> bool:
        """True for an update its handler may have. A message over the flood limit for its kind is counted into
        a "not answered" notice; a sender not allowed gets one polite line, a non-admin one for admins' work."""
        if rule.kind == "button":
            query = update.callback_query
            assert query is not None  # a button handler took it
            chat_id = query.message.chat.id if query.message else query.from_user.id
            if self.access.allows(query.from_user.id, chat_id):
                return True
            await query.answer(text("tg_not_allowed", user_language(query.from_user.language_code)))
            return False
        message, user = update.message, update.effective_user
        if message is None or user is None:
            return False
        words = rule.words(message)
        flood = self.floods[rule.kind]
        if not await flood.admit(user.id):
            self.unanswered.dropped(user.id, message, language(message, words), await flood.wait(user.id))
            return False
        if not self.access.allows(user.id, message.chat_id):
            log.info("refused user %s in chat %s", user.id, message.chat_id)
            await reply_plain(message, text("tg_not_allowed", language(message, words)))
            return False
        if rule.admins_only and not self.access.is_admin(user.id):
            log.info("refused a non-admin's upload or /ingest in chat %s", message.chat_id)
            await reply_plain(message, text("tg_admins_only", language(message)))
            return False
        return True

    async def close(self) -> None:
        await self.unanswered.close()
        for flood in self.floods.values():
            flood.close()


def _takes(handler: BaseHandler, update: Update) -> bool:
    """Whether `handler` would handle `update`, by python-telegram-bot's own test (only None and False mean no)."""
    check = handler.check_update(update)
    return check is not None and check is not False


def admitted_message(update: Update) -> Message:
    """The message of an update that a message handler took (they take new messages only)."""
    assert update.message is not None
    return update.message
