"""Train the reader (bot/reader.py) and measure it beside the cosine answerer: `.venv/bin/python -m training`.

The answer model's cases (training.data, training.candidates) become shortlists, the cosine answerer's k best
sentences of each; the softmax over ["no answer", each sentence] is fitted first with the cosine answerer's
scores alone (the baseline), then a linear head on the frozen encoder (a probe, so gradients reach the encoder
from the first step), then low-rank adapters, head and scalars together for a fixed time, in bfloat16 where it
is faster. Prints the measure split's figures and writes bot/reader.npz; ~35 minutes on 2 cores, 25 of them
training (docs/answer-model.md)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bot import extractive
from bot.engine import REFUSAL_THRESHOLD, cosine_confidence
from bot.reader import SHIPPED_READER, PairTokenizer, Reader, Scalars
from newsdesk.runtime import quiet_libraries
from training.candidates import Prepared, VectorCache, group_of, prepare, score, similarity
from training.data import load_split, make_cases
from training.pair_encoder import PairEncoder, pair_vectors, save
from vectorstore.e5_model import load_model
from vectorstore.e5_torch import bf16_is_faster
from vectorstore.embeddings import load_embedder

ROOT = Path(__file__).resolve().parent.parent

# The softmax's scalars start here; the cosine-only fit moves them to ~48, ~42 and ~-0.7 on the full train split.
START_SCALE, START_NO_ANSWER, START_NO_ANSWER_COVERAGE = 20.0, 16.0, 0.0
PROBE_L2 = 1e-2
PROBE_CHUNK = 16  # cases per frozen forward pass
HEAD_LR, SCALARS_LR, ENCODER_WEIGHT_DECAY = 1e-3, 1e-2, 0.01
WARMUP_STEPS = 30
FINAL_LR_SHARE = 0.05  # the linear decay over the time budget stops here
LOG_EVERY = 20
ANSWERABLE_REFUSED = 0.05  # each refusal rule's threshold refuses at most this share of answerable held-out cases


@dataclass
class Shortlist:
    """A case as the cross-encoder reads it: the cosine answerer's best k sentences, and what the figures need."""

    question: str
    texts: list[str]
    cosine_scores: np.ndarray  # the cosine answerer's score of each text (cosine + cue weights), float32
    gold: int  # index in texts; -1 when unanswerable or the answer's sentence is not among them
    answerable: bool
    coverage: float  # extractive.anchor_coverage
    cosine_confidence: float  # the cosine answerer's (engine.cosine_confidence), over all candidates
    cosine_threshold: float  # the bar it must clear in the product
    group: str
    cosine_top_is_gold: bool  # the cosine answerer, over all candidates, ranks the answer's sentence first

    @property
    def target(self) -> int:
        """The softmax's right class: 0 is "no answer", i + 1 is text i."""
        return self.gold + 1 if self.answerable else 0


def shortlist(p: Prepared, k: int, with_gold: bool) -> Shortlist:
    """The cosine answerer's k best candidates of `p`; `with_gold` appends the answer's sentence when it ranks
    lower (training, so every answerable case has a right candidate)."""
    score(p)  # the cosine answerer's scores
    scores = np.array([c.score for c in p.found], dtype=np.float32)
    order = extractive.best_first(p.found)[:k]  # the scores are float32 values, so the same order as `scores`
    if with_gold and p.gold >= 0 and p.gold not in order:
        order.append(p.gold)
    question = p.case.question.text
    coverage = extractive.anchor_coverage(question, p.hits)
    confidence, threshold = cosine_confidence(p.found, coverage)
    return Shortlist(
        question=question,
        texts=[p.found[i].text for i in order],
        cosine_scores=scores[order],
        gold=order.index(p.gold) if p.gold in order else -1,
        answerable=p.case.answerable,
        coverage=coverage,
        cosine_confidence=confidence,
        cosine_threshold=threshold,
        group=group_of(p),
        cosine_top_is_gold=bool(p.gold >= 0 and int(np.argmax(scores)) == p.gold),
    )


