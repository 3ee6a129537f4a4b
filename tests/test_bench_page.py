"""The benchmark page keeps the name of the CPU that measured the parts a run did not redo, whole: names now carry
"(family 26, model 2)", which the page's own parentheses must not cut off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# bench/run_all.py sets its own environment when imported (it drops CHROMA_HOST, for one), so it is read in a
# child process rather than in this one.
READ_PAGE = """
import sys
from pathlib import Path
from bench.run_all import earlier_page
print(earlier_page(Path(sys.argv[1]), {})[2])
"""


def kept_cpu(page: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", READ_PAGE, str(page)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def test_the_page_own_cpu_is_named_whole(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n## Machine and run\n\n- CPU: AMD EPYC (family 26, model 2) (KVM guest), 2 cores\n")
    assert kept_cpu(page) == "AMD EPYC (family 26, model 2)"


def test_an_earlier_runs_cpu_is_named_whole(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        "# Benchmarks\n\nKept from the page's earlier run on AMD EPYC (family 25, model 17) (parts this run did not "
        "measure):\n\n## Machine and run\n\n"
        "- CPU: Intel(R) Xeon(R) Processor (family 6, model 143) (KVM guest), 2 cores\n"
    )
    assert kept_cpu(page) == "AMD EPYC (family 25, model 17)"
