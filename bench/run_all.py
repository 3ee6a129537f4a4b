"""The benchmark suite in one command: writes docs/benchmarks.md and the plots it shows (docs/img/bench-*.png).

Parts (one module each): `peer` (newsdesk against the plain LangChain pipeline on ../shared/eval),
`throughput` (ingest chunks/s against the raw embedder, FLOP/s against the cores' peak, bfloat16 recall),
`scale` (warm search/answer latency at 1k/10k/100k chunks, embedded and server, the bot's peak RSS),
`cold` (`newsdesk ask` from a fresh process). Not part of the test suite: tests/test_bench_smoke.py runs the
`--smoke` version (tiny sizes, about a minute, written to a temporary folder).

Corpora, stores and each part's results are kept under --data-dir, so a rerun reuses the 100k-chunk corpora
and `--parts scale` reruns one part and rewrites the page with the other parts' saved results.

Run from the repository root:

    .venv/bin/python bench/run_all.py                       # everything (~25 min on 2 cores, less when cached)
    .venv/bin/python bench/run_all.py --parts scale,cold    # rerun two parts, keep the others' saved results
    .venv/bin/python bench/run_all.py --smoke               # tiny sizes, page in a temporary folder
"""

from __future__ import annotations

import os

# Before torch is imported anywhere: one thread per core, offline models, no telemetry.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _name in ("CHROMA_HOST", "CHROMA_PORT", "LLM", "NEWSDESK_EMBEDDER", "NEWSDESK_COLLECTION"):
    os.environ.pop(_name, None)

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import cold_start, ingest_throughput, peer, scale  # noqa: E402
from bench.common import DOC, EVAL_DIR, ROOT, Config, load_result, log, machine, machine_line, save_result  # noqa: E402

PARTS = {"peer": peer, "throughput": ingest_throughput, "scale": scale, "cold": cold_start}
TARGET_ANSWER_MS = 100
TARGET_RSS_MB = 1536
TARGET_COLD_S = cold_start.TARGET_S
TARGET_RATIO = 0.90
TARGET_PASSAGES = 150
TARGET_MATMUL_SHARE = 0.75


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def yardstick(t: dict[str, Any]) -> tuple[str, float]:
    """The matmul the embedder is measured against: torch's rate in the type the embedder runs, which it chose
    as the faster of bfloat16 and float32 on this CPU (on a CPU without bfloat16 instructions, bfloat16 is
    emulated at a fraction of float32's rate and would flatter the embedder), timed as the embedder is: after
    each raw run, for as long, the median of the repeats. Results from before that timing hold only the best
    10-call burst, which is what they are compared with."""
    return t["dtype"], t.get("sustained_matmul_gflops", t["attainable_gflops"][t["dtype"]])


