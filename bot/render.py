"""Answers as Telegram HTML, and HTML cut into messages Telegram accepts.

Pure functions, so the bot stays a thin face over the engine and the cutting can be property-tested. Everything
that comes from articles (answer text, titles, sources, urls) is escaped: an article is untrusted input, and a
stray `<` would make Telegram reject the whole message.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from html import escape
from itertools import accumulate
from urllib.parse import urlsplit

from bot.answers import Answer, Source
from bot.texts import text

MESSAGE_LIMIT = 4096
MAX_LINK_LENGTH = 2048  # longer urls are shown as plain titles: a link that long is noise, and a risk to the limit

# Where a message may be cut, best first: paragraphs, lines, sentence ends (a citation like " [2]" stays with
# its sentence), words. Group "gap" is the whitespace the cut removes.
_CUTS = (
    re.compile(r"(?P<gap>[ \t]*\n[ \t]*\n\s*)"),
    re.compile(r"(?P<gap>[ \t]*\n\s*)"),
    re.compile(r"[.!?…](?:&quot;|&#x27;|[\"'»”’)\]])*(?:[ \t]*\[\d+\])*(?P<gap>\s+)"),
    re.compile(r"(?P<gap>\s+)"),
)
# A paragraph that opens with a bold label line ("<b>Sources</b>") belongs with the text before it.
_LABEL = re.compile(r"<b>[^<\n]*</b>\n")
_ATOM = re.compile(r"<[^<>]*>|&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)[^<>]*>")
_TEXT_OUTSIDE_TAGS = re.compile(r"<[^<>]*>")


def answer_html(answer: Answer) -> str:
    """The answer, its note in italics, then a bold "Sources" label over `[n] title (date, source)` lines, the
    title linking to the article when it has a web address."""
    blocks = [escape(answer.answer, quote=False)]
    if answer.note:
        blocks.append(f"<i>{escape(answer.note, quote=False)}</i>")
    if answer.sources:
        label = escape(text("sources", answer.lang), quote=False)
        blocks.append(f"<b>{label}</b>\n" + "\n".join(source_html(s, answer.lang) for s in answer.sources))
    return "\n\n".join(blocks)


def source_html(source: Source, lang: str) -> str:
    """One cited source: `[n] title (date, source)`."""
    hit = source.hit
    title = linked_title(hit.title or hit.article_id, hit.url)
    return f"[{source.n}] {title}{_details(hit.date or text('undated', lang), hit.source)}"


def article_html(n: int, title: str, date: str, source: str, url: str) -> str:
    """A numbered line of an article list: `n. title (date, source)`."""
    return f"{n}. {linked_title(title, url)}{_details(date, source)}"


def linked_title(title: str, url: str) -> str:
    """The escaped title, linking to the article when it is on the web."""
    shown = escape(title, quote=False)
    return f'<a href="{link_attribute(url)}">{shown}</a>' if is_web_link(url) else shown


def _details(*parts: str) -> str:
    shown = ", ".join(escape(part, quote=False) for part in parts if part)
    return f" ({shown})" if shown else ""


def is_web_link(url: str) -> bool:
    """True for an http(s) address Telegram can link: anything else (file paths, ids) is shown as text."""
    if not url or len(url) > MAX_LINK_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def link_attribute(url: str) -> str:
    """A url escaped for a double-quoted href (Telegram knows only &lt; &gt; &amp; &quot; by name)."""
    return escape(url, quote=False).replace('"', "&quot;")


def plain_text(html_text: str) -> str:
    """What a reader sees of Telegram HTML, without unescaping: tags removed."""
    return _TEXT_OUTSIDE_TAGS.sub("", html_text)


def telegram_length(value: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji can count two)."""
    return len(value.encode("utf-16-le")) // 2


