"""An optional reranker (NEWSDESK_RERANKER): any sentence-transformers `CrossEncoder`, by local folder or hub name.

A cross-encoder reads the question and a passage together, so it can tell a passage that answers from one that
is only on the same topic, which two separate vectors cannot. No multilingual cross-encoder ships its weights
offline, so we ship none; users with a network or a local model folder can name a bigger multilingual one than
we can ship and get better ordering of the retrieved passages.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vectorstore.errors import UserError
from vectorstore.records import Hit


class RerankerUnavailable(UserError):
    """NEWSDESK_RERANKER names nothing that loads as a cross-encoder."""


class CrossEncoderReranker:
    """Reorders retrieved passages by a cross-encoder's score of each (question, passage) pair."""

    def __init__(self, spec: str) -> None:
        import torch
        from sentence_transformers import CrossEncoder
        from transformers.utils import logging as transformers_logging

        from vectorstore.e5_torch import bf16_is_faster

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar would land in `ask --json` output
        folder = Path(spec).expanduser()
        try:
            self._model = CrossEncoder(str(folder) if folder.exists() else spec, device="cpu")
        except Exception as exc:  # whatever the folder or hub holds, the culprit is the setting
            raise RerankerUnavailable(load_problem(spec, folder.exists(), exc)) from None
        if (labels := self._model.num_labels) != 1:
            raise RerankerUnavailable(f"NEWSDESK_RERANKER={spec}: the model gives {labels} scores per pair, not one")
        if bf16_is_faster():  # as SentenceTransformerEmbeddings does
            self._model.to(torch.bfloat16)
        self._sigmoid = torch.nn.Sigmoid()

    def rerank(self, question: str, hits: list[Hit]) -> list[Hit]:
        """`hits` best first by the cross-encoder, all passages scored in one batch; ties keep the search's order.
        Each hit's `score` becomes the cross-encoder's relevance (a sigmoid, 0 to 1) in place of the search's,
        because the answerer orders its passages by `score` plus sentence evidence and would otherwise undo the
        reranker's order."""
        if not hits:
            return hits
        from vectorstore.e5_torch import on_torch_thread

        # The passage as the embedder saw it (ingest's embedding_text): its article's title first.
        pairs = [(question, f"{hit.title}\n{hit.text}" if hit.title else hit.text) for hit in hits]
        scores = on_torch_thread(  # one OpenMP team per process, as the embedder runs (vectorstore/e5_torch.py)
            lambda: self._model.predict(
                pairs, batch_size=len(pairs), activation_fn=self._sigmoid, show_progress_bar=False
            ).tolist()
        )
        order = sorted(range(len(hits)), key=lambda i: -scores[i])  # sorted() is stable: ties keep their order
        return [replace(hits[i], score=float(scores[i])) for i in order]


def load_problem(spec: str, is_folder: bool, error: Exception) -> str:
    """One line saying why NEWSDESK_RERANKER did not load and what to do about it."""
    from huggingface_hub import is_offline_mode

    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    if is_folder:
        return f"NEWSDESK_RERANKER={spec}: the folder does not load as a sentence-transformers CrossEncoder ({reason})"
    if is_offline_mode():
        return (
            f"NEWSDESK_RERANKER={spec}: no such folder, and no hub model of that name in the local cache"
            " (HF_HUB_OFFLINE=1): give the path of a local model folder, or set HF_HUB_OFFLINE=0 on a machine"
            " with a network to download it"
        )
    return f"NEWSDESK_RERANKER={spec}: neither a model folder nor a hub model that loads ({reason})"
