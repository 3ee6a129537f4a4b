"""The answering engine shared by Telegram, the REPL and `newsdesk ask`: question in, cited answer out.

Contract (what `newsdesk ask --json` prints): every `[n]` in the answer refers to an entry of `sources`, which
are retrieved passages; a refusal has no sources.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from bot import extractive
from bot.conversation import Conversation
from bot.texts import reply_language, text
from vectorstore.language import asks_for_recent, detect_language
from vectorstore.records import Hit, SearchFilters
from vectorstore.store import Store

# Refusal: answer only when the best sentence's cosine, plus a bonus when the question's names and numbers are
# found in the passages, clears this bar. e5's cosines run higher when question and passage share a language,
# so the bar does too. Calibrated by `newsdesk eval answers` (see docs/quality.md).
REFUSAL_THRESHOLD = 0.80
REFUSAL_THRESHOLD_SAME_LANGUAGE = 0.85
ANCHOR_BONUS = 0.04
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Source:
    """A cited passage, numbered as in the answer."""

    n: int
    hit: Hit
    quote: str

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "article_id": self.hit.article_id,
            "chunk_id": self.hit.chunk_id,
            "title": self.hit.title,
            "date": self.hit.date,
            "url": self.hit.url,
            "source": self.hit.source,
            "score": round(self.hit.score, 4),
            "quote": self.quote,
        }


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
            "retrieved": [
                {"article_id": h.article_id, "chunk_id": h.chunk_id, "score": round(h.score, 4)} for h in self.retrieved
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


class AnswerEngine:
    """Retrieves, then answers with the extractive answerer or, when configured, an LLM checked against it."""

    def __init__(self, store: Store, llm: Any | None = None, k: int = 5) -> None:
        self.store = store
        self.llm = llm
        self.k = k

    def ask(
        self,
        question: str,
        conversation: Conversation | None = None,
        k: int | None = None,
        filters: SearchFilters | None = None,
    ) -> Answer:
        started = time.perf_counter()
        question = " ".join(question.split())
        lang = reply_language(detect_language(question, default="en"))
        self.store.refresh()
        search_query = conversation.search_query(question, self.llm) if conversation else question
        hits = self.store.search(search_query, k or self.k, filters)
        retrieved_at = time.perf_counter()
        answer = self.answer_from_hits(question, hits, lang, search_query)
        answer.timings_ms = {
            "retrieve": (retrieved_at - started) * 1000,
            "answer": (time.perf_counter() - retrieved_at) * 1000,
            "total": (time.perf_counter() - started) * 1000,
        }
        if conversation is not None:
            conversation.add(question, search_query, answer.answer, answer.refused)
        return answer

    def answer_from_hits(self, question: str, hits: list[Hit], lang: str, search_query: str = "") -> Answer:
        """An answer from already retrieved passages (the evaluation calls this with chosen passages)."""
        extracted = self._extractive(question, hits, lang, search_query)
        if self.llm is None or extracted.refused:
            return extracted
        from bot.llm import llm_answer

        return llm_answer(self.llm, question, extracted.retrieved, lang, extracted)

    def _extractive(self, question: str, hits: list[Hit], lang: str, search_query: str) -> Answer:
        scoring_question = search_query or question
        found = extractive.candidates(hits)
        extractive.score_candidates(scoring_question, found, self.store.embedder)
        if not asks_for_recent(scoring_question):  # there retrieval's newest-first order is the point
            hits = extractive.order_by_evidence(found, hits)
        refusal = Answer(question, text("refusal", lang), True, lang, retrieved=hits, search_query=search_query)
        confidence = extractive.best_cosine(found) + ANCHOR_BONUS * extractive.anchor_coverage(question, hits)
        refusal.confidence = confidence
        if not found:
            return refusal
        best_hit = hits[max(found, key=lambda c: c.cosine).hit_index]
        same_language = detect_language(question) == best_hit.lang
        if confidence < (REFUSAL_THRESHOLD_SAME_LANGUAGE if same_language else REFUSAL_THRESHOLD):
            return refusal
        chosen = extractive.select(found, hits)
        numbers: dict[int, int] = {}
        sources: list[Source] = []
        sentences = []
        for candidate in chosen:
            if candidate.hit_index not in numbers:
                numbers[candidate.hit_index] = len(numbers) + 1
                sources.append(Source(numbers[candidate.hit_index], hits[candidate.hit_index], candidate.text))
            sentences.append(f"{extractive.trim_words(candidate.text)} [{numbers[candidate.hit_index]}]")
        return Answer(
            question, " ".join(sentences), False, lang, sources, hits, search_query=search_query, confidence=confidence
        )