@dataclass
class Reading:
    """The encoder, its tokenizer and its precision: what every forward pass over cases needs."""

    encoder: PairEncoder
    tokens: PairTokenizer
    bf16: bool

    def pairs(self, cases: list[Shortlist]) -> list[list[int]]:
        return [self.tokens(case.question, text) for case in cases for text in case.texts]

    def vectors(self, pairs: list[list[int]]) -> torch.Tensor:
        return pair_vectors(self.encoder, pairs, self.bf16)


def split_by_case(rows: torch.Tensor, cases: list[Shortlist]) -> tuple[torch.Tensor, ...]:
    """Per-pair rows (in Reading.pairs order) cut into each case's."""
    return rows.split([len(c.texts) for c in cases])


class Softmax(nn.Module):
    """The listwise softmax over ["no answer", each candidate]: a candidate's logit is `scale` x its cosine score
    plus its pair score (the head on the encoder's vector); "no answer" is `no_answer + no_answer_coverage` x the
    question's anchor coverage."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(START_SCALE))
        self.no_answer = nn.Parameter(torch.tensor(START_NO_ANSWER))
        self.no_answer_coverage = nn.Parameter(torch.tensor(START_NO_ANSWER_COVERAGE))

    def logits(self, case: Shortlist, pair_scores: torch.Tensor | None = None) -> torch.Tensor:
        """The candidates' logits; without pair scores, the cosine answerer's alone."""
        logits = self.scale * torch.tensor(case.cosine_scores)
        return logits if pair_scores is None else logits + pair_scores

    def loss(self, cases: list[Shortlist], logits: list[torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of the cases' targets."""
        total = torch.zeros(())
        for case, candidates in zip(cases, logits, strict=True):
            no_answer = self.no_answer + self.no_answer_coverage * torch.tensor(case.coverage)
            total = total + F.cross_entropy(
                torch.cat([no_answer.view(1), candidates])[None], torch.tensor([case.target])
            )
        return total / len(cases)


def log(message: str, started: float) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.time() - started:5.0f}s] {message}", file=sys.stderr, flush=True)


def _scalars_text(softmax: Softmax) -> str:
    return ", ".join(f"{name} {float(value):.2f}" for name, value in softmax.state_dict().items())


