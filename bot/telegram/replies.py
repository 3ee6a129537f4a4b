"""How the bot speaks in a chat, for the guard and every handler alike: HTML replies cut to Telegram's size,
"typing…" while it works, and the language of its own words.

Parse mode, quoting and link previews are the Application's defaults (`app.DEFAULTS`), so a reply here is
just its text and buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from html import escape

from telegram import InlineKeyboardMarkup, Message
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.render import split_message
from bot.texts import reply_language
from text.language import detect_language

TYPING_EVERY = 4.0  # Telegram shows "typing…" for about 5 s


async def reply(message: Message, html_text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Send HTML as replies to `message`, split to Telegram's size; buttons go on the last part."""
    parts = split_message(html_text)
    for i, part in enumerate(parts):
        await message.reply_text(part, reply_markup=keyboard if i == len(parts) - 1 else None)


async def reply_plain(message: Message, plain: str) -> None:
    """Send our own words (or an error naming the user's input) as a reply, escaped."""
    await reply(message, escape(plain))


@contextlib.asynccontextmanager
async def typing(message: Message) -> AsyncIterator[None]:
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


def user_language(language_code: str | None) -> str:
    """The bot's language for a Telegram user's `language_code` ("fr", "fr-CA"; often absent)."""
    return reply_language((language_code or "").split("-")[0].lower())


def language(message: Message, words: str = "") -> str:
    """The language of the bot's own words in reply to `message`: that of the user's words when they are long
    enough to tell, else the user's Telegram language (a bare /start has no words)."""
    detected = detect_language(words) if words.strip() else ""
    if detected:
        return reply_language(detected)
    return user_language(message.from_user.language_code if message.from_user else None)
