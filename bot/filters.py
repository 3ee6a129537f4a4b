"""Search filters written in a question, for the bot's `/ask --since 2024-06-01 question` (the same options as
`newsdesk ask`)."""

from __future__ import annotations

import re

from vectorstore.errors import UserError
from vectorstore.records import SearchFilters, filter_date

_OPTION = re.compile(r'\s*--(since|until|source)(?:=|\s+)("[^"]*"|“[^”]*”|\S+)')
_DANGLING = re.compile(r"\s*--(since|until|source)\s*$")


def split_filters(text: str) -> tuple[str, SearchFilters | None]:
    """The question and the filters given before it; UserError naming a bad date or an option without value."""
    values: dict[str, str] = {}
    rest = text
    while match := _OPTION.match(rest):
        values[match.group(1)] = match.group(2).strip('"“”')
        rest = rest[match.end() :]
    if dangling := _DANGLING.match(rest):
        raise UserError(f"--{dangling.group(1)} needs a value, e.g. /ask --since 2024-06-01 your question")
    if not values:
        return text.strip(), None
    since, until = (filter_date(values[key]) if key in values else None for key in ("since", "until"))
    return rest.strip(), SearchFilters(since, until, values.get("source"))