def summary_table(results: dict[str, Any], info: dict[str, Any]) -> str:
    """Each target of the issue with this run's figure."""
    rows = ["| what | target | measured | met |", "|---|---|---|---|"]
    p = results.get("peer")
    if p:
        for name, data in p["sets"].items():
            ours, theirs = data["newsdesk"], data["langchain"]
            rows.append(
                f"| retrieval {name}: hit@1 / hit@5 / MRR, newsdesk vs LangChain peer | better than the peer "
                f"| {ours['hit@1']:.3f} / {ours['hit@5']:.3f} / {ours['mrr']:.3f} vs "
                f"{theirs['hit@1']:.3f} / {theirs['hit@5']:.3f} / {theirs['mrr']:.3f} "
                f"| {_mark(ours['mrr'] > theirs['mrr'])} |"
            )
    t = results.get("throughput")
    if t:
        amx = "this CPU has AMX" if t["peak"]["amx"] else "this CPU has no AMX: the target does not apply"
        kind, matmul = yardstick(t)
        share = t["gflops"] / matmul
        rows += [
            f"| embedder FLOP/s / a plain torch matmul of its largest shape in the type it runs ({kind}), same "
            f"machine, timed alike | >= {TARGET_MATMUL_SHARE:.0%} | {t['gflops']:.0f} / {matmul:.0f} GFLOP/s "
            f"= {share:.0%} | {_mark(share >= TARGET_MATMUL_SHARE)} |",
            f"| ingest end to end / raw embedder, same chunks | >= {TARGET_RATIO} | {t['pipeline_rate']:.1f} / "
            f"{t['raw_rate']:.1f} chunks/s = {t['ratio']:.2f} | {_mark(t['ratio'] >= TARGET_RATIO)} |",
            f"| passages/s of ~{t['tokens_per_chunk']:.0f} e5 tokens, e5-small quality | >= {TARGET_PASSAGES} "
            f"on a CPU with AMX | {t['raw_rate']:.1f} raw, {t['pipeline_rate']:.1f} ingest ({t['dtype']}; {amx}) "
            f"| {_mark(t['raw_rate'] >= TARGET_PASSAGES) if t['peak']['amx'] else 'n/a'} |",
        ]
        worst = max(abs(c["bfloat16"]["R@5"] - c["float32"]["R@5"]) for c in t["dtype_check"].values())
        rows.append(
            f"| bfloat16 recall against float32 (R@5, dense) | within 0.01 | largest difference {worst:.3f} "
            f"| {_mark(worst <= 0.01)} |"
        )
        peaks = ingest_throughput.peaks(t, info["cores"])
        top = "AMX bfloat16" if "AMX bfloat16" in peaks else ("bfloat16" if "bfloat16" in peaks else "float32")
        rows.append(
            f"| e5-small FLOP/s against the cores' peak | (report) | {t['gflops']:.0f} GFLOP/s = "
            f"{t['gflops'] / peaks[top]:.0%} of the {peaks[top]:.0f} GFLOP/s {top} peak | n/a |"
        )
    s = results.get("scale")
    if s:
        largest = list(s["sizes"])[-1]
        for mode, r in s["sizes"][largest].items():
            chunks = r["build"]["chunks"]
            rows.append(
                f"| answer p50 at {chunks:,} chunks, {mode} | <= {TARGET_ANSWER_MS} ms | {r['answer_p50']:.0f} ms "
                f"(p95 {r['answer_p95']:.0f}) | {_mark(r['answer_p50'] <= TARGET_ANSWER_MS)} |"
            )
            rss = r.get("rss", {})
            if "peak_rss_mb" in rss:
                extra = ""
                if r.get("server_peak_rss_mb"):
                    extra = f" (the Chroma server itself: {r['server_peak_rss_mb']:.0f} MB)"
                rows.append(
                    f"| peak RSS of the bot process at {chunks:,} chunks, {mode} | <= 1.5 GB "
                    f"| {rss['peak_rss_mb']:.0f} MB{extra} | {_mark(rss['peak_rss_mb'] <= TARGET_RSS_MB)} |"
                )
            elif "error" in rss:
                rows.append(f"| peak RSS at {chunks:,} chunks, {mode} | <= 1.5 GB | failed: {rss['error']} | n/a |")
    c = results.get("cold")
    if c and "median_s" in c:
        rows.append(
            f"| cold start `newsdesk ask` to the printed answer | <= {TARGET_COLD_S:g} s "
            f"| {c['median_s']:.2f} s (median of {len(c['walls'])}) | {_mark(c['median_s'] <= TARGET_COLD_S)} |"
        )
    return "\n".join(rows)


def figure(cfg: Config, name: str, caption: str, footer_info: str) -> str:
    rel = os.path.relpath(cfg.img_dir / name, cfg.doc.parent)
    return f"![{caption}]({rel})\n\n*{caption} {footer_info}*"