def split_message(html_text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut Telegram HTML into messages of at most `limit` UTF-16 units, each with balanced tags.

    Cuts fall at paragraph breaks if possible, else line breaks, sentence ends, spaces, and only as a last
    resort inside a word; never inside a tag or an entity. Tags open at a cut are closed before it and reopened
    after it. A paragraph opening with a bold label (the sources list) starts its message with some of the
    text before it when both fit. The whitespace at a cut is dropped; blank parts are left out. Assumes the
    tags open at any point are much shorter than `limit`, which holds for `answer_html`.
    """
    return _Splitter(html_text.strip(), limit).parts()


@dataclass(frozen=True)
class _Cut:
    """A cut: the part before it ends at `end`, the next one starts at `resume` (after the dropped gap)."""

    end: int
    resume: int


class _Splitter:
    """Greedy cutting over precomputed cut candidates, measured with the tags a part must reopen and close."""

    def __init__(self, html_text: str, limit: int) -> None:
        self.text = html_text
        self.limit = limit
        self.units = [0, *accumulate(telegram_length(c) for c in html_text)]
        self.atoms = [(m.start(), m.end()) for m in _ATOM.finditer(html_text)]
        self.atom_starts = [start for start, _ in self.atoms]
        self.tag_ends: list[int] = []
        self.stacks: list[tuple[tuple[str, str], ...]] = []
        stack: list[tuple[str, str]] = []
        for match in _TAG.finditer(html_text):
            closing, name = match.group(1) == "/", match.group(2).lower()
            if not closing:
                stack.append((name, match.group()))
            elif any(open_name == name for open_name, _ in stack):
                while stack.pop()[0] != name:
                    pass
            self.tag_ends.append(match.end())
            self.stacks.append(tuple(stack))
        self.levels = [self._candidates(pattern) for pattern in _CUTS]
        self.level_ends = [[cut.end for cut in cuts] for cuts in self.levels]

    def _candidates(self, pattern: re.Pattern[str]) -> list[_Cut]:
        cuts = []
        for match in pattern.finditer(self.text):
            end, resume = match.start("gap"), match.end("gap")
            if end > 0 and resume < len(self.text) and not self._inside_atom(end):
                cuts.append(_Cut(end, resume))
        return cuts

    def _inside_atom(self, position: int) -> bool:
        index = bisect_right(self.atom_starts, position - 1) - 1
        return index >= 0 and self.atoms[index][0] < position < self.atoms[index][1]

    def _open_at(self, position: int) -> tuple[tuple[str, str], ...]:
        index = bisect_right(self.tag_ends, position) - 1
        return self.stacks[index] if index >= 0 else ()

    def _render(self, start: int, end: int) -> str:
        reopen = "".join(tag for _, tag in self._open_at(start))
        close = "".join(f"</{name}>" for name, _ in reversed(self._open_at(end)))
        return reopen + self.text[start:end] + close

    def _size(self, start: int, end: int) -> int:
        reopen = sum(telegram_length(tag) for _, tag in self._open_at(start))
        close = sum(len(name) + 3 for name, _ in self._open_at(end))
        return reopen + self.units[end] - self.units[start] + close

    def _fits(self, start: int, end: int) -> bool:
        return self._size(start, end) <= self.limit

    def _furthest(self, level: int, start: int) -> _Cut | None:
        """The last cut of a level after `start` whose part from `start` fits."""
        cuts = self.levels[level]
        reach = bisect_left(self.units, self.units[start] + self.limit + 1) - 1  # no part can run further
        index = bisect_right(self.level_ends[level], reach) - 1
        while index >= 0 and cuts[index].end > start:
            if self._fits(start, cuts[index].end):
                return cuts[index]
            index -= 1
        return None

    def _hard_cut(self, start: int) -> _Cut:
        """Inside a word: the furthest position that fits and is not inside a tag or an entity."""
        end = bisect_left(self.units, self.units[start] + self.limit + 1) - 1
        while end > start and (self._inside_atom(end) or not self._fits(start, end)):
            end -= 1
        if end == start:  # not even one atom fits: take it whole rather than loop forever
            at = bisect_right(self.atom_starts, start) - 1
            end = self.atoms[at][1] if at >= 0 and self.atoms[at][0] == start else start + 1
        resume = end
        while resume < len(self.text) and self.text[resume].isspace():
            resume += 1
        return _Cut(end, resume)

    def _next_cut(self, start: int) -> _Cut:
        for level in range(len(self.levels)):
            cut = self._furthest(level, start)
            if cut is not None:
                return cut
        return self._hard_cut(start)

    def _keep_label_with_text(self, cuts: list[_Cut]) -> list[_Cut]:
        """Move the end of the text before a labelled paragraph into its message, when that fits."""
        for i, cut in enumerate(cuts):
            if not _LABEL.match(self.text, cut.resume):
                continue
            previous_start = cuts[i - 1].resume if i else 0
            next_end = cuts[i + 1].end if i + 1 < len(cuts) else len(self.text)
            for level in self.levels[:3]:  # whole sentences at least: a stray word or "[2]" says nothing
                moved = self._latest_fitting(level, previous_start, cut.end, next_end)
                if moved is not None:
                    cuts[i] = moved
                    break
        return cuts

    def _latest_fitting(self, cuts: list[_Cut], start: int, end_before: int, next_end: int) -> _Cut | None:
        """The last cut in (start, end_before) that leaves the rest up to `next_end` one fitting message."""
        for cut in reversed(cuts):
            if cut.end >= end_before:
                continue
            if cut.end <= start:
                return None
            if self._fits(cut.resume, next_end) and self._fits(start, cut.end):
                return cut
        return None

    def parts(self) -> list[str]:
        if not self.text:
            return []
        cuts: list[_Cut] = []
        start = 0
        while not self._fits(start, len(self.text)):
            cut = self._next_cut(start)
            cuts.append(cut)
            start = cut.resume
        cuts = self._keep_label_with_text(cuts)
        starts = [0, *(cut.resume for cut in cuts)]
        ends = [*(cut.end for cut in cuts), len(self.text)]
        rendered = (self._render(start, end) for start, end in zip(starts, ends, strict=True))
        return [part for part in rendered if plain_text(part).strip()]
