"""Dense scores on one scale across languages: how high an embedder's cosines run for each pair of question
language and passage language, measured with generic probe questions.

e5's cosines run higher when question and passage share a language, so in an archive that mixes languages a
question is pulled to articles in its own language. The level is a property of the archive, not of a
question: the mean cosine of our probe questions in the question's language to a sample of each language's
passages. Fusion subtracts it first (vectorstore/fusion.py); within one language it is a constant and changes
nothing. On XQuAD paragraphs in eight languages with English questions this and keyword evidence that stays
within a language take the search's hit@1 from .47 to .89, against .90 when every paragraph is
German; per-language spread and per-question z-scores do worse (docs/quality.md, bench/ranking_variants.py).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

# Articles per language whose first passage's cosines set its offset (on the XQuAD mixture, 30 passages per
# language gave the same hit@1 as all of them, and 5 nearly as much).
SAMPLE = 100

# Generic questions, the same eight in each language that language detection knows (text.language),
# on everyday news topics so that they are about none of the archive's articles in particular.
PROBES: dict[str, tuple[str, ...]] = {
    "en": (
        "What did the government announce?",
        "When was the building completed?",
        "Who won the final match?",
        "How many people live in the city?",
        "Why did the company close the factory?",
        "Where did the two leaders meet?",
        "What caused the accident?",
        "How much did the project cost?",
    ),
    "fr": (
        "Qu'a annoncé le gouvernement ?",
        "Quand le bâtiment a-t-il été achevé ?",
        "Qui a remporté la finale ?",
        "Combien de personnes vivent dans la ville ?",
        "Pourquoi l'entreprise a-t-elle fermé l'usine ?",
        "Où les deux dirigeants se sont-ils rencontrés ?",
        "Quelle est la cause de l'accident ?",
        "Combien le projet a-t-il coûté ?",
    ),
    "de": (
        "Was hat die Regierung angekündigt?",
        "Wann wurde das Gebäude fertiggestellt?",
        "Wer hat das Endspiel gewonnen?",
        "Wie viele Menschen leben in der Stadt?",
        "Warum hat das Unternehmen die Fabrik geschlossen?",
        "Wo haben sich die beiden Politiker getroffen?",
        "Was war die Ursache des Unfalls?",
        "Wie viel hat das Projekt gekostet?",
    ),
    "es": (
        "¿Qué anunció el gobierno?",
        "¿Cuándo se terminó el edificio?",
        "¿Quién ganó la final?",
        "¿Cuántas personas viven en la ciudad?",
        "¿Por qué cerró la empresa la fábrica?",
        "¿Dónde se reunieron los dos líderes?",
        "¿Cuál fue la causa del accidente?",
        "¿Cuánto costó el proyecto?",
    ),
    "it": (
        "Che cosa ha annunciato il governo?",
        "Quando è stato completato l'edificio?",
        "Chi ha vinto la finale?",
        "Quante persone vivono in città?",
        "Perché l'azienda ha chiuso la fabbrica?",
        "Dove si sono incontrati i due leader?",
        "Qual è stata la causa dell'incidente?",
        "Quanto è costato il progetto?",
    ),
    "pt": (
        "O que o governo anunciou?",
        "Quando o edifício foi concluído?",
        "Quem venceu a final?",
        "Quantas pessoas vivem na cidade?",
        "Por que a empresa fechou a fábrica?",
        "Onde os dois líderes se encontraram?",
        "Qual foi a causa do acidente?",
        "Quanto custou o projeto?",
    ),
    "nl": (
        "Wat heeft de regering aangekondigd?",
        "Wanneer werd het gebouw voltooid?",
        "Wie heeft de finale gewonnen?",
        "Hoeveel mensen wonen er in de stad?",
        "Waarom heeft het bedrijf de fabriek gesloten?",
        "Waar hebben de twee leiders elkaar ontmoet?",
        "Wat was de oorzaak van het ongeluk?",
        "Hoeveel heeft het project gekost?",
    ),
    "ru": (
        "Что объявило правительство?",
        "Когда было достроено здание?",
        "Кто выиграл финал?",
        "Сколько людей живёт в городе?",
        "Почему компания закрыла завод?",
        "Где встретились два лидера?",
        "Что стало причиной аварии?",
        "Сколько стоил проект?",
    ),
    "uk": (
        "Що оголосив уряд?",
        "Коли добудували будівлю?",
        "Хто виграв фінал?",
        "Скільки людей живе в місті?",
        "Чому компанія закрила завод?",
        "Де зустрілися двоє лідерів?",
        "Що стало причиною аварії?",
        "Скільки коштував проєкт?",
    ),
    "pl": (
        "Co ogłosił rząd?",
        "Kiedy ukończono budowę budynku?",
        "Kto wygrał finał?",
        "Ilu ludzi mieszka w mieście?",
        "Dlaczego firma zamknęła fabrykę?",
        "Gdzie spotkali się dwaj przywódcy?",
        "Co było przyczyną wypadku?",
        "Ile kosztował projekt?",
    ),
}

# Names this probe set, so offsets stored by another version of it are measured again.
PROBES_ID = hashlib.sha1(json.dumps(PROBES, sort_keys=True).encode()).hexdigest()[:12]

Table = dict[str, dict[str, float]]  # question language -> passage language -> mean cosine


def offsets(probes: dict[str, np.ndarray], passages: dict[str, np.ndarray]) -> Table:
    """The mean cosine of each language's probe vectors to each language's sampled passage vectors."""
    return {
        question_lang: {lang: float((vectors @ questions.T).mean()) for lang, vectors in passages.items()}
        for question_lang, questions in probes.items()
    }


def row(table: Table, question_lang: str) -> dict[str, float]:
    """The offsets for a question in `question_lang`; for a language without probes (or none detected), the
    average over the probe languages."""
    if question_lang in table:
        return table[question_lang]
    rows = list(table.values())
    return {lang: sum(r[lang] for r in rows) / len(rows) for lang in rows[0]} if rows else {}
