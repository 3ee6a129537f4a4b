"""The bot's own words, in the asker's language (English and French; English for anything else)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "refusal": "The articles I have do not say.",
        "sources": "Sources",
        "undated": "undated",
        "llm_fallback": "(The language model was unavailable; this answer is quoted from the articles.)",
        "no_articles": "No articles yet: ingest some first (newsdesk ingest PATH).",
        "empty_question": "Ask me something about the articles.",
        "no_match": "No article matches these filters.",
        "dates_reversed": "No article matches these filters: --since is after --until.",
        "source_unknown": "No source is called “{wanted}”. Sources: {names}.",
        "source_close": "No source is called “{wanted}”. Did you mean {names}?",
        "source_ambiguous": "“{wanted}” could be several sources: {names}. Say which.",
    },
    "fr": {
        "refusal": "Les articles dont je dispose ne le disent pas.",
        "sources": "Sources",
        "undated": "sans date",
        "llm_fallback": "(Le modèle de langage était indisponible ; cette réponse cite les articles.)",
        "no_articles": "Aucun article pour l'instant : commencez par en ajouter (newsdesk ingest CHEMIN).",
        "empty_question": "Posez-moi une question sur les articles.",
        "no_match": "Aucun article ne correspond à ces filtres.",
        "dates_reversed": "Aucun article ne correspond à ces filtres : --since est après --until.",
        "source_unknown": "Aucune source ne s'appelle « {wanted} ». Sources : {names}.",
        "source_close": "Aucune source ne s'appelle « {wanted} ». Vouliez-vous dire {names} ?",
        "source_ambiguous": "« {wanted} » peut désigner plusieurs sources : {names}. Précisez.",
    },
}


def text(key: str, lang: str) -> str:
    return TEXTS.get(lang, TEXTS["en"])[key]


def reply_language(detected: str) -> str:
    """The language the bot answers in: the question's, when we have words for it."""
    return detected if detected in TEXTS else "en"