def fit_cosine_softmax(softmax: Softmax, cases: list[Shortlist]) -> float:
    """The scalars with the pair score at 0: the cosine answerer as a softmax, the start and the baseline."""
    optimiser = torch.optim.LBFGS(softmax.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = softmax.loss(cases, [softmax.logits(c) for c in cases])
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float(softmax.loss(cases, [softmax.logits(c) for c in cases]))


def fit_probe(reading: Reading, head: nn.Linear, softmax: Softmax, cases: list[Shortlist]) -> tuple[float, float]:
    """The head (and the scalars) fitted on the untrained encoder's pair vectors, so that the fine-tune's gradients
    reach the encoder from its first step (a head started at zero learned nothing in an earlier try)."""
    with torch.no_grad():
        vectors = torch.cat(
            [reading.vectors(reading.pairs(cases[i : i + PROBE_CHUNK])) for i in range(0, len(cases), PROBE_CHUNK)]
        )
    per_case = split_by_case(vectors, cases)
    optimiser = torch.optim.LBFGS(
        [*head.parameters(), *softmax.parameters()], max_iter=200, line_search_fn="strong_wolfe"
    )

    def loss() -> torch.Tensor:
        return softmax.loss(
            cases, [softmax.logits(c, head(v).squeeze(-1)) for c, v in zip(cases, per_case, strict=True)]
        )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        value = loss() + PROBE_L2 * head.weight.square().sum()
        value.backward()
        return value

    with torch.no_grad():
        before = float(loss())
    optimiser.step(closure)
    with torch.no_grad():
        return before, float(loss())


def fine_tune(
    reading: Reading,
    head: nn.Linear,
    softmax: Softmax,
    cases: list[Shortlist],
    minutes: float,
    batch_size: int,
    lr: float,
    started: float,
) -> int:
    """Adapters, head and scalars trained together on batches of cases in order, for `minutes`: the adapters'
    learning rate `lr` warms up over WARMUP_STEPS and decays linearly with the time spent. Returns the steps."""
    trainable = [p for p in reading.encoder.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [
            {"params": trainable, "lr": lr, "weight_decay": ENCODER_WEIGHT_DECAY},
            {"params": list(head.parameters()), "lr": HEAD_LR, "weight_decay": 0.0},
            {"params": list(softmax.parameters()), "lr": SCALARS_LR, "weight_decay": 0.0},
        ]
    )
    peak_lrs = [group["lr"] for group in optimiser.param_groups]
    budget = minutes * 60
    running = RunningFigures()
    step, begun = 0, time.time()
    while time.time() - begun < budget:
        start = (step * batch_size) % len(cases)
        batch = cases[start : start + batch_size]
        decay = max(FINAL_LR_SHARE, 1.0 - (time.time() - begun) / budget)
        for group, peak in zip(optimiser.param_groups, peak_lrs, strict=True):
            group["lr"] = peak * min(1.0, (step + 1) / WARMUP_STEPS) * decay
        pair_scores = head(reading.vectors(reading.pairs(batch))).squeeze(-1)
        logits = [softmax.logits(c, s) for c, s in zip(batch, split_by_case(pair_scores, batch), strict=True)]
        loss = softmax.loss(batch, logits)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(trainable, 1.0)
        optimiser.step()
        running.add(softmax, batch, logits, loss.item())
        step += 1
        if step % LOG_EVERY == 0:
            log(
                f"step {step}: {running.summary()}, {_scalars_text(softmax)}, "
                f"lr {optimiser.param_groups[0]['lr']:.2e}, {(time.time() - begun) / step:.2f} s/step",
                started,
            )
            running = RunningFigures()
    return step


class RunningFigures:
    """Training progress since the last log line, beside the cosine answerer's on the same cases."""

    def __init__(self) -> None:
        self.cases = self.answerable = 0
        self.loss = self.cosine_loss = self.top = self.cosine_top = 0.0

    @torch.no_grad()
    def add(self, softmax: Softmax, batch: list[Shortlist], logits: list[torch.Tensor], loss: float) -> None:
        self.cases += len(batch)
        self.loss += loss * len(batch)
        self.cosine_loss += float(softmax.loss(batch, [softmax.logits(c) for c in batch])) * len(batch)
        for case, candidates in zip(batch, logits, strict=True):
            if case.answerable:
                self.answerable += 1
                self.top += float(int(torch.argmax(candidates)) == case.gold)
                self.cosine_top += float(int(np.argmax(case.cosine_scores)) == case.gold)

    def summary(self) -> str:
        answerable = max(self.answerable, 1)
        return (
            f"loss {self.loss / self.cases:.4f} (cosine alone {self.cosine_loss / self.cases:.4f}), "
            f"top sentence {self.top / answerable:.3f} (cosine {self.cosine_top / answerable:.3f})"
        )


@torch.no_grad()
def score_pairs(reader: Reader, cases: list[Shortlist]) -> list[np.ndarray]:
    """Each case's pair scores as the product computes them (the saved file, its engine), all pairs in one pass."""
    scores = reader.pair_scores([(case.question, text) for case in cases for text in case.texts])
    return np.split(scores, np.cumsum([len(c.texts) for c in cases])[:-1])


@dataclass
class Outcome:
    """What one case's figures count, for the cosine answerer and the trained one reading its first k candidates."""

    group: str
    answerable: bool
    cosine_top: bool
    trained_top: bool
    gold_in_k: bool
    confidence: dict[str, float]  # per refusal rule (RULES): refused when under the rule's threshold
    fixed_refused: bool  # the product's rule at its own thresholds (0.80 across languages, 0.85 within)


RULES = {
    "cosine": "best cosine + 0.04 x anchor coverage, one threshold",
    "product": "the product's rule (0.05 more within a language), its threshold moved",
    "trained": 'log-sum-exp of the candidates\' logits minus the "no answer" logit',
}


def outcomes(cases: list[Shortlist], pair_scores: list[np.ndarray], scalars: dict[str, float], k: int) -> list[Outcome]:
    rows = []
    for case, pairs in zip(cases, pair_scores, strict=True):
        logits = scalars["scale"] * case.cosine_scores[:k] + pairs[:k]
        no_answer = scalars["no_answer"] + scalars["no_answer_coverage"] * case.coverage
        top = logits.max()
        rows.append(
            Outcome(
                group=case.group,
                answerable=case.answerable,
                cosine_top=case.cosine_top_is_gold,
                trained_top=bool(0 <= case.gold < k and int(np.argmax(logits)) == case.gold),
                gold_in_k=bool(0 <= case.gold < k),
                confidence={
                    "cosine": case.cosine_confidence,
                    "product": case.cosine_confidence - (case.cosine_threshold - REFUSAL_THRESHOLD),
                    "trained": float(top + np.log(np.exp(logits - top).sum()) - no_answer),
                },
                fixed_refused=case.cosine_confidence < case.cosine_threshold,
            )
        )
    return rows


def thresholds(rows: list[Outcome]) -> dict[str, float]:
    """Each rule's threshold refusing at most ANSWERABLE_REFUSED of the answerable cases (refused when under it)."""
    found = {}
    for rule in RULES:
        values = np.sort([r.confidence[rule] for r in rows if r.answerable])
        found[rule] = float(values[int(np.floor(ANSWERABLE_REFUSED * len(values)))])
    return found


def _share(counted: Iterable[bool]) -> float:
    values = list(counted)
    return round(float(np.mean(values)), 3) if values else float("nan")


def table(rows: list[Outcome], limits: dict[str, float]) -> dict[str, dict]:
    """Per group (with "all" and every XQuAD en->xx together): top sentence, gold among the k read, and the shares
    refused under each rule."""
    groups: dict[str, list[Outcome]] = {}
    for row in rows:
        names = [row.group, "all"] + (["XQuAD en->xx"] if row.group.startswith("XQuAD en->") else [])
        for name in names:
            groups.setdefault(name, []).append(row)
    figures = {}
    for name, members in sorted(groups.items()):
        answerable = [r for r in members if r.answerable]
        unanswerable = [r for r in members if not r.answerable]
        refused = {
            kind: {rule: _share(r.confidence[rule] < limits[rule] for r in subset) for rule in RULES}
            | {"product_fixed": _share(r.fixed_refused for r in subset)}
            for kind, subset in (("unanswerable_refused", unanswerable), ("answerable_refused", answerable))
        }
        figures[name] = {
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "top_sentence": {
                "cosine": _share(r.cosine_top for r in answerable),
                "trained": _share(r.trained_top for r in answerable),
            },
            "gold_in_k": _share(r.gold_in_k for r in answerable),
            **refused,
            "wins": sum(r.trained_top and not r.cosine_top for r in answerable),
            "losses": sum(r.cosine_top and not r.trained_top for r in answerable),
        }
    return figures


def auc(rows: list[Outcome], rule: str) -> float:
    """Chance that an answerable case is more confident than an unanswerable one (Mann-Whitney, ranks untied)."""
    positive = np.array([r.confidence[rule] for r in rows if r.answerable])
    negative = np.array([r.confidence[rule] for r in rows if not r.answerable])
    ranks = np.concatenate([positive, negative]).argsort().argsort() + 1
    return float(
        (ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative))
    )


