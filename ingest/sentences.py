"""Sentence boundaries with character offsets, for French and English news prose.

Chunks end at sentence boundaries and the answerer quotes whole sentences, so both use this one splitter.
Rules rather than a model: news text is regular, and this must run on every chunk at question time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    """
    m mm mme mmes mlle mlles dr pr me mgr st ste cf etc ex env vol p pp art al no nos n° av apr j.-c mr mrs ms
    prof gen gov sen rep rev jr sr inc ltd co corp vs approx dept est fig jan feb mar apr jun jul aug sep sept
    oct nov dec janv févr avr juil déc u.s u.k e.g i.e
    """.split()
)

# A candidate end: terminal punctuation, closing quotes or brackets, then space, then something that can
# start a sentence.
_END = re.compile(r"""([.!?…]+)((?:[ \u00a0\u202f]?["'»”’)\]])*)(\s+)(?=["'«“‘(\[]?\s?[A-ZÀ-ÖØ-Þ0-9¿¡«“])""")
_PARAGRAPH = re.compile(r"\n\s*\n")
_LINE_START = re.compile(r"\n(?=\s*(?:[-*•–]\s|\d+[.)]\s|#))")


@dataclass(frozen=True)
class Span:
    """A piece of text and where it sits in the text it came from."""

    text: str
    start: int
    end: int


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at `dot` closes an abbreviation or an initial rather than a sentence."""
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] in ".-°"):
        word_start -= 1
    word = text[word_start:dot].lower()
    if not word:
        return False
    if word in ABBREVIATIONS:
        return True
    return len(word) == 1 and text[word_start].isupper()  # an initial, as in "J. Biden"


def _breaks(text: str) -> list[int]:
    """Offsets where a new sentence starts."""
    breaks = {m.end() for m in _PARAGRAPH.finditer(text)}
    breaks.update(m.end() for m in _LINE_START.finditer(text))
    for m in _END.finditer(text):
        if m.group(1) == "." and _is_abbreviation(text, m.start(1)):
            continue
        breaks.add(m.end())
    return sorted(breaks)


def split_sentences(text: str) -> list[Span]:
    """Sentences of `text` with their offsets; whitespace between sentences belongs to none of them."""
    spans: list[Span] = []
    start = 0
    for end in [*_breaks(text), len(text)]:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append(Span(stripped, start + lead, start + lead + len(stripped)))
        start = end
    return spans
