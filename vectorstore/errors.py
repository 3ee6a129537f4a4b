"""The one family of errors a user can act on: the CLI shows them as one line, anything else is a bug."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a setting, a file, a server), said in one line that names it."""
