"""Sentence boundaries with character offsets, for news prose in every script the embedder reads.

Chunks end at sentence boundaries and the answerer quotes whole sentences, so both use this one splitter; its
spans are computed once at ingest and stored with each chunk.

Rules rather than a model or a library: pysbd 0.3.4 (`char_span=True`, each language's own rules) was measured
against them (`bench/sentences.py --pysbd`, docs/quality.md; XQuAD in 12 languages and PIAF) and not taken:
- quality: both keep >= 0.98 of gold answers inside one sentence in every set, but pysbd cuts Arabic at every
  comma "،" (10.1 sentences per paragraph where English has 4.9) and has no rules for Thai (1.2: whole
  paragraphs), Turkish, Romanian or Vietnamese; these rules give 4.7-5.5 in every language, English 4.8;
- speed: pysbd splits about 130-1,300 paragraphs per CPU-second (20-170 times fewer), these rules
  16,000-63,000 (the splitter before them 32,000-230,000, but it found one sentence per paragraph outside
  Latin script).
What ends a sentence here:
- `.!?…` when a space and a possible sentence start follow: not a lower-case letter, so an upper-case letter
  of any alphabet, a digit, or a letter of a script without case (Arabic, Hebrew, Devanagari, CJK); not after
  an abbreviation, an initial ("J.", "В.", "Т.Т.", a letter of a script without case as in "د.") or a German
  ordinal ("am 8. Februar"). `;` is the Greek question mark: it ends a sentence after a Greek letter.
- Full stops that are never anything else, with or without a space after: `。！？` (CJK), `।॥` (Devanagari),
  `؟ ۔` (Arabic script), and those of Armenian, Ethiopic, Myanmar and Khmer.
- Thai marks no sentence end; a space between two runs of Thai ends a clause or a sentence, so cutting at
  every one would cut clauses off their sentence. Only a piece longer than THAI_LONG characters is cut there,
  into pieces of at most THAI_LONG where the spaces allow. At 200, 4.7 pieces per XQuAD paragraph (English has
  4.8 sentences) with 0.983 of answers inside one piece; 150 gives 6.3 and 0.970, 300 gives 3.2 and 0.989
  (measured by setting THAI_LONG and running `bench/sentences.py --no-doc`).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    """
    m mm mme mmes mlle mlles dr pr me mgr st ste cf etc ex env vol p pp art al no nos n° av apr j.-c mr mrs ms
    prof gen gov sen rep rev jr sr inc ltd co corp vs approx dept est fig jan feb mar apr jun jul aug sep sept
    oct nov dec janv févr avr juil déc u.s u.k e.g i.e c v n chr
    z.b d.h u.a usw bzw vgl ca mio mrd nr jh evtl ggf inkl str
    sra srta dña ud uds
    гг т.е т.д т.п т.к им ул млн млрд тыс руб стр проф акад св н.э
    π.χ κα δηλ μ.χ
    """.split()
)
# Full stops that end a sentence wherever they stand, with or without a space after: CJK (。！？), Devanagari and
# other Brahmic scripts (। ॥), Arabic script (؟ and the Urdu ۔), Armenian (։), Ethiopic (።), Myanmar (။), Khmer (។).
_FULL_STOP = re.compile(r"[。！？।॥؟۔։።။។]+[\"'»”’)\]」』）】》〉]*")
# Stops that end a sentence only when a space and something that can start one follow; `;` is the Greek
# question mark (checked below to follow a Greek letter).
_STOP = re.compile(r"""([.!?…]+|;)((?:[ \u00a0\u202f]?["'»”’“)\]」』）】》〉])*)(?=\s)""")
# Words after which "8." is an ordinal, not a sentence's last number: "am 8. Februar", "im 19. Jahrhundert".
_BEFORE_ORDINAL = frozenset(
    "am im vom zum zur beim ins bis des dem den der die das ab seit um vor nach einem einen einer eines".split()
)
_INITIALS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # "U.S", "Т.Т"
_OPENERS = "\"'«“‘„‚‹([¿¡「『（【《〈"
_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s*")
_LINE_START = re.compile(r"\n(?=\s*(?:[-*•–]\s|\d+[.)]\s|#))")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
# Thai writes no sentence punctuation: a space between two runs of Thai text ends a clause or a sentence.
_THAI_SPACE = re.compile(r"(?<=[\u0e01-\u0e5b])\s+(?=[\u0e01-\u0e5b])")
THAI_LONG = 200


@dataclass(frozen=True)
class Span:
    """A piece of text and where it sits in the text it came from."""

    text: str
    start: int
    end: int


def _word_before(text: str, dot: int) -> tuple[int, str]:
    start = dot
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in ".-°"):
        start -= 1
    return start, text[start:dot]


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at `dot` closes an abbreviation, an initial or an ordinal rather than a sentence."""
    word_start, word = _word_before(text, dot)
    if not word:
        return False
    if word.lower() in ABBREVIATIONS or _INITIALS.fullmatch(word):
        return True
    if len(word) == 1 and word.isalpha() and not word.islower():
        return True  # an initial ("J. Biden", "В. Путин") or a letter of a script without case ("د." for Dr.)
    if word.isdigit() and len(word) <= 2 and word_start > 1 and text[word_start - 1] == " ":
        return _word_before(text, word_start - 1)[1].lower() in _BEFORE_ORDINAL
    return False


def _starts_sentence(text: str, at: int) -> bool:
    """Whether a sentence can start at `at` (after the space): not with a lower-case letter or punctuation."""
    end = min(len(text), at + 3)
    i = at
    while i < end and (text[i] in _OPENERS or text[i] == " "):
        i += 1
    if i >= len(text):
        return False
    ch = text[i]
    return ch.isdigit() or (ch.isalpha() and not ch.islower()) or ch in "¿¡«“„"


def _breaks(text: str) -> list[int]:
    """Offsets where a new sentence starts, and the end of the text."""
    breaks = {m.end() for m in _PARAGRAPH.finditer(text)}
    breaks.update(m.end() for m in _LINE_START.finditer(text))
    breaks.update(m.end() for m in _FULL_STOP.finditer(text))
    for m in _STOP.finditer(text):
        stop = m.group(1)
        if stop == "." and _is_abbreviation(text, m.start(1)):
            continue
        if stop == ";" and not (m.start(1) > 0 and _GREEK.match(text[m.start(1) - 1])):
            continue
        if _starts_sentence(text, _SPACE.match(text, m.end()).end()):
            breaks.add(m.end())
    return [*sorted(breaks), len(text)]


def _thai_breaks(spaces: list[int], start: int, end: int) -> list[int]:
    """Weak breaks inside a piece text[start:end] longer than THAI_LONG characters: at `spaces` (the offsets
    after each space between runs of Thai), each time the last one that keeps the piece within THAI_LONG (the
    first one after, when none does)."""
    breaks: list[int] = []
    first = start
    while end - first > THAI_LONG:
        i = bisect.bisect_right(spaces, first + THAI_LONG, hi=bisect.bisect_left(spaces, end))
        if i > 0 and spaces[i - 1] > first:
            first = spaces[i - 1]
        elif i < len(spaces) and spaces[i] < end:
            first = spaces[i]
        else:
            break
        breaks.append(first)
    return breaks


def split_sentences(text: str) -> list[Span]:
    """Sentences of `text` with their offsets; whitespace between sentences belongs to none of them."""
    thai_spaces = [m.end() for m in _THAI_SPACE.finditer(text)]
    spans: list[Span] = []
    start = 0
    for end in _breaks(text):
        for weak in [*_thai_breaks(thai_spaces, start, end), end]:
            piece = text[start:weak]
            stripped = piece.strip()
            if stripped:
                lead = len(piece) - len(piece.lstrip())
                spans.append(Span(stripped, start + lead, start + lead + len(stripped)))
            start = weak
    return spans


def first_sentence(text: str) -> str:
    """The opening sentence of a passage ("" for a blank one)."""
    return next((span.text for span in split_sentences(text)), "")