def figures(
    held_out: tuple[list[Shortlist], list[np.ndarray]],
    measured: tuple[list[Shortlist], list[np.ndarray]],
    scalars: dict[str, float],
    k: int,
) -> dict:
    """Thresholds chosen on the held-out train cases, figures on the measure cases."""
    held_rows, measure_rows = outcomes(*held_out, scalars, k), outcomes(*measured, scalars, k)
    limits = thresholds(held_rows)
    return {
        "thresholds": limits,
        "auc_measure": {rule: round(auc(measure_rows, rule), 4) for rule in RULES},
        "held_out_train": table(held_rows, limits)["all"],
        "measure": table(measure_rows, limits),
    }


COLUMNS = (  # two header lines each
    ("top sentence", "cosine->tr"),
    ("gold", "among k"),
    ("unans refused", "cosine->tr"),
    ("ans refused", "cosine->tr"),
    ("product refit", "unans/ans"),
    ("product fixed", "unans/ans"),
    ("trained", "won/lost"),
)


def _cells(r: dict) -> list[str]:
    top, unanswerable, answerable = r["top_sentence"], r["unanswerable_refused"], r["answerable_refused"]
    return [
        f"{top['cosine']:.3f}->{top['trained']:.3f}",
        f"{r['gold_in_k']:.3f}",
        f"{unanswerable['cosine']:.3f}->{unanswerable['trained']:.3f}",
        f"{answerable['cosine']:.3f}->{answerable['trained']:.3f}",
        f"{unanswerable['product']:.3f}/{answerable['product']:.3f}",
        f"{unanswerable['product_fixed']:.3f}/{answerable['product_fixed']:.3f}",
        f"{r['wins']}/{r['losses']}",
    ]


