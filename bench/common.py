"""Shared pieces of the benchmark suite (`bench/run_all.py`): configuration, the machine, timing, eval data.

Every part measures in the driver's process unless it needs a fresh one (cold start, peak RSS), with the
torch thread pool at the number of cores. Timings on a shared machine are noisy, so each part also records how
many cores other processes kept busy while it ran (from /proc/stat, minus this process's own CPU time).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT.parent / "shared" / "eval"
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass
class Config:
    """What one run measures and where it writes; `smoke` shrinks every size so the run takes about a minute."""

    smoke: bool
    data_dir: Path
    doc: Path
    eval_dir: Path = EVAL_DIR
    command: str = ""
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    questions_override: int | None = None
    rounds_override: int | None = None

    @property
    def img_dir(self) -> Path:
        return self.doc.parent / "img"

    # sizes -------------------------------------------------------------------------------------------------
    @property
    def peer_paragraphs(self) -> int | None:
        """Paragraphs per evaluation set in the peer comparison (None: all)."""
        return 8 if self.smoke else None

    @property
    def peer_questions(self) -> int | None:
        """Questions per set, spread evenly over the set (PIAF has 3,835: timing them all on a busy 2-core
        machine costs minutes without changing hit@k by more than its sampling error, ~0.013 at 1,200)."""
        return 12 if self.smoke else 1200

    @property
    def throughput_paragraphs(self) -> tuple[int, int]:
        """(XQuAD de, PIAF) paragraphs in the ingest-throughput corpus."""
        return (8, 8) if self.smoke else (120, 200)

    @property
    def throughput_repeats(self) -> int:
        return 1 if self.smoke else 3

    @property
    def dtype_check_paragraphs(self) -> tuple[int, int]:
        """(XQuAD de, PIAF) paragraphs for the bfloat16-against-float32 recall check."""
        return (6, 6) if self.smoke else (120, 300)

    @property
    def scale_sizes(self) -> list[int]:
        return [200, 600] if self.smoke else [1_000, 10_000, 100_000]

    @property
    def scale_questions(self) -> int:
        """Distinct questions per latency pass (half English over German, half French)."""
        return self.questions_override or (6 if self.smoke else 60)

    @property
    def scale_rounds(self) -> int:
        return self.rounds_override or (1 if self.smoke else 3)

    @property
    def rss_questions(self) -> int:
        return 5 if self.smoke else 30

    @property
    def cold_repeats(self) -> int:
        return 1 if self.smoke else 5


# --- the machine ---------------------------------------------------------------------------------------------


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags() -> set[str]:
    return set(" ".join(re.findall(r"^flags\s*:(.*)$", _cpuinfo(), re.M)).split())


def cpu_model() -> str:
    """The CPU's name with its family and model numbers: a cloud guest's name ("AMD EPYC") is the same on Zen 4
    and Zen 5, whose speeds differ by two and a half times here, and the figures of each are kept apart."""
    info = _cpuinfo()
    found = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    name = found.group(1).strip() if found else (platform.processor() or "unknown CPU")
    family, model = _cpu_number(info, "cpu family"), _cpu_number(info, "model")
    return f"{name} (family {family}, model {model})" if family is not None and model is not None else name


def _cpu_number(info: str, field: str) -> int | None:
    found = re.search(rf"^{field}\s*:\s*(\d+)$", info, re.M)
    return int(found.group(1)) if found else None


def save_plot(fig: Any, path: Path, footer: str, bottom: float = 0.06) -> None:
    """Every plot ends the same way: the machine/command footer under it, saved as PNG, memory released."""
    import matplotlib.pyplot as plt

    fig.text(0.01, 0.01, footer, fontsize=6, color="dimgray")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def nominal_clock_ghz() -> tuple[float, str]:
    """The clock the kernel reports: `cpu MHz` when present, else the TSC rate (BogoMIPS / 2 on x86)."""
    text = _cpuinfo()
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    if mhz and float(mhz.group(1)) > 0:
        return float(mhz.group(1)) / 1000, "`cpu MHz` in /proc/cpuinfo"
    bogo = re.search(r"^bogomips\s*:\s*([\d.]+)", text, re.M | re.I)
    if bogo:
        return float(bogo.group(1)) / 2000, "BogoMIPS / 2 in /proc/cpuinfo (the TSC rate)"
    return 0.0, "unknown"


_CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    double best = 1e30;
    for (int rep = 0; rep < 40; rep++) {
        struct timespec a, b;
        long x = 1, n = 2000000;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++) {
            __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(x));
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
        if (s < best) best = s;
    }
    printf("%f\n", 3.0 * 4 * 2000000 / best / 1e9);
    return 0;
}
"""

