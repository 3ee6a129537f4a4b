"""What an answer is, for the engine, the LLM path and every face that shows one: the answer, its numbered
sources and how passages become citations.

Contract (what `newsdesk ask --json` prints): every `[n]` in the answer refers to an entry of `sources`, which
are retrieved passages; a refusal has no sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.texts import text
from vectorstore.records import Hit

_CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Source:
    """A cited article, numbered as in the answer: one number per article, however many of its passages the
    answer quotes (two numbers for one article would make an answer look better supported than it is)."""

    n: int
    hit: Hit  # the first quoted passage; its metadata is the article's
    quote: str
    chunk_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "article_id": self.hit.article_id,
            "chunk_id": self.hit.chunk_id,
            "chunk_ids": self.chunk_ids or [self.hit.chunk_id],
            "title": self.hit.title,
            "date": self.hit.date,
            "url": self.hit.url,
            "source": self.hit.source,
            "search_score": round(self.hit.score, 4),
            "quote": self.quote,
        }


def sources_by_article(quoted: list[tuple[Hit, str]]) -> tuple[list[Source], list[int]]:
    """One source per article, numbered in order of first appearance, and the number of each quoted passage."""
    by_article: dict[str, Source] = {}
    numbers = []
    for hit, quote in quoted:
        source = by_article.get(hit.article_id)
        if source is None:
            source = by_article[hit.article_id] = Source(len(by_article) + 1, hit, quote, [hit.chunk_id])
        else:
            if hit.chunk_id not in source.chunk_ids:
                source.chunk_ids.append(hit.chunk_id)
            if quote not in source.quote:
                source.quote += " … " + quote
        numbers.append(source.n)
    return list(by_article.values()), numbers


def cite(sentences: list[str], numbers: list[int]) -> str:
    """The sentences with `[n]` after the last of each run from one source: after a quotation's closing mark,
    not inside it (a French quote often spans two sentences: « … nuit. L'État … »)."""
    parts = []
    for i, (sentence, n) in enumerate(zip(sentences, numbers, strict=True)):
        last_of_run = i + 1 == len(numbers) or numbers[i + 1] != n
        parts.append(f"{sentence} [{n}]" if last_of_run else sentence)
    return " ".join(parts)


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    lang: str
    sources: list[Source] = field(default_factory=list)
    retrieved: list[Hit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    search_query: str = ""
    note: str = ""
    confidence: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "sources": [s.as_json() for s in self.sources],
            # In the order the answer uses (see extractive.order_by_evidence), so search_score need not fall.
            "retrieved": [
                {"article_id": h.article_id, "chunk_id": h.chunk_id, "search_score": round(h.score, 4)}
                for h in self.retrieved
            ],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }

    def source_lines(self) -> list[str]:
        """One line per source: `[n] title (date) url-or-file`."""
        lines = []
        for source in self.sources:
            hit = source.hit
            where = hit.url or hit.article_id
            date = hit.date or text("undated", self.lang)
            origin = f", {hit.source}" if hit.source else ""
            lines.append(f"[{source.n}] {hit.title} ({date}{origin}) {where}")
        return lines

    def render(self) -> str:
        """Plain text for terminals: the answer, then the numbered sources."""
        parts = [self.answer]
        if self.note:
            parts.append(self.note)
        if self.sources:
            parts.append(text("sources", self.lang) + ":\n" + "\n".join(self.source_lines()))
        return "\n\n".join(parts)


def cited_numbers(answer: str) -> list[int]:
    return [int(n) for n in _CITATION.findall(answer)]
