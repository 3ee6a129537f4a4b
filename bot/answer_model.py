"""The trained answer model: which retrieved sentence answers the question, and whether any of them does.

Why this shape. No multilingual cross-encoder or reader ships its weights offline, and turning e5-small into a
cross-encoder cost ~70 ms a question on 2 cores for a few points (DESIGN.md section 3). The answerer already
has e5 vectors of the question and of every candidate sentence, so the model works on those:

    score(q, s) = cos(q, s) + (U q) . (V s) + w . cues(q, s)

The low-rank bilinear term learns which directions of a question ask for which directions of a sentence (a
"how many" for a figure, a "who" for a name, a "when" for a date) where the cosine sees only the topic; the cues
are the answerer's cheap evidence (the question's names and numbers in the sentence, word overlap, a figure for
"how many", the same language, the passage's rank, the sentence's place in it). The refusal is a logistic model
over a question's best scores, so it says how likely the passages answer at all. Trained by `python -m training`
on ../shared/eval (docs/answer-model.md); a few hundred kB, loaded in milliseconds, ~1 ms a question.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vectorstore.errors import UserError

SHIPPED_MODEL = Path(__file__).with_name("answer_model.npz")
CUES = ("anchors", "overlap", "number", "same_language", "passage_rank", "first_sentence", "log_words")
REFUSAL_FEATURES = ("best", "second_gap", "best_cosine", "anchor_coverage", "same_language")


class AnswerModelError(UserError):
    """The answer model file named by NEWSDESK_ANSWER_MODEL is missing or unreadable."""


@dataclass(frozen=True)
class AnswerModel:
    """Weights of the sentence scorer and of the refusal model; `threshold` is the answer probability under
    which the engine refuses (chosen on the training split to refuse at most ~5% of answerable questions)."""

    u: np.ndarray  # (rank, dim): projects the question
    v: np.ndarray  # (rank, dim): projects the sentence
    cue_weights: np.ndarray  # (len(CUES),)
    refusal_weights: np.ndarray  # (len(REFUSAL_FEATURES) + 1,): the last is the bias
    threshold: float
    embedder: str

    def scores(self, question: np.ndarray, sentences: np.ndarray, cues: np.ndarray) -> np.ndarray:
        """Each sentence's score for the question (higher answers better); `cues` is (sentences, len(CUES))."""
        bilinear = (sentences @ self.v.T) @ (self.u @ question)
        return sentences @ question + bilinear + cues @ self.cue_weights

    def answer_probability(self, features: np.ndarray) -> float:
        """How likely the candidates hold the answer, from REFUSAL_FEATURES in that order."""
        logit = float(features @ self.refusal_weights[:-1] + self.refusal_weights[-1])
        return float(1.0 / (1.0 + np.exp(-logit)))

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            u=self.u.astype(np.float16),
            v=self.v.astype(np.float16),
            cue_weights=self.cue_weights.astype(np.float32),
            refusal_weights=self.refusal_weights.astype(np.float32),
            threshold=np.float32(self.threshold),
            embedder=np.array(self.embedder),
            cues=np.array(CUES),
            refusal_features=np.array(REFUSAL_FEATURES),
        )

    @classmethod
    def load(cls, path: Path, embedder: str) -> AnswerModel:
        """The model in `path`; AnswerModelError naming the file when it is missing, corrupt, made for other
        features, or trained on another embedder's vectors (its scores would be meaningless)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise AnswerModelError(
                f"answer model {path} not found (NEWSDESK_ANSWER_MODEL; 'off' disables it)"
            ) from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise AnswerModelError(f"answer model {path} is not a readable model file ({exc})") from None
        try:
            model = cls(
                u=fields["u"].astype(np.float32),
                v=fields["v"].astype(np.float32),
                cue_weights=fields["cue_weights"].astype(np.float32),
                refusal_weights=fields["refusal_weights"].astype(np.float32),
                threshold=float(fields["threshold"]),
                embedder=str(fields["embedder"]),
            )
            same_features = tuple(fields["cues"]) == CUES and tuple(fields["refusal_features"]) == REFUSAL_FEATURES
        except KeyError as exc:
            raise AnswerModelError(f"answer model {path} lacks {exc}: not a newsdesk answer model") from None
        if not same_features:
            raise AnswerModelError(
                f"answer model {path} was trained on other features: rebuild it (python -m training)"
            )
        if model.embedder != embedder:
            raise AnswerModelError(
                f"answer model {path} was trained on {model.embedder} vectors, but NEWSDESK_EMBEDDER is {embedder}:"
                " rebuild it (python -m training) or set NEWSDESK_ANSWER_MODEL=off"
            )
        return model
