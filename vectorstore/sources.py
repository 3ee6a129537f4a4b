"""Source names as users type them: "le courrier" or "Le Courrier de Valmont" for "Le Courrier de Valmont".

Filters compare sources exactly (Chroma's `where` and the catalog's SQL do), so a name typed by a user is first
resolved to one stored name here: case and accents folded, then the whole name, a prefix of it, or all of its
words. A name that fits several sources, or none, is a FilterError that lists the candidates, because silently
searching nothing ("the articles do not say") would be a wrong answer.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from vectorstore.errors import UserError


class FilterError(UserError):
    """A search filter that cannot be applied as given; the message says why and what would work. `reason` is
    "unknown", "close" (names holds the
    likely ones), "ambiguous" or "dates", so that faces can say it in the asker's language."""

    def __init__(self, message: str, reason: str, wanted: str = "", names: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.wanted = wanted
        self.names = names


def fold(name: str) -> str:
    """Lower case, accents removed, punctuation to spaces, single spaces: what two spellings of a name share."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", bare).split())


def match_source(wanted: str, known: list[str]) -> str:
    """The stored source name that `wanted` means; FilterError when it fits none or several."""
    target = fold(wanted)
    folded = {name: fold(name) for name in known if name}
    exact = [name for name, f in folded.items() if f == target]
    if len(exact) == 1:
        return exact[0]
    words = set(target.split())
    found = [name for name, f in folded.items() if target and (f.startswith(target) or words <= set(f.split()))]
    if len(found) == 1:
        return found[0]
    if found:
        names = tuple(sorted(found))
        raise FilterError(
            f"“{wanted}” could be several sources: {', '.join(names)}; say which", "ambiguous", wanted, names
        )
    close = tuple(name for name, f in folded.items() if target and _resembles(target, f))
    names = close or tuple(sorted(folded)[:10])
    lead, reason = ("did you mean", "close") if close else ("sources:", "unknown")
    raise FilterError(f"no source is called “{wanted}”; {lead} {', '.join(names) or 'none yet'}", reason, wanted, names)


def _resembles(target: str, name: str) -> bool:
    """Every word typed is close to some word of the name (typos: "gazete" for "gazette")."""
    words = name.split()
    return all(difflib.get_close_matches(word, words, n=1, cutoff=0.75) for word in target.split())