# How far a measured clock may stray from the kernel's figure before the measurement is distrusted: a guest's
# `cpu MHz` is often the base clock while the core turbos ~1.5x above it (AMD EPYC here: 2.60 reported, 3.68
# measured); past 2x (or under half) the measurement, not the clock, is what is wrong.
CLOCK_SANE_RATIO = (0.5, 2.0)


@lru_cache(maxsize=1)
def measured_clock_ghz() -> float | None:
    """The clock a core actually runs at: a chain of dependent 64-bit IMULs retires one per 3 cycles on every
    x86 core since Nehalem and Zen (Intel's and AMD's optimisation manuals), so 3 x IMULs per second is cycles
    per second (best of 40 runs of ~10 ms, so that one of them runs undisturbed on a busy machine; None without
    a C compiler or off x86). A chain of `add $1` read 20.33 GHz on a Sapphire Rapids Xeon: its renamer folds
    immediate adds, so they retire several per cycle and count nothing."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler or platform.machine() not in ("x86_64", "AMD64"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp) / "clock.c", Path(tmp) / "clock"
        source.write_text(_CLOCK_C)
        try:
            subprocess.run([compiler, "-O1", "-o", str(binary), str(source)], check=True, capture_output=True)
            out = subprocess.run([str(binary)], check=True, capture_output=True, text=True, timeout=60).stdout
            return float(out.strip())
        except (OSError, subprocess.SubprocessError, ValueError):
            return None


def kernel_max_clock_ghz() -> tuple[float, str] | None:
    """The highest clock the kernel knows for cpu0 (cpufreq's cpuinfo_max_freq), absent in most VMs."""
    try:
        khz = float(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
    except (OSError, ValueError):
        return None
    return khz / 1e6, "cpufreq `cpuinfo_max_freq` in sysfs"


def best_clock(measured: float | None) -> tuple[float, str]:
    """The clock used for peaks: the measurement when it is within CLOCK_SANE_RATIO of the kernel's figure (or
    the kernel has none), else the kernel's figure, saying why."""
    kernel, source = kernel_max_clock_ghz() or nominal_clock_ghz()
    if measured is None:
        return kernel, source
    low, high = CLOCK_SANE_RATIO
    if not kernel or low <= measured / kernel <= high:
        return measured, "measured (dependent 64-bit IMULs, 3 cycles each)"
    return kernel, f"{source}; the measurement ({measured:.2f} GHz) is over {high:g}x off it and was not used"


def flops_per_cycle() -> dict[str, Any]:
    """Peak floating-point work per cycle and core from the vector and tile units, with the reasoning shown.

    AVX-512 FMA: 16 float32 lanes x 2 FLOP (multiply + add). Zen 4 (AMD family 25) runs a 512-bit FMA on its
    two 256-bit pipes, so one per cycle; Zen 5 (family 26; the server and desktop parts) has two 512-bit FMA
    pipes, as Intel server cores have two 512-bit FMA units: two per cycle. VDPBF16PS
    (avx512_bf16) does 32 bfloat16 products and sums per 512-bit instruction, twice the float32 rate.
    AMX (amx_bf16): TDPBF16PS multiplies a 16x32 bfloat16 tile by a 32x16 one into 16x16 float32 sums, 8,192
    multiply-adds, and the tile unit starts one every 16 cycles: 1,024 FLOP per cycle and core (Intel 64 and
    IA-32 Architectures Optimization Reference Manual, AMX chapter; Intel's AMX overview quotes the same 1,024
    bfloat16 and 2,048 int8 operations per cycle per core).
    """
    flags = cpu_flags()
    info = _cpuinfo()
    amd = "AuthenticAMD" in info
    zen4 = amd and _cpu_number(info, "cpu family") == 25
    if "avx512f" in flags:
        units = 1 if zen4 else 2
        lanes, how = 16, f"16 float32 lanes x 2 FLOP per FMA x {units} 512-bit FMA per cycle"
        if zen4:
            how += " (Zen 4 splits a 512-bit FMA over its two 256-bit pipes)"
        elif amd:
            how += " (Zen 5 has two 512-bit FMA pipes)"
    elif "avx2" in flags:
        units, lanes, how = 2, 8, "8 float32 lanes x 2 FLOP per FMA x 2 256-bit FMA units"
    else:
        units, lanes, how = 1, 4, "4 float32 lanes x 2 FLOP (SSE, no FMA assumed)"
    fp32 = lanes * 2 * units
    bf16 = 2 * fp32 if "avx512_bf16" in flags else None
    amx = "amx_bf16" in flags
    return {
        "fp32": fp32,
        "bf16": bf16,
        "amx_bf16": 2 * 16 * 16 * 32 // 16 if amx else None,
        "how_fp32": how,
        "amx": amx,
    }


_UNIT_PROBE = r"""
import torch
import torch.nn.functional as F
from vectorstore.e5_torch import E5Encoder
a, b = torch.randn(2048, 384).bfloat16(), torch.randn(384, 1536).bfloat16()
torch.matmul(a, b)
print("#encoder", flush=True)
E5Encoder(dtype="bfloat16").encode(["passage: " + "a window of about a hundred and thirty tokens " * 14])
"""


def matmul_units() -> dict[str, list[str]]:
    """Which oneDNN implementation ran each kind of bfloat16 work (ONEDNN_VERBOSE=1 in a child process): the
    plain matmul of the benchmark's shape, and the encoder's linears and attention. `avx512_core_amx` /
    `avx10_1_512_amx` in a name means AMX tiles, `avx512_core_bf16` the AVX-512 BF16 vector unit."""
    proc = subprocess.run(
        [sys.executable, "-c", _UNIT_PROBE],
        cwd=ROOT,
        env=offline_env(ONEDNN_VERBOSE="1", OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    units: dict[str, list[str]] = {}
    section = "torch.matmul bfloat16 [2048, 384] x [384, 1536]"
    for line in proc.stdout.splitlines():
        if line.startswith("#encoder"):
            section = "e5 encoder"
            continue
        fields = line.split(",")
        if len(fields) > 6 and fields[:4] == ["onednn_verbose", "v1", "primitive", "exec"] and fields[5] != "reorder":
            name = f"{fields[5]} {fields[6]}"
        elif len(fields) > 5 and fields[:3] == ["onednn_verbose", "v1", "ukernel"] and fields[3] == "exec":
            name = f"{fields[5]} ukernel (attention; its log line names no ISA)"
        else:
            continue
        units.setdefault(section, [])
        if name not in units[section]:
            units[section].append(name)
    return units


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "chromadb", "langchain-core", "langchain-chroma", "langchain-huggingface",
                 "langchain-text-splitters", "sentence-transformers", "numpy"):  # fmt: skip
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return (commit or "unknown") + (" (with uncommitted changes)" if dirty.strip() else "")


def machine() -> dict[str, Any]:
    """Everything a figure must name: CPU, cores, clock, vector features, versions, code."""
    flags = cpu_flags()
    clock, clock_source = nominal_clock_ghz()
    return {
        "amx": bool(flags & {"amx_bf16", "amx_int8"}),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "clock_ghz": clock,
        "clock_source": clock_source,
        "measured_clock_ghz": measured_clock_ghz(),
        "features": [
            f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8") if f in flags
        ],
        "versions": versions(),
        "commit": git_commit(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One line for figure footers."""
    v = info["versions"]
    return (
        f"{info['cpu']}, {info['cores']} cores; Python {v['python']}, torch {v['torch']}, chromadb {v['chromadb']}, "
        f"langchain-core {v['langchain-core']}"
    )


# --- load on the machine -------------------------------------------------------------------------------------


def _snapshot() -> tuple[float, float, float]:
    """Wall clock, CPU seconds the machine spent busy, CPU seconds this process and its children used."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), busy, own.user + own.system + own.children_user + own.children_system


class BusyMeter:
    """Mean number of cores kept busy by other processes between start and stop."""

    def __init__(self) -> None:
        self._start = _snapshot()
        self.value = 0.0

    def stop(self) -> float:
        end = _snapshot()
        wall, busy, own = (b - a for a, b in zip(self._start, end, strict=True))
        self.value = max(0.0, (busy - own) / wall) if wall > 0 else 0.0
        return self.value


@contextmanager
def busy_meter() -> Iterator[BusyMeter]:
    meter = BusyMeter()
    try:
        yield meter
    finally:
        meter.stop()


# --- statistics ----------------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def latency_summary(ms: list[float]) -> dict[str, float]:
    return {"p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95), "mean": statistics.fmean(ms), "n": len(ms)}


# --- environment and results ---------------------------------------------------------------------------------


def offline_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: offline models, no telemetry, the repository importable."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    env.update(TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for key in ("CHROMA_HOST", "CHROMA_PORT", "LLM", "NEWSDESK_EMBEDDER", "NEWSDESK_COLLECTION"):
        env.pop(key, None)
    env.update(extra)
    return env


def save_result(cfg: Config, part: str, result: dict[str, Any]) -> None:
    path = cfg.data_dir / "results" / f"{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


def load_result(cfg: Config, part: str) -> dict[str, Any] | None:
    path = cfg.data_dir / "results" / f"{part}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- evaluation data -----------------------------------------------------------------------------------------


@dataclass
class EvalCorpus:
    """One evaluation set: paragraphs (one article each, id `title#index`) and questions about them."""

    name: str
    label: str
    contexts: Path
    paragraphs: dict[str, str]
    questions: list[Any]  # newsdesk.evaluation.Question

    def articles(self) -> list[Any]:
        """The paragraphs as newsdesk articles, titled as `newsdesk eval` titles them."""
        from ingest.articles import Article

        return [
            Article(id=aid, title=aid.split("#")[0].replace("_", " "), text=text, origin=str(self.contexts))
            for aid, text in self.paragraphs.items()
        ]


def eval_corpora(eval_dir: Path, paragraphs: int | None = None, questions: int | None = None) -> list[EvalCorpus]:
    """English questions over German XQuAD paragraphs, and PIAF (French over French); optionally the first
    `paragraphs` paragraphs of each and `questions` questions about them, evenly spaced."""
    from newsdesk.evaluation import load_squad, questions_for

    de = eval_dir / "xquad" / "xquad.de.dev.json"
    piaf = eval_dir / "piaf" / "piaf-v1.0.json"
    english = eval_dir / "xquad" / "xquad.en.dev.json"
    sets = [
        ("en-de", "XQuAD, English questions over German paragraphs", de, questions_for(de, english, None)),
        ("fr", "PIAF, French questions over French paragraphs", piaf, load_squad(piaf)[1]),
    ]  # fmt: skip
    corpora = []
    for name, label, contexts, asked in sets:
        texts = load_squad(contexts)[0]
        if paragraphs is not None:
            texts = dict(list(texts.items())[:paragraphs])
        chosen = [q for q in asked if q.article_id in texts]
        if questions and len(chosen) > questions:
            step = len(chosen) / questions
            chosen = [chosen[int(i * step)] for i in range(questions)]
        corpora.append(EvalCorpus(name, label, contexts, texts, chosen))
    return corpora


def clear_query_cache(embedder: Any) -> None:
    """Forget remembered query vectors, so a timed pass pays for embedding every question it asks."""
    cache = getattr(embedder, "__dict__", {}).get("_query_cache")
    if cache is not None:
        cache.clear()


def write_marked_section(doc: Path, name: str, text: str) -> None:
    """Put `text` between the page's `<!-- name:begin -->` and `<!-- name:end -->` lines (appended when the page
    has none): several scripts write one page, each owning only its section. Written to a temporary file and
    moved into place, so an interrupted run leaves the page as it was."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}\n{end}"
    page = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if begin in page and end in page:
        page = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, page, count=1, flags=re.DOTALL)
    else:
        page = page.rstrip("\n") + ("\n\n" if page else "") + block + "\n"
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=doc.parent, delete=False) as handle:
        handle.write(page)
    Path(handle.name).replace(doc)
