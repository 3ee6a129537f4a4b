"""Dates as articles and feeds write them, turned into ISO text and into the YYYYMMDD numbers range filters
compare."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime

_ISO_PREFIX = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")


def normalise_date(value: str) -> str:
    """ISO text (YYYY, YYYY-MM or YYYY-MM-DD) from the date shapes articles and feeds use; '' if unknown."""
    value = (value or "").strip()
    if not value:
        return ""
    match = _DMY.match(value)
    if match:
        day, month, year = (int(g) for g in match.groups())
        return _iso(year, month, day)
    match = _ISO_PREFIX.match(value)
    if match:
        year, month, day = (int(g) if g else 0 for g in match.groups())
        return _iso(year, month, day)
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return ""
    return parsed.date().isoformat()


def _iso(year: int, month: int, day: int) -> str:
    try:
        datetime(year, month or 1, day or 1)
    except ValueError:
        return f"{year:04d}" if 1000 <= year <= 9999 else ""
    if not month:
        return f"{year:04d}"
    return f"{year:04d}-{month:02d}" if not day else f"{year:04d}-{month:02d}-{day:02d}"


def date_to_int(date: str) -> int:
    """YYYYMMDD for range filters; a partial date counts as its first day; 0 when unknown."""
    if not date:
        return 0
    parts = [int(p) for p in date.split("-")]
    parts += [1] * (3 - len(parts))
    return parts[0] * 10000 + parts[1] * 100 + parts[2]
