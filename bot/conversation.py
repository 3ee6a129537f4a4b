"""A conversation's recent turns, and how a follow-up question is made searchable on its own.

"And what did Attal say?" or "When was that?" means little to a search engine. With an LLM configured it
rewrites the question from the history; without one, a question that looks like a follow-up carries the
previous question along into the search.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from bot.llm import rewrite_follow_up
from text.words import anchor_words, content_words

MAX_TURNS = 6
_FOLLOW_UP_START = re.compile(
    r"^(and|but|also|what about|how about|et|mais|aussi|et pour|qu'en est-il|und|y)\b", re.IGNORECASE
)
_REFERS_BACK = re.compile(
    r"\b(that|this|it|he|she|they|them|him|her|his|their|there|then|ça|cela|ce|il|elle|ils|elles|lui|leur|y|là)\b",
    re.IGNORECASE,
)


@dataclass
class Turn:
    question: str
    search_query: str
    answer: str
    refused: bool


class Conversation:
    """The last MAX_TURNS turns of one chat."""

    def __init__(self, turns: list[Turn] | None = None) -> None:
        self.turns: deque[Turn] = deque(turns or [], maxlen=MAX_TURNS)

    def add(self, question: str, search_query: str, answer: str, refused: bool) -> None:
        self.turns.append(Turn(question, search_query, answer, refused))

    def reset(self) -> None:
        self.turns.clear()

    def to_json(self) -> str:
        return json.dumps([asdict(t) for t in self.turns], ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Conversation:
        return cls([Turn(**t) for t in json.loads(data)])

    def is_follow_up(self, question: str) -> bool:
        """A short question that leans on an earlier one: it opens with "and…", or points back with a pronoun
        and names nothing new."""
        if not self.turns:
            return False
        if _FOLLOW_UP_START.search(question.strip()):
            return True
        few_words = len(content_words(question)) <= 3
        return few_words and (bool(_REFERS_BACK.search(question)) or not anchor_words(question))

    def search_query(self, question: str, llm: Any | None = None) -> str:
        """The question made self-contained for retrieval."""
        if not self.is_follow_up(question):
            return question
        previous = self.turns[-1].search_query
        if llm is not None:
            rewritten = rewrite_follow_up(llm, [t.question for t in self.turns], question)
            if rewritten:
                return rewritten
        if anchor_words(question):  # it names its own subject ("and what did Attal say?"): keep the topic only
            carried = [w for w in content_words(previous) if w not in anchor_words(previous)]
            return f"{question} ({' '.join(carried)})" if carried else question
        return f"{question} ({previous})"
