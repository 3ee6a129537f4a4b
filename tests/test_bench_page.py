"""The benchmark page keeps, for each part a run did not redo, the name of the CPU that measured it, whole: names
carry "(family 26, model 2)", which the page's own parentheses must not cut off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# bench/run_all.py sets its own environment when imported (it drops CHROMA_HOST, for one), so it is read in a
# child process rather than in this one.
READ_PAGE = """
import json, sys
from pathlib import Path
from bench.run_all import earlier_page
print(json.dumps(earlier_page(Path(sys.argv[1]), {})[2]))
"""


def in_child(code: str, *args: str) -> str:
    """What `code` prints, run in a child process at the repository root."""
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return proc.stdout


def kept_cpus(page: Path) -> dict[str, str]:
    """The CPU named for each part the page keeps, read by bench/run_all.py as a run that measured nothing."""
    return json.loads(in_child(READ_PAGE, str(page)))


def test_the_page_own_cpu_is_named_whole(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        "# Benchmarks\n\n## Machine and run\n\n- CPU: AMD EPYC (family 26, model 2) (KVM guest), 2 cores\n\n"
        "## Cold start\n\n1.0 s\n"
    )
    assert kept_cpus(page) == {"cold": "AMD EPYC (family 26, model 2)"}


def test_each_kept_part_keeps_the_cpu_that_measured_it(tmp_path: Path) -> None:
    """A part an earlier run already kept names its own CPU; the page's CPU is only for the parts it measured."""
    page = tmp_path / "benchmarks.md"
    page.write_text(
        "# Benchmarks\n\n## Machine and run\n\n"
        "- CPU: Intel(R) Xeon(R) Processor (family 6, model 143) (KVM guest), 2 cores\n\n"
        "## newsdesk against the plain LangChain pipeline\n\nhit@1\n\n"
        "*Kept from the page's earlier run on AMD EPYC (family 25, model 17): this run did not measure it.*\n\n"
        "## Query latency at scale\n\n43 ms\n"
    )
    assert kept_cpus(page) == {
        "peer": "AMD EPYC (family 25, model 17)",
        "scale": "Intel(R) Xeon(R) Processor (family 6, model 143)",
    }


def test_the_embedder_is_measured_against_the_matmul_of_the_type_it_runs() -> None:
    """Without bfloat16 instructions torch emulates bfloat16 at a fraction of float32's rate; against that
    matmul a float32 embedder read as 254% of the yardstick on a Xeon without avx512_bf16. Where the run timed the
    matmul as it times the embedder (sustained), that rate is the yardstick, not the best burst."""
    run = (
        "from bench.run_all import yardstick\n"
        "print(*yardstick({'dtype': 'float32', 'attainable_gflops': {'float32': 331.0, 'bfloat16': 60.0}}))\n"
        "print(*yardstick({'dtype': 'bfloat16', 'attainable_gflops': {'float32': 213.0, 'bfloat16': 992.0}}))\n"
        "print(*yardstick({'dtype': 'bfloat16', 'attainable_gflops': {'float32': 193.0, 'bfloat16': 431.0},"
        " 'sustained_matmul_gflops': 422.0}))"
    )
    assert in_child(run).split("\n")[:3] == ["float32 331.0", "bfloat16 992.0", "bfloat16 422.0"]


def test_a_cpu_row_carries_its_latency_caveat() -> None:
    """Latency rows measured on the copies that shared sentences say so beside the figures, which stay."""
    run = (
        "from bench.run_all import history_table\n"
        "row = dict(cpu='AMD EPYC (family 26, model 2)', cores=2, amx=False, raw_rate=88.6, tokens_per_chunk=131,"
        " pipeline_rate=78.1, ratio=0.89, gflops=525, matmul_gflops=992, matmul_dtype='bfloat16', cold_s=0.95,"
        " answer_p50_ms=43, reader_answer_p50_ms=74, answer_chunks=100001, busy_cores=0.01, commit='e6ff681',"
        " date='2026-12-04')\n"
        "print(history_table([row, {**row, 'latency_note': 'on copies that shared sentences'}]))"
    )
    first, second = in_child(run).strip().split("\n")[-2:]
    assert "| 43 / 74 at 100,001 chunks |" in first
    assert "| 992 (bfloat16, best burst) |" in first  # rows from before the sustained timing say what they hold
    assert "| 43 / 74 at 100,001 chunks (on copies that shared sentences) |" in second


def test_the_share_says_how_the_matmul_was_timed() -> None:
    """A run that timed the matmul after each raw run gives that share and the burst's beside it; results from
    before that timing say their yardstick was the best burst."""
    run = (
        "from bench.run_all import matmul_share\n"
        "t = {'gflops': 347.0, 'attainable_gflops': {'bfloat16': 434.0}, 'sustained_matmul_gflops': 419.0,"
        " 'runs': [{'matmul_gflops': 419.0}, {'matmul_gflops': 421.0}, {'matmul_gflops': 416.0}]}\n"
        "print(matmul_share(t, 'bfloat16', 419.0))\n"
        "print(matmul_share({'gflops': 299.0, 'attainable_gflops': {'bfloat16': 422.0}}, 'bfloat16', 422.0))"
    )
    sustained, burst = in_child(run).strip().split("\n")
    assert "**83% of what the bfloat16 matmul sustains** (target >= 75%; 80% of its best burst)" in sustained
    assert "(median of the repeats: 419, 421, 416)" in sustained
    assert burst == "**71% of what the bfloat16 matmul attains at its best burst** (target >= 75%)"
