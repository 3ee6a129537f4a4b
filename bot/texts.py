"""The bot's own words, in the asker's language (English and French; English for anything else).

Keys starting with `tg_` are the Telegram face's; those whose value holds tags are Telegram HTML, the rest plain
text that the caller escapes.
"""

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
        "tg_example": "What did the mayor say about the budget?",
        "tg_start": (
            "I answer questions about the news articles I have been given, quoting them with numbered sources.\n\n"
            "Ask in your own words, in English, French or another language, for example:\n<i>{example}</i>\n\n"
            "Follow-up questions work too. /help lists the commands."
        ),
        "tg_help": (
            "<b>Asking</b>\nIn a private chat, just write your question. In a group, mention me ({mention}), reply "
            "to one of my messages, or write /ask and the question. Follow-ups such as “and when was that?” use the "
            "conversation. To search only some articles: /ask --since 2024-06-01 --until 2024-06-30 --source "
            '"Le Monde" question.\n\n'
            "<b>Commands</b>\n/sources the latest articles\n/reset forget this conversation\n/help this help"
        ),
        "tg_admin_help": "\n\n<b>Admins</b>\nSend a {suffixes} file (up to {megabytes} MB) to add its articles.",
        "tg_sources_header": "<b>Latest articles</b> (page {page} of {pages}, {total} in all)",
        "tg_command_start": "What this bot does",
        "tg_command_help": "How to ask, and the commands",
        "tg_command_sources": "The latest articles",
        "tg_command_reset": "Forget this chat's conversation",
        "tg_command_ask": "Ask a question (in groups: /ask your question)",
        "tg_not_allowed": "Sorry, this bot is private.",
        "tg_not_answered_one": "You are asking faster than I can answer: 1 message was not answered. "
        "Please wait {seconds} s before sending it again.",
        "tg_not_answered_many": "You are asking faster than I can answer: {count} messages were not answered. "
        "Please wait {seconds} s before sending them again.",
        "tg_too_long": "Please keep questions under {limit} characters.",
        "tg_empty": "What would you like to know? For example: {example}",
        "tg_error": "Sorry, something went wrong; please try again.",
        "tg_store_down": "I cannot reach my article store right now; please try again later.",
        "tg_admins_only": "Only the bot's admins can add articles.",
        "tg_url_ingest": "Give the address of a web page: /ingest https://…",
        "tg_reset": "Conversation forgotten.",
        "tg_unknown_command": "Unknown command; /help lists them.",
        "tg_file_type": "I can read {suffixes} files.",
        "tg_file_size": "That file is too large: the limit is {megabytes} MB.",
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
        "tg_example": "Qu'a dit le maire à propos du budget ?",
        "tg_start": (
            "Je réponds aux questions sur les articles d'actualité qui m'ont été confiés, en les citant avec des "
            "sources numérotées.\n\n"
            "Posez vos questions avec vos mots, en français, en anglais ou dans une autre langue, par exemple :\n"
            "<i>{example}</i>\n\n"
            "Les questions de suivi fonctionnent aussi. /help donne la liste des commandes."
        ),
        "tg_help": (
            "<b>Poser une question</b>\nEn conversation privée, écrivez simplement votre question. Dans un groupe, "
            "mentionnez-moi ({mention}), répondez à l'un de mes messages ou écrivez /ask suivi de la question. Les "
            "questions de suivi comme « et c'était quand ? » s'appuient sur la conversation. Pour ne chercher que "
            'dans certains articles : /ask --since 2024-06-01 --until 2024-06-30 --source "Le Monde" question.\n\n'
            "<b>Commandes</b>\n/sources les derniers articles\n/reset oublier cette conversation\n/help cette aide"
        ),
        "tg_admin_help": (
            "\n\n<b>Administrateurs</b>\nEnvoyez un fichier {suffixes} (jusqu'à {megabytes} Mo) pour ajouter ses "
            "articles."
        ),
        "tg_sources_header": "<b>Derniers articles</b> (page {page} sur {pages}, {total} en tout)",
        "tg_command_start": "Ce que fait ce bot",
        "tg_command_help": "Comment poser une question, et les commandes",
        "tg_command_sources": "Les derniers articles",
        "tg_command_reset": "Oublier la conversation de ce chat",
        "tg_command_ask": "Poser une question (dans un groupe : /ask votre question)",
        "tg_not_allowed": "Désolé, ce bot est privé.",
        "tg_not_answered_one": "Vous posez vos questions plus vite que je ne peux répondre : 1 message est resté "
        "sans réponse. Attendez {seconds} s avant de le renvoyer.",
        "tg_not_answered_many": "Vous posez vos questions plus vite que je ne peux répondre : {count} messages "
        "sont restés sans réponse. Attendez {seconds} s avant de les renvoyer.",
        "tg_too_long": "Merci de poser des questions de moins de {limit} caractères.",
        "tg_empty": "Que voulez-vous savoir ? Par exemple : {example}",
        "tg_error": "Désolé, quelque chose s'est mal passé ; veuillez réessayer.",
        "tg_store_down": "Je ne peux pas joindre ma base d'articles pour le moment ; veuillez réessayer plus tard.",
        "tg_admins_only": "Seuls les administrateurs du bot peuvent ajouter des articles.",
        "tg_url_ingest": "Donnez l'adresse d'une page web : /ingest https://…",
        "tg_reset": "Conversation oubliée.",
        "tg_unknown_command": "Commande inconnue ; /help donne la liste.",
        "tg_file_type": "Je sais lire les fichiers {suffixes}.",
        "tg_file_size": "Ce fichier est trop volumineux : la limite est de {megabytes} Mo.",
    },
}


def text(key: str, lang: str) -> str:
    return TEXTS.get(lang, TEXTS["en"])[key]


def reply_language(detected: str) -> str:
    """The language the bot answers in: the question's, when we have words for it."""
    return detected if detected in TEXTS else "en"
