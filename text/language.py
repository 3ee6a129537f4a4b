"""Which language a text is written in, among those the keyword index stems and the calibration probes cover."""

from __future__ import annotations

import re
from functools import lru_cache

LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl")


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import _load_identifier

    return _load_identifier(norm_probs=True, langs=list(LANGUAGES))


def detect_language(text: str, default: str = "") -> str:
    """ISO 639-1 code of `text`'s language among LANGUAGES, or `default` when the text is too short to tell."""
    sample = text[:2000].strip()
    if len(re.findall(r"\w+", sample)) < 2:
        return default
    lang, confidence = _identifier().classify(sample)
    return lang if confidence >= 0.5 else default