def throughput_section(t: dict[str, Any], info: dict[str, Any]) -> list[str]:
    peaks = ingest_throughput.peaks(t, info["cores"])
    ghz = t["clock_ghz"]
    macs = ingest_throughput.MACS_PER_TOKEN
    runs = "; ".join(
        f"{r['pipeline_rate']:.1f} / {r['raw_rate']:.1f} = {r['ratio']:.2f} (busy {r['busy_cores']:.2f})"
        for r in t["runs"]
    )
    lines = [
        f"Corpus: {t['articles']} evaluation paragraphs (XQuAD German, then PIAF) -> {t['chunks']} chunks of "
        f"{t['tokens_per_chunk']:.0f} e5 tokens on average (title + chunk, with `passage: ` and <s>/</s>). "
        f"Embedder `e5-small` in {t['dtype']}.",
        "",
        "| | chunks/s (median) |",
        "|---|---:|",
        f"| raw `encode_passages` on the same texts | {t['raw_rate']:.1f} |",
        f"| newsdesk ingest end to end (`Ingester.ingest`, fresh store) | {t['pipeline_rate']:.1f} |",
        f"| ratio | **{t['ratio']:.2f}** (target >= {TARGET_RATIO}) |",
        "",
        f"Runs (ingest / raw = ratio): {runs}.",
        "",
        "How the pipeline keeps the embedder's speed: chunks are embedded in batches of about 256 (sorted by "
        "length inside a batch, so little padding; batches of 64 padded enough to cost 0.1 of the ratio), and "
        "each batch is embedded in a worker thread while the main thread chunks the next articles and writes the "
        "previous batch (one catalog transaction per protocol step, one Chroma upsert).",
        "",
        "**The embedder against the hardware.** multilingual-e5-small has 12 layers of hidden width 384 and FFN "
        f"width 1536: 12 x (4 x 384^2 + 2 x 384 x 1536) = {macs / 1e6:.1f} M multiply-adds per token in its "
        "matmuls, plus 2 x L x 384 per token and layer in attention over a window of L tokens. Over the raw run's "
        f"{t['tokens']:,} tokens that is {t['flops'] / 1e9:.0f} GFLOP (2 FLOP per multiply-add, padding not "
        f"counted) in {t['raw_s']:.1f} s: **{t['gflops']:.0f} GFLOP/s**.",
        "",
        f"Peak of this CPU: clock {ghz:.2f} GHz ({t['clock_from']}; the kernel reports "
        f"{info['clock_ghz']:.2f} GHz from {info['clock_source']}). Float32: {info['cores']} cores x {ghz:.2f} GHz x "
        f"{t['peak']['fp32']} FLOP/cycle ({t['peak']['how_fp32']}) = **{peaks['float32']:.0f} GFLOP/s**.",
    ]
    if "bfloat16" in peaks:
        lines[-1] += (
            f" bfloat16 (VDPBF16PS: 32 bf16 products per 512-bit instruction, twice the float32 rate): "
            f"{info['cores']} x {ghz:.2f} x {t['peak']['bf16']} = **{peaks['bfloat16']:.0f} GFLOP/s**."
        )
    if "AMX bfloat16" in peaks:
        lines[-1] += (
            " AMX bfloat16 (TDPBF16PS: a 16x32 by 32x16 bfloat16 tile product, 8,192 multiply-adds, started once "
            "every 16 cycles per core: 1,024 FLOP/cycle, the figure of Intel's optimisation manual and AMX "
            f"overview): {info['cores']} x {ghz:.2f} x {t['peak']['amx_bf16']} = "
            f"**{peaks['AMX bfloat16']:.0f} GFLOP/s**."
        )
    top = "AMX bfloat16" if "AMX bfloat16" in peaks else ("bfloat16" if "bfloat16" in peaks else "float32")
    kind, matmul = yardstick(t)
    units = "; ".join(f"{what}: {', '.join(names)}" for what, names in t.get("units", {}).items())
    lines += [
        "",
        f"A plain torch matmul of the model's largest shape ([2048, 384] x [384, 1536]) reaches "
        f"{t['attainable_gflops']['bfloat16']:.0f} GFLOP/s in bfloat16 "
        f"({t['attainable_gflops']['bfloat16'] / peaks[top]:.0%} of the {top} peak) and "
        f"{t['attainable_gflops']['float32']:.0f} in float32 here at its best 10-call burst (the better of a 1.5 s "
        f"sample before the runs and one after). The embedder runs in {kind} (the faster of the two here, timed "
        "at load) and reaches " + matmul_share(t, kind, matmul) + f" and {t['gflops'] / peaks[top]:.0%} of the "
        f"{top} peak; the rest goes to attention's softmax, layer norms, GELU, conversions and the tokenizer."
        + attention_bound(t, kind, matmul),
        "",
        "Where `encode_passages` spends its time (torch.profiler, self CPU time, the first "
        f"{min(256, t['chunks'])} chunks): "
        + ", ".join(f"`{name}` {share:.0%}" for name, share in t.get("profile", []))
        + ". `mkldnn::_linear_pointwise` is the four matmuls of each layer (bias, GELU and the residual add "
        "fused by oneDNN), `e5_attention (vectorstore/attention.c)` attention by the compiled kernel (one call "
        "per layer for every window of the pass: nothing padded or masked), "
        "`_scaled_dot_product_flash_attention_for_cpu` torch's attention where the kernel does not build (run "
        "once per run of equal-length windows).",
        "",
        "Which unit did the matmuls (oneDNN's own report, `ONEDNN_VERBOSE=1`, in a child process; `amx` in a "
        f"name means the AMX tiles, `avx512_core_bf16` the AVX-512 vector unit): {units or 'not reported'}.",
        "",
    ]
    if not t["peak"]["amx"]:
        need = TARGET_PASSAGES * ingest_throughput.window_flops([202]) / 1e9
        vector = "bfloat16" if "bfloat16" in peaks else "float32"
        lines += [
            f"**150 passages/s is out of reach on this CPU.** Its vector features are "
            f"{', '.join(info['features']) or 'none of AVX-512'}, and it has no AMX. "
            f"150 passages of 200 tokens per second need {need:.0f} GFLOP/s of useful work, "
            f"{need / peaks[vector]:.1f}x the {vector} vector peak of both cores. "
            "int8 through VNNI (VPDPBUSD: 64 products per 512-bit instruction, four times the float32 rate) would "
            f"peak at {4 * peaks['float32']:.0f} GOP/s, still {need / (4 * peaks['float32']):.1f}x short before "
            "any quantisation loss, so we did not trade recall for it. "
            "AMX tile units (Sapphire Rapids and later) do about 8x the bfloat16 work per cycle of AVX-512, "
            "which is where the target comes from. On this machine the embedder runs at "
            f"{t['raw_rate']:.0f} passages of ~{t['tokens_per_chunk']:.0f} tokens per second in this run, "
            f"{t['gflops'] * 1e9 / ingest_throughput.window_flops([202]):.0f} passages of 200 tokens per second "
            "at the same FLOP rate.",
            "",
        ]
    lines += [
        "**bfloat16 against the float32 fallback** (dense ranking only, each paragraph one passage; float32 is "
        "what CPUs get where bfloat16 is not measured faster, chosen at run time by `bf16_is_faster()`):",
        "",
        "| set | paragraphs | questions | R@1 bf16 / fp32 | R@5 bf16 / fp32 | passages/s bf16 / fp32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, c in t["dtype_check"].items():
        b, f = c["bfloat16"], c["float32"]
        lines.append(
            f"| {name} | {b['passages']} | {b['questions']} | {b['R@1']:.3f} / {f['R@1']:.3f} "
            f"| {b['R@5']:.3f} / {f['R@5']:.3f} | {b['passages_per_s']:.1f} / {f['passages_per_s']:.1f} |"
        )
    compared = {name: c["torch_attention"] for name, c in t["dtype_check"].items() if "torch_attention" in c}
    if compared:
        lines += [
            "",
            f"**The compiled attention against torch's** (the same check, {t['dtype']}, the encoder's compiled "
            "kernel against torch's fused attention: recall must not move):",
            "",
            "| set | R@1 compiled / torch | R@5 compiled / torch | passages/s compiled / torch |",
            "|---|---:|---:|---:|",
        ]
        for name, torch_run in compared.items():
            ours = t["dtype_check"][name]["bfloat16"]
            lines.append(
                f"| {name} | {ours['R@1']:.3f} / {torch_run['R@1']:.3f} | {ours['R@5']:.3f} / {torch_run['R@5']:.3f} "
                f"| {ours['passages_per_s']:.1f} / {torch_run['passages_per_s']:.1f} |"
            )
    return lines


def attention_bound(t: dict[str, Any], kind: str, matmul: float) -> str:
    """The sentences that say how fast attention runs and how far its rate lets the embedder go (absent from
    older results; older results hold torch's rate alone, as a number)."""
    if "attention_gflops" not in t:
        return ""
    rates = t["attention_gflops"] if isinstance(t["attention_gflops"], dict) else {"torch": t["attention_gflops"]}
    used = t.get("attention", "torch")
    share, rate = t["attention_share"], rates.get(used, rates["torch"])
    bound = 1 / ((1 - share) + share * matmul / rate)
    shape = (
        f"{ingest_throughput.ATTENTION_WINDOWS} windows of {ingest_throughput.ATTENTION_TOKENS} tokens, "
        f"{ingest_throughput.HEADS} heads of {ingest_throughput.HIDDEN // ingest_throughput.HEADS}"
    )
    text = (
        f" Torch's fused attention alone, at the model's shape ({shape}), reaches {rates['torch']:.0f} GFLOP/s in "
        f"{kind} here ({rates['torch'] / matmul:.0%} of the matmul)"
    )
    if "compiled" in rates:
        text += (
            f"; the encoder's compiled kernel (vectorstore/attention.c, AVX-512, float32 sums) reaches "
            f"{rates['compiled']:.0f} ({rates['compiled'] / matmul:.0%}), and the encoder "
            + ("ran it" if used == "compiled" else "did not use it")
        )
    elif used == "torch":
        text += " (the compiled kernel did not build on this machine: the encoder ran torch's)"
    return text + (
        f". Attention is {share:.0%} of the embedder's FLOPs, so with every matmul at the matmul's rate and "
        f"attention at its own the embedder would reach at most **{bound:.0%}** of the matmul."
    )


def matmul_share(t: dict[str, Any], kind: str, matmul: float) -> str:
    """The embedder's share of the yardstick (`yardstick`), saying how the matmul was timed."""
    target = f"(target >= {TARGET_MATMUL_SHARE:.0%}"
    if "sustained_matmul_gflops" not in t:
        return f"**{t['gflops'] / matmul:.0%} of what the {kind} matmul attains at its best burst** {target})"
    repeats = ", ".join(f"{r['matmul_gflops']:.0f}" for r in t["runs"])
    return (
        f"**{t['gflops'] / matmul:.0%} of what the {kind} matmul sustains** {target}; "
        f"{t['gflops'] / t['attainable_gflops'][kind]:.0%} of its best burst): the matmul timed as the embedder "
        f"is, called back to back right after each raw run for as long as that run took, {matmul:.0f} GFLOP/s "
        f"(median of the repeats: {repeats}),"
    )


def burst_gap(t: dict[str, Any] | None) -> str:
    """The matmul's best-burst and sustained figures of this page's run, where it has both."""
    if not t or "sustained_matmul_gflops" not in t:
        return ""
    kind, sustained = yardstick(t)
    burst = t["attainable_gflops"][kind]
    return f" (in this page's run: {burst:.0f} GFLOP/s at its best burst, {sustained:.0f} sustained)"


def cpu_history(cfg: Config, results: dict[str, Any], info: dict[str, Any], ran: list[str]) -> list[dict[str, Any]]:
    """The throughput, cold-start and warm answer figures of every CPU this page was produced on, one row per
    CPU (kept in benchmarks-cpus.json beside the page): a run replaces its own CPU's row and leaves the others."""
    path = cfg.doc.parent / "benchmarks-cpus.json"
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    t, c, s = results.get("throughput"), results.get("cold"), results.get("scale")
    if not ({"throughput", "cold", "scale"} & set(ran)) or not t:
        return rows
    largest = s["sizes"][list(s["sizes"])[-1]] if s else {}
    matmul_dtype, matmul_gflops = yardstick(t)
    row = {
        "cpu": info["cpu"],
        "amx": info["amx"],
        "cores": info["cores"],
        "commit": info["commit"],
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "raw_rate": round(t["raw_rate"], 1),
        "pipeline_rate": round(t["pipeline_rate"], 1),
        "ratio": round(t["ratio"], 2),
        "tokens_per_chunk": round(t["tokens_per_chunk"]),
        "gflops": round(t["gflops"]),
        "matmul_dtype": matmul_dtype,
        "matmul_gflops": round(matmul_gflops),
        "matmul_timing": "sustained" if "sustained_matmul_gflops" in t else "best burst",
        "cold_s": round(c["median_s"], 2) if c and "median_s" in c else None,
        "answer_p50_ms": round(largest["embedded"]["answer_p50"]) if "embedded" in largest else None,
        "reader_answer_p50_ms": round(largest[scale.READER_MODE]["answer_p50"])
        if scale.READER_MODE in largest
        else None,
        "answer_chunks": largest["embedded"]["build"]["chunks"] if "embedded" in largest else None,
        "busy_cores": round(max(t.get("busy_cores", 0.0), (c or {}).get("busy_cores", 0.0)), 2),
    }
    rows = [r for r in rows if (r["cpu"], r["amx"]) != (row["cpu"], row["amx"])] + [row]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return rows


def history_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| CPU | AMX | raw passages/s (~tokens) | ingest passages/s | ingest / raw | embedder GFLOP/s "
        "| matmul GFLOP/s, the embedder's type | embedder / matmul | cold `ask` (s) "
        "| warm answer p50 (ms), cosine / reader | other processes' cores | commit, date |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cold = f"{r['cold_s']:.2f}" if r.get("cold_s") is not None else "n/a"
        warm = "n/a"
        if r.get("answer_p50_ms") is not None:
            reader = r.get("reader_answer_p50_ms")
            warm = f"{r['answer_p50_ms']} / {reader if reader is not None else 'n/a'} at {r['answer_chunks']:,} chunks"
            if r.get("latency_note"):
                warm += f" ({r['latency_note']})"
        lines.append(
            f"| {r['cpu']} ({r['cores']} cores) | {'yes' if r['amx'] else 'no'} | {r['raw_rate']:.1f} "
            f"(~{r['tokens_per_chunk']}) | {r['pipeline_rate']:.1f} | {r['ratio']:.2f} | {r['gflops']} "
            f"| {r['matmul_gflops']} ({r['matmul_dtype']}, {r.get('matmul_timing', 'best burst')}) "
            f"| {r['gflops'] / r['matmul_gflops']:.0%} | {cold} | {warm} "
            f"| {r['busy_cores']:.2f} | {r['commit']}, {r['date']} |"
        )
    return "\n".join(lines)


# A kept part's section ends with this note naming the CPU it was measured on; a later run reads the name back.
KEPT_PREFIX, KEPT_SUFFIX = "*Kept from the page's earlier run on ", ": this run did not measure it.*"
SECTIONS = {
    "peer": ("## newsdesk against the plain LangChain pipeline", ("| retrieval ",)),
    "throughput": ("## Ingest throughput and the embedder against the hardware", ()),
    "scale": ("## Query latency at scale", ("| answer p50 ", "| peak RSS ")),
    "cold": ("## Cold start", ()),
}


def earlier_page(doc: Path, results: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """From the page as it stands, what this run cannot redo: the sections and summary rows of parts that have
    no result here (measured on another machine, whose results are not in this data dir), and the CPU each was
    measured on: the one its section's note names where an earlier run already kept it, else the page's own.
    Parts kept by different runs keep different CPUs (a run on a third CPU must not name one for all)."""
    if not doc.exists():
        return {}, {}, {}
    text = doc.read_text(encoding="utf-8")
    own = re.search(r"^- CPU: (.+?) \(KVM guest\)", text, re.M)
    page_cpu = own.group(1).strip() if own else ""
    chunks = ["## " + c for c in text.split("\n## ")[1:]]
    sections, rows, cpus = {}, {}, {}
    for part, (heading, prefixes) in SECTIONS.items():
        if part in results:
            continue
        found = next((c for c in chunks if c.startswith(heading + "\n")), None)
        if found:
            body, _, note = found.rstrip("\n").partition("\n\n" + KEPT_PREFIX)
            sections[part] = body
            cpus[part] = note.split(KEPT_SUFFIX)[0] if note else page_cpu
        rows[part] = [line for line in text.splitlines() if prefixes and line.startswith(prefixes)]
    return sections, rows, cpus


def kept_summary(rows: dict[str, list[str]], cpus: dict[str, str]) -> list[str]:
    """The summary rows of the parts this run did not measure, under the CPU each was measured on."""
    lines = []
    for cpu in dict.fromkeys(cpus.get(part, "") for part, found in rows.items() if found):
        parts = [part for part, found in rows.items() if found and cpus.get(part, "") == cpu]
        lines += [
            "",
            f"Kept from the page's earlier run on {cpu or 'another machine'} (parts this run did not measure: "
            f"{', '.join(parts)}):",
            "",
            "| what | target | measured | met |",
            "|---|---|---|---|",
            *(row for part in parts for row in rows[part]),
        ]
    return lines


def write_doc(cfg: Config, results: dict[str, Any], info: dict[str, Any], ran: list[str], seconds: float) -> None:
    kept, kept_rows, kept_cpus = earlier_page(cfg.doc, results)
    cfg.img_dir.mkdir(parents=True, exist_ok=True)
    commands = list(dict.fromkeys(r.get("command", cfg.command) for r in results.values()))
    command = " && ".join(commands) if commands else cfg.command
    footer = f"{machine_line(info)}. Command: {command}"
    where = f"Machine: {info['cpu']}, {info['cores']} cores. Versions: {machine_line(info).split('; ', 1)[1]}."
    where += f" Produced by `{command}`."
    v = info["versions"]
    busy = {part: results[part].get("busy_cores") for part in results if isinstance(results[part], dict)}
    busiest = max((b for b in busy.values() if b is not None), default=0.0)
    if results.get("scale"):
        busiest = max([busiest, *(r["busy_cores"] for row in results["scale"]["sizes"].values() for r in row.values())])
    parts: list[str] = [
        "# Benchmarks",
        "",
        "Speed and quality of newsdesk on one small machine, all from one command (below), which also draws the "
        "figures. Every timed figure is warm unless it says cold, on "
        f"{info['cpu']} with {info['cores']} cores; another engineer's test runs shared the machine, so each part "
        "records how many cores other processes kept busy meanwhile (from /proc/stat, minus our own CPU time). "
        "Timings are medians of repeated measurements.",
        "",
        "## Summary",
        "",
        summary_table(results, info),
        *kept_summary(kept_rows, kept_cpus),
        "",
        "Embedder throughput, cold start and warm answer latency over the largest corpus on each CPU the page was "
        "produced on (`throughput`, `cold` and `scale` parts; a run replaces its own CPU's row, figures of other "
        'CPUs stay as measured there). The matmul is timed as the embedder is ("sustained": after each raw run, '
        "for as long) since 2026-12-06; earlier rows compare the embedder with the matmul's best 10-call burst"
        + burst_gap(results.get("throughput"))
        + ":",
        "",
        history_table(cpu_history(cfg, results, info, ran)),
        "",
        *(
            [
                f"**Caution:** other processes kept up to {busiest:.1f} of the {info['cores']} cores busy during "
                "this run. torch runs the embedder on one thread per core, and when another process holds a core "
                "every parallel step waits for a time slice: on this machine encoding 20 sentences took 1.8 s "
                "with 2 threads against 0.5 s with 1 thread while the other core was busy. The latency and "
                "throughput figures are therefore far above what an idle machine gives; recall, hit@k and RSS "
                "do not depend on it. Rerun on an idle machine for the speed targets.",
                "",
            ]
            if busiest > 0.5
            else []
        ),
        "## Machine and run",
        "",
        f"- CPU: {info['cpu']} (KVM guest), {info['cores']} cores, {info['memory_gb']} GB RAM; vector features: "
        f"{', '.join(info['features']) or 'none'}; clock {info['clock_ghz']:.2f} GHz by {info['clock_source']}"
        + (f", {info['measured_clock_ghz']:.2f} GHz measured" if info["measured_clock_ghz"] else "")
        + f"; {'AMX' if info['amx'] else 'no AMX'}",
        f"- Versions: Python {v['python']}, torch {v['torch']}, chromadb {v['chromadb']}, numpy {v['numpy']}, "
        f"langchain-core {v['langchain-core']}, langchain-chroma {v['langchain-chroma']}, langchain-huggingface "
        f"{v['langchain-huggingface']}, langchain-text-splitters {v['langchain-text-splitters']}, "
        f"sentence-transformers {v['sentence-transformers']}",
        f"- Code: commit {info['commit']}",
        f"- Date: page written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; the parts took "
        f"{sum(r.get('seconds', 0) for r in results.values()) / 60:.1f} min ("
        + ", ".join(f"{name} {r.get('finished', 'from an earlier run')}" for name, r in results.items())
        + f"); this invocation ran {', '.join(ran) or 'no part'} in {seconds / 60:.1f} min",
        "- Cores kept busy by other processes (mean over each part, 0 = idle machine): "
        + ", ".join(f"{part} {value:.2f}" for part, value in busy.items() if value is not None)
        + (f"; at most {busiest:.2f} in a latency pass" if results.get("scale") else ""),
        "",
        "Produced by (from the repository root):",
        "",
        "```bash",
        *commands,
        "```",
        "",
    ]

    def kept_note(part: str) -> str:
        return KEPT_PREFIX + (kept_cpus.get(part) or "another machine") + KEPT_SUFFIX

    p = results.get("peer")
    if not p and "peer" in kept:
        parts += [kept["peer"], "", kept_note("peer"), ""]
    if p:
        peer.plot(p, cfg.img_dir / "bench-peer.png", footer)
        parts += [
            "## newsdesk against the plain LangChain pipeline",
            "",
            (peer.__doc__ or "").split("\n", 2)[2].strip(),
            "",
            peer.table(p),
            "",
            f"Loading the peer's embedder (HuggingFaceEmbeddings, all-MiniLM-L6-v2) took {p['peer_load_s']:.1f} s. "
            "newsdesk ingest includes language detection, sentence-aware chunking, BM25 indexing and the "
            "crash-safe write protocol; its embedder is about three times the peer's size per token.",
            "",
            figure(cfg, "bench-peer.png", "Retrieval quality, newsdesk and the LangChain peer, same data.", where),
            "",
        ]
    t = results.get("throughput")
    if not t and "throughput" in kept:
        parts += [kept["throughput"], "", kept_note("throughput"), ""]
    if t:
        ingest_throughput.plot(t, cfg.img_dir / "bench-throughput.png", footer, info["cores"])
        parts += [
            "## Ingest throughput and the embedder against the hardware",
            "",
            *throughput_section(t, info),
            "",
            figure(cfg, "bench-throughput.png", "Ingest throughput and embedder FLOP/s.", where),
            "",
        ]
    s = results.get("scale")
    if not s and "scale" in kept:
        parts += [kept["scale"], "", kept_note("scale"), ""]
    if s:
        scale.plot(s, cfg.img_dir / "bench-scale.png", footer)
        doc = (scale.__doc__ or "").split("\n", 2)[2].strip()
        parts += [
            "## Query latency at scale",
            "",
            doc,
            "",
            f'{s["questions"]} questions per pass, {s["rounds"]} passes per cell. "of which retrieve / answer" '
            "splits `ask` into its search and its extractive answer (scoring the sentences of the top passages "
            "with e5). The hit@5 column is a sanity check that the copies do not drown the real paragraph.",
            "",
            scale.table(s),
            "",
        ]
        largest = list(s["sizes"])[-1]
        for mode, r in s["sizes"][largest].items():
            rss = r.get("rss", {})
            if "peak_rss_mb" in rss:
                line = (
                    f"- Peak RSS, `newsdesk ask` answering {rss['questions']} questions from stdin over "
                    f"{r['build']['chunks']:,} chunks, {mode}: **{rss['peak_rss_mb']:.0f} MB** "
                    f"(the process ran {rss['seconds']:.1f} s)"
                )
                if r.get("server_peak_rss_mb"):
                    line += f"; the Chroma server process peaked at {r['server_peak_rss_mb']:.0f} MB"
                parts.append(line + ".")
        parts += ["", figure(cfg, "bench-scale.png", "Warm latency against corpus size.", where), ""]
    c = results.get("cold")
    if not c and "cold" in kept:
        parts += [kept["cold"], "", kept_note("cold"), ""]
    if c:
        parts += ["## Cold start", ""]
        if "median_s" not in c:
            parts += [f"Failed: {c.get('error')}", ""]
        else:
            cold_start.plot(c, cfg.img_dir / "bench-cold.png", footer)
            walls = ", ".join(f"{w:.2f}" for w in c["walls"])
            parts += [
                (cold_start.__doc__ or "").split("\n", 2)[2].strip(),
                "",
                f"`{c['command']}`: **{c['median_s']:.2f} s** median (runs: {walls} s; "
                f"target <= {TARGET_COLD_S:g} s). `newsdesk chat` answering the same question from stdin: "
                f"{c['chat_median_s']:.2f} s median. `newsdesk bot` builds the same engine the same way "
                "(`newsdesk.runtime.build_engine`) before it polls.",
                "",
                "| step (fresh process, timed one by one) | seconds |",
                "|---|---:|",
                f"| Python interpreter start (`python -c pass`) | {c['interpreter_s']:.2f} |",
                *(f"| {name} | {value:.2f} |" for name, value in c["phases"]),
                "",
                'Costliest imports (`python -X importtime -c "'
                + cold_start._IMPORTS
                + '"`, cumulative, one run): '
                + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in c.get("imports", []))
                + ".",
                "",
                figure(cfg, "bench-cold.png", "Where a cold `newsdesk ask` spends its time.", where),
                "",
            ]
    cfg.doc.parent.mkdir(parents=True, exist_ok=True)
    cfg.doc.write_text("\n".join(parts), encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; writes to --out-dir (default: a temp dir)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {','.join(PARTS)}")
    parser.add_argument("--data-dir", type=Path, help="caches and stores (default ~/.cache/newsdesk-bench)")
    parser.add_argument("--out-dir", type=Path, help="write benchmarks.md and img/ here instead of docs/")
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR, help="folder holding xquad/ and piaf/")
    parser.add_argument("--scale-questions", type=int, help="questions per latency pass (default 60)")
    parser.add_argument("--scale-rounds", type=int, help="latency passes per corpus and mode (default 3)")
    parser.add_argument("--doc-only", action="store_true", help="rewrite the page from the saved results only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = [] if args.doc_only else [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(unknown)} (choose from {', '.join(PARTS)})")
    if not (args.eval_dir / "xquad" / "xquad.de.dev.json").exists():
        raise SystemExit(f"no evaluation data under {args.eval_dir}")
    out_dir = args.out_dir or (Path(tempfile.mkdtemp(prefix="newsdesk-bench-")) if args.smoke else None)
    doc = out_dir / "benchmarks.md" if out_dir else DOC
    data_dir = args.data_dir or (out_dir / "data" if args.smoke else Path.home() / ".cache" / "newsdesk-bench")
    shown = [
        a if a != sys.executable else os.path.relpath(a, ROOT) for a in (argv if argv is not None else sys.argv[1:])
    ]
    command = shlex.join([".venv/bin/python", "bench/run_all.py", *shown])
    cfg = Config(
        smoke=args.smoke,
        data_dir=data_dir,
        doc=doc,
        eval_dir=args.eval_dir,
        command=command,
        questions_override=args.scale_questions,
        rounds_override=args.scale_rounds,
    )
    started = time.perf_counter()
    info = machine()
    results: dict[str, Any] = {}
    for name in PARTS:
        if name in parts:
            log(f"part {name}: start")
            part_started = time.perf_counter()
            results[name] = PARTS[name].run(cfg)
            results[name]["seconds"] = time.perf_counter() - part_started
            results[name]["command"] = cfg.command
            results[name]["finished"] = datetime.now(UTC).strftime("finished %Y-%m-%d %H:%M UTC")
            save_result(cfg, name, results[name])
            log(f"part {name}: done in {results[name]['seconds']:.0f} s")
        elif (saved := load_result(cfg, name)) is not None:
            results[name] = saved
    write_doc(cfg, results, info, parts, time.perf_counter() - started)
    log(f"wrote {doc}")
    print(summary_table(results, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
