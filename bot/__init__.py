"""Conversations: the answering engine, the Telegram bot and the REPL."""
