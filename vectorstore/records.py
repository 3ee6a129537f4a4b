"""The records that cross the vectorstore boundary: what goes in (documents, chunks) and what comes out (hits)."""

from __future__ import annotations

from dataclasses import dataclass

from text.dates import date_to_int, normalise_date
from vectorstore.errors import UserError


@dataclass(frozen=True)
class DocumentInfo:
    """One article as the store keeps it; `date_int` (YYYYMMDD, 0 when unknown) serves range filters."""

    id: str
    title: str
    content_hash: str
    date: str = ""
    date_int: int = 0
    url: str = ""
    source: str = ""
    lang: str = ""
    origin: str = ""


@dataclass(frozen=True)
class ChunkRecord:
    """A passage of a document, with where it sits in the document's text; `sentences` are its sentences as
    (start, end) offsets into `text`, found once at ingest (None: not known, the reader splits the text)."""

    id: str
    position: int
    text: str
    start: int
    end: int
    sentences: tuple[tuple[int, int], ...] | None = None


@dataclass
class Hit:
    """A retrieved passage with its document's metadata; `score` is the search's fused relevance, from 0 to 1
    (dense and keyword evidence, each scaled to the best candidate, weighted), higher is better; `sentences` as
    in ChunkRecord (None for a chunk stored before they were kept)."""

    chunk_id: str
    article_id: str
    text: str
    score: float
    title: str = ""
    date: str = ""
    url: str = ""
    source: str = ""
    lang: str = ""
    position: int = 0
    dense: float = 0.0
    keyword: float = 0.0
    sentences: tuple[tuple[int, int], ...] | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk_id,
            "article_id": self.article_id,
            "title": self.title,
            "date": self.date,
            "url": self.url,
            "source": self.source,
            "lang": self.lang,
            "score": round(self.score, 4),
            "dense": round(self.dense, 4),
            "keyword": round(self.keyword, 4),
            "text": self.text,
        }


@dataclass(frozen=True)
class SearchFilters:
    """Optional restrictions on a search: inclusive date range (YYYYMMDD) and a source name."""

    since: int | None = None
    until: int | None = None
    source: str | None = None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None or bool(self.source)


def filter_date(value: str) -> int:
    """A date a user typed for --since/--until, as YYYYMMDD; a UserError naming it when it is not a date."""
    iso = normalise_date(value)
    if not iso:
        raise UserError(f"{value!r} is not a date (use YYYY-MM-DD)")
    return date_to_int(iso)
