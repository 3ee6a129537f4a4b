"""The benchmark suite's smoke mode runs end to end and writes a page with every table and figure.

The full suite (bench/run_all.py) is not part of the tests; this runs its `--smoke` version (tiny sizes) in a
subprocess, so a change that breaks the benchmarks is caught without waiting for the next full run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"


@pytest.mark.slow
@pytest.mark.skipif(not (EVAL / "xquad" / "xquad.de.dev.json").exists(), reason=f"no evaluation data in {EVAL}")
def test_smoke_run_writes_the_page(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CHROMA_HOST", "CHROMA_PORT", "LLM")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,  # a guard against a hang, not a speed check: a minute when quiet, over ten at load 12
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    page = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    for heading in (
        "## Summary",
        "## Machine and run",
        "## newsdesk against the plain LangChain pipeline",
        "## Ingest throughput and the embedder against the hardware",
        "## Query latency at scale",
        "## Cold start",
    ):
        assert heading in page
    assert "| what | target | measured | met |" in page
    assert "| set | system | chunks | hit@1 | hit@5 | hit@10 | MRR@10 |" in page
    assert "| chunks | mode | search p50 / p95 (ms) | answer p50 / p95 (ms) |" in page
    assert "bench/run_all.py --smoke" in page  # the command that produced it
    for image in ("bench-peer.png", "bench-throughput.png", "bench-scale.png", "bench-cold.png"):
        assert (tmp_path / "img" / image).stat().st_size > 1000
        assert f"img/{image}" in page
