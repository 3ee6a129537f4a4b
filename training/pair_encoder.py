"""The reader as training needs it: e5-small as a torch module with low-rank adapters, padding masks and
autograd (the product runs the merged weights in vectorstore/e5_torch.py, which has neither), and the writer of
the reader's file (bot/reader.py reads it)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bot.reader import ADAPTED, KIND, Scalars
from vectorstore.e5_model import E5Model

PAD = 1  # XLM-R's <pad>; padded positions are masked out of attention and pooling


class LowRank(nn.Module):
    """A frozen linear layer plus a trainable low-rank update; B starts at zero, so training starts from e5."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.linear = linear.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(rank, linear.in_features))
        self.b = nn.Parameter(torch.zeros(linear.out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.scaling = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + F.linear(F.linear(x, self.a), self.b) * self.scaling

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """The plain linear layer with the update folded in: the same function at the cost of one matmul."""
        self.linear.weight += self.scaling * (self.b @ self.a)
        return self.linear


class Layer(nn.Module):
    """One post-LayerNorm BERT block, vectorstore/e5_torch.py's math with a padding mask and autograd."""

    def __init__(self, model: E5Model, index: int) -> None:
        super().__init__()
        h = model.header
        self.heads = h.heads
        self.qkv: nn.Module = nn.Linear(h.hidden, 3 * h.hidden)
        self.ao: nn.Module = nn.Linear(h.hidden, h.hidden)
        self.fi: nn.Module = nn.Linear(h.hidden, h.ffn)
        self.fo: nn.Module = nn.Linear(h.ffn, h.hidden)
        self.aln = nn.LayerNorm(h.hidden, eps=h.eps)
        self.oln = nn.LayerNorm(h.hidden, eps=h.eps)
        with torch.no_grad():  # the module names are the model file's tensor names
            for name in ("qkv", "ao", "fi", "fo", "aln", "oln"):
                getattr(self, name).weight.copy_(torch.tensor(model.tensors[f"l{index}.{name}.w"]))
                getattr(self, name).bias.copy_(torch.tensor(model.tensors[f"l{index}.{name}.b"]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [batch, length, hidden]; mask [batch, length], True for real tokens -> same shape as x."""
        batch, length, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        padding = torch.zeros(batch, 1, 1, length, dtype=q.dtype).masked_fill(~mask[:, None, None, :], float("-inf"))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=padding).transpose(1, 2)
        x = self.aln(self.ao(context.reshape(batch, length, hidden)) + x)
        return self.oln(self.fo(F.gelu(self.fi(x))) + x)


class PairEncoder(nn.Module):
    """e5-small as a trainable module (the embedder's engines have no padding and no gradients). The 4-bit word
    embeddings stay frozen; so do the position and type embeddings."""

    def __init__(self, model: E5Model) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("positions", torch.tensor(model.tensors["emb.pos"]), persistent=False)
        self.register_buffer("token_type", torch.tensor(model.tensors["emb.type"]), persistent=False)
        self.embedding_ln = nn.LayerNorm(model.header.hidden, eps=model.header.eps)
        with torch.no_grad():
            self.embedding_ln.weight.copy_(torch.tensor(model.tensors["emb.ln.w"]))
            self.embedding_ln.bias.copy_(torch.tensor(model.tensors["emb.ln.b"]))
        self.layers = nn.ModuleList(Layer(model, i) for i in range(model.header.layers))

    def add_adapters(self, rank: int, alpha: float) -> None:
        """Freeze the encoder and give each block's linear layers a trainable low-rank update."""
        self.requires_grad_(False)
        for layer in self.layers:
            for name in ADAPTED:
                setattr(layer, name, LowRank(getattr(layer, name), rank, alpha))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask [batch, length] -> mean-pooled float32 vectors [batch, hidden], not normalised."""
        words = torch.from_numpy(self.model.word_embeddings(ids.flatten().numpy())).view(*ids.shape, -1)
        x = self.embedding_ln(words + self.positions[: ids.shape[1]][None] + self.token_type)
        for layer in self.layers:
            x = layer(x, mask)
        weights = mask[..., None].float()
        return (x.float() * weights).sum(1) / weights.sum(1)


def pair_vectors(encoder: PairEncoder, pairs: list[list[int]], bf16: bool) -> torch.Tensor:
    """L2-normalised pooled vectors of token pairs, as one padded batch (matmuls in bfloat16 when `bf16`)."""
    ids = torch.full((len(pairs), max(map(len, pairs))), PAD, dtype=torch.long)
    mask = torch.zeros(ids.shape, dtype=torch.bool)
    for row, pair in enumerate(pairs):
        ids[row, : len(pair)] = torch.tensor(pair)
        mask[row, : len(pair)] = True
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pooled = encoder(ids, mask)
    return F.normalize(pooled.float(), dim=-1)


def save(
    path: Path,
    encoder: PairEncoder,
    head: nn.Linear,
    scalars: Scalars,
    threshold: float,
    k: int,
    embedder: str,
) -> None:
    """The adapters (float16), the head and the numbers: everything the reader adds to the shipped e5."""
    arrays: dict[str, np.ndarray] = {}
    for index, layer in enumerate(encoder.layers):
        for name in ADAPTED:
            adapter = getattr(layer, name)
            arrays[f"l{index}.{name}.a"] = adapter.a.detach().numpy().astype(np.float16)
            arrays[f"l{index}.{name}.b"] = adapter.b.detach().numpy().astype(np.float16)
    rank = encoder.layers[0].qkv.a.shape[0]  # every adapter has the rank and scale add_adapters gave
    alpha = encoder.layers[0].qkv.scaling * rank
    np.savez_compressed(
        path,
        kind=np.array(KIND),
        embedder=np.array(embedder),
        rank=np.int32(rank),
        alpha=np.float32(alpha),
        k=np.int32(k),
        head_weight=head.weight.detach().numpy().astype(np.float32),
        head_bias=head.bias.detach().numpy().astype(np.float32),
        scalars=np.array([scalars.scale, scalars.no_answer, scalars.no_answer_coverage], dtype=np.float32),
        threshold=np.float32(threshold),
        **arrays,
    )
