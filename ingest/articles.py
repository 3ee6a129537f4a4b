"""An article as ingest sees it, and the normalisation every loader shares (ids, dates, hashes, language)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

from text.dates import date_to_int, normalise_date
from text.language import detect_language
from vectorstore.errors import UserError
from vectorstore.records import DocumentInfo


class LoadError(UserError):
    """An input that cannot become an article; the message names the culprit and the reason."""


class Skipped(LoadError):
    """A file in a folder left out on purpose (a type newsdesk does not read, a link back into the folder): named
    in the summary, not counted as a failure."""


@dataclass
class Article:
    """Text plus metadata; `id` is stable across runs (a url, a record id, or the file's resolved path)."""

    id: str
    title: str
    text: str
    date: str = ""
    url: str = ""
    source: str = ""
    lang: str = ""
    origin: str = ""

    def __post_init__(self) -> None:
        self.text = clean_text(self.text)
        self.title = " ".join(self.title.split()) or first_words(self.text)
        self.date = normalise_date(self.date)
        if not self.text:
            raise LoadError(f"{self.origin or self.id}: no text")
        if not self.lang:
            self.lang = detect_language(self.title + "\n" + self.text[:LANGUAGE_SAMPLE])

    @property
    def content_hash(self) -> str:
        """Changes when anything we store changes, so an edited article is re-written and an equal one is not.

        The SHA-256 of `json.dumps([title, text, date, url, source, lang])`, fed to the hash a slice of text at a
        time: the JSON of a long text in one piece would cost several times its size in memory."""
        digest = hashlib.sha256(b"[")
        for number, value in enumerate([self.title, self.text, self.date, self.url, self.source, self.lang]):
            digest.update(b', "' if number else b'"')
            for start in range(0, len(value), HASH_SLICE):
                digest.update(json.dumps(value[start : start + HASH_SLICE])[1:-1].encode())
            digest.update(b'"')
        digest.update(b"]")
        return digest.hexdigest()

    @property
    def date_int(self) -> int:
        return date_to_int(self.date)

    def info(self) -> DocumentInfo:
        return DocumentInfo(
            id=self.id,
            title=self.title,
            content_hash=self.content_hash,
            date=self.date,
            date_int=self.date_int,
            url=self.url,
            source=self.source,
            lang=self.lang,
            origin=self.origin,
        )


# The language is told from the title and this many characters of text (detect_language reads no more).
LANGUAGE_SAMPLE = 2000
HASH_SLICE = 1 << 20

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")


def clean_text(text: str) -> str:
    """NFC, no control characters, single spaces, at most one blank line between paragraphs. Line by line, and
    character by character only on lines with something unprintable: a character list of a whole 30 MB text
    cost 240 MB."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", _printable(line)).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _printable(line: str) -> str:
    """The line without control, format and unassigned characters (tabs stay: they become spaces)."""
    if line.isprintable():
        return line
    return "".join(ch for ch in line if ch == "\t" or unicodedata.category(ch)[0] != "C")


def first_words(text: str, limit: int = 90) -> str:
    """A title for an untitled article: its first sentence, cut at a word boundary."""
    first = re.split(r"(?<=[.!?])\s|\n", text[: limit + 2].strip(), maxsplit=1)[0]
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + "…"
