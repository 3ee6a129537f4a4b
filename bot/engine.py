"""The answering engine shared by Telegram, the REPL and `newsdesk ask`: question in, cited answer out (the
answer's types and its contract are in bot/answers.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot import extractive
from bot.answers import Answer, cite, sources_by_article
from bot.conversation import Conversation
from bot.llm import llm_answer
from bot.rerank import CrossEncoderReranker
from bot.texts import reply_language, text
from text.language import detect_language
from text.sentences import first_sentence
from text.words import asks_for_recent, content_words
from vectorstore.records import Hit, SearchFilters
from vectorstore.sources import FilterError
from vectorstore.store import Store

if TYPE_CHECKING:  # the reader needs torch, which a process answering with the cosine answerer never imports
    from bot.reader import Reader

# Refusal without the answer model: answer only when the best sentence's cosine, plus a bonus when the
# question's names and numbers are found in the passages, clears this bar. e5's cosines run higher when question
# and passage share a language, so the bar does too. Calibrated by `newsdesk eval answers` (see docs/quality.md).
REFUSAL_THRESHOLD = 0.80
REFUSAL_THRESHOLD_SAME_LANGUAGE = 0.85
ANCHOR_BONUS = 0.04


class AnswerEngine:
    """Retrieves, then answers with the extractive answerer or, when configured, an LLM checked against it."""

    def __init__(
        self,
        store: Store,
        llm: Any | None = None,
        k: int = 5,
        answer_model: Reader | None = None,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.store = store
        self.llm = llm
        self.k = k
        self.answer_model = answer_model
        self.reranker = reranker

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
        if not question:
            return Answer(question, text("empty_question", lang), True, lang)
        self.store.refresh()
        if self.store.is_empty():
            return Answer(question, text("no_articles", lang), True, lang)
        try:
            filters = self.store.resolve_filters(filters)
        except FilterError as exc:
            return Answer(question, filter_problem(exc, lang), True, lang)
        if filters and not self.store.count_matching(filters):
            return Answer(question, text("no_match", lang), True, lang)
        search_query = conversation.search_query(question, self.llm) if conversation else question
        if wants_digest(search_query):
            hits = self.store.newest(DIGEST_ARTICLES, filters)
            retrieved_at = time.perf_counter()
            answer = digest(question, hits, lang, search_query)
        else:
            hits = self.store.search(search_query, k or self.k, filters)
            if self.reranker is not None:
                hits = self.reranker.rerank(search_query, hits)
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
        return llm_answer(self.llm, question, extracted.retrieved, lang, extracted)

    def _extractive(self, question: str, hits: list[Hit], lang: str, search_query: str) -> Answer:
        scoring_question = search_query or question
        question_lang = detect_language(question)
        found = extractive.candidates(hits, question_lang=question_lang)
        extractive.score_candidates(scoring_question, found, self.store.embedder, question_lang)
        coverage = extractive.anchor_coverage(question, hits)
        if self.answer_model is not None:
            answer_probability = self.answer_model.rescore(scoring_question, found, coverage)
        if not asks_for_recent(scoring_question):  # there retrieval's newest-first order is the point
            hits = extractive.order_by_evidence(found, hits, by_score=self.answer_model is not None)
        refusal = Answer(question, text("refusal", lang), True, lang, retrieved=hits, search_query=search_query)
        if not found:
            return refusal
        if self.answer_model is None:
            confidence, threshold = cosine_confidence(found, coverage)
        else:
            confidence, threshold = answer_probability, self.answer_model.threshold
        refusal.confidence = confidence
        if confidence < threshold:
            return refusal
        if not extractive.enough_to_go_on(scoring_question, hits):
            return refusal
        chosen = extractive.select(found, hits)
        sources, numbers = sources_by_article([(hits[c.hit_index], c.text) for c in chosen])
        answer = cite([extractive.trim_words(c.text) for c in chosen], numbers)
        return Answer(question, answer, False, lang, sources, hits, search_query=search_query, confidence=confidence)


def cosine_confidence(found: list[extractive.Candidate], coverage: float) -> tuple[float, float]:
    """The cosine answerer's confidence (the best sentence's cosine plus the name bonus) and the bar it must
    clear, which depends on whether that sentence shares the question's language; `found` is not empty. Training
    and the refusal benchmark measure this same rule."""
    best = max(found, key=lambda c: c.cosine)
    threshold = REFUSAL_THRESHOLD_SAME_LANGUAGE if best.same_language else REFUSAL_THRESHOLD
    return best.cosine + ANCHOR_BONUS * coverage, threshold


def filter_problem(error: FilterError, lang: str) -> str:
    """A filter error in the asker's language."""
    if error.reason == "dates":
        return text("dates_reversed", lang)
    return text(f"source_{error.reason}", lang).format(wanted=error.wanted, names=", ".join(error.names) or "-")


# Words of a question about "the news" itself rather than a topic: with nothing else, it asks for a digest.
_NEWS_WORDS = frozenset(
    """
    latest newest recent recently today tonight yesterday morning week currently news new happened happening
    going headlines update updates nouvelles nouveautés dernières dernière derniers dernier informations infos
    actualité actualités actu passé passe aujourd hui hier matin semaine actuellement neues neueste neuesten
    nachrichten heute gestern aktuell passiert
    """.split()
)
DIGEST_ARTICLES = 3
DIGEST_WORDS = 40


def wants_digest(question: str) -> bool:
    """Questions like "What is the latest news?" or "What happened today?": recent news, no topic named."""
    return asks_for_recent(question) and all(w.lower() in _NEWS_WORDS for w in content_words(question))


def digest(question: str, hits: list[Hit], lang: str, search_query: str) -> Answer:
    """The headlines of the newest articles (an untitled one by its opening sentence), each cited."""
    quoted = []
    for hit in hits:
        headline = hit.title or first_sentence(hit.text)
        if headline:
            quoted.append((hit, extractive.trim_words(headline.rstrip(".") + ".", DIGEST_WORDS)))
    if not quoted:
        return Answer(question, text("refusal", lang), True, lang, search_query=search_query)
    sources, numbers = sources_by_article(quoted)
    answer = cite([quote for _, quote in quoted], numbers)
    return Answer(question, answer, False, lang, sources, hits, search_query=search_query)
