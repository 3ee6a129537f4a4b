"""The bot's own words, in the asker's language (English and French; English for anything else)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "refusal": "The articles I have do not say.",
        "sources": "Sources",
        "undated": "undated",
        "llm_fallback": "(The language model was unavailable; this answer is quoted from the articles.)",
        "no_articles": "No articles yet: ingest some first.",
    },
    "fr": {
        "refusal": "Les articles dont je dispose ne le disent pas.",
        "sources": "Sources",
        "undated": "sans date",
        "llm_fallback": "(Le modèle de langage était indisponible ; cette réponse cite les articles.)",
        "no_articles": "Aucun article pour l'instant : commencez par en ajouter.",
    },
}


def text(key: str, lang: str) -> str:
    return TEXTS.get(lang, TEXTS["en"])[key]


def reply_language(detected: str) -> str:
    """The language the bot answers in: the question's, when we have words for it."""
    return detected if detected in TEXTS else "en"
