"""The one error type for mistakes a user can fix (a setting, an input, a server to start, a disk to free).

It lives in vectorstore, which every package above `text` imports. The CLI turns a UserError into one line and
lets every other exception show its traceback: a ValueError from our own code is a bug, not a user's mistake.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can act on; the message is one line that names the culprit and what to do."""


class StoreUnavailable(UserError):
    """A server the store needs (Chroma, the database) cannot be reached: the bot says "try again later"."""