def print_figures(k: int, result: dict) -> None:
    limits = ", ".join(f"{rule} {value:.4f}" for rule, value in result["thresholds"].items())
    aucs = ", ".join(f"{rule} {value:.3f}" for rule, value in result["auc_measure"].items())
    print(f"== the trained model reads the cosine answerer's {k} best sentences")
    for rule, meaning in RULES.items():
        print(f"   refusal rule {rule}: {meaning}")
    print("   product fixed: the product's rule at its own thresholds, 0.80 across languages and 0.85 within")
    print(f"   thresholds (held-out train cases, <= {ANSWERABLE_REFUSED:.0%} of the answerable refused): {limits}")
    print(f"   AUC answerable vs unanswerable (measure cases): {aucs}")
    print(f"{'':28s}" + "".join(f"{top:>14s}" for top, _ in COLUMNS))
    print(f"{'group':22s} {'ans':>5s}" + "".join(f"{bottom:>14s}" for _, bottom in COLUMNS))
    for name, r in {"held-out train (all)": result["held_out_train"], **result["measure"]}.items():
        print(f"{name:22s} {r['answerable']:5d}" + "".join(f"{cell:>14s}" for cell in _cells(r)))


def build_cases(args: argparse.Namespace, started: float) -> tuple[list[Shortlist], list[Shortlist], list[Shortlist]]:
    """The answer model's cases, built by its own code, as shortlists: the train cases the model learns from
    (the answer's sentence added), `args.holdout` train cases drawn at random and kept out to choose the
    thresholds, and the measure cases (these two as the answerer meets them)."""
    cache = VectorCache(load_embedder("e5-small"), args.cache)
    prepared = {}
    for split in ("train", "measure"):
        corpus = load_split(args.eval_dir, split, args.articles)
        prepared[split] = prepare(
            make_cases(corpus, similarity(corpus, cache), args.variants, args.seed), corpus, cache
        )
        log(f"{split}: {len(prepared[split])} cases", started)
    order = list(range(len(prepared["train"])))
    random.Random(args.seed).shuffle(order)
    return (
        [shortlist(prepared["train"][i], args.k, with_gold=True) for i in order[args.holdout :]],
        [shortlist(prepared["train"][i], args.k, with_gold=False) for i in order[: args.holdout]],
        [shortlist(p, args.k, with_gold=False) for p in prepared["measure"]],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "newsdesk" / "training")
    parser.add_argument("--variants", type=int, default=3, help="context languages per English XQuAD question")
    parser.add_argument("--articles", type=int, default=None, help="articles per set and split (a quick check)")
    parser.add_argument("--k", type=int, default=6, help="the cosine answerer's best sentences the model reads")
    parser.add_argument("--also-k", type=int, nargs="*", default=[], help="figures also when it reads fewer")
    parser.add_argument("--holdout", type=int, default=1500, help="train cases kept out to choose thresholds")
    parser.add_argument("--probe", type=int, default=400, help="train cases the linear probe is fitted on")
    parser.add_argument("--minutes", type=float, default=25, help="training time")
    parser.add_argument("--batch", type=int, default=8, help="cases per step")
    parser.add_argument("--lr", type=float, default=5e-4, help="the adapters' peak learning rate")
    parser.add_argument("--rank", type=int, default=16, help="the adapters' rank")
    parser.add_argument("--alpha", type=float, default=32, help="the adapters' scale (alpha / rank x B A)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--save", type=Path, default=SHIPPED_READER, help="where the reader is written")
    args = parser.parse_args()
    if not (args.eval_dir / "xquad").is_dir():
        sys.exit(f"training data not found: {args.eval_dir} (../shared/eval beside the checkout)")
    if any(k > args.k for k in args.also_k):
        sys.exit("--also-k: the model reads at most --k sentences")

    quiet_libraries()
    started = time.time()
    pool, held_out, measure = build_cases(args, started)
    log(f"train cases: {len(pool)} to learn from, {len(held_out)} held out", started)

    softmax = Softmax()
    cosine_loss = fit_cosine_softmax(softmax, pool)
    log(f"cosine alone: {_scalars_text(softmax)}, loss {cosine_loss:.4f}", started)

    model = load_model()
    reading = Reading(PairEncoder(model), PairTokenizer(model), bf16_is_faster())
    log(f"matmuls in {'bfloat16' if reading.bf16 else 'float32'}", started)
    head = nn.Linear(model.header.hidden, 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    probe_before, probe_after = fit_probe(reading, head, softmax, pool[: args.probe])
    log(
        f"probe on {len(pool[: args.probe])} cases: loss {probe_before:.4f} -> {probe_after:.4f}, "
        f"head norm {head.weight.norm():.2f}, {_scalars_text(softmax)}",
        started,
    )

    reading.encoder.add_adapters(args.rank, args.alpha)
    probe_cases_last = pool[args.probe :] + pool[: args.probe]
    steps = fine_tune(reading, head, softmax, probe_cases_last, args.minutes, args.batch, args.lr, started)
    log(f"fine-tuned: {steps} steps, {steps * args.batch / len(pool):.2f} passes over the pool", started)

    scalars = {name: float(value) for name, value in softmax.state_dict().items()}
    numbers = Scalars(scalars["scale"], scalars["no_answer"], scalars["no_answer_coverage"])
    # The figures and the threshold come from the file as the product reads and runs it: written, read back,
    # then written again with the threshold chosen on those scores.
    save(args.save, reading.encoder, head, numbers, 0.5, args.k, "e5-small")
    reader = Reader(args.save, "e5-small", model)
    scored_held_out = (held_out, score_pairs(reader, held_out))
    scored_measure = (measure, score_pairs(reader, measure))
    log("scored the held-out and measure cases", started)
    report = {
        "train_cases": len(pool) + len(held_out),
        "measure_cases": len(measure),
        "cosine_alone_loss": round(cosine_loss, 4),
        "probe_loss": [round(probe_before, 4), round(probe_after, 4)],
        "steps": steps,
        "scalars": scalars,
        "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
    }
    for k in [args.k, *args.also_k]:
        report[f"k{k}"] = figures(scored_held_out, scored_measure, scalars, k)
        print_figures(k, report[f"k{k}"])
    report["seconds"] = round(time.time() - started)
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    logit = report[f"k{args.k}"]["thresholds"]["trained"]
    save(args.save, reading.encoder, head, numbers, 1 / (1 + np.exp(-logit)), args.k, "e5-small")
    log(f"wrote {args.save} ({args.save.stat().st_size / 1e6:.1f} MB)", started)


if __name__ == "__main__":
    main()
