"""Errors shared across packages, so every command turns them into one line the same way."""


class UserError(Exception):
    """Something the user can fix (a setting, a file, a server), said in one line that names it."""
