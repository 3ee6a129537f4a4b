"""What the words of a text are to search and answers: stop words, Snowball stems, content words, names and
numbers (anchors, which read the same across languages), and the words that ask for the latest news.

Keyword search stems and filters with these; the bot finds a question's names and content words in passages with
the same functions, so a question and a passage are always cut into words the same way.
"""

from __future__ import annotations

import re
from functools import cache

STOPWORDS: frozenset[str] = frozenset(
    """
    a an the and or but if of to in on at by for with from as is are was were be been being do does did done
    have has had having it its this that these those there here what which who whom whose when where why how i
    you he she we they me him her us them my your his our their not no nor so than too very can could will
    would shall should may might must about into over under after before between during through up down out
    off again further then once all any both each few more most other some such only own same just also did
    say said says tell told according whats what's s t le la les un une des du de d l et ou mais donc or ni
    car à a au aux en dans par pour sur avec sans sous chez ce cet cette ces celui celle ceux celles qui que
    quoi dont où quel quelle quels quelles est sont été être était étaient sera seront a ai as avons avez ont
    avait avaient il elle ils elles on nous vous je tu me te se lui leur leurs son sa ses mon ma mes ton ta
    tes notre nos votre vos ne pas plus moins très comment pourquoi quand combien y ya qu c s n j m t dit
    déclaré selon der die das den dem des ein eine einer eines einem einen und oder aber im in am an auf aus
    bei mit nach von vor zu zum zur ist sind war waren wird werden wurde wurden hat haben hatte es er sie wir
    ihr ich du nicht wie was wer wo wann warum welche welcher welches el la los las un una unos unas y o pero
    de del al en con por para es son fue fueron ser está están que qué quién cuál cómo dónde cuándo
    """.split()
)


_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d")
_SNOWBALL = {
    "en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "ru": "russian", "pl": "polish",
}  # fmt: skip


@cache
def _stemmer(lang: str):  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer(_SNOWBALL[lang]) if lang in _SNOWBALL else None


def stems(text: str, lang: str) -> list[str]:
    """Lower-cased Snowball stems of the words of `text` in `lang` (the words themselves for other languages),
    so "supprimés" finds "supprimé" and "cancelled" finds "cancel"."""
    words = [w.lower() for w in _WORD.findall(text)]
    stemmer = _stemmer(lang)
    return stemmer.stemWords(words) if stemmer else words


def content_words(text: str) -> list[str]:
    """The words of `text` that carry meaning for keyword search (no stopwords, no one-letter words)."""
    return [w for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in STOPWORDS]


def anchor_words(text: str) -> list[str]:
    """Words that read the same across languages: names (capitalised, not sentence-initial) and numbers."""
    anchors: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = _WORD.findall(sentence)
        for i, word in enumerate(words):
            if word.lower() in STOPWORDS or len(word) < 2:
                continue
            if _NUMBER.search(word) or (i > 0 and word[0].isupper()) or (word.isupper() and len(word) > 1):
                anchors.append(word)
    return anchors


_RECENT = re.compile(
    r"\b(latest|newest|most recent|recent|recently|today|tonight|yesterday|this (?:morning|week)|currently|"
    r"derni[eè]re?s? (?:nouvelles|informations|développements)|récent|récente|récents|récentes|récemment|"
    r"aujourd'hui|hier|ce matin|cette semaine|actuellement|neueste|neuesten|heute|gestern|aktuell)\b",
    re.IGNORECASE,
)


def asks_for_recent(text: str) -> bool:
    """Whether a question asks for the latest news ("latest", "today", "dernières"...): then newer articles
    are preferred among the relevant ones."""
    return _RECENT.search(text) is not None
